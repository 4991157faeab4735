// Command crawlsite is the web site the crawl benchmarks crawl: a small
// fasthttp static server, run as its own process so that every contender
// (our crawl engine, our full Synchronize, colly, the plain load
// generator) fetches from the same server without sharing its CPU or GC.
//
// Two sites:
//
//   - -dir DIR: the files of DIR (e.g. the PostgreSQL manual,
//     /usr/share/doc/postgresql-doc-15/html), read into memory at start so
//     that the disk is not measured. "/" serves index.html. Content-Type
//     from the extension (text/html; charset=utf-8 for .html),
//     Last-Modified from the file's mtime, an ETag of size and mtime (as
//     nginx builds it); If-None-Match / If-Modified-Since answer 304.
//   - -gen N: a generated site of N pages for the datastore memory run:
//     "/" is page 0 and "/p/I" page I; page I links to pages F*I+1 ..
//     F*I+F (those below N), F being -fanout, so every page is reachable
//     and the site has exactly N URLs. Fixed ETag and Last-Modified per
//     page, so a second crawl gets 304s.
//
// Keep-alive is on (fasthttp's default). It listens on -addr (127.0.0.1,
// any free port by default), prints "listening ADDR" on standard output
// once it accepts connections, and serves until SIGINT or SIGTERM, when it
// prints the number of requests it answered to standard error.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (keep it on loopback)")
	dir := flag.String("dir", "", "serve the files of this folder")
	gen := flag.Int("gen", 0, "serve a generated site of this many pages instead")
	fanout := flag.Int("fanout", 100, "links per generated page")
	churn := flag.Duration("churn", 0, "generated site: every this long, every page but / moves to a new URL (0: never)")
	flag.Parse()
	if err := run(*addr, *dir, *gen, *fanout, *churn); err != nil {
		fmt.Fprintln(os.Stderr, "crawlsite:", err)
		os.Exit(1)
	}
}

func run(addr, dir string, gen, fanout int, churn time.Duration) error {
	var h fasthttp.RequestHandler
	switch {
	case dir != "" && gen > 0:
		return fmt.Errorf("give -dir or -gen, not both")
	case dir != "":
		s, err := loadStatic(dir)
		if err != nil {
			return err
		}
		h = s.serve
	case gen > 0:
		if fanout < 1 {
			return fmt.Errorf("-fanout %d: must be at least 1", fanout)
		}
		h = (&genSite{n: gen, fanout: fanout, churn: churn, start: time.Now()}).serve
	default:
		return fmt.Errorf("give -dir or -gen")
	}
	var served atomic.Int64
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			served.Add(1)
			h(ctx)
		},
		Name:            "crawlsite",
		ReadTimeout:     60 * time.Second,
		WriteTimeout:    60 * time.Second,
		IdleTimeout:     120 * time.Second,
		CloseOnShutdown: true,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
		_ = srv.Shutdown()
		fmt.Fprintf(os.Stderr, "crawlsite: %d requests served\n", served.Load())
		return nil
	case err := <-done:
		return err
	}
}

// file is one file of a static site, held in memory.
type file struct {
	body    []byte
	ctype   string
	modTime time.Time
	lastMod string
	etag    string
}

type static struct {
	files map[string]*file // by URL path
}

func loadStatic(dir string) (*static, error) {
	s := &static{files: map[string]*file{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		ext := strings.ToLower(filepath.Ext(p))
		ct := mime.TypeByExtension(ext)
		switch {
		case ext == ".html" || ext == ".htm":
			ct = "text/html; charset=utf-8"
		case ct == "":
			ct = "application/octet-stream"
		}
		mt := st.ModTime().UTC().Truncate(time.Second)
		s.files["/"+filepath.ToSlash(rel)] = &file{
			body: b, ctype: ct, modTime: mt, lastMod: mt.Format(http.TimeFormat),
			etag: fmt.Sprintf(`"%x-%x"`, mt.Unix(), len(b)),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	if idx := s.files["/index.html"]; idx != nil {
		s.files["/"] = idx
	}
	if len(s.files) == 0 {
		return nil, fmt.Errorf("%s: no files", dir)
	}
	return s, nil
}

func (s *static) serve(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	f := s.files[string(ctx.Path())]
	if f == nil {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	respond(ctx, f.etag, f.lastMod, f.modTime, f.ctype, f.body)
}

// respond writes a 200 with body, or a 304 when the request's validators
// match.
func respond(ctx *fasthttp.RequestCtx, etag, lastMod string, modTime time.Time, ctype string, body []byte) {
	ctx.Response.Header.Set("ETag", etag)
	ctx.Response.Header.Set("Last-Modified", lastMod)
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 {
		if string(inm) == etag {
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			return
		}
	} else if ims := ctx.Request.Header.Peek("If-Modified-Since"); len(ims) > 0 {
		if t, err := http.ParseTime(string(ims)); err == nil && !modTime.After(t) {
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			return
		}
	}
	ctx.SetContentType(ctype)
	ctx.SetBody(body)
}

// genSite is the generated site of -gen. With churn, the site has a new
// generation every churn: "/" links to the pages of the current one,
// "/p/G-I" (page I of generation G, which links to pages of G), so that
// each crawl adds n-1 URLs and finds the previous crawl's unreached (the
// soak's datastore churn). Pages of past generations are still served.
type genSite struct {
	n, fanout int
	churn     time.Duration
	start     time.Time
}

var genModified = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func (g *genSite) serve(ctx *fasthttp.RequestCtx) {
	p := string(ctx.Path())
	i := -1
	gen := ""
	if p == "/" {
		i = 0
		if g.churn > 0 {
			gen = strconv.FormatInt(int64(time.Since(g.start)/g.churn), 10) + "-"
		}
	} else if s, ok := strings.CutPrefix(p, "/p/"); ok {
		if g.churn > 0 {
			gs, rest, found := strings.Cut(s, "-")
			now := int64(time.Since(g.start) / g.churn)
			if v, err := strconv.ParseInt(gs, 10, 64); !found || err != nil || v < 0 || v > now || strconv.FormatInt(v, 10) != gs {
				s = ""
			} else {
				gen, s = gs+"-", rest
			}
		}
		if v, err := strconv.Atoi(s); err == nil && v > 0 && v < g.n && strconv.Itoa(v) == s {
			i = v
		}
	}
	if i < 0 {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	b := make([]byte, 0, 256+g.fanout*32)
	b = append(b, "<!doctype html><html lang=en><head><title>Page "...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "</title></head><body><h1>Page "...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "</h1><p>A generated page of the crawl benchmark.</p>\n"...)
	for k := 1; k <= g.fanout; k++ {
		c := g.fanout*i + k
		if c >= g.n || c <= 0 { // c <= 0: overflow guard
			break
		}
		b = append(b, `<a href="/p/`...)
		b = append(b, gen...)
		b = strconv.AppendInt(b, int64(c), 10)
		b = append(b, `">`...)
		b = strconv.AppendInt(b, int64(c), 10)
		b = append(b, "</a>\n"...)
	}
	b = append(b, "</body></html>\n"...)
	etag := `"g` + gen + strconv.Itoa(i) + `"`
	respond(ctx, etag, genModified.Format(http.TimeFormat), genModified, "text/html; charset=utf-8", b)
}
