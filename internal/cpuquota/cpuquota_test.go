package cpuquota

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeRoot writes files (path relative to the root → content) under a
// temporary root.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// The mountinfo of this project's test machine (cgroup v1 with the cpu
// controller alone, and an empty v2 hierarchy beside it).
const hybridMounts = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  float64
		ok    bool
	}{
		{"v1 group with a quota (as clusterbench makes them)", map[string]string{
			"proc/self/cgroup":                                "2:cpuacct:/\n1:cpu:/bench-node1\n0::/\n",
			"proc/self/mountinfo":                             hybridMounts,
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":              "-1\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us":             "100000\n",
			"sys/fs/cgroup/cpu/bench-node1/cpu.cfs_quota_us":  "5000\n",
			"sys/fs/cgroup/cpu/bench-node1/cpu.cfs_period_us": "100000\n",
			"sys/fs/cgroup/unified/cpu.max":                   "max 100000\n",
			"sys/fs/cgroup/unified/bench-node1/cpu.max":       "max 100000\n",
		}, 0.05, true},
		{"v1 root without a quota", map[string]string{
			"proc/self/cgroup":                    "1:cpu:/\n0::/\n",
			"proc/self/mountinfo":                 hybridMounts,
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "-1\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
		}, 0, false},
		{"v1 cpu,cpuacct: a parent's smaller quota limits", map[string]string{
			"proc/self/cgroup":                                "3:cpu,cpuacct:/a/b\n",
			"proc/self/mountinfo":                             "30 20 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
			"sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_quota_us":    "30000\n",
			"sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_period_us":   "100000\n",
			"sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_quota_us":  "150000\n",
			"sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_period_us": "100000\n",
		}, 0.3, true},
		{"v2 container: its cgroup is the mount's root", map[string]string{
			"proc/self/cgroup":      "0::/system.slice/app.service\n",
			"proc/self/mountinfo":   "25 20 0:22 /system.slice/app.service /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"sys/fs/cgroup/cpu.max": "50000 100000\n",
		}, 0.5, true},
		{"v2 nested, with a space in the mount point", map[string]string{
			"proc/self/cgroup":         "0::/svc/worker\n",
			"proc/self/mountinfo":      `25 20 0:22 / /cg\040v2 rw - cgroup2 cgroup2 rw` + "\n",
			"cg v2/svc/cpu.max":        "250000 100000\n",
			"cg v2/svc/worker/cpu.max": "max 100000\n",
		}, 2.5, true},
		{"v2 without a limit", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"proc/self/mountinfo":   "25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"sys/fs/cgroup/cpu.max": "max 100000\n",
		}, 0, false},
		{"cgroup outside the mounted part", map[string]string{
			"proc/self/cgroup":      "0::/other\n",
			"proc/self/mountinfo":   "25 20 0:22 /mine /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"sys/fs/cgroup/cpu.max": "5000 100000\n",
		}, 0, false},
		{"v2: the first cgroup2 mount holds another part of the hierarchy", map[string]string{
			"proc/self/cgroup": "0::/app/worker\n",
			"proc/self/mountinfo": "24 20 0:22 /other /mnt/other rw - cgroup2 cgroup2 rw\n" +
				"25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"mnt/other/cpu.max":         "max 100000\n",
			"sys/fs/cgroup/app/cpu.max": "20000 100000\n",
		}, 0.2, true},
		{"v1: the first cpu mount holds another part of the hierarchy", map[string]string{
			"proc/self/cgroup": "3:cpu,cpuacct:/a/b\n",
			"proc/self/mountinfo": "29 20 0:27 /c /mnt/c rw - cgroup cgroup rw,cpu,cpuacct\n" +
				"30 20 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
			"sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_quota_us":  "50000\n",
			"sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_period_us": "100000\n",
		}, 0.5, true},
		{"v2: the cgroup is outside the process's cgroup namespace", map[string]string{
			"proc/self/cgroup":           "0::/../../init\n",
			"proc/self/mountinfo":        "25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"sys/fs/cgroup/cpu.max":      "10000 100000\n",
			"sys/fs/cgroup/init/cpu.max": "5000 100000\n", // another group of that name, inside it
		}, 0, false},
		{"v2: outside the namespace, read through a mount of an ancestor", map[string]string{
			"proc/self/cgroup": "0::/../../init\n",
			"proc/self/mountinfo": "25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n" +
				"26 20 0:22 /../.. /host-cg rw - cgroup2 cgroup2 rw\n",
			"sys/fs/cgroup/init/cpu.max": "5000 100000\n",
			"host-cg/init/cpu.max":       "30000 100000\n",
		}, 0.3, true},
		{"no cgroups at all", map[string]string{}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := (&reader{root: fakeRoot(t, tc.files)}).limit()
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || got != tc.want {
				t.Fatalf("limit = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestLimitRefusesGarbage(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"proc/self/cgroup":      "0::/\n",
		"proc/self/mountinfo":   "25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
		"sys/fs/cgroup/cpu.max": "lots 100000\n",
	})
	if _, _, err := (&reader{root: root}).limit(); err == nil {
		t.Fatal("a cpu.max that is not a number was read without an error")
	}
}

// TestReaderFollowsAMove: the mounts are read once, the process's cgroup
// every time, so a process moved into a capped group (after it started, as
// bench/clusterbench moves nodes) sees the new limit. The files a reading
// reads stay open and are read again from their start, so a quota changed
// in place is seen; the files of a group the process left are closed, and
// close closes them all.
func TestReaderFollowsAMove(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"proc/self/cgroup":                           "1:cpu:/\n0::/\n",
		"proc/self/mountinfo":                        hybridMounts,
		"sys/fs/cgroup/cpu/cpu.cfs_quota_us":         "-1\n",
		"sys/fs/cgroup/cpu/cpu.cfs_period_us":        "100000\n",
		"sys/fs/cgroup/cpu/capped/cpu.cfs_quota_us":  "20000\n",
		"sys/fs/cgroup/cpu/capped/cpu.cfs_period_us": "100000\n",
	})
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kept := func(r *reader, want ...string) {
		t.Helper()
		var got []string
		for name := range r.files {
			rel, _ := filepath.Rel(root, name)
			got = append(got, filepath.ToSlash(rel))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("kept open: %q, want %q", got, want)
		}
	}
	r := &reader{root: root}
	if c, ok, err := r.limit(); err != nil || ok {
		t.Fatalf("before the move: %v, %v, %v; want no limit", c, ok, err)
	}
	kept(r, "proc/self/cgroup", "sys/fs/cgroup/cpu/cpu.cfs_quota_us")
	write("proc/self/cgroup", "1:cpu:/capped\n0::/\n")
	if c, ok, err := r.limit(); err != nil || !ok || c != 0.2 {
		t.Fatalf("after the move: %v, %v, %v; want 0.2", c, ok, err)
	}
	kept(r, "proc/self/cgroup", "sys/fs/cgroup/cpu/capped/cpu.cfs_period_us", "sys/fs/cgroup/cpu/capped/cpu.cfs_quota_us", "sys/fs/cgroup/cpu/cpu.cfs_quota_us")
	write("sys/fs/cgroup/cpu/capped/cpu.cfs_quota_us", "7500\n") // in place, as the kernel's files change
	if c, ok, err := r.limit(); err != nil || !ok || c != 0.075 {
		t.Fatalf("after the quota changed: %v, %v, %v; want 0.075", c, ok, err)
	}
	write("proc/self/cgroup", "1:cpu:/\n0::/\n")
	if c, ok, err := r.limit(); err != nil || ok {
		t.Fatalf("after the move back: %v, %v, %v; want no limit", c, ok, err)
	}
	kept(r, "proc/self/cgroup", "sys/fs/cgroup/cpu/cpu.cfs_quota_us")
	r.close()
	kept(r)
}

// TestKeeperFollowsTheQuota: GOMAXPROCS goes to 1 once when a limit below
// a core appears, stays while it lasts, and goes back to the runtime's
// default when the limit rises to a core or goes.
func TestKeeperFollowsTheQuota(t *testing.T) {
	type reading struct {
		cores float64
		ok    bool
		err   error
	}
	readings := []reading{{0, false, nil}, {0.05, true, nil}, {0.05, true, nil}, {0, false, errors.New("gone")}, {0.5, true, nil}, {1, true, nil}, {0.9, true, nil}, {0, false, nil}}
	want := []string{"", "set", "", "", "", "reset", "set", "reset"}
	var got []string
	i := 0
	k := &keeper{
		read:  func() (float64, bool, error) { r := readings[i]; return r.cores, r.ok, r.err },
		set:   func() { got[i] = "set" },
		reset: func() { got[i] = "reset" },
		log:   slog.New(slog.DiscardHandler),
	}
	got = make([]string, len(readings))
	for i = range readings {
		k.step()
	}
	for j := range want {
		if got[j] != want[j] {
			t.Fatalf("reading %d (%+v): did %q, want %q (all: %q)", j, readings[j], got[j], want[j], got)
		}
	}
}

// TestKeeperSetsTheRuntime: with the real setters, a quota below a core
// makes GOMAXPROCS 1 and its end gives the runtime its default back.
func TestKeeperSetsTheRuntime(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: GOMAXPROCS is 1 whatever the quota")
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set in the environment")
	}
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(runtime.SetDefaultGOMAXPROCS)
	cores := 0.05
	k := &keeper{read: func() (float64, bool, error) { return cores, cores > 0, nil },
		set: func() { runtime.GOMAXPROCS(1) }, reset: runtime.SetDefaultGOMAXPROCS, log: slog.New(slog.DiscardHandler)}
	k.step()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("GOMAXPROCS %d under a 0.05-core quota, want 1", n)
	}
	cores = 0
	k.step()
	if n := runtime.GOMAXPROCS(0); n != before {
		t.Fatalf("GOMAXPROCS %d after the quota went, want the default %d", n, before)
	}
}

// TestKeepIgnoresAGOMAXPROCSTheRuntimeIgnores: the runtime takes GOMAXPROCS
// only as a positive number (anything else leaves its own default, which
// follows no quota below two cores), so only such a value turns Keep off;
// an empty, zero or malformed one does not.
func TestKeepIgnoresAGOMAXPROCSTheRuntimeIgnores(t *testing.T) {
	t.Cleanup(runtime.SetDefaultGOMAXPROCS) // Keep may pin this machine's process
	for _, tc := range []struct {
		env  string
		kept bool // the environment's value stands: Keep does nothing
	}{{"", false}, {"0", false}, {"-2", false}, {"two", false}, {" 2", false}, {"2", true}, {"1", true}} {
		t.Setenv("GOMAXPROCS", tc.env)
		var out bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // one reading at most, then Keep returns
		Keep(ctx, slog.New(slog.NewTextHandler(&out, nil)))
		if got := strings.Contains(out.String(), "the CPU quota is not followed"); got != tc.kept {
			t.Errorf("GOMAXPROCS=%q: quota not followed %v, want %v (log: %s)", tc.env, got, tc.kept, out.String())
		}
	}
}

// TestKeptFileReadsFresh: the reader keeps the files it reads open and
// reads them again from their start, which relies on the kernel making a
// proc or cgroup file's content again for each read from its start (they
// are seq_files: review17 F13). /proc/self/stat, whose CPU times move
// while the test burns CPU, is read through one kept file until they do.
func TestKeptFileReadsFresh(t *testing.T) {
	const name = "/proc/self/stat"
	if _, err := os.Stat(name); err != nil {
		t.Skipf("no %s: not Linux", name)
	}
	r := &reader{root: "/"}
	defer r.close()
	first, err := r.file(name)
	if err != nil {
		t.Fatal(err)
	}
	first = bytes.Clone(first)
	kept := r.files[name]
	deadline := time.Now().Add(20 * time.Second)
	x := 0
	for {
		for i := range 5_000_000 { // a few ms of CPU
			x += i % 7
		}
		b, err := r.file(name)
		if err != nil {
			t.Fatal(err)
		}
		if kept == nil || r.files[name] != kept {
			t.Fatal("the file is not kept open between readings")
		}
		// (A read that did not start again from the start would be
		// empty or a piece: the pid and command name lead every line.)
		if lead, _, _ := bytes.Cut(first, []byte(") ")); !bytes.HasPrefix(b, lead) {
			t.Fatalf("read %q, not a whole %s", b, name)
		}
		if !bytes.Equal(b, first) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kept file's content did not change in 20 s of CPU (%d)", x)
		}
	}
}
