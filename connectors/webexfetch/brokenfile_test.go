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
	failFile(e, bad, webextest.Fault{Status: http.StatusInternalServerError, Message: "broken"})
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
	broken := failFile(e, bad2, webextest.Fault{Status: http.StatusInternalServerError, Message: "broken"})
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

// A file Webex is still scanning for malware answers 423 Locked, with a
// Retry-After (Cisco's OpenAPI: "temporarily unavailable. A Retry-After
// header may be present that specifies how many seconds you need to wait
// before attempting the request again"). It was taken as a failure: the
// message went without its file, the run listed an error, and the file
// came only with a later run. Now the request is tried again, as after a
// 503 (MaxAttempts in all), after the wait the Retry-After asks for, and
// the file is read in the same run; one locked longer than that is the
// file's failure, as before.
func TestFileUnderMalwareScanIsWaitedFor(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Room", "group", e.alice, e.bob)
	f := e.srv.AddFile(&webextest.File{Name: "a.txt", ContentType: "text/plain", Data: []byte("scanned")})
	g := e.srv.AddFile(&webextest.File{Name: "b.txt", ContentType: "text/plain", Data: []byte("scanned too")})
	stuck := e.srv.AddFile(&webextest.File{Name: "c.txt", ContentType: "text/plain", Data: []byte("never scanned")})
	e.srv.Post(room, e.bob, "with files", f, g)
	e.srv.Post(room, e.bob, "with a stuck file", stuck)
	fPath, gPath, stuckPath := f[strings.Index(f, "/v1/"):], g[strings.Index(g, "/v1/"):], stuck[strings.Index(stuck, "/v1/"):]
	var fAsked, gAsked, stuckAsked atomic.Int64
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		switch {
		case r.URL.Path == fPath && fAsked.Add(1) <= 2:
			return &webextest.Fault{Status: http.StatusLocked, RetryAfter: "7", Message: "The file is being scanned for malware"}
		case r.URL.Path == gPath && gAsked.Add(1) <= 1:
			return &webextest.Fault{Status: http.StatusLocked, Message: "The file is being scanned for malware"}
		case r.URL.Path == stuckPath && stuckAsked.Add(1) > 0:
			return &webextest.Fault{Status: http.StatusLocked, RetryAfter: "7", Message: "The file is being scanned for malware"}
		}
		return nil
	})
	c := e.sync()
	require.Equal(t, uint64(1), c.Errors, "the stuck file's: %+v", c)
	require.Equal(t, "scanned", strings.TrimSpace(e.doc(f).Content))
	require.Equal(t, "scanned too", strings.TrimSpace(e.doc(g).Content))
	require.Nil(t, e.target.Get(stuck))
	require.Equal(t, int64(3), fAsked.Load())
	require.Equal(t, int64(2), gAsked.Load())
	require.Equal(t, int64(DefaultMaxAttempts), stuckAsked.Load(), "MaxAttempts in all")
	sevens := 0
	for _, d := range e.waits.All() {
		if d == 7*time.Second {
			sevens++
		}
	}
	require.Equal(t, 2+DefaultMaxAttempts-1, sevens, "the Retry-After waited out")
}

// The names of a message's author who is not a member of its space (who
// left it) and of the people it mentions are looked up (GET /people),
// which Cisco warns is quick to answer 429. A lookup that failed on the
// way (a 5xx still failing after MaxAttempts, throttling past
// MaxRetryAfter) was only logged: the page's messages went to the index
// without those names, were recorded, and so were never delivered again:
// AUTHOR and MENTIONED_PERSON_NAME were lost for good. Now such a failure
// is the space's (counted, its cursor kept), and the next run delivers
// its messages with the names. A lookup the service refuses for good (a
// 4xx) still leaves the names out.
func TestPeopleLookupFailureDoesNotLoseNamesForGood(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "MaxAttempts=2" })
	room := e.srv.AddRoom("Room", "group", e.alice, e.bob)
	m := e.srv.PostMessage(&webextest.Message{RoomID: room, PersonID: e.carol, Text: "from a former member", MentionedPeople: []string{e.carol}})
	var status atomic.Int64
	status.Store(http.StatusBadGateway)
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == "/v1/people" && status.Load() != 0 {
			return &webextest.Fault{Status: int(status.Load()), Message: "people are unavailable"}
		}
		return nil
	})
	c := e.sync()
	require.Equal(t, uint64(1), c.Errors, "%+v", c)

	status.Store(0)
	c = e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	d := e.doc(msgRef(e, m))
	require.Equal(t, "Carol Cole", field1(d, "AUTHOR"))
	require.Equal(t, "Carol Cole", field1(d, "MENTIONED_PERSON_NAME"))

	// Refused for good: the names are left out, the space is done.
	status.Store(http.StatusForbidden)
	other := e.srv.AddRoom("Other", "group", e.alice)
	n := e.srv.Post(other, e.carol, "again")
	c = e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	require.Empty(t, field1(e.doc(msgRef(e, n)), "AUTHOR"))
}

// A file Webex cannot scan for malware (an encrypted archive, say) is
// answered 428 Precondition Required (Cisco's OpenAPI: "File(s) cannot be
// scanned for malware and need to be force downloaded"), on every run:
// it is not a failure on the way. It was taken for one: every run for
// maxFileAttempts runs listed an error for the space, read the message and
// the file again, and then gave it up. Now the message is delivered
// without it (its FILE_URL only), as with a file gone, at once and for
// good: no error, and no request for it again.
func TestUnscannableFileIsNotAFailureRunAfterRun(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Room", "group", e.alice, e.bob)
	ok := e.srv.AddFile(&webextest.File{Name: "a.txt", ContentType: "text/plain", Data: []byte("scanned")})
	enc := e.srv.AddFile(&webextest.File{Name: "secret.zip", ContentType: "application/zip", Data: []byte("PK encrypted")})
	m := e.srv.Post(room, e.bob, "with files", ok, enc)
	encPath := enc[strings.Index(enc, "/v1/"):]
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == encPath {
			return &webextest.Fault{Status: http.StatusPreconditionRequired, Message: "The file cannot be scanned for malware"}
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	require.Equal(t, []string{ok, enc}, field(e.doc(msgRef(e, m)), "FILE_URL"))
	require.Equal(t, "scanned", strings.TrimSpace(e.doc(ok).Content))
	require.Nil(t, e.target.Get(enc))

	e.srv.ResetRequests()
	c = e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	reqs, _ := e.srv.Requests()
	require.Zero(t, reqs["GET /v1/contents/{id}"], "not asked for again")
	require.Zero(t, reqs["GET /v1/messages/{id}"], "nor its message")
}

// TestUnscannableFilesAreReadWhenTheTaskTakesThem: Webex serves a file it
// cannot scan for malware (an encrypted archive, say: 428 Precondition
// Required) only to a request that takes the risk (allow=unscannable).
// The connector never asked so: a compliance archive lost every such
// attachment for good, with nothing but an information line in the log.
// With IndexUnscannableFiles=TRUE it asks again so, and the file is
// indexed like any other (turned on for a task that indexed without it,
// the messages with files are delivered again, as with the other file
// settings); Collect takes it too. Off (the default), nothing changes.
func TestUnscannableFilesAreReadWhenTheTaskTakesThem(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Room", "group", e.alice, e.bob)
	enc := e.srv.AddFile(&webextest.File{Name: "secret.txt", ContentType: "text/plain", Data: []byte("encrypted notes"), Unscannable: true})
	m := e.srv.Post(room, e.bob, "with a file", enc)
	require.Zero(t, e.sync().Errors)
	require.Nil(t, e.target.Get(enc), "not read by default")

	e.reconfigure("IndexUnscannableFiles=TRUE")
	c := e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	require.Equal(t, "encrypted notes", strings.TrimSpace(e.doc(enc).Content))
	require.Equal(t, []string{"secret.txt"}, field(e.doc(msgRef(e, m)), "FILE_NAME"))

	_, res, err := e.run("COLLECT", "Identifiers", identifier("MYWEBEX", room, m, 1), "Destination", "unscannable")
	require.NoError(t, err)
	require.Equal(t, "success", res[0].Children[0].Name, "%+v", res[0].Children[0])

	// Turned off again: the file's document goes.
	e.reconfigure("")
	require.Zero(t, e.sync().Errors)
	require.Nil(t, e.target.Get(enc))
}

// TestThrottledFileIsNotGivenUp: a file whose download Webex keeps
// refusing for its rate (429 with a Retry-After past MaxRetryAfter: a busy
// organisation, other integrations on the same quota) was taken for a
// file Webex fails to serve: the message went without it, and after
// maxFileAttempts such runs it was given up until the message changes,
// though nothing was wrong with it. Throttling is the service's, not the
// file's: the space fails that run (as it does when a people lookup is
// throttled: its cursor stays) and the file is read once Webex serves
// it, however many runs that takes.
func TestThrottledFileIsNotGivenUp(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "MaxRetryAfter=1m" })
	room := e.srv.AddRoom("Room", "group", e.alice, e.bob)
	f := e.srv.AddFile(&webextest.File{Name: "a.txt", ContentType: "text/plain", Data: []byte("hello")})
	m := e.srv.Post(room, e.bob, "with a file", f)
	throttled := failFile(e, f, webextest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3600"})
	for run := 1; run <= maxFileAttempts+1; run++ {
		c := e.sync()
		require.NotZero(t, c.Errors, "run %d: the throttling is reported", run)
		e.srv.Advance(time.Hour)
	}
	throttled.Store(false)
	c := e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	require.Equal(t, "hello", strings.TrimSpace(e.doc(f).Content), "read once Webex serves it")
	require.Equal(t, []string{"a.txt"}, field(e.doc(msgRef(e, m)), "FILE_NAME"))
}

// failFile makes the stand-in answer fault for a file (by its URL), and
// nothing else, while the switch it returns is on (it starts on).
func failFile(e *env, file string, fault webextest.Fault) *atomic.Bool {
	path := file[strings.Index(file, "/v1/"):]
	on := &atomic.Bool{}
	on.Store(true)
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == path && on.Load() {
			f := fault
			return &f
		}
		return nil
	})
	return on
}
