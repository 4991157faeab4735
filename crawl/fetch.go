package crawl

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/internal/netguard"
)

// errRateDeadline: waiting for the download-rate budget would outlast the
// request's deadline; reported as ErrTimeout.
var errRateDeadline = errors.New("crawl: download rate cap would exceed the request timeout")

// drainBytes is how much of an unwanted body (redirect, error page) is
// read so that the connection can be reused.
const drainBytes = 8 << 10

// pageHeaders are the response headers kept in Page.Header.
var pageHeaders = []string{"Content-Type", "Content-Length", "Last-Modified", "ETag", "Content-Language", "Set-Cookie"}

// newClient returns the crawl's default client and its transport (which
// the crawl owns and closes).
func newClient(cfg Config) (*http.Client, *http.Transport) {
	g := cfg.Deny
	tr := &http.Transport{
		Proxy: func(r *http.Request) (*neturl.URL, error) {
			if err := g.CheckHost(r.URL.Host); err != nil {
				return nil, err
			}
			return http.ProxyFromEnvironment(r)
		},
		DialContext:           g.DialContext(g.Dialer(min(cfg.RequestTimeout, 30*time.Second), 30*time.Second)),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(100, 2*cfg.Concurrency),
		MaxIdleConnsPerHost:   cfg.Concurrency + 1, // +1: robots.txt
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, CheckRedirect: noRedirect, Jar: cfg.Jar}, tr
}

// Fetcher sends one request of a crawl and returns the response, whose
// body the crawl reads (within its limits) and closes. *http.Client is
// one; a browser-rendering fetcher answers with the rendered page as the
// body.
type Fetcher interface {
	Do(req *http.Request) (*http.Response, error)
}

// noRedirect makes the client return redirects to the crawl, which follows
// them itself (robots, filters and dedup apply to every hop).
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// exchange is one HTTP response as the crawl keeps it.
type exchange struct {
	status    int
	header    http.Header
	body      []byte // nil unless the body was wanted
	mediaType string // of a wanted body: from Content-Type, else sniffed
	fetchedAt time.Time
}

// bodyPolicy says which bodies an exchange reads and how.
type bodyPolicy struct {
	limit    int64 // largest body read
	truncate bool  // past limit: cut silently (robots.txt) instead of ErrTooLarge
	types    []typePattern
	accept   string // Accept header
}

// worker is one fetch goroutine; it owns its PageDelay clock.
type worker struct {
	c        *crawler
	lastEnd  time.Time             // when this worker's last exchange ended
	links    map[string]normURL    // resolved-link cache, see linkCacheKey
	origins  map[string]originKeys // host and site by origin, see pageKeys
	text     []byte                // parseHTMLWith's text buffer
	body     []byte                // the body buffer the next get reads into (see recycleBody)
	linkBuf  []normURL             // a page's links, until discovered
	rawLinks []string              // a page's link hrefs as parsed, until resolved
	linkSeen map[string]struct{}   // linkSet's map, empty between pages
}

// pace waits until PageDelay has passed since this worker's last exchange
// ended.
func (w *worker) pace(ctx context.Context) error {
	if d := w.c.cfg.PageDelay; d > 0 && !w.lastEnd.IsZero() {
		if wait := time.Until(w.lastEnd.Add(d)); wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
	return nil
}

// get sends one GET for u (conditional when prior has validators) and reads
// the response. The body is read, within pol, only for 2xx answers;
// otherwise a little of it is drained and it is closed. A nil exchange with
// a nil error means the crawl was cancelled.
func (w *worker) get(ctx context.Context, u string, prior *Prior, pol bodyPolicy) (*exchange, *FetchError) {
	c := w.c
	if err := w.pace(ctx); err != nil {
		return nil, nil
	}
	defer func() { w.lastEnd = time.Now() }() // runs after the body is closed
	reqCtx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()

	target, err := toNetURL(u)
	if err != nil {
		return nil, fetchErr(u, ErrNetwork, 0, err)
	}
	req := (&http.Request{
		Method:     http.MethodGet,
		URL:        target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 4),
		Host:       target.Host,
	}).WithContext(reqCtx)
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", pol.accept)
	if a := c.cfg.BasicAuth; a != nil && c.authOrigins[netguard.Origin(target)] {
		req.SetBasicAuth(a.Username, a.Password)
	}
	if prior != nil {
		if prior.ETag != "" {
			req.Header.Set("If-None-Match", prior.ETag)
		}
		if prior.LastModified != "" {
			req.Header.Set("If-Modified-Since", prior.LastModified)
		}
	}

	c.stats.requests.Add(1)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, c.classify(ctx, reqCtx, u, 0, err)
	}
	defer resp.Body.Close()
	ex := &exchange{status: resp.StatusCode, header: resp.Header, fetchedAt: time.Now()}
	body := &meteredReader{ctx: reqCtx, r: resp.Body, lim: c.limiter, burst: c.burst, n: &c.stats.bytes}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.CopyN(io.Discard, body, drainBytes)
		return ex, nil
	}
	var r io.Reader = body
	generic := ""    // a generic type not allowed as such: the body decides
	zipOnly := false // generic, and its head a zip's: which one, its whole body says
	if pol.types != nil {
		ex.mediaType = mediaType(resp.Header.Get("Content-Type"))
		if ex.mediaType != "" && !typeAllowed(pol.types, ex.mediaType) {
			if !genericType(ex.mediaType) {
				return nil, fetchErr(u, ErrContentType, resp.StatusCode, errors.New(ex.mediaType))
			}
			// Read its head first: what is no document is refused
			// without downloading the rest.
			head := make([]byte, sniffLen)
			n, err := io.ReadFull(body, head)
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				return nil, c.classify(ctx, reqCtx, u, resp.StatusCode, err)
			}
			head = head[:n]
			if !mayBeDocument(pol.types, head) {
				return nil, fetchErr(u, ErrContentType, resp.StatusCode, errors.New(ex.mediaType))
			}
			generic, ex.mediaType = ex.mediaType, ""
			zipOnly = bytes.HasPrefix(head, zipMagic) // too large, not known to be a document (tooLarge)
			r = io.MultiReader(bytes.NewReader(head), body)
		}
	}
	if !pol.truncate && resp.ContentLength > pol.limit {
		return nil, tooLarge(u, resp.StatusCode, generic, zipOnly, fmt.Errorf("Content-Length %d > %d", resp.ContentLength, pol.limit))
	}
	buf := w.body
	w.body = nil // the exchange's until recycleBody gives it back
	ex.body, err = readBody(buf, r, pol.limit, pol.truncate, resp.ContentLength)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, tooLarge(u, resp.StatusCode, generic, zipOnly, nil)
	case err != nil:
		return nil, c.classify(ctx, reqCtx, u, resp.StatusCode, err)
	}
	if pol.types != nil && ex.mediaType != "" && textual(ex.mediaType) && docMagic(ex.body) {
		// A document served as a web page or as text (the type a server
		// gives a file whose extension it does not know): its bytes
		// decide, as they do for a generic type.
		if mt := documentType(pol.types, ex.body, u, resp.Header.Get("Content-Type")); mt != "" {
			if !typeAllowed(pol.types, mt) {
				return nil, fetchErr(u, ErrContentType, resp.StatusCode, errors.New(ex.mediaType+", sniffed "+mt))
			}
			ex.mediaType = mt
		}
	}
	if pol.types != nil && ex.mediaType == "" {
		// No Content-Type, or a generic one: a document format the
		// extractor tells by its bytes, else (without Content-Type) what
		// the bytes look like.
		ex.mediaType = documentType(pol.types, ex.body, u, "")
		if ex.mediaType == "" && generic == "" {
			ex.mediaType = mediaType(http.DetectContentType(ex.body))
		}
		if ex.mediaType == "" || !typeAllowed(pol.types, ex.mediaType) {
			what := "sniffed " + cmp.Or(ex.mediaType, "no document")
			if generic != "" {
				what = generic + ", " + what
			}
			return nil, fetchErr(u, ErrContentType, resp.StatusCode, errors.New(what))
		}
	}
	return ex, nil
}

// sniffLen is how much of a body of a generic type is read to tell
// whether it may be a document (a PDF may start with 1024 bytes of junk).
const sniffLen = 1024

// genericType reports a media type that says nothing of the body (a
// download, a bucket's default), only that it is a zip (as an Office or
// OpenDocument file is), or that servers give a document format under
// another name (a PDF's old names, an Office Open XML file under its
// binary predecessor's type): when the type is not allowed as such, the
// body decides (a PDF, RTF, Office or OpenDocument document of an allowed
// type is delivered as that type).
func genericType(mt string) bool {
	switch mt {
	case "application/octet-stream", "binary/octet-stream", "application/binary", "application/unknown",
		"application/download", "application/x-download", "application/force-download",
		"application/zip", "application/x-zip", "application/x-zip-compressed",
		"application/x-pdf", "application/acrobat", "application/vnd.pdf", "text/pdf", "text/x-pdf",
		"application/x-rtf",
		"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint":
		return true
	}
	return false
}

// tooLarge is the error of a body larger than the page size limit:
// ErrTooLarge, but for a zip of a generic type (zipOnly), which is a
// document only if the whole of it says so: not read, it is refused as
// its type (ErrContentType, a policy skip), as such a type was before its
// bodies were sniffed, not taken for a document too large (an error of
// every run, for every big archive a site offers).
func tooLarge(u string, status int, generic string, zipOnly bool, cause error) *FetchError {
	if zipOnly {
		return fetchErr(u, ErrContentType, status, errors.New(generic+", a zip too large to tell whether it is a document"))
	}
	return fetchErr(u, ErrTooLarge, status, cause)
}

// zipMagic starts a zip's local file header: an Office Open XML or
// OpenDocument package, or any other zip.
var zipMagic = []byte("PK\x03\x04")

// mayBeDocument reports whether head, the start of a body of a generic
// type, may be a document of an allowed type: a PDF or RTF (known from
// its head), or a zip (an Office or OpenDocument package, known once the
// whole body is read).
func mayBeDocument(types []typePattern, head []byte) bool {
	if bytes.HasPrefix(head, zipMagic) {
		return true
	}
	switch f := extract.Detect(extract.Input{Data: head}); f {
	case extract.PDF, extract.RTF:
		return typeAllowed(types, f.MediaType()) || f == extract.RTF && typeAllowed(types, "text/rtf")
	}
	return false
}

// documentType returns the media type of a document format package
// extract tells by the bytes of body (PDF, RTF, Office Open XML,
// OpenDocument), or "". u's extension names the package a damaged zip
// was meant to be. contentType is the Content-Type of a body that
// claims to be HTML or text (else ""): a PDF must then start with its
// header, not merely mention it in its first kilobyte. RTF is text/rtf
// when only that is allowed.
func documentType(types []typePattern, body []byte, u, contentType string) string {
	switch f := extract.Detect(extract.Input{Data: body, ContentType: contentType, Name: u}); f {
	case extract.HTML, extract.Text, "":
		return ""
	case extract.RTF:
		if !typeAllowed(types, f.MediaType()) && typeAllowed(types, "text/rtf") {
			return "text/rtf"
		}
		return f.MediaType()
	default:
		return f.MediaType()
	}
}

// textual reports a type whose body the crawl reads itself, as a web page
// or as text (extract.PlainText: any text/* but HTML and RTF, JSON).
func textual(mt string) bool { return isHTMLType(mt) || extract.PlainText(mt) }

// docMagic reports whether body starts as a document format package
// extract tells by its bytes does (a PDF, a zip, RTF), as a web page or
// a text never does: only then is extract.Detect asked.
func docMagic(body []byte) bool {
	return bytes.HasPrefix(body, []byte("%PDF-")) || bytes.HasPrefix(body, zipMagic) ||
		bytes.HasPrefix(bytes.TrimLeft(body[:min(len(body), sniffLen)], "\xef\xbb\xbf \t\r\n"), []byte(`{\rtf`))
}

// classify turns a transport or body error into a FetchError, or nil when
// the crawl itself was cancelled (nothing is reported then).
func (c *crawler) classify(crawlCtx, reqCtx context.Context, u string, status int, err error) *FetchError {
	if crawlCtx.Err() != nil {
		return nil
	}
	var ne net.Error
	if errors.Is(reqCtx.Err(), context.DeadlineExceeded) || errors.Is(err, errRateDeadline) ||
		errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fetchErr(u, ErrTimeout, status, err)
	}
	return fetchErr(u, ErrNetwork, status, err)
}

var errTooLarge = errors.New("crawl: body too large")

// readBody reads r to the end, at most limit bytes, into buf (from its
// start; a new buffer when buf is too small for what Content-Length
// announces). Past limit it returns errTooLarge, or, with truncate, the
// first limit bytes. A known Content-Length sizes a new buffer so that a
// body is allocated once.
func readBody(buf []byte, r io.Reader, limit int64, truncate bool, contentLength int64) ([]byte, error) {
	maxRead := limit + 1 // one byte past the limit tells "too large"
	if truncate {
		maxRead = limit
	}
	initial := int64(8 << 10)
	if contentLength >= 0 && contentLength < maxRead {
		initial = contentLength + 1 // +1: room to see EOF without growing
	}
	if need := min(initial, maxRead); int64(cap(buf)) < need {
		// A reused buffer too small: twice its size when that is enough,
		// so that a worker's buffer settles after a few of the larger
		// pages.
		buf = make([]byte, 0, max(need, min(2*int64(cap(buf)), maxRead)))
	}
	buf = buf[:0]
	for int64(len(buf)) < maxRead {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf))+512, maxRead))
			copy(grown, buf)
			buf = grown
		}
		end := int64(cap(buf))
		if end > maxRead {
			end = maxRead
		}
		n, err := r.Read(buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > limit {
		return nil, errTooLarge
	}
	return buf, nil
}

// maxKeptBody is the largest body buffer a worker keeps for its next page.
const maxKeptBody = 1 << 20

// recycleBody gives a page's body buffer back to the worker for the next
// get, unless OnPage kept it (Page.KeepBody). Under the race detector the
// bytes are overwritten first, so that a test whose hook keeps Body
// without KeepBody sees garbage rather than passing by luck.
func (w *worker) recycleBody(b []byte) {
	if cap(b) == 0 || cap(b) > maxKeptBody {
		return
	}
	if raceEnabled {
		b = b[:cap(b)]
		for i := range b {
			b[i] = 0xDB
		}
	}
	w.body = b[:0]
}

// bodyBufs keeps the body buffers of workers that ended for the workers of
// later crawls (see textBufs).
var bodyBufs sync.Pool

func getBodyBuf() []byte {
	if b, ok := bodyBufs.Get().(*[]byte); ok {
		return *b
	}
	return nil
}

func putBodyBuf(b []byte) {
	if cap(b) > 0 && cap(b) <= maxKeptBody {
		b = b[:0]
		bodyBufs.Put(&b)
	}
}

// meteredReader counts the bytes read and holds reads to the crawl's
// download-rate cap.
type meteredReader struct {
	ctx   context.Context
	r     io.Reader
	lim   *rate.Limiter // nil: no cap
	burst int
	n     *atomic.Int64
}

func (m *meteredReader) Read(p []byte) (int, error) {
	if m.lim != nil && len(p) > m.burst {
		p = p[:m.burst]
	}
	n, err := m.r.Read(p)
	if n > 0 {
		m.n.Add(int64(n))
		if m.lim != nil {
			if werr := m.lim.WaitN(m.ctx, n); werr != nil {
				if m.ctx.Err() != nil {
					return n, m.ctx.Err()
				}
				return n, fmt.Errorf("%w: %w", errRateDeadline, werr)
			}
		}
	}
	return n, err
}

// toNetURL converts a WHATWG-serialised http(s) URL into a net/url.URL
// that sends exactly those bytes. net/url rejects some URLs WHATWG accepts
// (a '%' not followed by two hex digits, for one); those are sent through
// URL.Opaque, byte for byte.
func toNetURL(s string) (*neturl.URL, error) {
	if u, err := neturl.Parse(s); err == nil {
		return u, nil
	}
	origin, path, query, hasQuery := splitURL(s)
	scheme, authority, ok := strings.Cut(origin, "://")
	if !ok || authority == "" {
		return nil, fmt.Errorf("crawl: cannot request %q", s)
	}
	u := &neturl.URL{Scheme: scheme, Host: authority, RawQuery: query, ForceQuery: hasQuery && query == ""}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		info := authority[:at]
		u.Host = authority[at+1:]
		if user, pass, hasPass := strings.Cut(info, ":"); hasPass {
			u.User = neturl.UserPassword(percentDecode(user), percentDecode(pass))
		} else {
			u.User = neturl.User(percentDecode(user))
		}
	}
	if strings.HasPrefix(path, "//") {
		u.Opaque = "//" + u.Host + path // absolute-form request target
	} else {
		u.Opaque = path
	}
	return u, nil
}

// headerSubset returns the headers a Page keeps, in a map of their own.
func headerSubset(h http.Header) http.Header {
	out := make(http.Header, len(pageHeaders))
	for _, k := range pageHeaders {
		if v := h.Values(k); len(v) > 0 {
			// The response's own values: the crawl is done with them.
			out[http.CanonicalHeaderKey(k)] = v[:len(v):len(v)]
		}
	}
	return out
}
