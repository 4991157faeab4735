// Package cpuquota reads the CPU bandwidth limit (the quota) of the
// process's cgroup, v1 (cpu controller: cpu.cfs_quota_us ÷
// cpu.cfs_period_us) or v2 (cpu.max), and keeps GOMAXPROCS at 1 while
// that limit is below one core.
//
// Why: Go's own cgroup-aware default (Go 1.25 and later) rounds a limit up
// and never goes below 2, so a process capped at a fraction of a core still
// runs two Ps: their hand-offs, spinning and sysmon wake-ups are CPU the
// quota pays for (a cluster node capped at 0.05 core spent 12–20 % less CPU
// per action with GOMAXPROCS=1; docs/cluster.md). Above one core, or with
// no limit, the runtime's default stands. Like the runtime, the limit is
// read again every second, so a process moved into a capped group after it
// started (or whose quota changes) follows. A GOMAXPROCS environment
// variable the runtime takes (a positive number) turns all this off: the
// operator's setting stands.
package cpuquota

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Limit returns the CPU limit of the calling process's cgroup in cores
// (0.05: five hundredths of a core), the smallest along its cgroup's
// path; ok is false when there is none.
func Limit() (cores float64, ok bool, err error) {
	r := &reader{root: "/"}
	defer r.close()
	return r.limit()
}

// reader reads the limit again and again: the cgroup mount is looked up
// in /proc/self/mountinfo once (mounts stay; parsing them was most of a
// reading's cost), the process's cgroup (it may be moved) and its limit
// files every time. The files it reads are kept open and read again from
// their start (pread, as the runtime reads the limit every second): an
// open, an fstat, a registration with the poller and a close per file
// were most of a reading that finds nothing changed (issue 17: ≈60 µs a
// second of an idle node, ≈15 µs kept open). A file not read in a
// reading (the process moved to another cgroup) is closed.
type reader struct {
	root    string // where /proc and the cgroup mounts are (tests: a folder)
	mounted bool   // the mount lookup is done
	v1      bool   // the limit is the v1 cpu controller's (else v2's)
	point   string // mount point of the hierarchy ("" : none mounted)
	mroot   string // the hierarchy's path mounted there

	files map[string]*os.File // kept open between readings
	read  map[string]bool     // the files read in this reading
	buf   []byte
}

// file returns the content of the file at name (valid until the next
// call), read from its start through the file kept open since an earlier
// reading, or opened now. A kept file that cannot be read any more (a
// removed cgroup's files fail with ENODEV) is closed and opened again.
func (r *reader) file(name string) ([]byte, error) {
	if r.files == nil {
		r.files, r.read = map[string]*os.File{}, map[string]bool{}
	}
	if f := r.files[name]; f != nil {
		if b, err := r.whole(f); err == nil {
			r.read[name] = true
			return b, nil
		}
		f.Close()
		delete(r.files, name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	b, err := r.whole(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.files[name], r.read[name] = f, true
	return b, nil
}

// whole reads f from its start to its end into r.buf.
func (r *reader) whole(f *os.File) ([]byte, error) {
	if r.buf == nil {
		r.buf = make([]byte, 512)
	}
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := f.ReadAt(r.buf[n:], int64(n))
		n += m
		if err == io.EOF {
			return r.buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// sweep closes the kept files that the last reading did not read.
func (r *reader) sweep() {
	for name, f := range r.files {
		if !r.read[name] {
			f.Close()
			delete(r.files, name)
		}
	}
	clear(r.read)
}

// close closes every kept file.
func (r *reader) close() {
	clear(r.read)
	r.sweep()
}

func (r *reader) limit() (float64, bool, error) {
	defer r.sweep()
	cg, err := r.file(filepath.Join(r.root, "proc/self/cgroup"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil // not Linux, or no cgroups
	}
	if err != nil {
		return 0, false, err
	}
	var v1, v2 string
	v1ok, v2ok := false, false
	for line := range strings.Lines(string(cg)) {
		parts := strings.SplitN(strings.TrimRight(line, "\n"), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2, v2ok = parts[2], true
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c == "cpu" {
				v1, v1ok = parts[2], true
			}
		}
	}
	if !r.mounted {
		mi, err := os.ReadFile(filepath.Join(r.root, "proc/self/mountinfo"))
		if err != nil {
			return 0, false, err
		}
		// Where both exist (hybrid hierarchies), the v1 cpu controller is
		// the one that limits: a controller is in one hierarchy only.
		var found bool
		if v1ok {
			r.point, r.mroot, found = mountOf(mi, v1, func(fstype, super string) bool {
				return fstype == "cgroup" && hasOption(super, "cpu")
			})
			r.v1 = found
		}
		if !found && v2ok {
			r.point, r.mroot, _ = mountOf(mi, v2, func(fstype, _ string) bool { return fstype == "cgroup2" })
		}
		r.mounted = true
	}
	switch {
	case r.point == "":
		return 0, false, nil
	case r.v1 && v1ok:
		return walk(r.root, r.point, r.mroot, v1, r.readV1)
	case !r.v1 && v2ok:
		return walk(r.root, r.point, r.mroot, v2, r.readV2)
	}
	return 0, false, nil
}

// mountOf finds the first mount in mountinfo that match accepts and whose
// part of the hierarchy holds cgroup cg (as the runtime chooses), else the
// first that match accepts, and returns its mount point and the hierarchy
// path mounted there.
func mountOf(mountinfo []byte, cg string, match func(fstype, superOptions string) bool) (point, root string, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		// id parent major:minor root point options [optional...] - fstype source superoptions
		pre, post, found := strings.Cut(sc.Text(), " - ")
		if !found {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || !match(g[0], g[2]) {
			continue
		}
		p, r := unescape(f[4]), unescape(f[3])
		if !ok {
			point, root, ok = p, r, true
		}
		if holds(r, cg) {
			return p, r, true
		}
	}
	return point, root, ok
}

// holds reports whether the part of a hierarchy at mroot holds cgroup cg.
// Both are compared as the kernel writes them: a cgroup outside the
// process's cgroup namespace reads "/../../init", which a mount of the
// namespace's root ("/") does not hold, and one of "/../.." does (as the
// runtime reads them).
func holds(mroot, cg string) bool {
	rel := cg
	if mroot != "/" {
		var ok bool
		if rel, ok = strings.CutPrefix(cg, mroot); !ok || rel != "" && rel[0] != '/' {
			return false
		}
	}
	return rel != "/.." && !strings.HasPrefix(rel, "/../")
}

func hasOption(opts, name string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// walk reads the limit of the cgroup at path cg of the hierarchy mounted
// at point (whose root is the hierarchy's mroot) and of each of its
// ancestors up to the mount, and returns the smallest.
func walk(root, point, mroot, cg string, read func(dir string) (float64, bool, error)) (float64, bool, error) {
	if !holds(mroot, cg) {
		return 0, false, nil // outside what is mounted here (below: once cleaned)
	}
	cg, mroot = path.Clean(cg), path.Clean(mroot)
	var rel string
	switch {
	case mroot == "/":
		rel = cg
	case cg == mroot:
		rel = "/"
	case strings.HasPrefix(cg, mroot+"/"):
		rel = cg[len(mroot):]
	default:
		// The process's cgroup is outside what is mounted here (another
		// namespace's view): nothing to read.
		return 0, false, nil
	}
	if !strings.HasPrefix(rel, "/") {
		return 0, false, nil
	}
	best, found := 0.0, false
	for {
		dir := filepath.Join(root, point, filepath.FromSlash(rel))
		v, ok, err := read(dir)
		if err != nil {
			return 0, false, err
		}
		if ok && (!found || v < best) {
			best, found = v, true
		}
		if rel == "/" {
			return best, found, nil
		}
		rel = path.Dir(rel)
	}
}

// readV1 reads cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us.
func (r *reader) readV1(dir string) (float64, bool, error) {
	q, err := r.readInt(filepath.Join(dir, "cpu.cfs_quota_us"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil || q <= 0 {
		return 0, false, err
	}
	p, err := r.readInt(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil || p <= 0 {
		return 0, false, err
	}
	return float64(q) / float64(p), true, nil
}

// readV2 reads cpu.max: "max 100000" (none) or "5000 100000".
func (r *reader) readV2(dir string) (float64, bool, error) {
	b, err := r.file(filepath.Join(dir, "cpu.max"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || f[0] == "max" {
		return 0, false, nil
	}
	q, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("cpuquota: %s: %w", filepath.Join(dir, "cpu.max"), err)
	}
	p := int64(100000)
	if len(f) > 1 {
		if p, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return 0, false, fmt.Errorf("cpuquota: %s: %w", filepath.Join(dir, "cpu.max"), err)
		}
	}
	if q <= 0 || p <= 0 {
		return 0, false, nil
	}
	return float64(q) / float64(p), true, nil
}

func (r *reader) readInt(name string) (int64, error) {
	b, err := r.file(name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cpuquota: %s: %w", name, err)
	}
	return v, nil
}

// Interval is how often Keep reads the limit again (the runtime's own
// GOMAXPROCS update period).
const Interval = time.Second

// Keep holds GOMAXPROCS at 1 while the process's CPU limit is below one
// core, and gives it back to the runtime's default when the limit goes
// (or rises to a core or more), reading the limit every Interval until ctx
// ends. With the GOMAXPROCS environment variable set to a value the
// runtime takes (a positive number) it does nothing; the runtime ignores
// any other value (empty, 0, malformed), and so does Keep.
func Keep(ctx context.Context, log *slog.Logger) {
	if v := os.Getenv("GOMAXPROCS"); runtimeTakes(v) {
		log.Info("GOMAXPROCS set in the environment: the CPU quota is not followed", "GOMAXPROCS", v)
		return
	}
	r := &reader{root: "/"}
	defer r.close()
	k := &keeper{read: r.limit, set: func() { runtime.GOMAXPROCS(1) }, reset: runtime.SetDefaultGOMAXPROCS, log: log}
	k.step()
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.step()
		}
	}
}

// runtimeTakes reports whether the runtime sets GOMAXPROCS from the
// environment value v (runtime.schedinit: a positive 32-bit number).
func runtimeTakes(v string) bool {
	n, err := strconv.ParseInt(v, 10, 32)
	return err == nil && n > 0
}

// keeper is Keep's state between readings.
type keeper struct {
	read   func() (float64, bool, error)
	set    func() // GOMAXPROCS to 1
	reset  func() // back to the runtime's default
	log    *slog.Logger
	pinned bool // GOMAXPROCS is 1 because of the limit
	failed bool // the last reading failed (logged once)
}

func (k *keeper) step() {
	cores, ok, err := k.read()
	if err != nil {
		if !k.failed {
			k.log.Warn("cannot read the cgroup CPU quota; GOMAXPROCS stays as it is", "err", err)
		}
		k.failed = true
		return
	}
	k.failed = false
	below := ok && cores < 1
	switch {
	case below && !k.pinned:
		k.set()
		k.pinned = true
		k.log.Info("CPU quota below one core: GOMAXPROCS 1", "quota_cores", cores)
	case !below && k.pinned:
		k.reset()
		k.pinned = false
		k.log.Info("CPU quota no longer below one core: GOMAXPROCS back to the runtime's default", "GOMAXPROCS", runtime.GOMAXPROCS(0))
	}
}
