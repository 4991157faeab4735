// Package latency records durations into an HDR histogram (1 µs to 1 h,
// three significant digits) from many goroutines, and adds its summary to
// a result.Output.
package latency

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/connectorhq/connector/bench/internal/result"
)

// Hist is a latency histogram safe for concurrent use.
type Hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// New returns an empty histogram.
func New() *Hist {
	return &Hist{h: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)}
}

// Record adds one duration (clamped to the histogram's range).
func (h *Hist) Record(d time.Duration) {
	us := min(max(int64(d/time.Microsecond), 1), int64(time.Hour/time.Microsecond))
	h.mu.Lock()
	_ = h.h.RecordValue(us) // in range: cannot fail
	h.mu.Unlock()
}

// Count returns the number of recorded durations.
func (h *Hist) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// Quantile returns the q-th percentile (0–100) in microseconds.
func (h *Hist) Quantile(q float64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.ValueAtQuantile(q)
}

// AddTo adds name_p50_us, name_p99_us and name_max_us (and name_n) to out.
func (h *Hist) AddTo(out *result.Output, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return
	}
	out.Add(name+"_p50_us", float64(h.h.ValueAtQuantile(50)), "µs")
	out.Add(name+"_p99_us", float64(h.h.ValueAtQuantile(99)), "µs")
	out.Add(name+"_max_us", float64(h.h.Max()), "µs")
	out.Add(name+"_n", float64(h.h.TotalCount()), "")
}
