package loadgen

import (
	"fmt"
	"io"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// writeHDRLog writes the run's interval histograms in HdrHistogram's
// interval log format (version 1.3): a header with the start time, then
// one line per latency row and interval, tagged with the row's name,
// each stamped with its start and length in seconds after the start. The
// values are microseconds; the max column of a line is in seconds (the
// format's default ratio of a million, meant for nanoseconds, divides
// microseconds into seconds).
func (m *measurements) writeHDRLog(w io.Writer, rep *Report) error {
	lw := hdrhistogram.NewHistogramLogWriter(w)
	startMs := m.start.UnixMilli()
	fail := func(err error) error { return fmt.Errorf("loadgen: write hdr log: %w", err) }
	if err := lw.OutputComment(fmt.Sprintf("[connector bench %s (%s): scenario %s against %s; values in microseconds, one tag per latency row]",
		rep.Environment.HarnessVersion, rep.Environment.HarnessRevision, rep.Config.Scenario, rep.Target.URL)); err != nil {
		return fail(err)
	}
	if err := lw.OutputLogFormatVersion(); err != nil {
		return fail(err)
	}
	if err := lw.OutputStartTime(startMs); err != nil {
		return fail(err)
	}
	lw.SetBaseTime(startMs)
	if err := lw.OutputBaseTime(startMs); err != nil {
		return fail(err)
	}
	if err := lw.OutputLegend(); err != nil {
		return fail(err)
	}
	for _, iv := range m.intervals {
		for i, enc := range iv.enc {
			if enc == nil {
				continue
			}
			h, err := hdrhistogram.Decode(enc)
			if err != nil {
				return fail(err)
			}
			h.SetTag(m.rows[i].name)
			h.SetStartTimeMs(startMs + iv.startNs/int64(time.Millisecond))
			h.SetEndTimeMs(startMs + (iv.startNs+iv.lengthNs)/int64(time.Millisecond))
			if err := lw.OutputIntervalHistogram(h); err != nil {
				return fail(err)
			}
		}
	}
	return nil
}
