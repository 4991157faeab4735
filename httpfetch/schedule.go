package httpfetch

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Schedule says when the server's scheduler submits a Synchronize of one
// task (FetchAction=Synchronize&TaskSections=<Task>), so that scheduled
// runs show in QueueInfo like submitted ones.
//
// Run k (k = 0, 1, ...) is due at Start + k*Repeat, for k < Cycles
// (every k when Cycles is -1). A run that falls due while the previous
// one of the same task is still queued or running waits for it (the
// task's datastore admits one Synchronize at a time).
type Schedule struct {
	Task   string        // task section, upper case
	Start  time.Time     // first run
	Repeat time.Duration // between the starts of two runs; 0: run once
	Cycles int           // number of runs; -1: unlimited
}

// At returns when run k (0-based) is due, and false when the schedule has
// no such run.
func (s Schedule) At(k int) (time.Time, bool) {
	if k < 0 || (s.Cycles >= 0 && k >= s.Cycles) || (s.Repeat == 0 && k > 0) {
		return time.Time{}, false
	}
	return s.Start.Add(time.Duration(k) * s.Repeat), true
}

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

// schedule turns a task's validated schedule keys into a Schedule, or
// false when the task is not scheduled: it sets none of the keys, or
// ScheduleCycles=0.
func (s *settings) schedule(now time.Time) (Schedule, bool) {
	if !s.hasSchedule {
		return Schedule{}, false
	}
	sc := Schedule{Task: s.Task, Start: now, Cycles: 1}
	if s.schedStart != "" {
		sc.Start, _ = parseStartTime(s.schedStart, now) // validated
	}
	if s.schedRepeat != "" {
		secs, _ := strconv.Atoi(strings.TrimSpace(s.schedRepeat))
		sc.Repeat = time.Duration(secs) * time.Second
		sc.Cycles = -1
	}
	if s.schedCycles != "" {
		sc.Cycles, _ = strconv.Atoi(strings.TrimSpace(s.schedCycles))
	}
	if sc.Cycles == 0 {
		return Schedule{}, false
	}
	return sc, true
}
