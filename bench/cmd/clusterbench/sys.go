package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/bench/internal/procstat"
)

// cgroupRoot is the cgroup v1 cpu controller. On this machine (checked
// 2026-12-04) it is mounted there and writable as root; systemd is not PID
// 1, so systemd-run --scope fails ("System has not been booted with
// systemd"), and the cgroup v2 hierarchy (/sys/fs/cgroup/unified) has no
// cpu controller (it is bound to v1).
const cgroupRoot = "/sys/fs/cgroup/cpu"

// cgroup is one cpu cgroup made for the benchmark and removed after it.
type cgroup struct {
	path string
}

// newCgroup makes a cgroup with a CFS quota of quota cores (0: no quota)
// and the given cpu.shares.
func newCgroup(name string, quota float64, shares int) (*cgroup, error) {
	p := filepath.Join(cgroupRoot, name)
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup %s: %w (needs root and the cgroup v1 cpu controller at %s)", name, err, cgroupRoot)
	}
	g := &cgroup{path: p}
	set := func(file, v string) error {
		if err := os.WriteFile(filepath.Join(p, file), []byte(v), 0o644); err != nil {
			return fmt.Errorf("cgroup %s: set %s=%s: %w", name, file, v, err)
		}
		return nil
	}
	if err := set("cpu.cfs_period_us", "100000"); err != nil {
		return nil, err
	}
	q := "-1"
	if quota > 0 {
		q = strconv.Itoa(int(quota * 100000))
	}
	if err := set("cpu.cfs_quota_us", q); err != nil {
		return nil, err
	}
	if shares > 0 {
		if err := set("cpu.shares", strconv.Itoa(shares)); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// add moves process pid (all its threads) into the group.
func (g *cgroup) add(pid int) error {
	if err := os.WriteFile(filepath.Join(g.path, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("cgroup: add %d to %s: %w", pid, g.path, err)
	}
	return nil
}

// throttled returns cpu.stat's nr_periods and nr_throttled.
func (g *cgroup) throttled() (periods, throttled int64) {
	b, _ := os.ReadFile(filepath.Join(g.path, "cpu.stat"))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "nr_periods":
			periods = v
		case "nr_throttled":
			throttled = v
		}
	}
	return
}

// remove moves whatever is left in the group back to the root and removes
// it.
func (g *cgroup) remove() {
	if g == nil {
		return
	}
	b, _ := os.ReadFile(filepath.Join(g.path, "cgroup.procs"))
	for _, l := range strings.Fields(string(b)) {
		_ = os.WriteFile(filepath.Join(cgroupRoot, "cgroup.procs"), []byte(l), 0o644)
	}
	for i := 0; i < 50; i++ {
		if err := os.Remove(g.path); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// treeCPU is the CPU time (user+system) of pid and its live children
// (PostgreSQL: the postmaster and its backends).
func treeCPU(pid int) time.Duration {
	var sum time.Duration
	for _, p := range append([]int{pid}, procstat.Children(pid)...) {
		if d, err := procstat.CPU(p); err == nil {
			sum += d
		}
	}
	return sum
}

// cpuOf sums the CPU time of pids.
func cpuOf(pids []int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		if d, err := procstat.CPU(p); err == nil {
			sum += d
		}
	}
	return sum
}

// ctxSwitchesOf sums the voluntary and involuntary context switches of
// pids' threads: each voluntary one is a thread that went to sleep (a Go
// runtime thread parking in futex, sysmon's nanosleep, epoll), so per
// action they count the wake-ups a node pays.
func ctxSwitchesOf(pids []int) (voluntary, involuntary int64) {
	for _, p := range pids {
		if v, iv, err := procstat.CtxSwitches(p); err == nil {
			voluntary, involuntary = voluntary+v, involuntary+iv
		}
	}
	return voluntary, involuntary
}

// loadavg is the 1-minute load average.
func loadavg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
