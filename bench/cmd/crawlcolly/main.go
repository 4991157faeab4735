// Command crawlcolly is the peer of the crawl benchmark: gocolly/colly
// v2.3.0 crawling a site served by cmd/crawlsite, in a process of its own,
// with the link discovery of our engine run (same site, <a href> links,
// depth 2 from the start URL), printing one result JSON document
// (internal/result) on standard output.
//
// Set up as colly's documentation shows a parallel crawl:
//
//	colly.NewCollector(colly.Async(true), colly.AllowedDomains(host), colly.MaxDepth(depth+1))
//	c.Limit(&colly.LimitRule{DomainGlob: "*", Parallelism: conc})
//	c.OnHTML("a[href]", func(e) { e.Request.Visit(absolute link without #fragment) })
//
// colly counts the start URL as depth 1, so MaxDepth(3) is our Depth 2.
// Its own dedup (a hash of every URL visited) and its goquery parsing of
// each HTML response run as shipped. Two settings differ from colly's
// defaults, both for parity with our engine, and both can be turned off:
//
//   - -keepalive (default on): colly's client uses http.DefaultTransport,
//     which keeps at most 2 idle connections per host, so with more than
//     2 requests in flight it opens and closes a TCP connection for most
//     requests; ours keeps Concurrency+1. With -keepalive, colly gets a
//     clone of http.DefaultTransport with MaxIdleConnsPerHost=conc.
//   - -strip-fragment (default on): the link's "#fragment" is dropped
//     before Visit, as our engine drops it; colly's AbsoluteURL keeps it
//     and its dedup would fetch a page once per distinct fragment.
//
// robots.txt is ignored (colly's default; our engine runs with
// FollowRobots off to match). The run checks that the pages colly fetched
// (status 200, by request URL without its fragment) are exactly those of
// -expect; a mismatch exits 1. Pages fetched more than once (colly's
// visited check and its record are two steps, so two goroutines can both
// pass the check; or two fragments of one page) are counted in
// "repeats"; pages_per_s counts distinct pages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gocolly/colly/v2"

	"github.com/connectorhq/connector/bench/internal/crawlbench"
	"github.com/connectorhq/connector/bench/internal/result"
)

func main() {
	start := flag.String("start", "", "start URL (required)")
	expect := flag.String("expect", "", "file of the URLs the crawl must find, one per line (required)")
	conc := flag.Int("conc", 4, "LimitRule Parallelism")
	depth := flag.Int("depth", 2, "link depth from the start URL, as our engine counts it (colly MaxDepth is one more)")
	keepalive := flag.Bool("keepalive", true, "keep conc idle connections per host (colly's default client keeps 2)")
	strip := flag.Bool("strip-fragment", true, "drop the #fragment of links before Visit")
	flag.Parse()
	if err := run(*start, *expect, *conc, *depth, *keepalive, *strip); err != nil {
		result.Fatal("crawlcolly", err)
	}
}

func run(start, expect string, conc, depth int, keepalive, strip bool) error {
	if start == "" || expect == "" {
		return errors.New("-start and -expect are required")
	}
	want, err := crawlbench.ReadURLs(expect)
	if err != nil {
		return err
	}
	su, err := url.Parse(start)
	if err != nil {
		return err
	}
	out := result.New("crawl", "colly")
	out.Info["settings"] = fmt.Sprintf("colly v2.3.0: Async(true), AllowedDomains(%q), MaxDepth(%d), LimitRule{DomainGlob: \"*\", Parallelism: %d}, OnHTML(\"a[href]\") → Request.Visit; keep-alive pool of %s; fragments %s",
		su.Hostname(), depth+1, conc, map[bool]string{true: fmt.Sprintf("%d (MaxIdleConnsPerHost)", conc), false: "2 (colly's default client)"}[keepalive],
		map[bool]string{true: "dropped before Visit", false: "kept (colly's default)"}[strip])

	c := colly.NewCollector(colly.Async(true), colly.AllowedDomains(su.Hostname()), colly.MaxDepth(depth+1))
	if err := c.Limit(&colly.LimitRule{DomainGlob: "*", Parallelism: conc}); err != nil {
		return err
	}
	if keepalive {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = conc
		c.WithTransport(tr)
	}
	var (
		mu       sync.Mutex
		pages    []string
		errs     []string
		requests atomic.Int64
	)
	c.OnRequest(func(*colly.Request) { requests.Add(1) })
	c.OnHTML("a[href]", func(e *colly.HTMLElement) {
		link := e.Request.AbsoluteURL(e.Attr("href"))
		if link == "" {
			return
		}
		if strip {
			link, _, _ = strings.Cut(link, "#")
		}
		_ = e.Request.Visit(link) // errors: already visited, off site, too deep
	})
	c.OnResponse(func(r *colly.Response) {
		if r.StatusCode == http.StatusOK {
			// A page fetched under two #fragments (-strip-fragment=false)
			// is one page fetched twice: a repeat.
			u, _, _ := strings.Cut(r.Request.URL.String(), "#")
			mu.Lock()
			pages = append(pages, u)
			mu.Unlock()
		}
	})
	c.OnError(func(r *colly.Response, err error) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf("%s: %v", r.Request.URL, err))
		mu.Unlock()
	})

	m, err := crawlbench.Start()
	if err != nil {
		return err
	}
	if err := c.Visit(start); err != nil {
		return err
	}
	c.Wait()
	if err := m.End(); err != nil {
		return err
	}
	if err := m.Record(out, distinct(pages), int(requests.Load())); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d errors, first: %s", len(errs), errs[0])
	}
	repeats, err := crawlbench.Check(want, pages)
	if err != nil {
		return err
	}
	out.Add("repeats", float64(repeats), "pages")
	return out.Write(os.Stdout)
}

func distinct(s []string) int {
	m := make(map[string]struct{}, len(s))
	for _, v := range s {
		m[v] = struct{}{}
	}
	return len(m)
}
