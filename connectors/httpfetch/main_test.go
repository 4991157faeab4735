package httpfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/transport/aci"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// page is one resource of a test site.
type page struct {
	body    string
	ctype   string // default text/html; charset=utf-8
	status  int    // default 200
	loc     string // Location of a redirect
	noValid bool   // send no ETag / Last-Modified
	lmOnly  bool   // send Last-Modified only (304 on If-Modified-Since)
	block   bool   // answer only when the client gives up (timeouts)
	hold    bool   // wait for site.release (or the client giving up)
}

// hit is one request a test site received.
type hit struct {
	path    string
	at      time.Time
	inm     string // If-None-Match
	ims     string // If-Modified-Since
	ua      string // User-Agent
	status  int
	aborted bool
}

// site is a web site on 127.0.0.1 whose pages a test can change between
// runs. It answers conditional requests (ETag from the body's hash, a
// fixed Last-Modified) with 304 and records every request.
type site struct {
	*httptest.Server
	mu      sync.Mutex
	pages   map[string]*page
	hits    []hit
	release chan struct{}
	held    atomic.Int32
	onHit   func(path string)       // called at the start of each request, outside mu
	dynamic func(path string) *page // pages not in the map; nil: 404
}

var siteModified = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func newSite(t testing.TB, pages map[string]*page) *site {
	t.Helper()
	s := &site{pages: pages, release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.unhold()
		s.Close()
	})
	return s
}

func (s *site) unhold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

func (s *site) set(path string, p *page) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == nil {
		delete(s.pages, path)
		return
	}
	s.pages[path] = p
}

func (s *site) requests() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits)
}

func (s *site) count(path string) int {
	n := 0
	for _, h := range s.requests() {
		if h.path == path {
			n++
		}
	}
	return n
}

func etagOf(body string) string {
	sum := sha256.Sum256([]byte(body))
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

func (s *site) serve(w http.ResponseWriter, r *http.Request) {
	if s.onHit != nil {
		s.onHit(r.URL.RequestURI())
	}
	s.mu.Lock()
	p := s.pages[r.URL.RequestURI()]
	if p == nil && s.dynamic != nil {
		p = s.dynamic(r.URL.RequestURI())
	}
	if p != nil {
		cp := *p
		p = &cp
	}
	release := s.release
	s.mu.Unlock()
	h := hit{path: r.URL.RequestURI(), at: time.Now(), inm: r.Header.Get("If-None-Match"), ims: r.Header.Get("If-Modified-Since"), ua: r.UserAgent()}
	defer func() {
		s.mu.Lock()
		s.hits = append(s.hits, h)
		s.mu.Unlock()
	}()
	switch {
	case p == nil:
		h.status = 404
		http.NotFound(w, r)
		return
	case p.block:
		<-r.Context().Done()
		h.aborted = true
		return
	case p.hold:
		s.held.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			s.held.Add(-1)
			h.aborted = true
			return
		}
		s.held.Add(-1)
	}
	if p.loc != "" {
		h.status = p.status
		if h.status == 0 {
			h.status = http.StatusFound
		}
		w.Header().Set("Location", p.loc)
		w.WriteHeader(h.status)
		return
	}
	if p.status != 0 && p.status != 200 {
		h.status = p.status
		http.Error(w, "status", p.status)
		return
	}
	ct := p.ctype
	if ct == "" {
		ct = "text/html; charset=utf-8"
	}
	switch {
	case p.noValid:
	case p.lmOnly:
		w.Header().Set("Last-Modified", siteModified.Format(http.TimeFormat))
		if t, err := http.ParseTime(h.ims); err == nil && !t.Before(siteModified) {
			h.status = 304
			w.WriteHeader(http.StatusNotModified)
			return
		}
	default:
		tag := etagOf(p.body)
		w.Header().Set("ETag", tag)
		w.Header().Set("Last-Modified", siteModified.Format(http.TimeFormat))
		if h.inm == tag {
			h.status = 304
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", ct)
	h.status = 200
	_, _ = io.WriteString(w, p.body)
}

// htmlPage is a small HTML page with a title and links.
func htmlPage(title string, links ...string) *page {
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><html lang=en><head><title>%s</title><meta name=description content=%q></head><body><h1>%s</h1>", title, "about "+title, title)
	for _, l := range links {
		fmt.Fprintf(&b, `<a href="%s">%s</a> `, l, l)
	}
	b.WriteString("</body></html>")
	return &page{body: b.String()}
}

// recTarget is an ingestion target that records what it receives,
// delivers it to a real IDX folder, and fails on demand.
type recTarget struct {
	inner ingest.Target
	dir   string
	fail  atomic.Bool
	// noCommas makes Remove refuse a call with a reference containing a
	// comma, whole, as the CFS target does (ingest/cfs.go).
	noCommas atomic.Bool
	mu       sync.Mutex
	added    []*ingest.Document // every document delivered, in order
	removed  []string
	held     map[string]bool // references delivered and not removed since
	calls    int
	sizes    []int // documents per Add call
	// gate, when set, holds every Add until it is closed, after a send
	// on adding when that is set (and has room).
	gate   chan struct{}
	adding chan struct{}
	// removeGate, when set, holds every Remove until it is closed, after
	// a send on removing.
	removeGate chan struct{}
	removing   chan struct{}
	// panicWith, when set, is what every Add panics with.
	panicWith atomic.Pointer[string]
	// deadlines counts the calls whose context had a deadline.
	deadlines atomic.Int64
}

func newRecTarget(t testing.TB) *recTarget {
	t.Helper()
	dir := t.TempDir()
	inner, err := ingest.Open(ingest.Options{Type: ingest.TypeIDX, Directory: dir}, quietLogger())
	require.NoError(t, err)
	t.Cleanup(func() { _ = inner.Close() })
	return &recTarget{inner: inner, dir: dir}
}

var errTargetDown = errors.New("test: target is down")

func (rt *recTarget) Add(ctx context.Context, docs []*ingest.Document) error {
	if _, ok := ctx.Deadline(); ok {
		rt.deadlines.Add(1)
	}
	rt.mu.Lock()
	rt.calls++
	rt.sizes = append(rt.sizes, len(docs))
	gate, adding := rt.gate, rt.adding
	rt.mu.Unlock()
	if gate != nil {
		select {
		case adding <- struct{}{}:
		default:
		}
		<-gate
	}
	if p := rt.panicWith.Load(); p != nil {
		panic(*p)
	}
	if rt.fail.Load() {
		return fmt.Errorf("%w: %w", ingest.ErrDelivery, errTargetDown)
	}
	if err := rt.inner.Add(ctx, docs); err != nil {
		return err
	}
	rt.mu.Lock()
	rt.added = append(rt.added, docs...)
	if rt.held == nil {
		rt.held = map[string]bool{}
	}
	for _, d := range docs {
		rt.held[d.Reference] = true
	}
	rt.mu.Unlock()
	return nil
}

func (rt *recTarget) Remove(ctx context.Context, refs []string) error {
	if _, ok := ctx.Deadline(); ok {
		rt.deadlines.Add(1)
	}
	rt.mu.Lock()
	rg, rs := rt.removeGate, rt.removing
	rt.mu.Unlock()
	if rg != nil {
		rs <- struct{}{}
		<-rg
	}
	if rt.fail.Load() {
		return fmt.Errorf("%w: %w", ingest.ErrDelivery, errTargetDown)
	}
	if rt.noCommas.Load() {
		for _, r := range refs {
			if strings.Contains(r, ",") {
				return fmt.Errorf("%w: %w: reference %q contains a comma", ingest.ErrDelivery, ingest.ErrInvalidDocument, r)
			}
		}
	}
	if err := rt.inner.Remove(ctx, refs); err != nil {
		return err
	}
	rt.mu.Lock()
	rt.removed = append(rt.removed, refs...)
	for _, r := range refs {
		delete(rt.held, r)
	}
	rt.mu.Unlock()
	return nil
}

// holds reports whether the target holds a document for ref: delivered,
// and not removed since (reset keeps what it holds).
func (rt *recTarget) holds(ref string) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.held[ref]
}

func (rt *recTarget) Close() error     { return nil }
func (rt *recTarget) Describe() string { return "recording " + rt.inner.Describe() }

// refs returns the references delivered (sorted, with repeats).
func (rt *recTarget) refs() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make([]string, len(rt.added))
	for i, d := range rt.added {
		out[i] = d.Reference
	}
	sort.Strings(out)
	return out
}

func (rt *recTarget) removals() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := slices.Clone(rt.removed)
	sort.Strings(out)
	return out
}

// doc returns the last document delivered for ref, or nil.
func (rt *recTarget) doc(ref string) *ingest.Document {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for i := len(rt.added) - 1; i >= 0; i-- {
		if rt.added[i].Reference == ref {
			return rt.added[i]
		}
	}
	return nil
}

func (rt *recTarget) reset() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.added, rt.removed = nil, nil
}

// idxRefs reads back every reference the IDX folder holds in .idx files
// and every reference of its .del files.
func (rt *recTarget) idxFiles(t testing.TB) (adds, dels []string) {
	t.Helper()
	entries, err := os.ReadDir(rt.dir)
	require.NoError(t, err)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(rt.dir, e.Name()))
		require.NoError(t, err)
		switch filepath.Ext(e.Name()) {
		case ingest.ExtIDX:
			docs, err := ingest.ReadIDX(f)
			require.NoError(t, err)
			for _, d := range docs {
				adds = append(adds, d.Reference)
			}
		case ingest.ExtRemoval:
			refs, err := ingest.ReadDeleteRefs(f)
			require.NoError(t, err)
			dels = append(dels, refs...)
		}
		require.NoError(t, f.Close())
	}
	sort.Strings(adds)
	sort.Strings(dels)
	return adds, dels
}

// bundle is a repository wired to an in-memory store and a recording
// target.
type bundle struct {
	repo    *Repository
	st      store.Store
	target  *recTarget
	cfg     *config.Config
	replies *replyLog // nil in benchmarks
}

// replyLog keeps, for one test, the QueueInfo reply of every action run
// (each action's status with its results, as GetStatus prints it), and
// validates them all against queueinfo-reply.xsd when the test ends: the
// results of every fetch action the tests run must fit OpenText's
// connectors.xsd types (tasks, identifiers, documentcounts).
type replyLog struct {
	mu    sync.Mutex
	dir   string
	files []string
}

func (l *replyLog) add(t testing.TB, action string, job *fetch.Job, res []*messages.Element) {
	t.Helper()
	now := time.Now()
	out := aci.AppendActionsXML(nil, "QUEUEINFO", []*messages.ActionStatus{{
		Token: "token", State: messages.State_STATE_FINISHED, QueuedUnixMs: now.UnixMilli(),
		StartedUnixMs: now.UnixMilli(), EndedUnixMs: now.UnixMilli(), FetchAction: action,
		Counts: job.Snapshot(), Results: res,
	}}, now)
	l.mu.Lock()
	defer l.mu.Unlock()
	f := filepath.Join(l.dir, fmt.Sprintf("%03d-%s.xml", len(l.files), strings.ToLower(action)))
	require.NoError(t, os.WriteFile(f, out, 0o600))
	l.files = append(l.files, f)
}

func (l *replyLog) validate(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.files) == 0 || t.Failed() {
		return
	}
	path, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatalf("xmllint not found: install the Debian package libxml2-utils (make test does): %v", err)
	}
	schema := filepath.Join("..", "..", "transport", "aci", "testdata", "idol", "queueinfo-reply.xsd")
	out, err := exec.Command(path, append([]string{"--noout", "--schema", schema}, l.files...)...).CombinedOutput()
	if err != nil {
		var bad []string
		for _, line := range strings.Split(string(out), "\n") {
			if line != "" && !strings.HasSuffix(line, " validates") {
				bad = append(bad, line)
			}
		}
		t.Fatalf("fetch results do not fit connectors.xsd (%s): %v\n%s", schema, err, strings.Join(bad, "\n"))
	}
}

type setupOpts struct {
	noTarget bool
	store    store.Store
	client   *http.Client
	logger   *slog.Logger // default quietLogger()
	extra    string       // configuration text appended (e.g. a [Security] section)
	begin    BeginFunc    // Options.Begin (an extension's part)
	// flushInterval is Options.FlushInterval (0: the default).
	flushInterval time.Duration
}

// setup builds a repository from configuration text.
func setup(t testing.TB, cfgText string, opts ...setupOpts) *bundle {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	cfg, err := config.Parse("test.cfg", []byte(cfgText+"\n"+o.extra), TaskKeys)
	require.NoError(t, err)
	b := &bundle{cfg: cfg, st: o.store}
	if b.st == nil {
		b.st, err = store.Open(store.Config{Driver: store.DriverMemory})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.st.Close() })
	}
	if o.logger == nil {
		o.logger = quietLogger()
	}
	ro := Options{Config: cfg, Store: b.st, Logger: o.logger, Client: o.client, Begin: o.begin, FlushInterval: o.flushInterval}
	if !o.noTarget {
		b.target = newRecTarget(t)
		ro.Target = b.target
	}
	b.repo, err = New(ro)
	require.NoError(t, err)
	if tt, ok := t.(*testing.T); ok {
		b.replies = &replyLog{dir: tt.TempDir()}
		tt.Cleanup(func() { b.replies.validate(tt) })
	}
	return b
}

// siteConfig is a one-task configuration crawling s from "/", with extra
// [MyTask] lines.
func siteConfig(s *site, extra ...string) string {
	return "[FetchTasks]\n0=MyTask\n\n[MyTask]\nUrl=" + s.URL + "/\n" + strings.Join(extra, "\n") + "\n"
}

func params(kv ...string) messages.Params {
	var p messages.Params
	for i := 0; i+1 < len(kv); i += 2 {
		p = append(p, &messages.Param{Name: kv[i], Value: kv[i+1]})
	}
	return p
}

// run validates and runs a fetch action to its end.
func (b *bundle) run(t testing.TB, action string, p messages.Params) (*fetch.Job, []*messages.Element) {
	t.Helper()
	tasks, err := b.repo.Validate(action, p)
	require.NoError(t, err)
	job := fetch.NewJob("token", action, p, tasks)
	res, err := b.repo.Run(context.Background(), job)
	require.NoError(t, err)
	if b.replies != nil {
		b.replies.add(t, action, job, res)
	}
	return job, res
}

func (b *bundle) sync(t testing.TB, kv ...string) *fetch.Job {
	t.Helper()
	job, res := b.run(t, fetch.ActionSynchronize, params(kv...))
	require.Empty(t, res)
	return job
}

// cnt is the subset of a DocumentCount the tests compare.
type cnt struct {
	Seen, Added, Updated, Unchanged, Deleted                uint64
	IngestAdded, IngestUpdated, IngestDeleted, IngestFailed uint64
	Errors, Collected, Inserted                             uint64
}

func countsOf(job *fetch.Job, task string) cnt {
	c := job.Counts(task)
	if c == nil {
		return cnt{}
	}
	s := c.Snapshot()
	return cnt{
		Seen: s.Seen, Added: s.Added, Updated: s.Updated, Unchanged: s.Unchanged, Deleted: s.Deleted,
		IngestAdded: s.Ingestadded, IngestUpdated: s.Ingestupdated, IngestDeleted: s.Ingestdeleted, IngestFailed: s.Ingestfailed,
		Errors: s.Errors, Collected: s.Collected, Inserted: s.Inserted,
	}
}

// records returns the task's datastore records by URL.
func (b *bundle) records(t testing.TB, task string) map[string]*record {
	t.Helper()
	ds, err := b.st.Datastore(task)
	require.NoError(t, err)
	out := map[string]*record{}
	require.NoError(t, forEachRecord(ds, func(u string, r *record) error {
		out[u] = r
		return nil
	}))
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// paramErr asserts err is a *messages.ParamError named name.
func paramErr(t testing.TB, err error, name string) *messages.ParamError {
	t.Helper()
	require.Error(t, err)
	var pe *messages.ParamError
	require.ErrorAs(t, err, &pe, "%v", err)
	require.Equal(t, name, pe.Name, "%v", err)
	return pe
}

// realPDF and realDOCX are documents LibreOffice wrote (testdata/README.md):
// their text is "Quarterly Report", "The zebra crossed the meadow at
// dawn.", ...
var (
	realPDF  = mustRead("testdata/hello.pdf")
	realDOCX = mustRead("testdata/hello.docx")
)

func mustRead(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}
