// Package resttest holds what the REST connectors' tests share: an
// ingestion target that keeps the documents in memory, a log sink, a
// recorder of waits, and a server that never answers.
package resttest

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/stretchr/testify/require"
)

// Target keeps the documents delivered, by reference. It is safe for
// concurrent use.
type Target struct {
	mu      sync.Mutex
	docs    map[string]*ingest.Document
	adds    int
	addsOf  map[string]int
	removes int
	fail    error
}

// NewTarget returns an empty target.
func NewTarget() *Target {
	return &Target{docs: map[string]*ingest.Document{}, addsOf: map[string]int{}}
}

// Add implements ingest.Target: documents must pass Validate.
func (m *Target) Add(_ context.Context, docs []*ingest.Document) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, d := range docs {
		if err := d.Validate(); err != nil {
			return err
		}
	}
	for _, d := range docs {
		c := *d
		c.Fields = slices.Clone(d.Fields)
		c.Source = nil // the tests look at fields and text
		m.docs[d.Reference] = &c
		m.adds++
		m.addsOf[d.Reference]++
	}
	return nil
}

// Remove implements ingest.Target.
func (m *Target) Remove(_ context.Context, refs []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, r := range refs {
		delete(m.docs, r)
		m.removes++
	}
	return nil
}

// Close implements ingest.Target.
func (m *Target) Close() error { return nil }

// Describe implements ingest.Target.
func (m *Target) Describe() string { return "memory" }

// SetFail makes every later call fail with err (nil: succeed again).
func (m *Target) SetFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// Len is the number of documents held.
func (m *Target) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.docs)
}

// Adds is how many documents were delivered (re-deliveries included).
func (m *Target) Adds() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.adds
}

// AddsOf is how many times a reference was delivered.
func (m *Target) AddsOf(ref string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addsOf[ref]
}

// AwaitAny waits, polling with a deadline of d, until one of refs was
// delivered, and says whether one was: a stand-in's fault hook that holds
// a request back until the connector has delivered what it read before
// (a test that the connector does not hold everything until the end).
func (m *Target) AwaitAny(refs []string, d time.Duration) bool {
	held := func() bool {
		for _, r := range refs {
			if m.AddsOf(r) > 0 {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(d); !held() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return held()
}

// Held returns those of refs whose document the target holds.
func (m *Target) Held(refs []string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range refs {
		if m.docs[r] != nil {
			out = append(out, r)
		}
	}
	return out
}

// Get returns the document of a reference, or nil.
func (m *Target) Get(ref string) *ingest.Document {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.docs[ref]
}

// Find returns the documents whose field name has value.
func (m *Target) Find(name, value string) []*ingest.Document {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ingest.Document
	for _, d := range m.docs {
		if slices.Contains(Field(d, name), value) {
			out = append(out, d)
		}
	}
	return out
}

// All returns every document.
func (m *Target) All() []*ingest.Document {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ingest.Document
	for _, d := range m.docs {
		out = append(out, d)
	}
	return out
}

// Field returns the values of a document's field.
func Field(d *ingest.Document, name string) []string {
	var out []string
	for _, f := range d.Fields {
		if f.Name == name {
			out = append(out, f.Value)
		}
	}
	return out
}

// Field1 returns a field's first value ("" when none).
func Field1(d *ingest.Document, name string) string {
	if v := Field(d, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// LogBuffer is a log sink safe for concurrent writes.
type LogBuffer = testlog.Buffer

// Waits records the waits a connector asks for (its Options.Sleep),
// without waiting.
type Waits struct {
	mu sync.Mutex
	d  []time.Duration
}

// Sleep records d and returns at once (the context's cause when it is
// done).
func (w *Waits) Sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return context.Cause(ctx)
}

// All returns the waits asked for.
func (w *Waits) All() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// Hold starts a server on 127.0.0.1 that accepts connections and never
// answers (the cancellation test of the conformance suite); held counts
// the connections. It stops with the test.
func Hold(t testing.TB) (addr string, held *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held = &atomic.Int64{}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), held
}

// AuthorizationSink starts a server on 127.0.0.1 that answers body (JSON)
// to every request and records each request's Authorization header (""
// when it has none), which got returns: where a credential must never go.
// It stops with the test.
func AuthorizationSink(t testing.TB, body string) (srv *httptest.Server, got func() []string) {
	return sink(t, body, func(r *http.Request) string { return r.Header.Get("Authorization") })
}

// BodySink is AuthorizationSink recording each request's body: where a
// token request's form (a password, a client secret) must never go.
func BodySink(t testing.TB, body string) (srv *httptest.Server, got func() []string) {
	return sink(t, body, func(r *http.Request) string {
		b, _ := io.ReadAll(r.Body)
		return string(b)
	})
}

func sink(t testing.TB, body string, record func(*http.Request) string) (srv *httptest.Server, got func() []string) {
	var mu sync.Mutex
	var seen []string
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := record(r)
		mu.Lock()
		seen = append(seen, v)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// Params makes request parameters of name, value pairs.
func Params(kv ...string) messages.Params {
	var ps messages.Params
	for i := 0; i+1 < len(kv); i += 2 {
		ps = append(ps, &messages.Param{Name: kv[i], Value: kv[i+1]})
	}
	return ps
}

// Run validates an action (which must pass) and runs it on repo, as the
// queue does, and returns its job, results and error.
func Run(t testing.TB, repo fetch.Repository, action string, params ...string) (*fetch.Job, []*messages.Element, error) {
	t.Helper()
	ps := Params(params...)
	tasks, err := repo.Validate(action, ps)
	require.NoError(t, err)
	job := fetch.NewJob("tok", action, ps, tasks)
	res, err := repo.Run(context.Background(), job)
	return job, res, err
}

// ConformanceNew is fetchtest.Conformance's New for a connector: a
// repository made by the descriptor from the configuration text, on a
// memory store (closed at the test's end) and a Target.
func ConformanceNew(d *fetch.Descriptor, cfgText string) func(t *testing.T) fetch.Repository {
	return func(t *testing.T) fetch.Repository {
		cfg, err := config.Parse("conformance.cfg", []byte(cfgText), d.TaskKeys)
		require.NoError(t, err)
		st, err := store.Open(store.Config{Driver: store.DriverMemory})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		r, err := d.New(fetch.Deps{Config: cfg, Store: st, Target: NewTarget()})
		require.NoError(t, err)
		return r
	}
}

// Docx returns a minimal Word document with text.
func Docx(t testing.TB, text string) []byte {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	w, err := z.Create("[Content_Types].xml")
	require.NoError(t, err)
	fmt.Fprint(w, `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`)
	w, err = z.Create("word/document.xml")
	require.NoError(t, err)
	fmt.Fprintf(w, `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>%s</w:t></w:r></w:p></w:body></w:document>`, text)
	require.NoError(t, z.Close())
	return buf.Bytes()
}

// Gated is an ingest.Target that passes every call on to Inner, but holds
// the first Add or Remove call naming a reference given to HoldAdd or
// HoldRemove until that hold is released: a test forces one task's run to
// stop at its delivery while another runs.
type Gated struct {
	Inner ingest.Target

	mu    sync.Mutex
	holds []*Gate
}

// Gate is one hold of a Gated target.
type Gate struct {
	remove  bool
	ref     string
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

// Reached is closed once a call naming the reference is held.
func (h *Gate) Reached() <-chan struct{} { return h.reached }

// Release lets the held call (and any later one) through.
func (h *Gate) Release() { h.once.Do(func() { close(h.release) }) }

// HoldAdd holds the first Add call with a document of reference ref.
func (g *Gated) HoldAdd(ref string) *Gate { return g.hold(false, ref) }

// HoldRemove holds the first Remove call naming reference ref.
func (g *Gated) HoldRemove(ref string) *Gate { return g.hold(true, ref) }

func (g *Gated) hold(remove bool, ref string) *Gate {
	h := &Gate{remove: remove, ref: ref, reached: make(chan struct{}), release: make(chan struct{})}
	g.mu.Lock()
	g.holds = append(g.holds, h)
	g.mu.Unlock()
	return h
}

// wait holds a call naming refs while a hold on one of them is on.
func (g *Gated) wait(remove bool, refs []string) {
	g.mu.Lock()
	var h *Gate
	for i, c := range g.holds {
		if c.remove == remove && slices.Contains(refs, c.ref) {
			h = c
			g.holds = slices.Delete(g.holds, i, i+1)
			break
		}
	}
	g.mu.Unlock()
	if h != nil {
		close(h.reached)
		<-h.release
	}
}

// Add implements ingest.Target.
func (g *Gated) Add(ctx context.Context, docs []*ingest.Document) error {
	refs := make([]string, len(docs))
	for i, d := range docs {
		refs[i] = d.Reference
	}
	g.wait(false, refs)
	return g.Inner.Add(ctx, docs)
}

// Remove implements ingest.Target.
func (g *Gated) Remove(ctx context.Context, refs []string) error {
	g.wait(true, refs)
	return g.Inner.Remove(ctx, refs)
}

// Close implements ingest.Target.
func (g *Gated) Close() error { return g.Inner.Close() }

// Describe implements ingest.Target.
func (g *Gated) Describe() string { return "gated " + g.Inner.Describe() }

// SizeLimitedCFS is a CFS target whose server refuses a request body
// larger than limit with HTTP 413 (a gateway's body limit) and takes the
// others; it returns the references of the documents it took, in order.
func SizeLimitedCFS(t *testing.T, limit int64, batch int) (ingest.Target, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var took []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		adds := form.Get("adds")
		mu.Lock()
		for _, part := range strings.Split(adds, "<reference>")[1:] {
			took = append(took, part[:strings.Index(part, "</reference>")])
		}
		mu.Unlock()
		_, _ = io.WriteString(w, "<autnresponse><action>INGEST</action><response>SUCCESS</response><responsedata><token>T</token></responsedata></autnresponse>")
	}))
	t.Cleanup(srv.Close)
	host, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	tgt, err := ingest.Open(ingest.Options{Type: ingest.TypeCFS, Host: host, Port: p, BatchSize: batch}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tgt.Close() })
	return tgt, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), took...)
	}
}
