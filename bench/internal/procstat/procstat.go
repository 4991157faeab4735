// Package procstat reads a process's memory and CPU time from /proc, and
// the Go heap of the current process, for the benchmark programs.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// RSS returns the resident set size of pid (0: this process) in bytes,
// from VmRSS in /proc/<pid>/status.
func RSS(pid int) (int64, error) {
	return statusField(pid, "VmRSS:")
}

// HWM returns the peak resident set size (VmHWM) of pid in bytes.
func HWM(pid int) (int64, error) {
	return statusField(pid, "VmHWM:")
}

func statusField(pid int, field string) (int64, error) {
	path := "/proc/self/status"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(field)) {
			continue
		}
		fs := strings.Fields(string(line[len(field):]))
		if len(fs) < 1 {
			break
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procstat: %s %s: %w", path, field, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("procstat: %s: %w", path, err)
	}
	return 0, fmt.Errorf("procstat: %s: no %s line", path, field)
}

// CPU returns the user+system CPU time pid (0: this process) has used,
// from /proc/<pid>/stat.
func CPU(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("procstat: %s: malformed", path)
	}
	fs := strings.Fields(string(b[i+1:]))
	// fs[0] is field 3 (state); utime is field 14, stime field 15.
	if len(fs) < 13 {
		return 0, fmt.Errorf("procstat: %s: too few fields", path)
	}
	ut, err1 := strconv.ParseInt(fs[11], 10, 64)
	st, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procstat: %s: bad utime/stime", path)
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// SystemCPU returns the CPU time the whole machine has spent not idle,
// from /proc/stat, so that callers can compute how busy the machine was.
func SystemCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("procstat: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fs := strings.Fields(string(line))
	if len(fs) < 5 || fs[0] != "cpu" {
		return 0, 0, fmt.Errorf("procstat: /proc/stat: unexpected first line")
	}
	var sum, idle int64
	for i, f := range fs[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("procstat: /proc/stat: %w", err)
		}
		sum += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	const clkTck = 100
	return time.Duration(sum-idle) * time.Second / clkTck, time.Duration(sum) * time.Second / clkTck, nil
}

// HeapInUse runs two garbage collections, returns freed memory to the OS
// and reports the Go heap in use (bytes in in-use spans) and the bytes
// of live objects.
func HeapInUse() (inuse, alloc uint64) {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.HeapAlloc
}

// CtxSwitches returns the voluntary and involuntary context switches of
// pid's threads (the sum of voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches in /proc/<pid>/task/*/status; /proc/<pid>/status
// counts only the main thread). A thread that has exited is no longer
// counted (the Go runtime keeps its threads).
func CtxSwitches(pid int) (voluntary, involuntary int64, err error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("procstat: %w", err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/status")
		if err != nil {
			continue // the thread exited meanwhile
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			switch k {
			case "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches":
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("procstat: %s/%s/status: %s: %w", dir, e.Name(), k, err)
				}
				if k[0] == 'v' {
					voluntary += n
				} else {
					involuntary += n
				}
			}
		}
	}
	return voluntary, involuntary, nil
}

// Children returns the pids whose parent is pid (from /proc/*/stat;
// zombies included).
func Children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[1] == strconv.Itoa(pid) {
			out = append(out, c)
		}
	}
	return out
}
