package webexfetch

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
)

// TestFilesOfAMessageDeliveredAsRead: a message with several big files
// (up to MaxFileBytes, 64 MiB, each). On main every file of a message was
// downloaded and held before the message and its files were handed to
// the batch, so one message held all its files at once, and Concurrency
// spaces (4) each such a message: gigabytes. Each file's document now
// goes to the batch as it is read (the batch hands its documents over at
// 32 MiB, here at 2 documents), and the message's own document and
// record follow, written only when none of them was refused. Here the
// content of the message's last file is answered only once the target
// holds one of the files before it: on main the connector was still
// holding every one of them then.
func TestFilesOfAMessageDeliveredAsRead(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "ExtractText=FALSE" })
	e.repo.batchSize = 2
	room := e.srv.AddRoom("Big files", "group", e.alice, e.bob)
	var files []string
	for range 4 {
		files = append(files, e.srv.AddFile(&webextest.File{Name: "big.bin", ContentType: "application/octet-stream", Size: 1 << 20}))
	}
	m := e.srv.Post(room, e.bob, "four big files", files...)
	last := files[len(files)-1]
	lastPath := last[strings.Index(last, "/v1/"):]
	var early atomic.Bool
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == lastPath {
			early.Store(e.target.AwaitAny(files[:len(files)-1], 10*time.Second)) // on the server's goroutine
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors)
	require.True(t, early.Load(), "files of the message were delivered before its last one was read")
	require.Equal(t, files, field(e.doc(msgRef(e, m)), "FILE_URL"))
	for _, f := range files {
		require.Equal(t, 1, e.target.AddsOf(f), f)
	}
	require.Equal(t, uint64(6), c.Added, "the space, the message and its four files: %+v", c)

	// Nothing again on the next run.
	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted+c.Errors, "%+v", c)
}
