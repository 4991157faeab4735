package httpfetch

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/fetch"
)

// Layouts accepted by ScheduleStartTime besides "now" and a time of day.
var startLayouts = []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"}

// parseStartTime reads ScheduleStartTime: "now"; a local time of day
// "HH:MM" or "HH:MM:SS" (its next occurrence at or after now); a local
// date and time "YYYY-MM-DD HH:MM[:SS]"; or RFC 3339 with a zone.
func parseStartTime(v string, now time.Time) (time.Time, error) {
	s := strings.TrimSpace(v)
	if strings.EqualFold(s, "now") {
		return now, nil
	}
	if t, ok := timeOfDay(s, now); ok {
		return t, nil
	}
	for _, layout := range startLayouts {
		var t time.Time
		var err error
		if layout == time.RFC3339 {
			t, err = time.Parse(layout, s)
		} else {
			t, err = time.ParseInLocation(layout, s, now.Location())
		}
		if err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New(`must be "now", a time of day "HH:MM[:SS]", a date and time "YYYY-MM-DD HH:MM[:SS]" (server local time) or RFC 3339`)
}

// timeOfDay reads "HH:MM" or "HH:MM:SS" and returns its next occurrence
// at or after now, in now's location.
func timeOfDay(s string, now time.Time) (time.Time, bool) {
	hms, ok := clock(s)
	if !ok {
		return time.Time{}, false
	}
	y, mo, d := now.Date()
	t := time.Date(y, mo, d, hms[0], hms[1], hms[2], 0, now.Location())
	if t.Before(now) {
		t = time.Date(y, mo, d+1, hms[0], hms[1], hms[2], 0, now.Location())
	}
	return t, true
}

// clock reads a time of day, "HH:MM" or "HH:MM:SS": its hour, minute
// and second.
func clock(s string) (hms [3]int, ok bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return hms, false
	}
	limits := [3]int{23, 59, 59}
	for i, p := range parts {
		if len(p) != 2 {
			return hms, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > limits[i] {
			return hms, false
		}
		hms[i] = n
	}
	return hms, true
}

// schedule turns a task's validated schedule keys into a fetch.Schedule,
// or false when the task is not scheduled: it sets none of the keys, or
// ScheduleCycles=0. ScheduleStartTime=now (the default) gives a zero Start
// (at once); a time of day is its next occurrence after now.
func (s *settings) schedule(now time.Time) (fetch.Schedule, bool) {
	if !s.hasSchedule {
		return fetch.Schedule{}, false
	}
	sc := fetch.Schedule{Task: s.Task, Cycles: 1}
	if s.schedStart != "" && !strings.EqualFold(strings.TrimSpace(s.schedStart), "now") {
		sc.Start, _ = parseStartTime(s.schedStart, now) // validated
	}
	if s.schedRepeat != "" {
		secs, _ := strconv.Atoi(strings.TrimSpace(s.schedRepeat))
		sc.Every = time.Duration(secs) * time.Second
		sc.Cycles = 0 // unlimited
	}
	if day := 24 * time.Hour; !sc.Start.IsZero() && sc.Every > 0 && sc.Every%day == 0 {
		sc.Start = skippedStart(s.schedStart, sc.Start, int(sc.Every/day), now)
		sc.Moved = movedDate(s.schedStart, sc.Start)
	}
	if s.schedCycles != "" {
		n, _ := strconv.Atoi(strings.TrimSpace(s.schedCycles))
		switch {
		case n == 0:
			return fetch.Schedule{}, false
		case n < 0:
			sc.Cycles = 0
		default:
			sc.Cycles = n
		}
	}
	return sc, true
}

// movedDate returns how far start, read from v, a local date and time
// ("YYYY-MM-DD HH:MM[:SS]"), is past the time written: the clocks skip
// that time on its day (they go forward over it, and time.Date moved it
// past the gap). Zero for any other value (a time of day, RFC 3339 with
// its offset) or a time the clocks show.
func movedDate(v string, start time.Time) time.Duration {
	for _, layout := range startLayouts {
		if layout == time.RFC3339 {
			continue // an instant, with its offset: never in a gap
		}
		written, err := time.Parse(layout, strings.TrimSpace(v)) // its fields, as UTC
		if err != nil {
			continue
		}
		shown := time.Date(start.Year(), start.Month(), start.Day(), start.Hour(), start.Minute(), start.Second(), start.Nanosecond(), time.UTC)
		return max(0, shown.Sub(written))
	}
	return 0
}

// skippedStart returns the start of a schedule that repeats every days
// days: start, unless start is a local time of day ("HH:MM[:SS]") that
// the clocks skip on its day (they go forward over it, and time.Date
// moved it past the gap). Then it is that time of day days earlier,
// which is past: the scheduler steps in calendar days from the time of
// day of its start, so the run falls due once the clocks have passed the
// time that day, and at the time written on the days after (from the
// moved start, every day's run came that much later).
func skippedStart(v string, start time.Time, days int, now time.Time) time.Time {
	hms, ok := clock(strings.TrimSpace(v))
	if !ok || start.Hour() == hms[0] && start.Minute() == hms[1] && start.Second() == hms[2] {
		return start
	}
	y, mo, d := start.Date()
	if prev := time.Date(y, mo, d-days, hms[0], hms[1], hms[2], 0, start.Location()); prev.Before(now) {
		return prev
	}
	return start
}
