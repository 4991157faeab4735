package server

import (
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on a machine without a zone database

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/store"
)

// A schedule that repeats every whole number of days keeps its time of
// day (local time) across a change of daylight saving time. On main the
// repeat was a fixed number of seconds: the nightly 02:00 crawl of the
// documented example ran at 03:00 all summer (or, restarted in summer, at
// 01:00 all winter), its hour depending on the season of the last start.
// A repeat of hours or minutes stays a fixed number of seconds: an hourly
// run neither runs twice nor skips an hour when the clocks change.
func TestNextScheduleKeepsTheTimeOfDayAcrossDST(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	at := func(y int, mo time.Month, d, h, m int) time.Time { return time.Date(y, mo, d, h, m, 0, 0, berlin) }
	day, h := 24*time.Hour, time.Hour
	// Clocks go forward on 28 March 2027 (02:00 CET is 03:00 CEST), back
	// on 31 October 2027 (03:00 CEST is 02:00 CET).
	for _, tc := range []struct {
		desc string
		sc   fetch.Schedule
		now  time.Time
		done int
		want time.Time
	}{
		{"daily, across spring forward", fetch.Schedule{Start: at(2027, 3, 27, 1, 30), Every: day}, at(2027, 3, 28, 12, 0), 2, at(2027, 3, 29, 1, 30)},
		{"daily, fired on time after spring forward", fetch.Schedule{Start: at(2027, 3, 27, 1, 30), Every: day}, at(2027, 3, 29, 1, 30), 3, at(2027, 3, 30, 1, 30)},
		{"daily, across fall back", fetch.Schedule{Start: at(2027, 10, 30, 1, 0), Every: day}, at(2027, 10, 31, 12, 0), 2, at(2027, 11, 1, 1, 0)},
		{"daily, fired on time after fall back", fetch.Schedule{Start: at(2027, 10, 30, 1, 0), Every: day}, at(2027, 11, 1, 1, 0), 3, at(2027, 11, 2, 1, 0)},
		{"daily, started in summer, in winter", fetch.Schedule{Start: at(2027, 7, 1, 2, 0), Every: day}, at(2027, 12, 24, 3, 0), 1, at(2027, 12, 25, 2, 0)},
		{"weekly, across spring forward", fetch.Schedule{Start: at(2027, 3, 22, 1, 30), Every: 7 * day}, at(2027, 3, 23, 0, 0), 1, at(2027, 3, 29, 1, 30)},
		{"no start, daily", fetch.Schedule{Every: day}, at(2027, 3, 27, 12, 0), 1, at(2027, 3, 28, 12, 0)},
		{"hourly, across fall back: an hour later", fetch.Schedule{Start: at(2027, 10, 31, 0, 0), Every: h},
			time.Date(2027, 10, 31, 0, 30, 0, 0, time.UTC), 1, time.Date(2027, 10, 31, 1, 0, 0, 0, time.UTC)}, // 02:30 CEST, then 02:00 CET
		{"every 25 hours: fixed seconds", fetch.Schedule{Start: at(2027, 3, 27, 1, 0), Every: 25 * h}, at(2027, 3, 27, 2, 0), 1, at(2027, 3, 28, 3, 0)},
	} {
		got := next(tc.sc, tc.now, tc.done)
		require.True(t, tc.want.Equal(got), "%s: want %s, got %s", tc.desc, tc.want, got)
	}
}

// A start so far in the past that the time since does not fit a
// time.Duration (before about 1734: "0202-12-07 02:00", a typo for 2026)
// repeating every so many seconds runs next at its first time still
// ahead, on its step. On main the count of steps overflowed and next
// returned a time in the past (in the year 707 for a start in 1000): the
// timer fired at once, again and again, submitting or skipping runs and
// logging at full speed, ScheduleCycles used up in a moment.
func TestNextScheduleFromAFarPastStart(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 20, 19, 14, 35, time.UTC)
	for _, tc := range []struct {
		start string
		every time.Duration
		want  time.Time
	}{
		{"1000-01-01T00:00:00Z", time.Hour, time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)},
		{"1000-01-01T00:00:00Z", time.Second, time.Date(2026, 12, 7, 20, 19, 15, 0, time.UTC)},
		{"0202-12-07T02:00:00Z", 15 * time.Minute, time.Date(2026, 12, 7, 20, 30, 0, 0, time.UTC)},
		{"1700-01-01T00:00:30Z", time.Minute, time.Date(2026, 12, 7, 20, 19, 30, 0, time.UTC)},
		{"1000-01-01T00:00:00Z", 24 * time.Hour, time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)},
	} {
		start, err := time.Parse(time.RFC3339, tc.start)
		require.NoError(t, err)
		got := next(fetch.Schedule{Start: start, Every: tc.every}, now, 1)
		require.True(t, tc.want.Equal(got), "%s every %s: want %s, got %s", tc.start, tc.every, tc.want, got)
	}
}

// A daily schedule whose start is a local date and time that the clocks
// skip that day (ScheduleStartTime=2027-03-28 02:30 in Berlin, where they
// go from 02:00 to 03:00) runs that day once they have passed it, and at
// 02:30 on the days after, as a start written as a time of day does. On
// main it ran at 03:30 every day after: the moved start was stepped in
// calendar days, and a restart kept it so.
func TestScheduleDateSkippedBySpringForward(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	at := func(d, h, m int) time.Time { return time.Date(2027, 3, d, h, m, 0, 0, berlin) }
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer st.Close()
	for _, start := range []string{"2027-03-28 02:30", "2027-03-28T02:30"} {
		cfg, err := config.Parse("s.cfg", []byte("[FetchTasks]\n0=A\n[A]\nUrl=http://127.0.0.1:1/\nScheduleRepeatSecs=86400\nScheduleStartTime="+start+"\n"), httpfetch.TaskKeys)
		require.NoError(t, err)
		for _, now := range []time.Time{at(20, 12, 0), at(28, 12, 0)} { // before the day; restarted after the run
			r, err := httpfetch.New(httpfetch.Options{Config: cfg, Store: st, Now: func() time.Time { return now }})
			require.NoError(t, err)
			require.Len(t, r.Schedules(), 1)
			sc := r.Schedules()[0]
			runs := []time.Time{at(28, 3, 30), at(29, 2, 30), at(30, 2, 30)}
			done := 0
			if now.After(runs[0]) {
				runs, done = runs[1:], 1
			}
			for _, want := range runs {
				got := next(sc, now, done)
				require.True(t, want.Equal(got), "%s at %s, after %d runs: want %s, got %s", start, now, done, want, got)
				now, done = got, done+1
			}
		}
	}
}
