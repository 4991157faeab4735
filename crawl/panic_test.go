package crawl

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testlog"
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

// The panic's log names the page, at error level, where a URL's
// credentials must not show (docs/security.md): the password of its user
// information and its query (a token) are redacted.
func TestPanicLogHidesTheURLsCredentials(t *testing.T) {
	p := pages{}
	s := newSite(t, p)
	secretURL := strings.Replace(s.URL, "://", "://alice:hunter2@", 1) + "/x?access_token=tok3n"
	p["/"] = linksPage("root", secretURL)
	p["/x?access_token=tok3n"] = linksPage("x")
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net, not a wait
	defer cancel()
	var panicked string
	_, err := Crawl(ctx, Config{StartURLs: []string{s.URL}, Depth: -1, Logger: log}, Hooks{
		OnPage: func(p *Page) {
			if strings.Contains(p.URL, "/x") {
				panicked = p.URL
				panic("page kaboom")
			}
		},
	})
	require.ErrorIs(t, err, ErrPanic)
	// The link's user information never reaches the page's URL (the
	// crawl drops a password's, normalize); its query, a token, does.
	require.Equal(t, s.URL+"/x?access_token=tok3n", panicked, "the page that panicked is the linked one")
	l := logs.String()
	require.Contains(t, l, "a worker panicked")
	require.Contains(t, l, "127.0.0.1")
	require.Contains(t, l, "/x?…")
	require.NotContains(t, l, "hunter2")
	require.NotContains(t, l, "tok3n")
}
