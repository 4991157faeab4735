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
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return time.Time{}, false
	}
	var hms [3]int
	limits := [3]int{23, 59, 59}
	for i, p := range parts {
		if len(p) != 2 {
			return time.Time{}, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > limits[i] {
			return time.Time{}, false
		}
		hms[i] = n
	}
	y, mo, d := now.Date()
	t := time.Date(y, mo, d, hms[0], hms[1], hms[2], 0, now.Location())
	if t.Before(now) {
		t = time.Date(y, mo, d+1, hms[0], hms[1], hms[2], 0, now.Location())
	}
	return t, true
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
