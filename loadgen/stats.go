package loadgen

import (
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Histograms hold microseconds from 1 µs to one hour with three
// significant digits (HDR: every recorded value is exact to 0.1%).
const (
	histMinUs  = 1
	histMaxUs  = int64(time.Hour / time.Microsecond)
	histDigits = 3
)

// DefaultInterval is the length of the intervals of the timeline, of the
// HDR log and of the progress line.
const DefaultInterval = time.Second

func newHDR() *hdrhistogram.Histogram { return hdrhistogram.New(histMinUs, histMaxUs, histDigits) }

// hist is a latency histogram safe for concurrent recording, kept in
// intervals: record adds to the current interval; rotate, called by one
// goroutine at a time, ends the interval, folds it into the total and
// returns its summary. Recording takes one uncontended-in-practice mutex:
// requests cost tens of microseconds, a record tens of nanoseconds.
type hist struct {
	mu    sync.Mutex
	cur   *hdrhistogram.Histogram
	spare *hdrhistogram.Histogram // owned by rotate
	total *hdrhistogram.Histogram // owned by rotate; nil when no total is kept
}

func newHist(withTotal bool) *hist {
	h := &hist{cur: newHDR(), spare: newHDR()}
	if withTotal {
		h.total = newHDR()
	}
	return h
}

func toUs(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	return min(max(us, histMinUs), histMaxUs)
}

func (h *hist) record(d time.Duration) {
	h.mu.Lock()
	_ = h.cur.RecordValue(toUs(d)) // in range by toUs: cannot fail
	h.mu.Unlock()
}

// rotate ends the current interval. It folds the interval into the total,
// and returns its summary under name and, when encode is set and it holds
// values, its HDR encoding (V2, compressed, base64).
func (h *hist) rotate(name string, encode bool) (IntervalLatency, []byte) {
	h.mu.Lock()
	got := h.cur
	h.cur = h.spare
	h.mu.Unlock()
	if h.total != nil {
		h.total.Merge(got)
	}
	sum := intervalSummary(name, got)
	var enc []byte
	if encode && got.TotalCount() > 0 {
		enc = encodeHist(got)
	}
	got.Reset()
	h.spare = got
	return sum, enc
}

// encodeHist returns h in HdrHistogram's V2 compressed encoding, base64:
// the payload of an HDR log line.
func encodeHist(h *hdrhistogram.Histogram) []byte {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		// Encoding a well-formed histogram into memory does not fail.
		panic("loadgen: encode histogram: " + err.Error())
	}
	return b
}

func summarize(name string, h *hdrhistogram.Histogram) Latency {
	l := Latency{Name: name, Count: h.TotalCount()}
	if l.Count == 0 {
		return l
	}
	l.MinUs = h.Min()
	l.MeanUs = math.Round(h.Mean()*10) / 10
	l.P50Us = h.ValueAtQuantile(50)
	l.P90Us = h.ValueAtQuantile(90)
	l.P99Us = h.ValueAtQuantile(99)
	l.P999Us = h.ValueAtQuantile(99.9)
	l.MaxUs = h.Max()
	return l
}

func intervalSummary(name string, h *hdrhistogram.Histogram) IntervalLatency {
	l := IntervalLatency{Name: name, Count: h.TotalCount()}
	if l.Count == 0 {
		return l
	}
	l.P50Us = h.ValueAtQuantile(50)
	l.P90Us = h.ValueAtQuantile(90)
	l.P99Us = h.ValueAtQuantile(99)
	l.MaxUs = h.Max()
	return l
}

// errClass is the kind of failure that ended an operation.
type errClass uint8

const (
	classTransport errClass = iota // no HTTP response: refused, timeout, reset, ...
	classHTTP                      // a status other than 200
	classACI                       // <response>ERROR</response>, by errorcode
	classProtocol                  // a 200 reply the harness cannot use
	classCheck                     // a reply that contradicts the scenario
	numClasses
)

var classNames = [numClasses]string{classTransport: "transport", classHTTP: "http", classACI: "aci", classProtocol: "protocol", classCheck: "check"}

// failure ends an operation.
type failure struct {
	class  errClass
	key    string // the map key within the class: "refused", "500", "ERRORQUEUEFULL", ...
	detail string // one example message, kept per key
}

func (f *failure) Error() string { return f.key + ": " + f.detail }

// transportFailure classifies a client error.
func transportFailure(err error) *failure {
	key := "other"
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		key = "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		key = "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		key = "reset"
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		key = "closed"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		key = "no-free-connections"
	}
	return &failure{class: classTransport, key: key, detail: err.Error()}
}

// errorTally counts failures by class and key.
type errorTally struct {
	mu      sync.Mutex
	counts  [numClasses]map[string]int64
	samples map[string]string
}

func newErrorTally() *errorTally {
	t := &errorTally{samples: map[string]string{}}
	for i := range t.counts {
		t.counts[i] = map[string]int64{}
	}
	return t
}

func (t *errorTally) add(f *failure) {
	t.mu.Lock()
	t.counts[f.class][f.key]++
	k := classNames[f.class] + "/" + f.key
	if _, ok := t.samples[k]; !ok {
		t.samples[k] = f.detail
	}
	t.mu.Unlock()
}

// Row names besides the request types.
const (
	rowOperation = "operation"
	rowCorrected = "operation-corrected"
	rowStop      = "stop-to-stopped"
	rowLag       = "schedule-lag" // fixed rate: actual minus intended start; not a latency row of the report
)

// rowKind is what a latency row measures.
type rowKind uint8

const (
	rowRequest  rowKind = iota // a request type (a step name)
	rowOp                      // "operation": successful operations from their actual start
	rowCorr                    // "operation-corrected": from their intended start (fixed rate)
	rowMeasured                // a workload's mark/measure interval ("stop-to-stopped")
	rowPerOp                   // "operation:NAME": one operation of a workload of several
	rowLagKind                 // "schedule-lag" (fixed rate), not a latency of the report
)

// row is one latency distribution of the run.
type row struct {
	name   string
	kind   rowKind
	h      *hist
	errors atomic.Int64 // failed requests (request rows)
}

// stats collects the measurements of one run. A measurement counts only
// when it completes inside the measurement window: from the start to the
// end of Duration or the interruption, or to the last operation when the
// Requests bound ends the run.
type stats struct {
	start    time.Time
	windowNs atomic.Int64 // end of the window, in ns after start

	requests atomic.Int64 // completed (any outcome) inside the window

	rows  []*row // every row, in report order
	req   []*row // the request rows, by index
	op    *row   // operation latency from its actual start
	corr  *row   // from its intended start (fixed rate)
	lag   *row   // actual minus intended start (fixed rate)
	meas  []*row // measured rows, by index
	perOp []*row // per operation (workloads of several operations), by index
	late  atomic.Int64
	all   *hist // every successful request of the interval, for the progress line

	opsOK, opsFailed, opsUnfinished atomic.Int64
	actions                         atomic.Int64 // operations that saw a terminal status (polling workloads)

	// Counts of the current interval, swapped out by rotate.
	curOK, curFailed, curRequests atomic.Int64
	curFailedBy                   [numClasses]atomic.Int64

	finalMu sync.Mutex
	final   map[string]int64

	errs *errorTally
}

// newStats makes the rows: one per request row name, operation, the
// corrected and lag rows at a fixed rate, one per measured row, and one
// per operation when there are several.
func newStats(req, meas, ops []string, rate bool) *stats {
	s := &stats{all: newHist(false), errs: newErrorTally(), final: map[string]int64{}}
	s.windowNs.Store(math.MaxInt64)
	add := func(name string, kind rowKind) *row {
		r := &row{name: name, kind: kind, h: newHist(true)}
		s.rows = append(s.rows, r)
		return r
	}
	for _, n := range req {
		s.req = append(s.req, add(n, rowRequest))
	}
	s.op = add(rowOperation, rowOp)
	if rate {
		s.corr = add(rowCorrected, rowCorr)
	}
	for _, n := range meas {
		s.meas = append(s.meas, add(n, rowMeasured))
	}
	if len(ops) > 1 {
		for _, n := range ops {
			s.perOp = append(s.perOp, add(rowOperation+":"+n, rowPerOp))
		}
	}
	if rate {
		s.lag = add(rowLag, rowLagKind)
	}
	return s
}

func (s *stats) inWindow(t time.Time) bool { return int64(t.Sub(s.start)) <= s.windowNs.Load() }

// closeWindow ends the window at d after the start, unless it already
// ends earlier.
func (s *stats) closeWindow(d time.Duration) {
	for {
		cur := s.windowNs.Load()
		if int64(d) >= cur || s.windowNs.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// request records one request that ended at end after taking d; ok is
// false for a failed one (it then counts in the kind's errors and not in
// its latency).
func (s *stats) request(i int, d time.Duration, end time.Time, ok bool) {
	if !s.inWindow(end) {
		return
	}
	s.requests.Add(1)
	s.curRequests.Add(1)
	var r *row
	if i >= 0 && i < len(s.req) {
		r = s.req[i]
	}
	if !ok {
		if r != nil {
			r.errors.Add(1)
		}
		return
	}
	if r != nil {
		r.h.record(d)
	}
	s.all.record(d)
}

// outcome is what an operation reports besides its failure.
type outcome struct {
	op      int    // the operation's index in the workload
	final   status // terminal status read by a polling step
	aborted bool   // cut short by the end of the run
	meas    [4]measured
	nmeas   int
}

// measured is one mark/measure interval of an operation.
type measured struct {
	row int
	d   time.Duration
}

// operation records one operation.
func (s *stats) operation(intended, started, ended time.Time, f *failure, o *outcome) {
	if o.aborted || !s.inWindow(ended) {
		s.opsUnfinished.Add(1)
		return
	}
	if s.lag != nil {
		lag := started.Sub(intended)
		s.lag.h.record(lag)
		if lag > LateThreshold {
			s.late.Add(1)
		}
	}
	if o.final != statusNone {
		s.actions.Add(1)
		name := o.final.String()
		s.finalMu.Lock()
		s.final[name]++
		s.finalMu.Unlock()
	}
	if f != nil {
		s.opsFailed.Add(1)
		s.curFailed.Add(1)
		s.curFailedBy[f.class].Add(1)
		s.errs.add(f)
		return
	}
	s.opsOK.Add(1)
	s.curOK.Add(1)
	s.op.h.record(ended.Sub(started))
	if s.corr != nil {
		s.corr.h.record(ended.Sub(intended))
	}
	if s.perOp != nil {
		s.perOp[o.op].h.record(ended.Sub(started))
	}
	for _, m := range o.meas[:o.nmeas] {
		s.meas[m.row].h.record(m.d)
	}
}

// intervalData is one interval of the timeline, as measured.
type intervalData struct {
	startNs, lengthNs    int64
	ok, failed, requests int64
	failedBy             [numClasses]int64
	rows                 []IntervalLatency // one per stats row, in order
	enc                  [][]byte          // the rows' HDR encodings, when kept (nil when empty)
	cpu                  time.Duration     // CPU time the generator used
	machine              cpuTicks          // the machine's CPU ticks (zero when unknown)
}

// rotate ends the current interval, which began startNs after the start,
// and returns it; encode keeps the rows' HDR encodings. One goroutine at a
// time rotates.
func (s *stats) rotate(startNs int64, encode bool) intervalData {
	d := intervalData{startNs: startNs,
		ok: s.curOK.Swap(0), failed: s.curFailed.Swap(0), requests: s.curRequests.Swap(0)}
	for c := range d.failedBy {
		d.failedBy[c] = s.curFailedBy[c].Swap(0)
	}
	d.rows = make([]IntervalLatency, len(s.rows))
	if encode {
		d.enc = make([][]byte, len(s.rows))
	}
	for i, r := range s.rows {
		var enc []byte
		d.rows[i], enc = r.h.rotate(r.name, encode)
		if encode {
			d.enc[i] = enc
		}
	}
	return d
}
