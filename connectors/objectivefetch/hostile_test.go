package objectivefetch

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
)

func bigFolder(e *env, name string, n int) (string, []string) {
	f := e.srv.AddFolder(objectivetest.RootID, name)
	var docs []string
	for i := 0; i < n; i++ {
		docs = append(docs, e.srv.AddDocument(f, objectivetest.Doc{Name: fmt.Sprintf("%s-%02d.txt", name, i), Data: []byte("text of " + name)}))
	}
	return f, docs
}

func requireAllOnce(t *testing.T, e *env) {
	t.Helper()
	for _, id := range e.srv.Documents() {
		require.Equal(t, 1, e.target.AddsOf(objectRef(e.srv.URL, kindDocument, id)), id)
	}
}

// A 500 on a later page of a folder: its listing is incomplete, so
// nothing of it is taken for deleted; the next run completes it, nothing
// twice.
func TestServerErrorMidPaging(t *testing.T) {
	e := newEnv(t, "")
	a, _ := bigFolder(e, "a", 9)
	bigFolder(e, "b", 9)
	e.sync()
	e.srv.AddDocument(a, objectivetest.Doc{Name: "a-new.txt", Data: []byte("new")})
	var failing atomic.Bool
	failing.Store(true)
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if failing.Load() && r.URL.Query().Get("parentId") == a && r.URL.Query().Get("offset") == "4" {
			return &objectivetest.Fault{Status: http.StatusInternalServerError}
		}
		return nil
	})
	job, _, err := e.run("SYNCHRONIZE")
	require.NoError(t, err)
	c := job.Snapshot()[0]
	require.Equal(t, uint64(1), c.Errors)
	require.Zero(t, c.Deleted, "an incomplete listing deletes nothing")
	require.Len(t, e.waits.All(), DefaultMaxAttempts-1)
	failing.Store(false)
	c = e.sync()
	require.Zero(t, c.Errors)
	require.Equal(t, uint64(1), c.Added)
	requireAllOnce(t, e)
}

// Truncated bodies are read again; a server that answers every offset
// with the first page (a page that links back to itself) ends that
// folder's listing with an error instead of looping.
func TestTruncatedAndRepeatedPages(t *testing.T) {
	e := newEnv(t, "")
	a, _ := bigFolder(e, "a", 9)
	bigFolder(e, "b", 5)
	var cuts atomic.Int32
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		switch {
		case r.URL.Path == "/api/resources" && cuts.Add(1) <= 2:
			return &objectivetest.Fault{TruncateAt: 30}
		case r.URL.Query().Get("parentId") == a:
			return &objectivetest.Fault{RepeatPage: true}
		}
		return nil
	})
	job, _, err := e.run("SYNCHRONIZE")
	require.NoError(t, err)
	c := job.Snapshot()[0]
	require.Equal(t, uint64(1), c.Errors)
	require.Contains(t, job.Failures().Items[0].Reason, "links back to a page already read")
	by, _ := e.srv.Requests()
	require.Less(t, by["GET /api/resources"], 20, "no loop: %v", by)
	e.srv.SetFault(nil)
	e.sync()
	requireAllOnce(t, e)
}

// 429 with Retry-After is waited out.
func TestRateLimited(t *testing.T) {
	e := newEnv(t, "")
	bigFolder(e, "a", 3)
	var n atomic.Int32
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if n.Add(1) <= 2 {
			return &objectivetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "9"}
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors)
	require.Equal(t, []time.Duration{9 * time.Second, 9 * time.Second}, e.waits.All())
	requireAllOnce(t, e)
}

// A document of 1 GiB is described, not read (MaxFileBytes).
func TestHugeDocumentBounded(t *testing.T) {
	e := newEnv(t, "MaxFileBytes=1048576")
	f := e.srv.AddFolder(objectivetest.RootID, "Big")
	d := e.srv.AddDocument(f, objectivetest.Doc{Name: "disk.img", Size: 1 << 30})
	c := e.sync()
	require.Zero(t, c.Errors)
	doc := e.doc(kindDocument, d)
	require.Equal(t, "true", field1(doc, "FILE_TOO_LARGE"))
	require.Equal(t, "1073741824", field1(doc, "FILE_SIZE"))
	require.Less(t, e.srv.ContentBytesSent(), int64(64<<20))
}

// OAuth against the Keycloak-style endpoint: the password grant, and the
// token exchange that acts for the user with the client's secret; an
// access token refused mid-run is renewed once; a refusal of the grant
// ends the action with Keycloak's message, and no secret shows.
func TestOAuth(t *testing.T) {
	for _, c := range []struct{ name, settings string }{
		{"password", "AuthMethod=OAUTH\nUsername=alice\nPassword=alice-password\nOAuthClientID=connector"},
		{"exchange", "AuthMethod=OAUTH\nUsername=alice\nOAuthClientID=connector\nOAuthClientSecret=client-secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.settings)
			bigFolder(e, "a", 6)
			var n atomic.Int32
			e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
				if n.Add(1) == 5 {
					e.srv.RevokeAccessTokens()
				}
				return nil
			})
			cnt := e.sync()
			require.Zero(t, cnt.Errors)
			require.Equal(t, 2, e.srv.Grants())
			requireAllOnce(t, e)

			e.srv.RevokeAccessTokens()
			e.srv.RevokeRefreshTokens()
			e.srv.SetPassword("alice", "changed")
			if c.name == "exchange" {
				// The client's secret still holds: a new exchange.
				e.srv.SetFault(nil)
				e.sync()
				require.Equal(t, 3, e.srv.Grants())
				return
			}
			_, _, err := e.run("SYNCHRONIZE")
			require.Error(t, err)
			require.Contains(t, err.Error(), "invalid_grant: Invalid user credentials")
			require.NotContains(t, err.Error(), "alice-password")
			require.NotContains(t, e.logs.String(), "alice-password")
		})
	}
}

// Basic authentication refused: the action ends as Error with the
// server's message.
func TestBasicRefused(t *testing.T) {
	e := newEnv(t, "")
	bigFolder(e, "a", 1)
	e.srv.SetPassword("alice", "changed")
	_, _, err := e.run("SYNCHRONIZE")
	require.ErrorIs(t, err, restsync.ErrUnauthorized)
	require.Contains(t, err.Error(), "The access token is missing, invalid or expired.")
	require.NotContains(t, err.Error(), "alice-password")
	require.False(t, strings.Contains(e.logs.String(), "alice-password"))
}

// The token endpoint's rate limit (429 with Retry-After) and failures on
// the way (502, a dropped connection) are waited out as the server's own are. On main either
// ended the action as Error at its first request ("no credentials: the
// token endpoint answered 429 Too Many Requests").
func TestTokenEndpointThrottledIsWaitedOut(t *testing.T) {
	for _, f := range []*objectivetest.Fault{
		{Status: http.StatusTooManyRequests, RetryAfter: "7"},
		{Status: http.StatusBadGateway},
		// No answer (the connection reset): on main the action ended as
		// Error at its first request ("no credentials: token endpoint
		// ...: EOF").
		{Drop: true},
	} {
		t.Run(fmt.Sprint(f.Status, f.Drop), func(t *testing.T) {
			e := newEnv(t, "AuthMethod=OAUTH\nUsername=alice\nPassword=alice-password\nOAuthClientID=connector")
			bigFolder(e, "a", 3)
			e.srv.SetTokenFault(func(*http.Request) *objectivetest.Fault {
				if len(e.waits.All()) < 2 {
					return f
				}
				return nil
			})
			cnt := e.sync()
			require.Zero(t, cnt.Errors)
			requireAllOnce(t, e)
			require.Len(t, e.waits.All(), 2)
			if f.RetryAfter != "" {
				require.Equal(t, 7*time.Second, e.waits.All()[0])
			}
		})
	}
}

// A folder of big changed documents is delivered as its documents are
// read, not once the whole page was: on main every changed document of a
// page (PageSize, 200 by default) was downloaded and held, up to
// MaxFileBytes each, before the first was handed to the batch, so one
// page of big documents could hold gigabytes. Here the content of the
// page's last document is answered only once the target holds documents
// of the page (the batch hands its documents over at 32 MiB): on main
// the connector was still holding every one of them then.
func TestBigDocumentsOfAPageDeliveredAsRead(t *testing.T) {
	e := newEnv(t, "Concurrency=2\nExtractText=FALSE\nPageSize=200")
	f := e.srv.AddFolder(objectivetest.RootID, "Big")
	var docs []string
	for i := range 12 {
		docs = append(docs, e.srv.AddDocument(f, objectivetest.Doc{Name: fmt.Sprintf("big-%02d.bin", i), Size: 4 << 20}))
	}
	last := docs[len(docs)-1]
	var refs []string
	for _, d := range docs[:len(docs)-1] {
		refs = append(refs, objectRef(e.srv.URL, kindDocument, d))
	}
	var early atomic.Bool
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if strings.Contains(r.URL.Path, "/documents/"+last+"/content") {
			early.Store(e.target.AwaitAny(refs, 10*time.Second)) // on the server's goroutine
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors)
	requireAllOnce(t, e)
	require.True(t, early.Load(), "documents of the page were delivered before its last one was read")
}

// A token endpoint that rate-limits the refresh of an access token (429
// with Retry-After) is waited out, and the refresh token sent again: the
// password is not posted meanwhile. Before, any failed refresh fell back
// at once to a password grant, so a throttled endpoint got a second
// request straight away (with the user's password), and Retry-After was
// never honoured while the password grant went through.
func TestTokenRefreshThrottledIsWaitedOutNotAPasswordGrant(t *testing.T) {
	e := newEnv(t, "AuthMethod=OAUTH\nUsername=alice\nPassword=alice-password\nOAuthClientID=connector",
		objectivetest.Options{AccessTTL: time.Second}) // shorter than oauth2's expiry margin: every request refreshes
	bigFolder(e, "a", 3)
	var mu sync.Mutex
	grants := map[string]int{}
	throttled := false
	e.srv.SetTokenFault(func(r *http.Request) *objectivetest.Fault {
		_ = r.ParseForm()
		mu.Lock()
		defer mu.Unlock()
		g := r.PostForm.Get("grant_type")
		grants[g]++
		if g == "refresh_token" && !throttled {
			throttled = true
			return &objectivetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "7"}
		}
		return nil
	})
	cnt := e.sync()
	require.Zero(t, cnt.Errors)
	requireAllOnce(t, e)
	mu.Lock()
	defer mu.Unlock()
	require.True(t, throttled)
	require.Equal(t, 1, grants["password"], "the password is posted once, for the first token: %v", grants)
	require.Contains(t, e.waits.All(), 7*time.Second, "Retry-After waited out")
}

// A server whose largest page is smaller than PageSize answers full
// pages of its own size: the listing goes on to the end, so no document
// is lost, and none is taken for deleted.
func TestServerCapsPageSize(t *testing.T) {
	e := newEnv(t, "PageSize=20")
	a, _ := bigFolder(e, "a", 9)
	bigFolder(e, "b", 3)
	c := e.sync()
	require.Zero(t, c.Errors)
	requireAllOnce(t, e)
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		return &objectivetest.Fault{MaxLimit: 2}
	})
	e.srv.AddDocument(a, objectivetest.Doc{Name: "a-new.txt", Data: []byte("new")})
	c = e.sync()
	require.Zero(t, c.Errors)
	require.Equal(t, uint64(1), c.Added, "the new document is found")
	require.Zero(t, c.Deleted, "nothing unseen is taken for deleted")
	for _, id := range e.srv.Documents() {
		require.False(t, e.gone(kindDocument, id), id)
	}
	c5, _ := bigFolder(e, "c", 5)
	c = e.sync()
	require.Zero(t, c.Errors)
	require.Equal(t, uint64(6), c.Added, "a new folder and its 5 documents are found")
	require.NotNil(t, e.doc(kindFolder, c5))
	requireAllOnce(t, e)

	// A server that ignores paging answers the next offset with the
	// short page again: that page was the whole list, not a loop.
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		return &objectivetest.Fault{RepeatPage: true}
	})
	c = e.sync()
	require.Zero(t, c.Errors)
	require.Zero(t, c.Deleted)
}

// TestParentLoopEndsTheRootNotTheRun: a server whose parents loop (a
// folder's parent is, up the chain, the folder itself). Working out a
// root's path and inherited permissions went up through the parents until
// one had none, asking for each, without end: the run made requests and
// grew the path until it was stopped. Now a parent met twice fails the
// root, and the run goes on.
func TestParentLoopEndsTheRootNotTheRun(t *testing.T) {
	e := newEnv(t, "")
	a := e.srv.AddFolder(objectivetest.RootID, "A")
	e.srv.AddDocument(a, objectivetest.Doc{Name: "x.txt", Data: []byte("x")})
	e.reconfigure("RootFolders=" + a)
	require.Zero(t, e.sync().Errors)
	e.srv.Update(objectivetest.RootID, func(o *objectivetest.Object) { o.ParentID = a })

	var objects atomic.Int64
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if strings.HasPrefix(r.URL.Path, "/api/resources/folders/") && !strings.Contains(r.URL.Path, "/permissions") {
			if objects.Add(1) > 500 { // ends what would not end on its own
				return &objectivetest.Fault{Status: http.StatusServiceUnavailable}
			}
		}
		return nil
	})
	job, _, err := e.run("SYNCHRONIZE")
	require.NoError(t, err)
	require.Equal(t, uint64(1), job.Snapshot()[0].Errors, "the root fails")
	require.Less(t, objects.Load(), int64(10), "up through the parents once")
}
