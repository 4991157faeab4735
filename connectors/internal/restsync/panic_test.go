package restsync

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
)

// walkPanic runs Walk and returns what it panicked with on the calling
// goroutine (nil if it did not).
func walkPanic(ctx context.Context, c *Client, get func(context.Context, string) (Page[int], error)) (p any, err error) {
	defer func() { p = recover() }()
	err = Walk(ctx, c, "/p0", get, func([]int) (bool, error) { return false, nil })
	return nil, err
}

// A panic in a page's get (a connector's decoding of the service's
// answer), which Walk runs on a goroutine of its own, is raised again on
// the goroutine that called Walk, where the worker's recovery makes it
// the action's Error (docs/architecture.md), instead of ending the
// process, server and every other action with it. Both the first page
// and a page fetched ahead are covered.
func TestWalkRaisesAPagePanicOnTheCaller(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil, &waits{})
	for _, bad := range []string{"/p0", "/p1"} {
		abs, err := c.Resolve(bad)
		require.NoError(t, err)
		get := func(_ context.Context, u string) (Page[int], error) {
			if u == abs.String() {
				panic("kaboom in " + bad)
			}
			return Page[int]{Items: []int{1}, Next: "/p1"}, nil
		}
		p, err := walkPanic(context.Background(), c, get)
		require.NoError(t, err)
		require.Equal(t, "kaboom in "+bad, fmt.Sprint(p), "page %s", bad)
	}
}

// panicTarget panics on every Add.
type panicTarget struct{ recTarget }

func (*panicTarget) Add(context.Context, []*ingest.Document) error { panic("target kaboom") }

// A panic while the delivering goroutine delivers or records a batch
// ends the deliveries with an error naming it, which Flush and MaybeFlush
// return (so the action ends as Error with its message), instead of
// ending the process. Both a whole batch and an early delivery
// (FileSize) are covered.
func TestBatchDeliveryPanicIsAnError(t *testing.T) {
	for _, fileSize := range []int{0, 1} {
		job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
		b := &Batch{DS: memDatastore(t), Target: &panicTarget{}, Counts: job.Counts("T"), Size: 2, FileSize: fileSize}
		ctx := context.Background()
		for i := range 5 {
			b.Deliver(fmt.Sprint(i), &Record{Ref: fmt.Sprint(i)}, doc(fmt.Sprint(i)), nil)
			_ = b.MaybeFlush(ctx)
		}
		err := b.Flush(ctx)
		require.Error(t, err, "FileSize %d", fileSize)
		require.Contains(t, err.Error(), "panic: target kaboom", "FileSize %d", fileSize)
		require.EqualValues(t, 0, job.Counts("T").Snapshot().Added)
		b.Close()
	}
}

// panicSource panics on every Token.
type panicSource struct{}

func (panicSource) Token() (*oauth2.Token, error) { panic("token kaboom") }

// A panic in a token source (the reading of the token endpoint's answer),
// which Authorize runs on a goroutine of its own so as to return when the
// action's context ends, is raised again on the goroutine that sent the
// request, where the worker's recovery (or the connector goroutine's)
// makes it the action's Error, instead of ending the process.
func TestTokenPanicIsRaisedOnTheCaller(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", &TokenAuth{New: func(context.Context) (oauth2.TokenSource, error) {
		return panicSource{}, nil
	}}, &waits{})
	p := func() (p any) {
		defer func() { p = recover() }()
		_, _ = c.GetJSON(context.Background(), "/x", &struct{}{})
		return nil
	}()
	require.Equal(t, "token kaboom", p)
}
