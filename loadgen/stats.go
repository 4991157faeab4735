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

// hist is a histogram safe for concurrent use. Recording takes one
// uncontended-in-practice mutex: requests cost tens of microseconds, a
// record tens of nanoseconds.
type hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newHist() *hist { return &hist{h: hdrhistogram.New(histMinUs, histMaxUs, histDigits)} }

func toUs(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	return min(max(us, histMinUs), histMaxUs)
}

func (h *hist) record(d time.Duration) {
	h.mu.Lock()
	_ = h.h.RecordValue(toUs(d)) // in range by toUs: cannot fail
	h.mu.Unlock()
}

// summary returns the latency summary of h under name.
func (h *hist) summary(name string) Latency {
	h.mu.Lock()
	defer h.mu.Unlock()
	return summarize(name, h.h)
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

// p99AndReset returns the count and p99 of what h holds and empties it
// (the progress line's last second).
func (h *hist) p99AndReset() (int64, int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, p := h.h.TotalCount(), h.h.ValueAtQuantile(99)
	h.h.Reset()
	return n, p
}

// kind is a request type of the load.
type kind uint8

const (
	kindFetch kind = iota
	kindGetStatus
	kindList
	kindCancel
	kindStop
	kindVersion
	numKinds
)

var kindNames = [numKinds]string{
	kindFetch:     "fetch",
	kindGetStatus: "getstatus",
	kindList:      "getstatus-list",
	kindCancel:    "cancel",
	kindStop:      "stop",
	kindVersion:   "getversion",
}

// errClass is the kind of failure that ended an operation.
type errClass uint8

const (
	classTransport errClass = iota // no HTTP response: refused, timeout, reset, ...
	classHTTP                      // a status other than 200
	classACI                       // <response>ERROR</response>, by errorcode
	classProtocol                  // a 200 reply the harness cannot use
	classCheck                     // a reply that contradicts the scenario
)

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
	counts  [classCheck + 1]map[string]int64
	samples map[string]string
}

func newErrorTally() *errorTally {
	t := &errorTally{samples: map[string]string{}}
	for i := range t.counts {
		t.counts[i] = map[string]int64{}
	}
	return t
}

var classNames = [...]string{classTransport: "transport", classHTTP: "http", classACI: "aci", classProtocol: "protocol", classCheck: "check"}

func (t *errorTally) add(f *failure) {
	t.mu.Lock()
	t.counts[f.class][f.key]++
	k := classNames[f.class] + "/" + f.key
	if _, ok := t.samples[k]; !ok {
		t.samples[k] = f.detail
	}
	t.mu.Unlock()
}

// stats collects the measurements of one run. A measurement counts only
// when it completes inside the measurement window: from the start to the
// end of Duration or the interruption, or to the last operation when the
// Requests bound ends the run.
type stats struct {
	start    time.Time
	windowNs atomic.Int64 // end of the window, in ns after start

	requests atomic.Int64 // completed (any outcome) inside the window

	req       [numKinds]*hist
	reqErrors [numKinds]atomic.Int64
	used      [numKinds]bool // kinds the scenario sends, for the report

	op        *hist // operation latency from its actual start
	corrected *hist // from its intended start (fixed rate)
	lag       *hist // actual minus intended start (fixed rate)
	late      atomic.Int64
	derived   *hist // stop-to-stopped (stop scenario only)
	interval  *hist // every request since the last progress line

	opsOK, opsFailed, opsUnfinished atomic.Int64
	actions                         atomic.Int64 // operations that saw a terminal status (mixed, stop)

	finalMu sync.Mutex
	final   map[string]int64

	errs *errorTally
}

func newStats(kinds []kind, rate, derived bool) *stats {
	s := &stats{op: newHist(), interval: newHist(), errs: newErrorTally(), final: map[string]int64{}}
	if derived {
		s.derived = newHist()
	}
	s.windowNs.Store(math.MaxInt64)
	for _, k := range kinds {
		s.req[k] = newHist()
		s.used[k] = true
	}
	if rate {
		s.corrected, s.lag = newHist(), newHist()
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
func (s *stats) request(k kind, d time.Duration, end time.Time, ok bool) {
	if !s.inWindow(end) {
		return
	}
	s.requests.Add(1)
	if !ok {
		s.reqErrors[k].Add(1)
		return
	}
	if h := s.req[k]; h != nil {
		h.record(d)
	}
	s.interval.record(d)
}

// outcome is what an operation reports besides its failure.
type outcome struct {
	final      status        // terminal status seen (mixed, stop)
	derived    time.Duration // stop-to-stopped (stop), when hasDerived
	hasDerived bool
	aborted    bool // cut short by the end of the run
}

// operation records one operation.
func (s *stats) operation(intended, started, ended time.Time, f *failure, o *outcome) {
	if o.aborted || !s.inWindow(ended) {
		s.opsUnfinished.Add(1)
		return
	}
	if s.lag != nil {
		lag := started.Sub(intended)
		s.lag.record(lag)
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
		s.errs.add(f)
		return
	}
	s.opsOK.Add(1)
	s.op.record(ended.Sub(started))
	if s.corrected != nil {
		s.corrected.record(ended.Sub(intended))
	}
	if o.hasDerived && s.derived != nil {
		s.derived.record(o.derived)
	}
}
