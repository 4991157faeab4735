package crawl

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/connectorhq/connector/secret"
)

// Sitemaps (sitemaps.org protocol 0.9): XML sitemaps and sitemap indexes,
// gzipped or not, and text sitemaps (one URL a line), named by
// Config.SitemapURLs, by the Sitemap: lines of the start URLs' robots.txt
// files, or found at /sitemap.xml (Config.FollowSitemaps).
//
// Bounds: a sitemap file is read up to SitemapMaxBytes once decompressed
// (the protocol's 50 MB) and up to SitemapMaxEntries entries (the
// protocol's 50,000); indexes nest at most SitemapMaxNesting levels; at
// most Config.MaxSitemaps files are fetched per crawl; every page URL
// taken counts against MaxURLs like any other URL.
const (
	SitemapMaxBytes      = 50 << 20
	SitemapMaxEntries    = 50_000
	SitemapMaxNesting    = 2
	DefaultMaxSitemaps   = 1000
	sitemapPolicyAccept  = "application/xml,text/xml,application/gzip,text/plain;q=0.9,*/*;q=0.8"
	sitemapMaxCompressed = SitemapMaxBytes
)

// sitemapRef is a sitemap to read.
type sitemapRef struct {
	url     string
	scope   string // URLs must start with this (origin + folder, or origin)
	level   int    // 0 for a sitemap named directly, +1 per index
	explain bool   // report a failure (named or listed sitemaps; not /sitemap.xml probes)
}

// sitemapEntry is one <url> or <sitemap> of a sitemap file.
type sitemapEntry struct {
	loc     string
	lastmod time.Time // the latest instant <lastmod> may stand for (parseW3CDate)
}

// sitemapSeeds reads the sitemaps and returns their page URLs as depth-0
// items, after the rules of admit (depth aside). It runs before the first
// level, on one worker.
func (c *crawler) sitemapSeeds(ctx context.Context) []item {
	if len(c.cfg.SitemapURLs) == 0 && !c.cfg.FollowSitemaps {
		return nil
	}
	w := &worker{c: c, links: map[string]normURL{}}
	var queue []sitemapRef
	for _, s := range c.cfg.SitemapURLs {
		u, err := parseStartURL(s)
		if err != nil {
			continue // validated
		}
		n := c.norm.normalize(u)
		// A sitemap the configuration names may list any URL of its
		// origin (the site's owner named it).
		queue = append(queue, sitemapRef{url: n.s, scope: originOf(n.s) + "/", explain: true})
	}
	if c.cfg.FollowSitemaps {
		done := map[string]bool{}
		for _, s := range c.cfg.StartURLs {
			u, err := parseStartURL(s)
			if err != nil {
				continue
			}
			origin := originOf(c.norm.normalize(u).s)
			if done[origin] {
				continue
			}
			done[origin] = true
			e, err := c.robots.get(ctx, origin, func() (*robotsRules, error, bool) { return w.loadRobots(ctx, origin) })
			if err != nil {
				return nil // cancelled
			}
			if e.cause != nil {
				// robots.txt unavailable: the sitemaps it lists are unknown
				// (with IgnoreRobotsErrors the crawl goes on without them).
				c.stats.sitemapsUnavailable.Add(1)
			}
			if len(e.rules.sitemaps) == 0 {
				queue = append(queue, sitemapRef{url: origin + "/sitemap.xml", scope: origin + "/"})
				continue
			}
			for _, sm := range e.rules.sitemaps {
				n, err := c.norm.resolve(nil, sm)
				if err != nil || !n.http {
					continue
				}
				if !c.onSite(n) {
					// StayOnSite: robots.txt cannot send the crawl to
					// another site (or its own machine's other ports).
					c.stats.skSitemapScope.Add(1)
					continue
				}
				// Listed in robots.txt: its URLs may be anywhere on the
				// robots.txt's origin (the protocol's cross-submission).
				queue = append(queue, sitemapRef{url: n.s, scope: origin + "/", explain: true})
			}
		}
	}

	var items []item
	fetched := map[string]bool{}
	for len(queue) > 0 && ctx.Err() == nil {
		ref := queue[0]
		queue = queue[1:]
		if fetched[ref.url] {
			continue
		}
		if len(fetched) >= c.cfg.MaxSitemaps {
			c.log.Warn("sitemap limit reached: further sitemaps are not read", "max_sitemaps", c.cfg.MaxSitemaps, "skipped", len(queue)+1)
			break
		}
		fetched[ref.url] = true
		index, entries, err := w.readSitemap(ctx, ref.url)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			c.log.Debug("sitemap unavailable", "url", secret.LogURL(ref.url), "error", err)
			if passingFailure(err) {
				c.stats.sitemapsUnavailable.Add(1)
			}
			if ref.explain {
				var fe *FetchError
				if !errors.As(err, &fe) {
					fe = fetchErr(ref.url, ErrSitemap, 0, err)
				}
				c.report(item{url: ref.url}, fe)
			}
			continue
		}
		c.stats.sitemaps.Add(1)
		for _, e := range entries {
			n, err := c.norm.resolve(nil, e.loc)
			if err != nil || !n.http {
				c.stats.skInvalid.Add(1)
				continue
			}
			if !strings.HasPrefix(n.s, ref.scope) {
				c.stats.skSitemapScope.Add(1)
				continue
			}
			if index {
				if ref.level+1 > SitemapMaxNesting {
					c.stats.skSitemapScope.Add(1)
					continue
				}
				queue = append(queue, sitemapRef{url: n.s, scope: originOf(ref.url) + "/", level: ref.level + 1, explain: true})
				continue
			}
			if it, ok := c.admitSitemapURL(n, e.lastmod); ok {
				items = append(items, it)
			}
		}
	}
	c.log.Info("sitemaps read", "sitemaps", c.stats.sitemaps.Load(), "urls", len(items))
	return items
}

// admitSitemapURL records a page URL of a sitemap and applies the URL
// rules (a depth-0 URL: Depth does not apply).
func (c *crawler) admitSitemapURL(n normURL, lastmod time.Time) (item, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	added, full := c.seen.add(n.s)
	switch {
	case !added:
		return item{}, false // a start URL or listed twice
	case full:
		c.stats.skMaxURLs.Add(1)
		return item{}, false
	}
	c.stats.discovered.Add(1)
	c.stats.sitemapURLs.Add(1)
	if !c.admit(n, 0) {
		return item{}, false
	}
	return item{url: n.s, lastmod: lastmod, fromSitemap: true}, true
}

// readSitemap fetches and parses one sitemap file.
func (w *worker) readSitemap(ctx context.Context, u string) (index bool, entries []sitemapEntry, err error) {
	pol := bodyPolicy{limit: sitemapMaxCompressed, accept: sitemapPolicyAccept}
	target := u
	for hop := 0; ; hop++ {
		ex, ferr := w.get(ctx, target, nil, pol)
		if ferr != nil {
			return false, nil, ferr
		}
		if ex == nil {
			return false, nil, context.Cause(ctx)
		}
		switch st := ex.status; {
		case st >= 200 && st <= 299:
			return parseSitemap(ex.body)
		case isRedirect(st) && ex.header.Get("Location") != "" && hop < w.c.cfg.MaxRedirects:
			next, err := w.redirectTarget(target, ex.header.Get("Location"))
			if err != nil {
				return false, nil, fetchErr(target, ErrBadRedirect, st, err)
			}
			if originOf(next.s) != originOf(u) {
				return false, nil, fetchErr(target, ErrSitemap, st, fmt.Errorf("redirects to another site: %s", next.s))
			}
			target = next.s
		default:
			return false, nil, fetchErr(target, ErrStatus, st, nil)
		}
	}
}

// parseSitemap reads a sitemap body: gzip is undone (bounded), then an XML
// <urlset> or <sitemapindex>, or else text with one URL a line.
func parseSitemap(body []byte) (index bool, entries []sitemapEntry, err error) {
	if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return false, nil, err
		}
		b, err := io.ReadAll(io.LimitReader(zr, SitemapMaxBytes+1))
		if err != nil {
			return false, nil, fmt.Errorf("gzip: %w", err)
		}
		if len(b) > SitemapMaxBytes {
			return false, nil, fmt.Errorf("larger than %d bytes uncompressed", SitemapMaxBytes)
		}
		body = b
	}
	trimmed := bytes.TrimLeft(body, "\xef\xbb\xbf \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("<")) {
		for _, line := range strings.Split(string(trimmed), "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			if len(entries) == SitemapMaxEntries {
				break
			}
			entries = append(entries, sitemapEntry{loc: line})
		}
		return false, entries, nil
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var cur *sitemapEntry
	var field string
	var text strings.Builder
	root := ""
	for {
		t, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(entries) > 0 {
				break // keep what a truncated file gave
			}
			return false, nil, fmt.Errorf("not a sitemap: %w", err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			name := t.Name.Local
			switch {
			case root == "":
				root = name
				if name != "urlset" && name != "sitemapindex" {
					return false, nil, fmt.Errorf("not a sitemap: root element <%s>", name)
				}
			case (name == "url" || name == "sitemap") && cur == nil:
				cur = &sitemapEntry{}
			case cur != nil && (name == "loc" || name == "lastmod"):
				field = name
				text.Reset()
			}
		case xml.CharData:
			if field != "" && text.Len() < 8192 {
				text.Write(t)
			}
		case xml.EndElement:
			switch name := t.Name.Local; {
			case name == field && cur != nil:
				v := strings.TrimSpace(text.String())
				if field == "loc" {
					cur.loc = v
				} else {
					cur.lastmod = parseW3CDate(v)
				}
				field = ""
			case (name == "url" || name == "sitemap") && cur != nil:
				if cur.loc != "" {
					entries = append(entries, *cur)
				}
				cur = nil
				if len(entries) == SitemapMaxEntries {
					return root == "sitemapindex", entries, nil
				}
			}
		}
	}
	return root == "sitemapindex", entries, nil
}

// parseW3CDate parses a sitemap <lastmod> (W3C Datetime: a year, a month,
// a date, or a date and time with a zone, with or without seconds) into
// the latest instant it may stand for; the zero time when it does not
// parse. A value without seconds stands for its whole minute, and one
// without a time for its whole day, month or year, in whatever zone the
// site meant (the day ends last at UTC-12, 12 hours after it ends in
// UTC): a page fetched during that period may have changed after the
// fetch, so only a fetch after its end makes the page known unchanged
// (the crawl's skip of a request, process). Taking the period's first
// instant reported a page changed later on the day of its last fetch as
// unchanged, without a request, until the sitemap gave another date.
func parseW3CDate(s string) time.Time {
	const west = 12 * time.Hour // UTC-12: where a day, month or year ends last
	for _, f := range []struct {
		layout string
		end    func(time.Time) time.Time // the period's first instant after it
	}{
		{time.RFC3339Nano, nil},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1).Add(west) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0).Add(west) }},
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0).Add(west) }},
	} {
		t, err := time.Parse(f.layout, s)
		switch {
		case err != nil:
			continue
		case f.end != nil:
			return f.end(t).Add(-time.Nanosecond)
		}
		return t
	}
	return time.Time{}
}

// unchangedBySitemap delivers a sitemap URL whose <lastmod> is not after
// the time it was last fetched (Prior.FetchedAt) as not modified, without
// a request; the crawl goes on through the links the earlier crawl saw.
func (w *worker) unchangedBySitemap(it item, prior *Prior) {
	ex := &exchange{status: http.StatusNotModified, header: http.Header{}, fetchedAt: time.Now()}
	w.c.stats.skSitemapLastmod.Add(1)
	w.notModified(it, it.url, ex, prior)
}

// passingFailure reports a fetch failure that says nothing about the
// resource (network error, timeout, 5xx, 408, 429): it may well be there
// next time.
func passingFailure(err error) bool {
	var fe *FetchError
	switch {
	case !errors.As(err, &fe):
		return false
	case errors.Is(fe, ErrNetwork), errors.Is(fe, ErrTimeout):
		return true
	case errors.Is(fe, ErrStatus):
		return fe.Status >= 500 || fe.Status == http.StatusRequestTimeout || fe.Status == http.StatusTooManyRequests
	}
	return false
}
