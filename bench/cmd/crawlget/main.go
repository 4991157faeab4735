// Command crawlget is the ceiling of the crawl benchmark: a plain load
// generator that fetches a known list of URLs (-urls, the pages a crawl
// must find, one per line) from cmd/crawlsite, each exactly once, with
// -conc requests in flight, reading every body fully and parsing
// nothing; with -passes N it goes through the list N times (a 1169-page
// list takes well under a second, too short a measurement on a busy
// machine) and reports the rate over all passes. It runs in a process of
// its own and prints one result JSON document (internal/result) on
// standard output.
//
//   - -client nethttp: Go's net/http client (a clone of
//     http.DefaultTransport with MaxIdleConnsPerHost=conc), the HTTP stack
//     both crawlers use, so crawl ÷ this ceiling is the share of the
//     fetching rate a crawler keeps while it parses, deduplicates and
//     schedules;
//   - -client fasthttp: a fasthttp.HostClient with MaxConns=conc, the
//     fastest client at hand, the stricter reference.
//
// With -tokenize (net/http client only) each body is also tokenised for
// links, the least any crawler must do with a page: golang.org/x/net/html's
// Tokenizer runs over the whole body and the href of every <a> and <area>
// start tag is copied out (a string per link; no resolution, no
// normalisation, no dedup, no text, no charset detection). That is the
// crawl's second, reachable ceiling: crawl ÷ this ceiling is the share of
// a fetch-and-tokenise loop's rate that a crawler keeps while it
// resolves, deduplicates, schedules and builds the page it delivers.
//
// Any answer other than 200 is an error (exit 1).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/html"

	"github.com/connectorhq/connector/bench/internal/crawlbench"
	"github.com/connectorhq/connector/bench/internal/result"
)

func main() {
	urls := flag.String("urls", "", "file of the URLs to fetch, one per line (required)")
	conc := flag.Int("conc", 4, "requests in flight")
	client := flag.String("client", "nethttp", "nethttp or fasthttp")
	passes := flag.Int("passes", 1, "fetch the whole list this many times")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the fetching to this file")
	tokenize := flag.Bool("tokenize", false, "also tokenise each body for <a>/<area> hrefs (x/net/html Tokenizer); -client nethttp only")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			result.Fatal("crawlget", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			result.Fatal("crawlget", err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := run(*urls, *conc, *passes, *client, *tokenize); err != nil {
		result.Fatal("crawlget", err)
	}
}

// fetcher gets one URL into buf (reset by the caller) and returns the
// status.
type fetcher func(u string, buf *bytes.Buffer) (int, error)

func run(path string, conc, passes int, client string, tokenize bool) error {
	if path == "" {
		return errors.New("-urls is required")
	}
	if conc < 1 || passes < 1 {
		return fmt.Errorf("-conc %d, -passes %d: both must be at least 1", conc, passes)
	}
	urls, err := crawlbench.ReadURLs(path)
	if err != nil {
		return err
	}
	if len(urls) == 0 {
		return fmt.Errorf("%s: no URL", path)
	}
	if tokenize && client != "nethttp" {
		return fmt.Errorf("-tokenize: only with -client nethttp (the crawl engine's HTTP stack), not %q", client)
	}
	var get fetcher
	name := "ceiling-" + client
	if tokenize {
		name = "ceiling-tokenize"
	}
	out := result.New("crawl", name)
	switch client {
	case "nethttp":
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = conc
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		get = func(u string, buf *bytes.Buffer) (int, error) {
			resp, err := c.Get(u)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			_, err = io.Copy(buf, resp.Body)
			return resp.StatusCode, err
		}
		out.Info["settings"] = fmt.Sprintf("net/http client, http.DefaultTransport clone with MaxIdleConnsPerHost=%d; %d workers; the list fetched %d times", conc, conc, passes)
	case "fasthttp":
		pu, err := url.Parse(urls[0])
		if err != nil {
			return err
		}
		c := &fasthttp.HostClient{Addr: pu.Host, MaxConns: conc, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		get = func(u string, buf *bytes.Buffer) (int, error) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(u)
			if err := c.Do(req, resp); err != nil {
				return 0, err
			}
			buf.Write(resp.Body())
			return resp.StatusCode(), nil
		}
		out.Info["settings"] = fmt.Sprintf("fasthttp.HostClient{MaxConns: %d}; %d workers; the list fetched %d times", conc, conc, passes)
	default:
		return fmt.Errorf("-client %q: want nethttp or fasthttp", client)
	}
	if tokenize {
		out.Info["settings"] += "; each body tokenised for <a>/<area> hrefs (golang.org/x/net/html Tokenizer, hrefs copied out, nothing resolved)"
	}

	var (
		next   atomic.Int64
		nbytes atomic.Int64
		nlinks atomic.Int64
		mu     sync.Mutex
		errs   []string
		wg     sync.WaitGroup
	)
	m, err := crawlbench.Start()
	if err != nil {
		return err
	}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for {
				i := int(next.Add(1)) - 1
				if i >= passes*len(urls) {
					return
				}
				u := urls[i%len(urls)]
				buf.Reset()
				st, err := get(u, &buf)
				if err == nil && st != http.StatusOK {
					err = fmt.Errorf("status %d", st)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("%s: %v", u, err))
					mu.Unlock()
					continue
				}
				nbytes.Add(int64(buf.Len()))
				if tokenize {
					nlinks.Add(int64(len(links(buf.Bytes()))))
				}
			}
		}()
	}
	wg.Wait()
	if err := m.End(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d errors, first: %s", len(errs), errs[0])
	}
	if err := m.Record(out, passes*len(urls), passes*len(urls)); err != nil {
		return err
	}
	out.Add("body_mib", float64(nbytes.Load())/(1<<20), "MiB")
	if tokenize {
		out.Add("links_per_page", float64(nlinks.Load())/float64(passes*len(urls)), "links")
	}
	return out.Write(os.Stdout)
}

// links tokenises an HTML body and returns the href of every <a> and
// <area> start tag, as a crawler's link extraction must at the least.
func links(body []byte) []string {
	var out []string
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if !hasAttr || !(string(name) == "a" || string(name) == "area") {
				continue
			}
			for {
				k, v, more := z.TagAttr()
				if string(k) == "href" {
					out = append(out, string(v))
					break
				}
				if !more {
					break
				}
			}
		}
	}
}
