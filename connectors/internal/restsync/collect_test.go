package restsync

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/ingest"
)

// An item is written beside its sidecar name.idx: an item whose own name
// is another's sidecar name (collected "x.idx", then "x"), or any file
// already there, is never overwritten; the item takes the next free pair
// of names.
func TestCollectorNeverOverwritesAnItemWithASidecar(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenCollector(CollectDir{dir, "."})
	require.NoError(t, err)
	defer c.Close()
	now := time.Unix(1700000000, 0)
	doc := func(ref string) *ingest.Document { return &ingest.Document{Reference: ref} }

	n1, err := c.Write("x.idx", []byte("item named x.idx"), doc("a"), now)
	require.NoError(t, err)
	require.Equal(t, "x.idx", n1)
	n2, err := c.Write("x", []byte("item named x"), doc("b"), now)
	require.NoError(t, err)
	require.Equal(t, "x (1)", n2, "x.idx is taken: x's sidecar would overwrite it")
	// And the other way round: "y" first, then "y.idx".
	_, err = c.Write("y", []byte("item named y"), doc("c"), now)
	require.NoError(t, err)
	n4, err := c.Write("y.idx", []byte("item named y.idx"), doc("d"), now)
	require.NoError(t, err)
	require.Equal(t, "y (1).idx", n4)

	read := func(n string) string {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, "item named x.idx", read("x.idx"), "the item collected first is intact")
	require.Equal(t, "item named x", read("x (1)"))
	require.Contains(t, read("x.idx.idx"), "#DREREFERENCE a")
	require.Contains(t, read("x (1).idx"), "#DREREFERENCE b")
	require.Equal(t, "item named y", read("y"))
	require.Contains(t, read("y.idx"), "#DREREFERENCE c")
	require.Equal(t, "item named y.idx", read("y (1).idx"))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 8, "four items and four sidecars, nothing left over")
}

// A document the sidecar cannot carry (a reference from a server with a
// line break in it) fails the item with an error and leaves nothing in
// the folder: no item without its sidecar, no empty sidecar, and the
// item's name stays free for a later Collect.
func TestCollectorLeavesNothingWhenTheSidecarFails(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenCollector(CollectDir{dir, "."})
	require.NoError(t, err)
	defer c.Close()
	now := time.Unix(1700000000, 0)

	_, err = c.Write("report.pdf", []byte("%PDF-1.4"), &ingest.Document{Reference: "a\n#DREENDDOC"}, now)
	require.ErrorIs(t, err, ingest.ErrInvalidDocument)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "a failed item leaves no file behind")

	n, err := c.Write("report.pdf", []byte("%PDF-1.4"), &ingest.Document{Reference: "a"}, now)
	require.NoError(t, err)
	require.Equal(t, "report.pdf", n, "the failed item's name is free again")
}
