package browser

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoBrowser: no browser binary was found (Config.Exec is empty and none
// of the usual places has one, or Config.Exec does not exist).
var ErrNoBrowser = errors.New("browser: no Chromium binary found (install the Debian package chromium-headless-shell, or chromium)")

// markerEnv is set in the browser's environment; every process the browser
// starts inherits it, whatever its process group. Its value is
// "<owner pid>.<owner start time>/<generation>", so that the processes of
// one browser, and those of an owner that died, can be found in /proc.
const markerEnv = "CONNECTOR_BROWSER"

// dirPrefix starts the name of every user-data-dir, followed by the owner's
// identity ("<pid>.<start time>-").
const dirPrefix = "connector-browser-"

// execCandidates are tried in order when Config.Exec is empty.
var execCandidates = []string{
	"/usr/lib/chromium/chromium-headless-shell",
	"chromium-headless-shell",
	"/usr/lib/chromium/chromium",
	"chromium",
	"chromium-browser",
}

// FindExec returns the browser binary Config{Exec: exec} would run, or
// ErrNoBrowser (wrapped with what was tried).
func FindExec(exec string) (string, error) {
	if exec != "" {
		p, err := lookPath(exec)
		if err != nil {
			return "", fmt.Errorf("%w: Exec %q: %v", ErrNoBrowser, exec, err)
		}
		return ResolveExec(p), nil
	}
	for _, c := range execCandidates {
		if p, err := lookPath(c); err == nil {
			return ResolveExec(p), nil
		}
	}
	return "", fmt.Errorf("%w: tried %s", ErrNoBrowser, strings.Join(execCandidates, ", "))
}

func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", err
	}
	return filepath.Abs(p)
}

// ResolveExec returns the ELF binary behind a shell wrapper. Debian's
// /usr/bin/chromium-headless-shell is a shell script that runs
// /usr/lib/chromium/chromium-headless-shell as a child (it does not exec),
// so a parent-death signal set on the script would kill only the shell.
// When path is a "#!" script and /usr/lib/chromium/<base name> is an
// executable file, that file is returned; otherwise path itself.
func ResolveExec(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return path
	}
	head := make([]byte, 2)
	n, _ := f.Read(head)
	f.Close()
	if n < 2 || string(head) != "#!" {
		return path
	}
	real := filepath.Join("/usr/lib/chromium", filepath.Base(path))
	if st, err := os.Stat(real); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return real
	}
	return path
}

// identity is "<pid>.<start time in clock ticks>" of a process: unique on
// this machine for the life of the kernel (a reused pid has another start
// time).
func identity(pid int) (string, error) {
	st, err := startTime(pid)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(pid) + "." + strconv.FormatUint(st, 10), nil
}

// startTime reads field 22 of /proc/<pid>/stat.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether the process named by an identity still runs.
func alive(id string) bool {
	pidS, stS, ok := strings.Cut(id, ".")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(pidS)
	if err != nil {
		return false
	}
	st, err := startTime(pid)
	return err == nil && strconv.FormatUint(st, 10) == stS
}

// markedProcesses returns the processes whose environment carries
// markerEnv, with the marker's value.
func markedProcesses() map[int]string {
	out := map[int]string{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	key := []byte(markerEnv + "=")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if bytes.HasPrefix(kv, key) {
				out[pid] = string(kv[len(key):])
				break
			}
		}
	}
	return out
}

// processesOf returns the pids whose marker is exactly marker (one browser)
// or, with prefix true, starts with marker (every browser of an owner).
// Only the browser process itself carries the marker: Chromium starts its
// helpers (zygotes, renderers, utilities) with an environment of its own.
func processesOf(marker string, prefix bool) []int {
	var pids []int
	for pid, m := range markedProcesses() {
		if m == marker || (prefix && strings.HasPrefix(m, marker)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// groupMembers returns the processes of process group pgid whose
// executable is exe (exe empty: any).
func groupMembers(pgid int, exe string) []int {
	var pids []int
	if pgid <= 0 {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		if exe != "" {
			if p, err := os.Readlink("/proc/" + e.Name() + "/exe"); err != nil || p != exe {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// browserProcesses returns the browser's processes: its process group
// (the browser is the group's leader; every helper it starts stays in the
// group) and whatever still carries its marker.
func browserProcesses(pgid int, marker string) []int {
	pids := groupMembers(pgid, "")
	for _, pid := range processesOf(marker, false) {
		if !slices.Contains(pids, pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killMarked sends SIGKILL to the process group pgid and to every process
// carrying marker, until none is left or the deadline passes. It returns
// how many processes were still there at the end.
func killMarked(pgid int, marker string, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for {
		if pgid > 0 {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		pids := browserProcesses(pgid, marker)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			return len(pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ownerFile, in a user-data-dir, records the browser's process group and
// executable, so that a later sweep can find the helpers of a browser
// whose owner died (they do not carry the marker).
const ownerFile = "connector-owner"

func writeOwnerFile(dir string, pgid int, exe string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(pgid)+"\n"+exe+"\n"), 0o600)
}

func readOwnerFile(dir string) (pgid int, exe string) {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return 0, ""
	}
	f := strings.Split(string(b), "\n")
	if len(f) < 2 {
		return 0, ""
	}
	pgid, _ = strconv.Atoi(f[0])
	return pgid, f[1]
}

// sweepStale kills the browser processes, and removes the user-data-dirs in
// tempDir, of owners that died without stopping their browser (a SIGKILL
// of the owner leaves the folder behind; the parent-death signal has killed
// the browser already, so processes are found here only when that failed).
func sweepStale(tempDir string, log *slog.Logger) {
	owners := map[string]bool{}
	for pid, m := range markedProcesses() {
		owner, _, _ := strings.Cut(m, "/")
		dead, seen := owners[owner]
		if !seen {
			dead = !alive(owner)
			owners[owner] = dead
		}
		if dead {
			log.Warn("browser: killing a browser process left by a dead owner", "pid", pid, "owner", owner)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	ents, err := os.ReadDir(tempDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, dirPrefix) {
			continue
		}
		owner, _, ok := strings.Cut(strings.TrimPrefix(name, dirPrefix), "-")
		if !ok {
			continue
		}
		if alive(owner) {
			continue
		}
		// A group id is not reused while the group has members, so the
		// members running the browser's executable are that browser's
		// helpers.
		if pgid, exe := readOwnerFile(filepath.Join(tempDir, name)); pgid > 0 && exe != "" {
			for _, pid := range groupMembers(pgid, exe) {
				log.Warn("browser: killing a browser helper left by a dead owner", "pid", pid, "pgid", pgid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err := os.RemoveAll(filepath.Join(tempDir, name)); err == nil {
			log.Info("browser: removed the user-data-dir of a dead owner", "dir", filepath.Join(tempDir, name))
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes, cut to whole lines when the buffer
// overflowed.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
