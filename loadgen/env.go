package loadgen

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/internal/version"
)

// environment describes the machine and the build that ran the load, so
// that two runs can be judged comparable or not.
func environment() Environment {
	e := Environment{
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), HarnessVersion: version.Version(), HarnessRevision: version.Revision(),
	}
	e.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				e.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	e.LoadAverageStart = loadAverage()
	return e
}

// loadAverage returns the 1, 5 and 15 minute load averages, or nil where
// the system does not say them (/proc/loadavg is Linux's).
func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil
		}
		out[i] = v
	}
	return out
}

// cpuTicks are the machine's CPU time counters (/proc/stat, in clock
// ticks, all CPUs): busy is every state but idle and iowait.
type cpuTicks struct{ busy, total uint64 }

func (a cpuTicks) sub(b cpuTicks) cpuTicks { return cpuTicks{a.busy - b.busy, a.total - b.total} }
func (a cpuTicks) add(b cpuTicks) cpuTicks { return cpuTicks{a.busy + b.busy, a.total + b.total} }

// share is the busy fraction, or -1 when nothing was counted.
func (a cpuTicks) share() float64 {
	if a.total == 0 {
		return -1
	}
	return float64(a.busy) / float64(a.total)
}

// machineTicks reads the machine's CPU counters; false where the system
// does not offer them.
func machineTicks() (cpuTicks, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}, false
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTicks{}, false
	}
	var t cpuTicks
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTicks{}, false
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t, true
}

// cpuSampler measures the generator's CPU time and the machine's CPU
// use between two samples.
type cpuSampler struct {
	proc      time.Duration
	machine   cpuTicks
	machineOK bool
}

func newCPUSampler() *cpuSampler {
	c := &cpuSampler{proc: processCPU()}
	c.machine, c.machineOK = machineTicks()
	return c
}

// sample returns the CPU time the process used and the machine's ticks
// since the last sample.
func (c *cpuSampler) sample() (time.Duration, cpuTicks) {
	p := processCPU()
	dp := p - c.proc
	c.proc = p
	var dm cpuTicks
	if c.machineOK {
		if m, ok := machineTicks(); ok {
			dm = m.sub(c.machine)
			c.machine = m
		}
	}
	return dp, dm
}
