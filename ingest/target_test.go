package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

func TestOpenTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		typ      string
		wantDesc string // Describe prefix
	}{
		{desc: "default is IDX", typ: "", wantDesc: "IDX folder "},
		{desc: "IDX", typ: "IDX", wantDesc: "IDX folder "},
		{desc: "case-insensitive", typ: " idx ", wantDesc: "IDX folder "},
		{desc: "JSONL", typ: "jsonl", wantDesc: "JSONL folder "},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "created", "on", "open")
			var logs bytes.Buffer
			tg, err := Open(Options{Type: tt.typ, Directory: dir}, slog.New(slog.NewTextHandler(&logs, nil)))
			require.NoError(t, err)
			t.Cleanup(func() { _ = tg.Close() })
			require.Equal(t, tt.wantDesc+dir, tg.Describe())
			require.DirExists(t, dir)
			require.Empty(t, dirFiles(t, dir), "the writability probe leaves nothing behind")
			require.Contains(t, logs.String(), "ingestion target opened")
			require.Contains(t, logs.String(), "component=ingest")
			require.NoError(t, tg.Add(context.Background(), makeDocs("x", 1)))
		})
	}
}

func TestOpenDisabled(t *testing.T) {
	t.Parallel()
	tg, err := Open(Options{Type: "none"}, nil)
	require.ErrorIs(t, err, ErrDisabled)
	require.Nil(t, tg)
}

func TestOpenRejectsBadOptions(t *testing.T) {
	t.Parallel()
	notADir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notADir, nil, 0o644))
	tests := []struct {
		desc     string
		opts     Options
		wantName string
		missing  bool
		wantMsg  string
	}{
		{desc: "unknown type", opts: Options{Type: "SOLR"}, wantName: "IngesterType",
			wantMsg: `invalid value "SOLR" for parameter IngesterType: must be IDX, JSONL, CFS or NONE`},
		{desc: "IDX without directory", opts: Options{}, wantName: "IngestDirectory", missing: true},
		{desc: "JSONL without directory", opts: Options{Type: TypeJSONL, Directory: "  "}, wantName: "IngestDirectory", missing: true},
		{desc: "directory is a file", opts: Options{Directory: notADir}, wantName: "IngestDirectory", wantMsg: "cannot create it"},
		{desc: "directory below a file", opts: Options{Type: TypeJSONL, Directory: filepath.Join(notADir, "sub")}, wantName: "IngestDirectory", wantMsg: "not a directory"},
		{desc: "negative batch size", opts: Options{Directory: t.TempDir(), BatchSize: -1}, wantName: "IngestBatchSize"},
		{desc: "negative timeout", opts: Options{Type: TypeCFS, Host: "h", Port: 1, Timeout: -time.Second}, wantName: "IngestTimeout"},
		{desc: "negative max file size", opts: Options{Type: TypeJSONL, Directory: t.TempDir(), MaxFileBytes: -5}, wantName: "IngestMaxFileBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			tg, err := Open(tt.opts, nil)
			require.Nil(t, tg)
			var pe *messages.ParamError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.wantName, pe.Name)
			require.Equal(t, tt.missing, pe.Missing)
			if tt.missing {
				require.ErrorIs(t, err, messages.ErrMissingParam)
			} else {
				require.ErrorIs(t, err, messages.ErrInvalidParam)
			}
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	o := Options{}
	require.NoError(t, o.withDefaults())
	require.Equal(t, Options{BatchSize: DefaultBatchSize, Timeout: DefaultTimeout, MaxFileBytes: DefaultMaxFileBytes}, o)
	o = Options{BatchSize: 7, Timeout: time.Second, MaxFileBytes: 9}
	require.NoError(t, o.withDefaults())
	require.Equal(t, Options{BatchSize: 7, Timeout: time.Second, MaxFileBytes: 9}, o)
}

func TestStampedNamesSortAndDiffer(t *testing.T) {
	t.Parallel()
	prev := ""
	for range 1000 {
		n := stampedName(nextStamp(), "0123456789abcdef", ExtIDX)
		require.Len(t, n, 20+1+16+len(ExtIDX))
		require.Greater(t, n, prev)
		prev = n
	}
	a, err := newInstanceID()
	require.NoError(t, err)
	b, err := newInstanceID()
	require.NoError(t, err)
	require.Len(t, a, 16)
	require.NotEqual(t, a, b)
}

// TestTargetsShareTheContract runs the same scenario on IDX and JSONL
// through Open: a delivered batch is readable, a closed target refuses.
func TestTargetsShareTheContract(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{TypeIDX, TypeJSONL} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tg, err := Open(Options{Type: typ, Directory: dir}, nil)
			require.NoError(t, err)
			docs := makeDocs("http://s", 3)
			require.NoError(t, tg.Add(context.Background(), docs))
			require.NoError(t, tg.Remove(context.Background(), []string{"http://s/1"}))
			var refs []string
			if typ == TypeIDX {
				_, _, refs = readIDXFolder(t, dir)
			} else {
				for _, l := range readJSONL(t, dir) {
					refs = append(refs, l.Op+" "+l.Reference)
				}
			}
			require.Equal(t, []string{"add http://s/0", "add http://s/1", "add http://s/2", "remove http://s/1"}, refs)
			require.NoError(t, tg.Close())
			require.ErrorIs(t, tg.Add(context.Background(), docs), ErrClosed)
		})
	}
}

// A file the consumer has not applied yet, from before a restart with the
// clock set back (a virtual machine restored, a clock that NTP corrected
// after the server started), is not overtaken: the target's files sort
// after every stamped file in the folder when it opens. Before, the new
// files sorted first, and a consumer applying the folder in name order
// applied them before the older ones: a removal made after the restart
// was undone by the add of the same reference from before it.
func TestNewFilesSortAfterThoseInTheFolder(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ typ, ext, pending string }{
		{TypeIDX, ExtRemoval, "#DREDELETEREF x/0\n"},
		{TypeJSONL, ExtJSONL, `{"op":"remove","reference":"x/0"}` + "\n"},
	} {
		t.Run(c.typ, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ahead := stampedName(time.Now().Add(time.Hour).UnixNano(), "00000000000000ff", c.ext)
			require.NoError(t, os.WriteFile(filepath.Join(dir, ahead), []byte(c.pending), 0o640))
			tg, err := Open(Options{Type: c.typ, Directory: dir}, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tg.Close() })
			require.NoError(t, tg.Add(context.Background(), makeDocs("x", 1)))
			names := filesWithExt(t, dir, ExtIDX, ExtRemoval, ExtJSONL)
			require.Len(t, names, 2)
			require.Equal(t, ahead, names[0], "the file from before the restart is applied first")
		})
	}
}
