package webexfetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/oauth"
)

func busyRooms(e *env, rooms, msgs int) []string {
	var ids []string
	for i := 0; i < rooms; i++ {
		r := e.srv.AddRoom(fmt.Sprintf("Room %d", i), "group", e.alice, e.bob)
		ids = append(ids, r)
		for j := 0; j < msgs; j++ {
			e.srv.Post(r, e.bob, fmt.Sprintf("room %d message %d", i, j))
		}
	}
	return ids
}

// Every document of the stand-in's rooms is held by the target, and was
// delivered exactly once.
func requireAllOnce(t *testing.T, e *env, rooms []string) {
	t.Helper()
	n := 0
	for _, r := range rooms {
		for _, id := range e.srv.Messages(r) {
			require.Equal(t, 1, e.target.AddsOf(msgRef(e, id)), "message %s", id)
			n++
		}
	}
	require.Equal(t, n+len(rooms), e.target.Len())
}

// A 500 in the middle of a room's pages, every attempt: the room counts an
// error and keeps its cursor, the other rooms are done, and the next run
// delivers the rest, nothing twice.
func TestServerErrorMidPaging(t *testing.T) {
	e := newEnv(t)
	rooms := busyRooms(e, 3, 13)
	var failing atomic.Bool
	failing.Store(true)
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if failing.Load() && r.URL.Query().Get("roomId") == rooms[1] && r.URL.Query().Get("beforeMessage") != "" {
			return &webextest.Fault{Status: http.StatusInternalServerError, Message: "Something went wrong"}
		}
		return nil
	})
	job, _, err := e.run("SYNCHRONIZE")
	require.NoError(t, err)
	c := job.Snapshot()[0]
	require.Equal(t, uint64(1), c.Errors)
	fl := job.Failures()
	require.NotNil(t, fl)
	require.Contains(t, fl.Items[0].Reason, "HTTP 500: Something went wrong")
	require.Len(t, e.waits.All(), DefaultMaxAttempts-1, "tried again, with a backoff")
	require.Equal(t, uint64(2*13+2+5), c.Added, "two rooms whole, the first page of the third")

	failing.Store(false)
	c = e.sync()
	require.Zero(t, c.Errors)
	requireAllOnce(t, e, rooms)
}

// A body cut short (the connection drops mid-answer) is read again.
func TestTruncatedBody(t *testing.T) {
	e := newEnv(t)
	rooms := busyRooms(e, 2, 6)
	var cut atomic.Int32
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == "/v1/messages" && cut.Add(1) <= 2 {
			return &webextest.Fault{TruncateAt: 40}
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors)
	requireAllOnce(t, e, rooms)
}

// A page that links to itself ends that room's listing (an error, at
// once), not the run and not in a loop.
func TestPageLinkingToItself(t *testing.T) {
	e := newEnv(t)
	rooms := busyRooms(e, 3, 12)
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Query().Get("roomId") == rooms[2] {
			return &webextest.Fault{SelfLink: true}
		}
		return nil
	})
	job, _, err := e.run("SYNCHRONIZE")
	require.NoError(t, err)
	c := job.Snapshot()[0]
	require.Equal(t, uint64(1), c.Errors)
	require.Contains(t, job.Failures().Items[0].Reason, "links back to a page already read")
	by, _ := e.srv.Requests()
	require.LessOrEqual(t, by["GET /v1/messages"], 3*3+1)
	e.srv.SetFault(nil)
	e.sync()
	requireAllOnce(t, e, rooms)
}

// Webex throttles: the connector waits as long as Retry-After says, and
// finishes.
func TestRateLimitedRetryAfter(t *testing.T) {
	e := newEnv(t)
	rooms := busyRooms(e, 2, 3)
	var n atomic.Int32
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if n.Add(1) <= 3 {
			return &webextest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "17", Message: "Too Many Requests"}
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors)
	require.Equal(t, []time.Duration{17 * time.Second, 17 * time.Second, 17 * time.Second}, e.waits.All())
	requireAllOnce(t, e, rooms)
}

// An access token that Webex stops accepting mid-run (it expired early,
// or was revoked) is refreshed once and the run goes on.
func TestTokenExpiresMidRun(t *testing.T) {
	e := newEnv(t)
	rooms := busyRooms(e, 4, 6)
	var n atomic.Int32
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if n.Add(1) == 6 {
			e.srv.RevokeAccessTokens()
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors)
	require.Equal(t, 2, e.srv.Refreshes())
	requireAllOnce(t, e, rooms)
}

// When Webex refuses the credentials for good (the refresh token was
// revoked), the action ends as Error with Webex's own message, and no
// token shows anywhere.
func TestUnauthorizedEndsWithServiceMessage(t *testing.T) {
	e := newEnv(t)
	busyRooms(e, 2, 2)
	e.sync()
	e.srv.RevokeAccessTokens()
	e.srv.RevokeRefreshTokens()
	_, _, err := e.run("SYNCHRONIZE")
	require.Error(t, err)
	require.ErrorIs(t, err, restsync.ErrUnauthorized)
	require.Contains(t, err.Error(), "The request requires a valid access token set in the Authorization request header.")
	require.Contains(t, err.Error(), "invalid_grant")
	require.NotContains(t, err.Error(), "rt-")
	require.NotContains(t, err.Error(), "at-")
}

// Without the token file, the action says to run `connector oauth`.
func TestNoTokenFile(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, os.Remove(filepath.Join(e.dir, "data", "oauth", "mywebex.token")))
	_, _, err := e.run("SYNCHRONIZE")
	require.ErrorIs(t, err, restsync.ErrAuth)
	require.Contains(t, err.Error(), "connector oauth")
}

// Files far over MaxFileBytes (1 GiB, with and without a length) are
// described, not read: the stand-in stops sending long before the end.
func TestHugeFileBounded(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "MaxFileBytes=1048576" })
	room := e.srv.AddRoom("Big", "group", e.alice, e.bob)
	withLen := e.srv.AddFile(&webextest.File{Name: "disk.img", ContentType: "application/octet-stream", Size: 1 << 30})
	noLen := e.srv.AddFile(&webextest.File{Name: "stream.bin", ContentType: "application/octet-stream", Size: 1 << 30, NoLength: true})
	m := e.srv.Post(room, e.bob, "two big files", withLen, noLen)
	c := e.sync()
	require.Zero(t, c.Errors)
	require.Equal(t, uint64(4), c.Added)
	for _, u := range []string{withLen, noLen} {
		d := e.doc(u)
		require.Equal(t, "true", field1(d, "FILE_TOO_LARGE"))
		require.Empty(t, d.Content)
	}
	require.Equal(t, "1073741824", field1(e.doc(withLen), "FILE_SIZE"))
	require.NotNil(t, e.target.Get(msgRef(e, m)))
	require.Less(t, e.srv.FileBytesSent(), int64(64<<20), "streamed and dropped, never read whole")
}

// Stop during a long Retry-After returns at once.
func TestStopDuringRateLimitWait(t *testing.T) {
	e := newEnv(t)
	busyRooms(e, 1, 1)
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		return &webextest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "300"}
	})
	// Real waits for this test.
	e.repo.Sleep = nil
	e.repo.ForgetClients()
	tasks, err := e.repo.Validate("SYNCHRONIZE", nil)
	require.NoError(t, err)
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, tasks)
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stopped by the user")
	done := make(chan error, 1)
	go func() { _, err := e.repo.Run(ctx, job); done <- err }()
	require.Eventually(t, func() bool { _, n := e.srv.Requests(); return n >= 2 }, 10*time.Second, 5*time.Millisecond)
	cancel(stop)
	select {
	case err := <-done:
		require.ErrorIs(t, err, stop)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
}

// Neither the client secret nor any token reaches the log or the store.
func TestNoSecretInLogsOrStore(t *testing.T) {
	e := newEnv(t)
	rooms := busyRooms(e, 2, 3)
	e.sync()
	e.srv.RevokeAccessTokens()
	e.sync()
	requireAllOnce(t, e, rooms)
	logs := e.logs.String()
	require.NotEmpty(t, logs)
	for _, s := range []string{"client-secret", "rt-", "at-", "Bearer"} {
		require.NotContains(t, logs, s)
	}
	for _, name := range []string{"MYWEBEX"} {
		ds, err := e.st.Datastore(name)
		require.NoError(t, err)
		require.NoError(t, ds.ForEach(func(k, v []byte) error {
			for _, s := range []string{"client-secret", "rt-", "at-"} {
				if strings.Contains(string(v), s) {
					return fmt.Errorf("%q holds %q", k, s)
				}
			}
			return nil
		}))
	}
}

// After Webex refused the refresh token (invalid_grant), the
// administrator runs `connector oauth` again, as the error says: the next
// action uses the new authorization. On main the task's kept client went
// on refreshing with the refused token, and every action ended as Error
// with invalid_grant until the server was restarted.
func TestNewAuthorizationTakenWithoutRestart(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.srv.RotateRefreshTokens = true })
	rooms := busyRooms(e, 2, 2)
	e.sync()
	e.srv.RevokeAccessTokens()
	e.srv.RevokeRefreshTokens()
	_, _, err := e.run("SYNCHRONIZE")
	require.ErrorContains(t, err, "invalid_grant")
	// connector oauth -config ... -task MyWebex
	tok := &oauth2.Token{RefreshToken: e.srv.IssueRefreshToken()}
	require.NoError(t, oauth.TokenFile{Path: filepath.Join(e.dir, "data", "oauth", "mywebex.token"), Key: e.key}.Save(tok, "client-id", nil))
	e.srv.Post(rooms[0], e.bob, "after the new authorization")
	c := e.sync()
	require.Zero(t, c.Errors)
	requireAllOnce(t, e, rooms)
}

// Webex's token endpoint is rate limited and fails on the way as its API
// does: a refresh answered 429 with Retry-After is waited out, one
// answered 502/503 tried again, as any request. On main either ended the
// action as Error ("no credentials: ... the token endpoint answered 429
// Too Many Requests") at its first request: only refused credentials
// should end it.
func TestTokenEndpointThrottledIsWaitedOut(t *testing.T) {
	for _, f := range []*webextest.Fault{
		{Status: http.StatusTooManyRequests, RetryAfter: "7"},
		{Status: http.StatusServiceUnavailable, RetryAfter: "7"},
		{Status: http.StatusBadGateway},
	} {
		t.Run(fmt.Sprint(f.Status), func(t *testing.T) {
			e := newEnv(t)
			rooms := busyRooms(e, 2, 2)
			// Every token request fails until the connector has waited
			// twice.
			e.srv.SetTokenFault(func(*http.Request) *webextest.Fault {
				if len(e.waits.All()) < 2 {
					return f
				}
				return nil
			})
			c := e.sync()
			require.Zero(t, c.Errors)
			requireAllOnce(t, e, rooms)
			want := 7 * time.Second
			if f.RetryAfter == "" {
				want = time.Second // the backoff
			}
			require.Equal(t, want, e.waits.All()[0])
			require.Len(t, e.waits.All(), 2)
		})
	}
}

// A token endpoint that keeps failing ends the action after MaxAttempts,
// with its answer, not in a loop.
func TestTokenEndpointFailingEndsTheAction(t *testing.T) {
	e := newEnv(t)
	busyRooms(e, 1, 1)
	e.srv.SetTokenFault(func(*http.Request) *webextest.Fault {
		return &webextest.Fault{Status: http.StatusServiceUnavailable}
	})
	_, _, err := e.run("SYNCHRONIZE")
	require.ErrorIs(t, err, restsync.ErrAuth)
	require.ErrorContains(t, err, "503")
	require.Len(t, e.waits.All(), DefaultMaxAttempts-1)
}

// A token endpoint that drops the connection (reset, refused, timed out
// on the way) is tried again as the API's own requests are. On main such
// a refresh ended the whole action as Error at its first request ("no
// credentials: oauth: refresh the access token ... EOF"), while a 502
// was tried again.
func TestTokenEndpointDroppedConnectionIsTriedAgain(t *testing.T) {
	e := newEnv(t)
	rooms := busyRooms(e, 2, 2)
	e.srv.SetTokenFault(func(*http.Request) *webextest.Fault {
		if len(e.waits.All()) < 2 {
			return &webextest.Fault{Drop: true}
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors)
	requireAllOnce(t, e, rooms)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, e.waits.All())
}
