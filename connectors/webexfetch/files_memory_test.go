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
	e, m, files, lastPath := bigFilesMessage(t, false)
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

// TestFilesOfAnUnfinishedMessageAreRemovedWithIt: a run that ends before
// a message's record is written (a fatal error, here a 401 on its last
// file; a Stop) may already have delivered some of its files, which go to
// the delivery as they are read. Nothing named them: once the message was
// deleted, the next run removed what its record named (nothing), and the
// files' documents stayed in the index for good. A provisional record
// now names them before they are delivered, so they go with the message.
func TestFilesOfAnUnfinishedMessageAreRemovedWithIt(t *testing.T) {
	e, m, files, lastPath := bigFilesMessage(t, true)
	var fail atomic.Bool
	fail.Store(true)
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == lastPath && fail.Load() {
			e.target.AwaitAny(files[:len(files)-1], 10*time.Second) // on the server's goroutine
			return &webextest.Fault{Status: http.StatusUnauthorized, Message: "token revoked"}
		}
		return nil
	})
	_, _, err := e.run("SYNCHRONIZE")
	require.ErrorContains(t, err, "HTTP 401")
	require.NotEmpty(t, e.target.Held(files), "files of the message delivered before the run ended")

	fail.Store(false)
	e.srv.Delete(m)
	_, _, err = e.run("SYNCHRONIZE")
	require.NoError(t, err)
	require.Empty(t, e.target.Held(files), "files of the deleted message still in the index")
	require.Nil(t, e.target.Get(msgRef(e, m)))
}

// bigFilesMessage posts a message with four files of 1 MiB in a new space,
// with batches of 2 documents and no text extraction, after a first run
// when synced; it returns the message, its files and the path of the
// last one's content.
func bigFilesMessage(t *testing.T, synced bool) (*env, string, []string, string) {
	e := newEnv(t, func(o *envOptions) { o.settings = "ExtractText=FALSE" })
	e.repo.batchSize = 2
	room := e.srv.AddRoom("Big files", "group", e.alice, e.bob)
	if synced {
		e.sync()
	}
	var files []string
	for range 4 {
		files = append(files, e.srv.AddFile(&webextest.File{Name: "big.bin", ContentType: "application/octet-stream", Size: 1 << 20}))
	}
	m := e.srv.Post(room, e.bob, "four big files", files...)
	last := files[len(files)-1]
	return e, m, files, last[strings.Index(last, "/v1/"):]
}
