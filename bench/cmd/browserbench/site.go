package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// site is the benchmark's test site, served in process on 127.0.0.1:
// pages whose HTML as served has no <a> and one sentence of text. Page i's
// script sets the title, writes five paragraphs, creates two links, then
// fetches /api/i.json, creates the two links it lists and sets
// body[data-ready="1"]. The links of page i go to pages 2i+1 .. 2i+4
// (modulo the page count), so every page is reachable from page 0.
type site struct {
	n      int
	srv    *http.Server
	ln     net.Listener
	base   string
	pages  atomic.Int64 // requests for a page document
	apis   atomic.Int64 // requests for /api/*.json
	hangs  sync.Map     // "/hang/<k>" -> chan struct{} closed on the request
	stopCh chan struct{}
}

func newSite(n int) (*site, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &site{n: n, ln: ln, base: "http://" + ln.Addr().String(), stopCh: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/p/", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
		if err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		s.pages.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(s.page(i))
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/"), ".json"))
		if err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		s.apis.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"href":"/p/%d","text":"Page %d"},{"href":"/p/%d","text":"Page %d"}]`,
			(2*i+3)%n, (2*i+3)%n, (2*i+4)%n, (2*i+4)%n)
	})
	mux.HandleFunc("/hang/", func(w http.ResponseWriter, r *http.Request) {
		if ch, ok := s.hangs.Load(r.URL.Path); ok {
			close(ch.(chan struct{}))
		}
		select {
		case <-r.Context().Done():
		case <-s.stopCh:
		}
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *site) url(i int) string { return s.base + "/p/" + strconv.Itoa(i) }

func (s *site) page(i int) []byte {
	a, b := (2*i+1)%s.n, (2*i+2)%s.n
	return []byte(fmt.Sprintf(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>static title %d</title></head>
<body><p>Loading.</p><div id="app"></div><script>
document.title = "Rendered page %d";
var app = document.getElementById("app");
for (var k = 0; k < 5; k++) {
  var p = document.createElement("p");
  p.textContent = "Paragraph " + k + " of page %d, written by a script: the HTTP connector never sees this text, the Web connector indexes it.";
  app.appendChild(p);
}
function link(href, text) { var a = document.createElement("a"); a.href = href; a.textContent = text; app.appendChild(a); }
link("/p/%d", "Page %d");
link("/p/%d", "Page %d");
fetch("/api/%d.json").then(function (r) { return r.json() }).then(function (list) {
  list.forEach(function (e) { link(e.href, e.text) });
  document.body.setAttribute("data-ready", "1");
});
</script></body></html>`, i, i, i, a, a, b, b, i))
}

// hangURL returns a page URL whose page never settles (its script
// requests /hang/k, which the site answers only when the benchmark
// stops), and a channel closed when that request arrives.
func (s *site) hangPage(k int) (url string, body []byte, seen chan struct{}) {
	path := "/hang/" + strconv.Itoa(k)
	seen = make(chan struct{})
	s.hangs.Store(path, seen)
	body = []byte(`<html><body><p>never settles</p><script>fetch("` + path + `")</script></body></html>`)
	return s.base + "/h/" + strconv.Itoa(k), body, seen
}

func (s *site) close() {
	close(s.stopCh)
	s.srv.Close()
}
