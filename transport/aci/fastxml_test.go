package aci

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// randomStatus builds a status exercising every branch of ActionNode.
func randomStatus(r *rand.Rand) *messages.ActionStatus {
	if r.IntN(20) == 0 {
		return nil
	}
	texts := []string{"", "MYTASK", "a<b&c>\"d'", "ünïcödé", "\x01ctl\x7f", "line\nbreak"}
	pick := func() string { return texts[r.IntN(len(texts))] }
	base := int64(1_767_000_000_000) + r.Int64N(1_000_000_000)
	s := &messages.ActionStatus{
		Token:        pick(),
		State:        messages.State(r.IntN(9)),
		Priority:     int32(r.IntN(21) - 10),
		QueuedUnixMs: base,
		FetchAction:  []string{"", "SYNCHRONIZE", "COLLECT", "synchronize", "BOOM", "DELETE"}[r.IntN(6)],
		Error:        pick(),
		Restarts:     uint32(r.IntN(3)),
	}
	if r.IntN(2) == 0 {
		s.StartedUnixMs = base + r.Int64N(5_000_000) - 1_000_000 // sometimes before queued: clamped
	}
	if r.IntN(2) == 0 {
		s.EndedUnixMs = base + r.Int64N(9_000_000)
	}
	for i := r.IntN(3); i > 0; i-- {
		if r.IntN(6) == 0 {
			s.Counts = append(s.Counts, nil)
			continue
		}
		s.Counts = append(s.Counts, &messages.DocumentCount{Task: pick(), Seen: uint64(r.IntN(3)), Added: uint64(r.IntN(2)),
			Collected: uint64(r.IntN(2)), Errors: uint64(r.IntN(2)), Holds: uint64(r.IntN(2)), Ingestfailed: uint64(r.IntN(2)), Stubbed: uint64(r.IntN(2))})
	}
	if r.IntN(3) == 0 {
		s.Results = []*messages.Element{{Name: "tasks", Children: []*messages.Element{{Name: "success", Text: pick(), List: true},
			{Name: "failed", Attrs: []*messages.Param{{Name: "message", Value: pick()}}, Text: pick(), List: true}}}, nil}
	}
	if r.IntN(3) == 0 {
		for i := r.IntN(3); i > 0; i-- {
			s.Results = append(s.Results, randomElement(r, 3))
		}
	}
	if r.IntN(3) == 0 {
		for i := r.IntN(3); i > 0; i-- {
			s.Failures = append(s.Failures, &messages.Failure{Task: pick(), Url: pick(), Reason: pick(), Count: uint64(r.IntN(3))})
		}
		s.FailuresTotal = uint64(len(s.Failures) + r.IntN(2))
	}
	return s
}

// randomElement builds a result element of up to depth levels: names
// valid and not, text or none, nil children, attributes or none.
func randomElement(r *rand.Rand, depth int) *messages.Element {
	if r.IntN(8) == 0 {
		return nil
	}
	names := []string{"tasks", "success", "", "1bad", "a b", "xmlns", "ünï", "autn:x"}
	texts := []string{"", "", "id1", "a<b&c>", "\x01"}
	e := &messages.Element{Name: names[r.IntN(len(names))], Text: texts[r.IntN(len(texts))], List: r.IntN(2) == 0}
	if r.IntN(4) == 0 {
		for i := r.IntN(3); i >= 0; i-- {
			e.Attrs = append(e.Attrs, &messages.Param{Name: names[r.IntN(len(names))], Value: texts[r.IntN(len(texts))]})
		}
		if r.IntN(3) == 0 {
			e.Attrs = append(e.Attrs, nil)
		}
	}
	for i := r.IntN(4); depth > 0 && i > 0; i-- {
		e.Children = append(e.Children, randomElement(r, depth-1))
	}
	return e
}

func TestAppendActionsXMLMatchesTheTree(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for _, loc := range []*time.Location{time.UTC, time.FixedZone("X", 3*3600+1800)} {
		for i := 0; i < 3000; i++ {
			now := time.UnixMilli(1_767_000_000_000 + r.Int64N(2_000_000_000)).In(loc)
			var ss []*messages.ActionStatus
			for k := r.IntN(3); k > 0; k-- {
				ss = append(ss, randomStatus(r))
			}
			nodes := make([]Node, len(ss))
			for k, s := range ss {
				nodes[k] = ActionNode(s, now)
			}
			want, _ := Encode(nil, FormatXML, &Reply{Action: "QUEUEINFO", Data: []Node{Container("actions", nodes...)}})
			got := AppendActionsXML(nil, "QUEUEINFO", ss, now)
			require.Equal(t, string(want), string(got))
		}
	}
}

func BenchmarkAppendActionsXML(b *testing.B) {
	s := []*messages.ActionStatus{{Token: "MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MDE5YmMxZDItZTAwMi03MDAwLTgwMDAtMDAwMDAwMDAwMDAy", State: messages.State_STATE_PROCESSING,
		QueuedUnixMs: 1_767_000_000_000, StartedUnixMs: 1_767_000_001_000, FetchAction: "SYNCHRONIZE",
		Counts: []*messages.DocumentCount{{Task: "MYTASK", Seen: 10, Added: 5}}}}
	now := time.Unix(1_767_000_100, 0)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendActionsXML(buf[:0], "QUEUEINFO", s, now)
	}
}

// TestAppendQueueTime holds the queue time writer to time's own formatting
// of QueueTimeLayout, in zones with and without daylight saving, across
// their changes, and outside four-digit years.
func TestAppendQueueTime(t *testing.T) {
	t.Parallel()
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("X", 3*3600+1800), time.FixedZone("Y", -9*3600-45*60-17)}
	for _, name := range []string{"Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"} {
		if loc, err := time.LoadLocation(name); err == nil {
			zones = append(zones, loc)
		}
	}
	r := rand.New(rand.NewPCG(7, 8))
	secs := []int64{0, -1, 1, 253402300799, 253402300800, -62135596800, -62135596801, 1_711_846_799, 1_711_846_800, 1_729_990_800}
	for range 20000 {
		secs = append(secs, r.Int64N(4_000_000_000)-1_000_000_000)
	}
	for _, loc := range zones {
		for _, sec := range secs {
			want := time.Unix(sec, 0).In(loc).Format(QueueTimeLayout)
			require.Equal(t, want, string(appendQueueTime([]byte("x"), sec, loc))[1:], "%d in %s", sec, loc)
		}
	}
}
