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

// A file the service fails to serve on every run (a 500 for that file
// alone) held back its whole space: the message was never recorded, so
// the space's record (its cursor) was never written, and every run read
// its members and listed it from the start again, never delivering the
// space's own document. Now the message is delivered without the file
// (its FILE_URL), the failure reported, the space recorded; the message
// is read again by the next runs, maxFileAttempts runs in all, and gets
// its file once the service serves it.
func TestFileThatAlwaysFailsDoesNotHoldBackItsSpace(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "MaxAttempts=1" })
	room := e.srv.AddRoom("Room", "group", e.alice, e.bob)
	e.srv.Post(room, e.bob, "before")
	bad := e.srv.AddFile(&webextest.File{Name: "a.txt", ContentType: "text/plain", Data: []byte("hello")})
	withFile := e.srv.Post(room, e.bob, "with a file", bad)
	e.srv.Post(room, e.bob, "after")
	badPath := bad[strings.Index(bad, "/v1/"):]
	var broken atomic.Bool
	broken.Store(true)
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == badPath && broken.Load() {
			return &webextest.Fault{Status: http.StatusInternalServerError, Message: "broken"}
		}
		return nil
	})
	c := e.sync()
	require.Equal(t, uint64(1), c.Errors)
	require.NotNil(t, e.target.Get(roomRefOf(e, room)), "the space's own document")
	require.Equal(t, bad, field1(e.doc(msgRef(e, withFile)), "FILE_URL"), "the message, without its file")
	require.Nil(t, e.target.Get(bad))

	// The next runs read that message again (and only it), up to
	// maxFileAttempts runs in all; the space is not listed again.
	for run := 2; run <= maxFileAttempts; run++ {
		e.srv.ResetRequests()
		c = e.sync()
		require.Equal(t, uint64(1), c.Errors, "run %d", run)
		reqs, _ := e.srv.Requests()
		require.Equal(t, 1, reqs["GET /v1/contents/{id}"], "run %d", run)
		require.Zero(t, reqs["GET /v1/messages"], "run %d: the space is not listed again", run)
	}
	e.srv.ResetRequests()
	c = e.sync()
	require.Zero(t, c.Errors, "given up")
	reqs, _ := e.srv.Requests()
	require.Zero(t, reqs["GET /v1/contents/{id}"])

	// A message that failed once gets its file when the service serves it.
	bad2 := e.srv.AddFile(&webextest.File{Name: "b.txt", ContentType: "text/plain", Data: []byte("second file")})
	e.srv.Post(room, e.bob, "another file", bad2)
	badPath = bad2[strings.Index(bad2, "/v1/"):]
	e.srv.Advance(time.Minute)
	c = e.sync()
	require.Equal(t, uint64(1), c.Errors)
	broken.Store(false)
	c = e.sync()
	require.Zero(t, c.Errors)
	require.Equal(t, "second file", strings.TrimSpace(e.doc(bad2).Content))
}

// A message delivered again (its space's members changed) while its file
// fails for a moment keeps the file's document that an earlier run
// delivered, rather than removing it until the file reads again.
func TestFileFailingOnRedeliveryKeepsItsDocument(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "MaxAttempts=1" })
	room := e.srv.AddRoom("Room", "group", e.alice, e.bob)
	f := e.srv.AddFile(&webextest.File{Name: "a.txt", ContentType: "text/plain", Data: []byte("hello")})
	e.srv.Post(room, e.bob, "with a file", f)
	e.srv.Advance(time.Hour)
	e.sync()
	require.Equal(t, "hello", strings.TrimSpace(e.doc(f).Content))

	path := f[strings.Index(f, "/v1/"):]
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == path {
			return &webextest.Fault{Status: http.StatusInternalServerError, Message: "broken"}
		}
		return nil
	})
	e.srv.AddMember(room, e.srv.AddPerson("carol@example.com", "Carol"))
	e.srv.Advance(time.Hour)
	c := e.sync()
	require.Equal(t, uint64(1), c.Errors)
	require.NotNil(t, e.target.Get(f), "the file's document stays")
	e.srv.SetFault(nil)
	c = e.sync()
	require.Zero(t, c.Errors)
	require.Contains(t, field(e.doc(f), "AUTONOMYMETADATA")[0], "carol", "read again, with the new members")
}
