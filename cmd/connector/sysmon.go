package main

import (
	"os"
	"strings"
	"syscall"
)

// The Go runtime's sysmon thread, and why the server sets
// GODEBUG=schedtrace for itself.
//
// sysmon wakes up every 20 µs while any of the process's Ps is busy, and
// doubles that sleep only after 50 wake-ups in a row that found nothing
// to do, up to 10 ms. Once every P is idle it sleeps until something
// happens ("deep sleep"), and the first system call after that (any
// network read or write: every request, every reply from PostgreSQL)
// wakes it with its sleep reset to 20 µs. A server whose load comes in
// short bursts with idle gaps between them (a cluster node between its
// group commits and requests) so pays sysmon 20-µs wake-ups all through
// every burst: on this project's 2-core virtual machine, where a
// nanosleep wake-up costs ≈ 20 µs of CPU, sysmon was ≈ 1,400 wake-ups and
// ≈ 30 ms of CPU per second per node at N = 3 (a quarter of a node's CPU)
// and the biggest single item of a node's profile after the group
// commits (issue 17, bench/RESULTS.md).
//
// With schedtrace set, sysmon never enters deep sleep (it must be awake
// to print the trace), so it keeps its backed-off sleep (up to 10 ms)
// across idle gaps, and it still goes back to 20 µs after it has had to
// retake a P from a blocked system call. The trace is printed once the
// monotonic clock (time since boot) passes the interval, then once per
// interval: with the largest interval (2³¹−1 ms, 24.8 days) at most one line
// ("SCHED ...", on standard error, at start on a host up for longer than
// that, then every 24.8 days). An idle process pays ≈ 100 sysmon
// wake-ups a second instead of none. A crash (fatal error) also prints
// the scheduler's state.
//
// The runtime reads schedtrace only at start, so the server executes
// itself again with it (same process id, arguments and environment), once;
// GODEBUG naming schedtrace already (schedtrace=0 keeps Go's behaviour)
// leaves everything as it is.

// sysmonSetting is the GODEBUG setting the server runs with.
const sysmonSetting = "schedtrace=2147483647"

// sysmonEnv returns env with sysmonSetting added to GODEBUG, and false
// when GODEBUG already names schedtrace (nothing to do).
func sysmonEnv(env []string) ([]string, bool) {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		for _, f := range strings.Split(v, ",") {
			if strings.HasPrefix(strings.TrimSpace(f), "schedtrace=") {
				return env, false
			}
		}
		if found {
			continue // a later duplicate: the runtime reads the first
		}
		found = true
		if v == "" {
			out = append(out, "GODEBUG="+sysmonSetting)
		} else {
			out = append(out, "GODEBUG="+v+","+sysmonSetting)
		}
	}
	if !found {
		out = append(out, "GODEBUG="+sysmonSetting)
	}
	return out, true
}

// keepSysmonAwake executes the server again with sysmonSetting, unless
// GODEBUG names schedtrace already; it returns only if that is not
// needed or not possible (the server then runs with Go's default).
func keepSysmonAwake() {
	env, ok := sysmonEnv(os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, env) // returns only on failure
}
