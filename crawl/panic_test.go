package crawl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A panic while a worker processes a page (in the crawl's HTML reading,
// or in a hook: httpfetch's OnPage builds the page's document) would end
// the process: the workers are the crawl's goroutines, outside the
// recovery of the action that runs it. It aborts the crawl instead, and
// Crawl returns an error saying so (ErrPanic), so that the action ends
// as Error with the panic's message.
func TestPanicInAPageAbortsTheCrawl(t *testing.T) {
	s := newSite(t, pages{
		"/":  linksPage("root", "/x", "/y"),
		"/x": linksPage("x"),
		"/y": linksPage("y"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net, not a wait
	defer cancel()
	st, err := Crawl(ctx, Config{StartURLs: []string{s.URL}, Depth: -1, Concurrency: 2, Logger: quietLogger()}, Hooks{
		OnPage: func(p *Page) {
			if strings.HasSuffix(p.URL, "/x") {
				panic("page kaboom")
			}
		},
	})
	require.ErrorIs(t, err, ErrPanic)
	require.Contains(t, err.Error(), "panic: page kaboom")
	require.Equal(t, StopAborted, st.StoppedBy)
}
