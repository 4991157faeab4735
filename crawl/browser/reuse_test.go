package browser

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBusyLeftoverDoesNotFailTheNextPage: a page that settled, was read,
// and only then started an endless loop leaves its tab to the next
// render; the next page, another URL, must still be rendered (its one
// retry, in a fresh tab) rather than fail with ErrUnresponsive because
// of the previous page's script.
func TestBusyLeftoverDoesNotFailTheNextPage(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	// The first page loops for ever 3 s after its load: long after it was
	// read.
	first := `<html><body><p>first</p><script>
addEventListener("load", function () { setTimeout(function () { for (;;) {} }, 3000) });
</script></body></html>`
	p := newPool(t, Config{Tabs: 1})
	pg := render(t, p, s.URL+"/first", first, RenderOptions{QuietWindow: 50 * time.Millisecond})
	require.Contains(t, pg.Text, "first")
	// Wait until the idle tab's renderer no longer answers.
	p.mu.Lock()
	require.Len(t, p.free, 1, "the first page's tab is kept for the next render")
	idle := p.free[0]
	p.mu.Unlock()
	// Two probes in a row without an answer: one slow answer on a loaded
	// machine is not the loop.
	deadline := time.Now().Add(30 * time.Second)
	for silent := 0; silent < 2; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cdp.Call(ctx, idle.target, runtime.Evaluate, runtime.EvaluateParams{Expression: "1"})
		cancel()
		if err != nil {
			silent++
			continue
		}
		silent = 0
		require.True(t, time.Now().Before(deadline), "the first page never started its loop")
		time.Sleep(50 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := p.Render(ctx, s.URL+"/second", []byte("<p>second</p>"), "text/html",
		RenderOptions{Deadline: 3 * time.Second, ReadTimeout: 2 * time.Second})
	require.NoError(t, err, "the second page is not to blame for the first one's loop")
	assert.Contains(t, pg.Text, "second")
	assert.Equal(t, 2, pg.Attempts, "rendered again in a fresh tab")
}
