package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/transport/aci"
)

// maxReplyBytes bounds the CFS reply read; an Ingest reply is a few hundred
// bytes.
const maxReplyBytes = 1 << 20

// ACIError is an ACI error reply (<response>ERROR</response>) from CFS. It
// arrives wrapped in an error that also matches ErrDelivery; get it with
// errors.As. Each field is as CFS sent it, on one line (runs of white
// space and control characters made one space), with the password of any
// URL redacted, and cut at 300 bytes (ending "…").
type ACIError struct {
	ErrorID          string // <errorid>, e.g. AXEQUERY502
	ErrorString      string // <errorstring>
	ErrorDescription string // <errordescription>
	ErrorCode        string // <errorcode>, e.g. ERRORPARAMINVALID
}

// newACIError is the *ACIError of an ERROR reply r. Each field is its
// text as replyText gives it (on one line, URL passwords redacted, at most
// maxReasonBytes and "…"): a reply may hold a megabyte, which would
// otherwise go into every log line and failure that quotes the error.
func newACIError(r *aci.Decoded) *ACIError {
	field := func(s string) string { return replyText([]byte(s), maxReasonBytes) }
	return &ACIError{ErrorID: field(r.ErrorID), ErrorString: field(r.ErrorString), ErrorDescription: field(r.ErrorDescription), ErrorCode: field(r.ErrorCode)}
}

// Error implements error.
func (e *ACIError) Error() string {
	var b strings.Builder
	b.WriteString("CFS replied ERROR")
	if e.ErrorCode != "" {
		b.WriteString(" " + e.ErrorCode)
	}
	if e.ErrorID != "" {
		b.WriteString(" (" + e.ErrorID + ")")
	}
	if e.ErrorString != "" {
		b.WriteString(": " + e.ErrorString)
	}
	if e.ErrorDescription != "" {
		b.WriteString(": " + e.ErrorDescription)
	}
	return b.String()
}

// cfsTarget sends documents to a Connector Framework Server with its
// asynchronous Ingest action.
type cfsTarget struct {
	url    string
	client *http.Client
	log    *slog.Logger
	batch  int

	mu     sync.RWMutex // held shared by requests, exclusively by Close
	closed bool

	now func() time.Time // time.Now; a test's clock
	bmu sync.Mutex       // guards brk
	brk breaker
}

// The pauses of the breaker: after a request CFS did not answer, calls
// fail at once for breakerPause, then one goes through; each time that
// one fails too the pause doubles, up to breakerMaxPause.
const (
	breakerPause    = 30 * time.Second
	breakerMaxPause = 2 * time.Minute
)

// breaker is the state of a CFS that did not answer: err is the failure of
// its last request, since when it stopped answering, retry when a call may
// go through again (one at a time: probing while it is under way).
type breaker struct {
	err     error
	since   time.Time
	retry   time.Time
	pause   time.Duration
	probing bool
	skipped int // calls failed at once since
}

// gate is called before a call sends anything. While CFS is not answering
// it returns an error wrapping ErrUnavailable, unless the pause is over and
// no other call is trying: that call goes (probe is true) and must call
// endProbe when done.
func (t *cfsTarget) gate() (probe bool, err error) {
	t.bmu.Lock()
	defer t.bmu.Unlock()
	b := &t.brk
	if b.err == nil {
		return false, nil
	}
	if !b.probing && !t.now().Before(b.retry) {
		b.probing = true
		return true, nil
	}
	b.skipped++
	return false, fmt.Errorf("%w: not sent: CFS has not answered since %s (%v); a request is tried again at %s",
		ErrUnavailable, b.since.UTC().Format(time.RFC3339), b.err, b.retry.UTC().Format(time.RFC3339))
}

// endProbe ends the call gate let through.
func (t *cfsTarget) endProbe() {
	t.bmu.Lock()
	t.brk.probing = false
	t.bmu.Unlock()
}

// noAnswer records a request CFS did not answer within the timeout (err):
// calls fail at once until the pause ends.
func (t *cfsTarget) noAnswer(err error) {
	t.bmu.Lock()
	defer t.bmu.Unlock()
	b := &t.brk
	now := t.now()
	switch {
	case b.err == nil:
		b.since, b.pause, b.skipped = now, breakerPause, 0
		t.log.Warn("CFS did not answer: deliveries fail at once, without a request, until one gets through", "url", t.url, "error", err, "retry", now.Add(b.pause))
	case now.Before(b.retry):
		return // a request sent before the first failure: the pause stands
	default: // the probe failed
		b.pause = min(2*b.pause, breakerMaxPause)
	}
	b.err, b.retry = err, now.Add(b.pause)
}

// answered records a reply from CFS (whatever it said).
func (t *cfsTarget) answered() {
	t.bmu.Lock()
	defer t.bmu.Unlock()
	if b := &t.brk; b.err != nil {
		t.log.Info("CFS answers again", "url", t.url, "down", t.now().Sub(b.since).Round(time.Second), "calls_failed_at_once", b.skipped)
		*b = breaker{}
	}
}

func openCFS(opts Options, log *slog.Logger) (*cfsTarget, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(opts.Host), "["), "]")
	switch {
	case host == "":
		return nil, messages.Missing("IngestHost")
	case strings.ContainsAny(host, "/?#@ \t"):
		return nil, messages.Invalid("IngestHost", opts.Host, "must be a host name or IP address")
	case opts.Port == 0:
		return nil, messages.Missing("IngestPort")
	case opts.Port < 1 || opts.Port > 65535:
		return nil, messages.Invalid("IngestPort", strconv.Itoa(opts.Port), "must be between 1 and 65535")
	}
	scheme := "http"
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	if def, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = def.Clone() // keeps the standard dial and idle timeouts
	}
	if opts.SSL {
		scheme = "https"
		if opts.TLSConfig != nil {
			tr.TLSClientConfig = opts.TLSConfig.Clone()
		}
	}
	u := (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(opts.Port)), Path: "/"}).String()
	client := &http.Client{
		Transport: tr,
		Timeout:   opts.Timeout,
		// A redirected POST would be replayed as a GET without its body;
		// report the 3xx instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &cfsTarget{url: u, client: client, log: log, batch: opts.BatchSize, now: time.Now}, nil
}

// Describe implements Target.
func (t *cfsTarget) Describe() string { return "CFS " + t.url }

// Add implements Target: one Ingest request with an adds XML per BatchSize
// documents.
func (t *cfsTarget) Add(ctx context.Context, docs []*Document) error {
	op := fmt.Sprintf("CFS add of %d documents to %s", len(docs), t.url)
	if err := validateAll(docs); err != nil {
		return delivery(op, err)
	}
	item := func(i int) string { return fmt.Sprintf("document %q", docs[i].Reference) }
	return t.deliver(ctx, op, len(docs), item, func(lo, hi int) []byte {
		xp := getBuf()
		defer putBuf(xp)
		*xp = appendAdds((*xp)[:0], docs[lo:hi])
		const prefix = "action=Ingest&adds="
		b := make([]byte, 0, len(prefix)+aci.QueryEscapedLen(*xp)) // one exact buffer: megabytes of base64 with Source
		b = append(b, prefix...)
		return aci.AppendQueryEscape(b, *xp)
	})
}

// Remove implements Target: one Ingest request with a removes list per
// BatchSize references. A reference containing a comma is refused
// (ErrInvalidDocument): removes is a plain comma-separated list, so CFS
// would split it and delete the wrong documents.
func (t *cfsTarget) Remove(ctx context.Context, refs []string) error {
	op := fmt.Sprintf("CFS removal of %d references at %s", len(refs), t.url)
	if err := validateRefs(refs); err != nil {
		return delivery(op, err)
	}
	for _, r := range refs {
		if strings.Contains(r, ",") {
			return delivery(op, fmt.Errorf("%w: reference %q contains a comma, which the CFS removes list cannot carry", ErrInvalidDocument, r))
		}
	}
	item := func(i int) string { return fmt.Sprintf("reference %q", refs[i]) }
	return t.deliver(ctx, op, len(refs), item, func(lo, hi int) []byte {
		b := []byte("action=Ingest&removes=")
		for i, r := range refs[lo:hi] {
			if i > 0 {
				b = append(b, "%2C"...) // the comma between references, escaped
			}
			b = aci.AppendQueryEscape(b, r)
		}
		return b
	})
}

// deliver sends n items in requests of t.batch; body returns the form
// body of items [lo, hi), item names item i in an error. Each request has
// a body of its own, never reused: the transport may still read one after
// Do returned (a reply that came before the whole body was sent). A
// request CFS refuses for its size is sent again in halves (send); after
// an item refused for its size alone, the requests after it still go, and
// when every other item was delivered the error is a *PartialError naming
// the items refused. After any other failure nothing more is sent, and
// the error is that failure's.
func (t *cfsTarget) deliver(ctx context.Context, op string, n int, item func(i int) string, body func(lo, hi int) []byte) error {
	if n == 0 {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return delivery(op, ErrClosed)
	}
	probe, err := t.gate()
	if err != nil {
		return delivery(op, err)
	}
	if probe {
		defer t.endProbe()
	}
	refused := map[int]error{}
	for lo := 0; lo < n; lo += t.batch {
		if err := t.send(ctx, lo, min(lo+t.batch, n), item, body, refused); err != nil {
			return delivery(op, err)
		}
	}
	if len(refused) > 0 {
		return delivery(op, &PartialError{Refused: refused})
	}
	return nil
}

// send posts items [lo, hi) in one request. When CFS (or a gateway before
// it) refuses the request for its size, the items go again in two halves,
// each half refused again split again, so that only an item too large on
// its own is refused (its error set in refused) and the others are
// delivered; without it, such a batch was refused whole by every run, for
// good. After a failure for another reason nothing more is sent, and that
// error is returned (it stops deliver too).
func (t *cfsTarget) send(ctx context.Context, lo, hi int, item func(i int) string, body func(lo, hi int) []byte, refused map[int]error) error {
	b := body(lo, hi)
	token, err := t.post(ctx, b)
	switch {
	case err == nil:
		t.log.Debug("CFS accepted ingest batch", "url", t.url, "items", hi-lo, "token", token)
		return nil
	case !refusedForSize(err):
		return err
	case hi-lo == 1:
		if sr := (*sizeRefusal)(nil); errors.As(err, &sr) && sr.closed {
			refused[lo] = fmt.Errorf("%s was refused on its own (a request of %d bytes): %w", item(lo), len(b), err)
		} else {
			refused[lo] = fmt.Errorf("%s is too large for CFS on its own (a request of %d bytes): %w", item(lo), len(b), err)
		}
		return nil
	}
	t.log.Info("CFS refused a request for its size; sending it again in halves", "url", t.url, "items", hi-lo, "bytes", len(b), "error", err)
	mid := lo + (hi-lo)/2
	if err := t.send(ctx, lo, mid, item, body, refused); err != nil {
		return err
	}
	return t.send(ctx, mid, hi, item, body, refused)
}

// sizeRefusal is the error of an HTTP 413 reply (Content Too Large), or
// of a connection closed without a reply (closed; reused: a kept-alive
// connection).
type sizeRefusal struct {
	err            error
	closed, reused bool
}

func (e *sizeRefusal) Error() string { return e.err.Error() }
func (e *sizeRefusal) Unwrap() error { return e.err }

// refusedForSize reports whether err says the request was too large: an
// HTTP 413 (a gateway's client_max_body_size, a server's body limit), an
// ACI ERROR with code ERRORREQUESTTOOLARGE, or a connection closed without
// a reply (closedWithoutReply).
func refusedForSize(err error) bool {
	var sr *sizeRefusal
	var ae *ACIError
	return errors.As(err, &sr) || (errors.As(err, &ae) && strings.EqualFold(ae.ErrorCode, "ERRORREQUESTTOOLARGE"))
}

// post sends one Ingest request and returns the token of the queued action.
//
// A kept-alive connection closed without a reply may have been dropped
// while idle (a load balancer's idle timeout shorter than the client's)
// rather than by CFS refusing the request: the request goes once more, on
// a new connection, before the close counts (refusedForSize). Go's client
// does the same itself only for requests it may repeat, never a POST.
func (t *cfsTarget) post(ctx context.Context, body []byte) (string, error) {
	token, err := t.postOnce(ctx, body)
	if sr := (*sizeRefusal)(nil); errors.As(err, &sr) && sr.closed && sr.reused {
		t.log.Debug("CFS closed a kept-alive connection without a reply; sending the request again on a new connection", "url", t.url, "bytes", len(body), "error", err)
		t.client.CloseIdleConnections() // dropped with it, most likely
		token, err = t.postOnce(ctx, body)
	}
	return token, err
}

// slowClose is how long CFS may stay silent after a whole request before
// a close without a reply is no longer taken for a refusal of its size
// (which a server or gateway makes as it reads the request) but for a
// gateway or load balancer giving up on a CFS that does not answer (an
// idle timeout shorter than IngestTimeout). CFS answers Ingest as soon as
// it has queued the batch.
const slowClose = 10 * time.Second

// postOnce sends one Ingest request.
func (t *cfsTarget) postOnce(ctx context.Context, body []byte) (string, error) {
	var kept atomic.Bool
	var wrote atomic.Int64 // t.now() in Unix nanoseconds once the whole request was written
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { kept.Store(i.Reused) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(t.now().UnixNano())
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	resp, err := t.client.Do(req)
	if err != nil {
		// Only CFS not answering trips the breaker (a timeout, or a close
		// after slowClose of silence): a refused connection fails at once
		// anyway, and a reset may be a server refusing a large body by
		// closing the connection (the next, smaller batch may pass).
		if ne := net.Error(nil); ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
			t.noAnswer(err)
		}
		if ctx.Err() == nil && closedWithoutReply(err) {
			if w := wrote.Load(); w != 0 {
				if silent := t.now().Sub(time.Unix(0, w)); silent >= slowClose {
					err = fmt.Errorf("CFS did not answer for %s, then the connection was closed without a reply (a gateway or load balancer before CFS giving up on it): %w", silent.Round(time.Second), err)
					t.noAnswer(err)
					return "", err
				}
			}
			return "", &sizeRefusal{err: fmt.Errorf("CFS closed the connection without a reply, as a server refusing a request for its size may: %w", err), closed: true, reused: kept.Load()}
		}
		return "", err // *url.Error names the method and URL
	}
	t.answered()
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if resp.StatusCode == http.StatusRequestEntityTooLarge {
		return "", &sizeRefusal{err: statusError(resp.Status, data)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", statusError(resp.Status, data)
	}
	if err != nil {
		return "", fmt.Errorf("read reply: %w", err)
	}
	if len(data) > maxReplyBytes {
		return "", fmt.Errorf("reply longer than %d bytes", maxReplyBytes)
	}
	return parseIngestReply(data)
}

// closedWithoutReply reports whether err, of a request, says the server
// closed the connection (reset, broken pipe, end of stream) after it was
// made and before it replied. A server, or a gateway before it, may so
// refuse a request too large for it, without a status; and when it sends
// a 413 and closes while the client is still sending a large body, the
// client sees a reset rather than the 413. So the request is split as a
// 413's is (send): if CFS went down instead, the next request fails to
// connect, which stops the call.
func closedWithoutReply(err error) bool {
	if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
		return false // no connection: nothing was refused
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// maxReasonBytes bounds the part of a non-2xx reply's body that an error
// quotes: enough for a gateway's page or a server's message, not a page of
// HTML in every log line.
const maxReasonBytes = 300

// statusError is the error of a non-2xx reply with body data (perhaps
// cut short): the status and what the server said. An ACI ERROR reply is
// its *ACIError (errors.As finds it); another body is quoted as text, its
// tags left out, on one line, cut at maxReasonBytes, with the password of
// any URL in it redacted (a gateway may quote one).
func statusError(status string, data []byte) error {
	var r aci.Decoded
	if aci.DecodeReply(data, &r) == nil {
		if r.Response == aci.ResponseError {
			return fmt.Errorf("CFS answered HTTP %s: %w", status, newACIError(&r))
		}
		return fmt.Errorf("CFS answered HTTP %s", status) // a SUCCESS body says nothing about the failure
	}
	if reason := replyText(data, maxReasonBytes); reason != "" {
		return fmt.Errorf("CFS answered HTTP %s: %s", status, reason)
	}
	return fmt.Errorf("CFS answered HTTP %s", status)
}

// replyText returns the text of a reply body for an error message: markup
// (<...>, in a body that starts with '<') left out, control characters and
// runs of white space made one space, invalid UTF-8 dropped, URL passwords
// redacted, cut at max bytes (with "…").
//
// The text of all that is read of the body (16*max bytes) is redacted
// before it is cut: cut first, a URL whose '@' lay past the cut was no URL
// with a password, and its password's start was kept. A URL whose user
// information runs to where the text is cut (its '@' unread) keeps its
// text up to the ':' that begins its password (openUserInfo).
func replyText(data []byte, max int) string {
	read := data[:min(len(data), 16*max)]
	var b strings.Builder
	markup := bytes.HasPrefix(bytes.TrimSpace(read), []byte("<"))
	space, inTag := false, false
	for _, r := range strings.ToValidUTF8(string(read), "") {
		switch {
		case markup && r == '<':
			inTag, space = true, true
			continue
		case inTag:
			inTag = r != '>'
			continue
		case unicode.IsSpace(r) || unicode.IsControl(r):
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	s := secret.RedactURLs(b.String())
	cut := len(read) < len(data)
	if len(s) > max {
		s, cut = strings.ToValidUTF8(s[:max], ""), true
	}
	if cut {
		s = openUserInfo(s) + "…"
	}
	return s
}

// openUserInfo returns s, text cut short, without what may be the start
// of a password: when its last URL's text runs to the end of s without an
// '@' and has a ':' after its "://", s ends after that ':' ("see
// http://admin:" for "see http://admin:hunter2", which was to go on with
// "...@host/"; a host and port lose the port).
func openUserInfo(s string) string {
	i := strings.LastIndex(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	if strings.ContainsAny(rest, "@ \t\r\n\"'<>") {
		return s // an '@' was read, and redacted if need be; or the URL ended
	}
	if c := strings.IndexByte(rest, ':'); c >= 0 {
		return s[:i+3+c+1]
	}
	return s
}

// parseIngestReply returns the token of a SUCCESS reply, an *ACIError for
// an ERROR reply, and an error for anything else. It reads the reply with
// the codec's client-side decoder.
func parseIngestReply(data []byte) (string, error) {
	var r aci.Decoded
	if err := aci.DecodeReply(data, &r); err != nil {
		return "", fmt.Errorf("malformed reply: %w", err)
	}
	switch r.Response {
	case aci.ResponseSuccess:
		if r.Token == "" {
			return "", errors.New("SUCCESS reply without a token")
		}
		return r.Token, nil
	case aci.ResponseError:
		return "", newACIError(&r)
	default:
		return "", fmt.Errorf("reply has response %q, want SUCCESS or ERROR", r.ResponseRaw)
	}
}

// Close implements Target.
func (t *cfsTarget) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.client.CloseIdleConnections()
	return nil
}

// addsSize is about what appendAdds appends for docs (exactly, for the
// base64 of their Source, which is most of a large batch), so that the
// buffer grows once rather than by a series of copies.
func addsSize(docs []*Document) int {
	n := len("<adds></adds>")
	for _, d := range docs {
		n += 96 + len(d.Reference) + len(d.Content) + base64.StdEncoding.EncodedLen(len(d.Source))
		for _, f := range d.Fields {
			n += 24 + len(f.Name) + len(f.Value)
		}
	}
	return n
}

// appendAdds appends the Ingest adds XML for validated docs:
//
//	<adds><add><document><reference>R</reference>
//	  <metadata name="N" value="V"/>... <pages content="Content"/>
//	</document><source content="base64(Source)"/></add>...</adds>
//
// <pages> is sent when there is Content and no Source; <source> when there
// is Source (CFS filters it with KeyView, so Content is not sent).
func appendAdds(b []byte, docs []*Document) []byte {
	b = slices.Grow(b, addsSize(docs))
	b = append(b, "<adds>"...)
	for _, d := range docs {
		b = append(b, "<add><document><reference>"...)
		b = appendXMLEscaped(b, d.Reference)
		b = append(b, "</reference>"...)
		for _, f := range d.Fields {
			b = append(b, `<metadata name="`...)
			b = appendXMLEscaped(b, f.Name)
			b = append(b, `" value="`...)
			b = appendXMLEscaped(b, f.Value)
			b = append(b, `"/>`...)
		}
		if len(d.Source) == 0 && d.Content != "" {
			b = append(b, `<pages content="`...)
			b = appendXMLEscaped(b, d.Content)
			b = append(b, `"/>`...)
		}
		b = append(b, "</document>"...)
		if len(d.Source) > 0 {
			b = append(b, `<source content="`...)
			b = base64.StdEncoding.AppendEncode(b, d.Source)
			b = append(b, `"/>`...)
		}
		b = append(b, "</add>"...)
	}
	return append(b, "</adds>"...)
}

// appendXMLEscaped appends s escaped for XML text or a double-quoted
// attribute. Tab, CR and LF become character references so attribute
// normalisation cannot turn them into spaces; bytes that are not valid
// UTF-8 and characters XML 1.0 forbids (most control characters) become
// U+FFFD, as encoding/xml does.
func appendXMLEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '&':
			b = append(b, "&amp;"...)
		case r == '<':
			b = append(b, "&lt;"...)
		case r == '>':
			b = append(b, "&gt;"...)
		case r == '"':
			b = append(b, "&quot;"...)
		case r == '\'':
			b = append(b, "&apos;"...)
		case r == '\t':
			b = append(b, "&#x9;"...)
		case r == '\n':
			b = append(b, "&#xA;"...)
		case r == '\r':
			b = append(b, "&#xD;"...)
		case (r == utf8.RuneError && size == 1) || !isXMLChar(r):
			b = append(b, "\uFFFD"...)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// isXMLChar reports whether r may appear in an XML 1.0 document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}
