package httpfetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/messages"
)

// fetched is the outcome of fetching one known URL now.
type fetched struct {
	page *crawl.Page
	err  error
}

// errNotDelivered: the crawl fetched nothing for a URL and reported no
// failure.
var errNotDelivered = errors.New("httpfetch: the page was not delivered (it is marked noindex, or it redirects to another item of the same request)")

// fetchNow fetches urls (normalised URLs known to a task's datastore) with
// the task's user agent, timeout, size limit, redirect limit, rate limit
// and robots rules, any media type allowed and no link followed: what
// Collect, Update and View need. It returns an error only when ctx ends.
//
// tr's renderer and cookie jar apply (nil: none).
func (r *Repository) fetchNow(ctx context.Context, s *settings, tr *TaskRun, urls []string) (map[string]*fetched, error) {
	out := make(map[string]*fetched, len(urls))
	if len(urls) == 0 {
		return out, nil
	}
	redirects := s.MaxRedirects
	if redirects == 0 {
		redirects = -1
	}
	cfg := crawl.Config{
		StartURLs: urls,
		Depth:     0,
		// A known page's redirect stays on the task's sites, as in
		// the crawl that found it.
		StayOnSite:          s.StayOnSite,
		SiteURLs:            append(slices.Clone(s.URLs), s.SitemapURLs...),
		FollowRobots:        s.FollowRobots,
		IgnoreRobotsErrors:  s.IgnoreRobotsErrors,
		PageDelay:           s.PageDelay,
		MaxBytesPerSec:      s.MaxBytesPerSec,
		RequestTimeout:      s.RequestTimeout,
		MaxPageSize:         s.MaxPageBytes,
		UserAgent:           s.UserAgent,
		Concurrency:         min(s.Concurrency, len(urls)),
		AllowedContentTypes: []string{"*/*"},
		MaxRedirects:        redirects,
		BasicAuth:           s.basicAuth(),
		// The task's URLs are as its crawl normalised them.
		SessionParams: s.SessionParams,
		Deny:          r.guard,
		Client:        r.client,
		Logger:        slog.New(quietInfo{r.log.Handler()}),
	}
	if tr != nil {
		cfg.Render, cfg.Jar = tr.Render, tr.Jar
	}
	var mu sync.Mutex
	_, err := crawl.Crawl(ctx, cfg, crawl.Hooks{
		OnPage: func(p *crawl.Page) {
			p.KeepBody() // the caller reads the page after the crawl
			mu.Lock()
			out[p.URL] = &fetched{page: p}
			mu.Unlock()
		},
		OnError: func(u string, _ int, err error) {
			mu.Lock()
			out[u] = &fetched{err: err}
			mu.Unlock()
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("httpfetch: fetch: %w", err)
	}
	for _, u := range urls {
		if out[u] == nil {
			out[u] = &fetched{err: errNotDelivered}
		}
	}
	return out, nil
}

// gone reports a fetch error that means the page no longer exists.
func gone(err error) bool {
	var fe *crawl.FetchError
	return errors.As(err, &fe) && errors.Is(fe, crawl.ErrStatus) && (fe.Status == 404 || fe.Status == 410)
}

// notFound wraps messages.ErrNotFound for View.
func notFound(format string, args ...any) error {
	return fmt.Errorf("httpfetch: "+format+": %w", append(args, messages.ErrNotFound)...)
}

// quietInfo turns the crawl's per-crawl info lines into debug lines: a
// View or Collect fetching a few pages is not a crawl worth announcing.
type quietInfo struct{ h slog.Handler }

func (q quietInfo) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return q.h.Enabled(ctx, l)
}

func (q quietInfo) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level == slog.LevelInfo {
		rec.Level = slog.LevelDebug
	}
	return q.h.Handle(ctx, rec)
}

func (q quietInfo) WithAttrs(as []slog.Attr) slog.Handler { return quietInfo{q.h.WithAttrs(as)} }
func (q quietInfo) WithGroup(name string) slog.Handler    { return quietInfo{q.h.WithGroup(name)} }
