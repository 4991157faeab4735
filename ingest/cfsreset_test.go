package ingest

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// staleAfterOneCFS is a fake CFS behind a load balancer whose idle
// timeout is shorter than the pauses between calls: each connection
// serves one request, and a request sent on it later (a kept-alive
// connection the balancer has dropped meanwhile) is answered by a close
// without a reply. It returns the references CFS accepted.
func staleAfterOneCFS(t *testing.T) (*fakeCFS, func() []string) {
	f := newFakeCFS(t, false)
	var mu sync.Mutex
	served := map[string]bool{} // by client address: a connection that served a request
	var accepted []string
	ok := f.reply
	f.reply = func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		stale := served[r.RemoteAddr]
		served[r.RemoteAddr] = true
		if !stale {
			for _, d := range f.received()[n-1].Adds {
				accepted = append(accepted, d.Reference)
			}
		}
		mu.Unlock()
		if stale {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = c.Close()
			}
			return
		}
		ok(w, r, n)
	}
	return f, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), accepted...)
	}
}

// Behind a load balancer that drops idle connections (its idle timeout
// shorter than Go's 90 s for a kept-alive connection), the next request
// went out on a connection the balancer had dropped, and was answered by
// a reset: the target took that for CFS refusing the request for its
// size. A single document failed as "refused on its own" (the HTTP
// connector logged that the target "cannot take" it, and sent it again
// next run), and a batch went in halves, each half on a kept-alive
// connection again, down to single documents. A close on a kept-alive
// connection is now tried once more on a new connection, as Go's client
// does for requests it may repeat, before it counts as a refusal.
func TestCFSRetriesAStaleKeptAliveConnectionOnce(t *testing.T) {
	t.Parallel()
	f, accepted := staleAfterOneCFS(t)
	tg := openFakeCFS(t, f, Options{BatchSize: 10})
	ctx := context.Background()
	one, two, batch := makeDocs("a", 1), makeDocs("b", 1), makeDocs("c", 10)

	require.NoError(t, tg.Add(ctx, one))
	require.NoError(t, tg.Add(ctx, two), "the document goes again on a new connection")
	require.NoError(t, tg.Add(ctx, batch), "the batch goes again whole on a new connection")
	var want []string
	for _, d := range append(append(one, two...), batch...) {
		want = append(want, d.Reference)
	}
	require.Equal(t, want, accepted())
	require.Len(t, f.received(), 5, "one request per call, and one more for each stale connection: no halves")

	// A close on a new connection is a refusal (or CFS gone), as before:
	// not tried again.
	f2, accepted2 := sizeLimitedCFS(t, 2000, func(w http.ResponseWriter) {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = c.Close()
		}
	})
	err := addOneTooLarge(t, f2, accepted2)
	require.ErrorContains(t, err, `document "x/3" was refused on its own`)
}

// Behind a load balancer that resets a connection idle for longer than
// its timeout (shorter than IngestTimeout), a CFS that did not answer had
// each request reset after that time, and the target took the reset for
// CFS refusing the request for its size: each batch went again in halves,
// each half waited out the balancer's timeout again, down to single
// documents (about two requests per document, hours for a batch), and the
// breaker (TestCFSNotAnsweringFailsFastUntilAProbeGetsThrough) never
// tripped. A close that comes after CFS has been silent for slowClose
// since the whole request was sent is now taken for what it is, CFS not
// answering: the call fails, and so do the next ones, at once, until a
// probe gets through.
func TestCFSCloseAfterALongSilenceIsNoAnswer(t *testing.T) {
	t.Parallel()
	f := newFakeCFS(t, false)
	f.reply = func(w http.ResponseWriter, _ *http.Request, _ int) {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = c.Close() // the balancer giving up
		}
	}
	tg := openFakeCFS(t, f, Options{BatchSize: 10, Timeout: time.Hour})
	// CFS silent for slowClose until the close: each look at the target's
	// clock is slowClose later than the one before (the request written,
	// then closed; the next call's look is within the breaker's pause).
	clock := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var cmu sync.Mutex
	tg.(*cfsTarget).now = func() time.Time {
		cmu.Lock()
		defer cmu.Unlock()
		clock = clock.Add(slowClose)
		return clock
	}

	err := tg.Add(context.Background(), makeDocs("x", 10))
	require.ErrorIs(t, err, ErrDelivery)
	var pe *PartialError
	require.False(t, errors.As(err, &pe), "no document was refused on its own: %v", err)
	require.ErrorContains(t, err, "CFS did not answer for 10s, then the connection was closed without a reply")
	require.Len(t, f.received(), 1, "the batch is not sent again, in halves or whole")

	err = tg.Add(context.Background(), makeDocs("y", 1))
	require.ErrorIs(t, err, ErrUnavailable, "the next call fails at once")
	require.Len(t, f.received(), 1)
}
