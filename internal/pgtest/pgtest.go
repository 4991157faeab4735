// Package pgtest starts a private PostgreSQL server from Debian's binaries
// (package postgresql, /usr/lib/postgresql/<version>/bin) on a loopback port
// it picks, with its data in a folder of its own, and stops it by PID. Tests
// and benchmarks of the shared store use it, and so does `make cluster`;
// the connector itself never does.
//
// A server needing PostgreSQL fails, never skips, when it is missing:
// `make test` installs it. As root, PostgreSQL runs as the unprivileged
// "postgres" user Debian's package creates (it refuses to run as root).
//
// initdb is slow (seconds); the first Start of a machine makes a template
// cluster in the user's cache folder, and every later Start copies it.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/connectorhq/connector/internal/testport"
)

// User is the superuser of every server (trust authentication on loopback).
const User = "connector"

// Options configure Start. The zero value is a durable server
// (fsync and synchronous_commit on), as a user would run it.
type Options struct {
	// Dir holds the server's data and log; default a new temporary folder,
	// removed by Stop.
	Dir string
	// Port to listen on (127.0.0.1); 0 picks a free one.
	Port int
	// Settings are extra postgresql.conf lines ("name = value").
	Settings []string
	// Output receives the server's log as it is written (default: only
	// the log file in Dir).
	Output io.Writer
	// Files are written into the data folder (by name, mode 0600, owned
	// by the server's user) when it is made: a server certificate and
	// key for "ssl = on", whose ssl_cert_file and ssl_key_file default
	// to server.crt and server.key there.
	Files map[string][]byte
}

// Server is a running PostgreSQL.
type Server struct {
	Dir     string // data directory parent: data/ and server.log
	Port    int
	Host    string // 127.0.0.1
	tmp     bool
	o       Options
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	uid     int // run as this user when root; -1 otherwise
	gid     int
}

// BinDir returns the folder of Debian's PostgreSQL programs (the newest
// version installed), or an error saying which package to install.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgtest: PostgreSQL is not installed (Debian package postgresql: /usr/lib/postgresql/<version>/bin/postgres)")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// StartT starts a server for the test and stops it when the test ends. It
// fails the test when PostgreSQL cannot be started.
func StartT(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// Start initialises (from the cached template) and starts a server, and
// waits until it accepts connections.
func Start(o Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, Host: "127.0.0.1", uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs Debian's postgres user: %w", err)
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
	}
	s.Dir = o.Dir
	if s.Dir != "" {
		// Absolute, as the server reports its data_directory (start).
		if s.Dir, err = filepath.Abs(s.Dir); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		s.tmp = true
	}
	if err := s.prepare(bin); err != nil {
		s.cleanup()
		return nil, err
	}
	start := func() error {
		s.Port = o.Port
		if s.Port == 0 {
			var err error
			if s.Port, err = pickPort(); err != nil {
				return err
			}
		}
		return s.start(bin)
	}
	if o.Port == 0 {
		err = testport.Retry(start) // a picked port may be taken: another
	} else {
		err = start() // the port asked for: no other
	}
	if err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// pickPort is testport.Pick; a test replaces it.
var pickPort = testport.Pick

// prepare makes Dir/data from the template unless it exists already (a
// restart keeps the data), writes the settings, and hands the folder to
// the server's user.
func (s *Server) prepare(bin string) error {
	if err := os.Chmod(s.Dir, 0o755); err != nil { // the server's user must reach data/
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := traversable(s.Dir); err != nil {
		return err
	}
	data := filepath.Join(s.Dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return nil
	}
	tmpl, err := s.template(bin)
	if err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", tmpl, data).CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: copy the template cluster: %v: %s", err, out)
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = ''",
		"max_connections = 200",
		"shared_buffers = 64MB",
		"log_min_messages = warning",
		"log_line_prefix = '%m [%p] '",
	}
	conf = append(conf, s.o.Settings...)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString("\n# pgtest\n" + strings.Join(conf, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	for name, b := range s.o.Files {
		if err := os.WriteFile(filepath.Join(data, name), b, 0o600); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	return s.chown(data)
}

var templateMu sync.Mutex

// template returns a cluster made by initdb for this PostgreSQL version,
// made once per machine in the cache folder.
func (s *Server) template(bin string) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	root := filepath.Join(cache, "connector-test")
	dir := filepath.Join(root, fmt.Sprintf("pgtest-template-%d-%s", version(bin), User))
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	// initdb runs as the server's user, in a temporary folder it can
	// reach; the result is copied into the cache.
	work, err := os.MkdirTemp("", "pgtest-initdb-")
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if err := s.chown(work); err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(work, "data"), "-U", User,
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	s.asServerUser(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("pgtest: initdb: %v: %s", err, out)
	}
	part := dir + fmt.Sprintf(".part%d", os.Getpid())
	os.RemoveAll(part)
	if out, err := exec.Command("cp", "-a", filepath.Join(work, "data"), part).CombinedOutput(); err != nil {
		return "", fmt.Errorf("pgtest: keep the template cluster: %v: %s", err, out)
	}
	if err := os.Rename(part, dir); err != nil {
		os.RemoveAll(part)
		if _, serr := os.Stat(filepath.Join(dir, "PG_VERSION")); serr == nil {
			return dir, nil // another process made it meanwhile
		}
		return "", fmt.Errorf("pgtest: %w", err)
	}
	return dir, nil
}

// traversable checks that the server's user (when run as root) can reach
// dir: folders above it that only their owner may search are opened to
// others when they are temporary folders (a test's t.TempDir is made
// 0700), and refused otherwise: pgtest changes nothing outside its own
// folders.
func traversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	tmp := filepath.Clean(os.TempDir()) + string(filepath.Separator)
	for d := filepath.Dir(abs); d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if st.Mode().Perm()&0o001 != 0 {
			continue
		}
		if !strings.HasPrefix(d+string(filepath.Separator), tmp) || d+string(filepath.Separator) == tmp {
			return fmt.Errorf("pgtest: the postgres user cannot reach %s (%s is not searchable by others); use a folder under %s", dir, d, os.TempDir())
		}
		if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("pgtest: make %s reachable by the postgres user: %w", d, err)
		}
	}
	return nil
}

func (s *Server) chown(path string) error {
	if s.uid < 0 {
		return nil
	}
	return filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, s.uid, s.gid)
	})
}

func (s *Server) asServerUser(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid)}
	}
}

func (s *Server) start(bin string) error {
	logPath := filepath.Join(s.Dir, "server.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	var from int64 // what this start writes to the log begins here
	if st, err := logf.Stat(); err == nil {
		from = st.Size()
	}
	var out io.Writer = logf
	if s.o.Output != nil {
		out = io.MultiWriter(logf, s.o.Output)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(s.Dir, "data"), "-p", strconv.Itoa(s.Port))
	cmd.Stdout, cmd.Stderr = out, out
	s.asServerUser(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			// This server, not another on the port it could not bind.
			var dir string
			if err = conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err == nil && dir != filepath.Join(s.Dir, "data") {
				err = fmt.Errorf("port %d answers for another server (data in %s)", s.Port, dir)
			}
			conn.Close(ctx)
		}
		cancel()
		select {
		case <-s.done:
			b, _ := os.ReadFile(logPath)
			b = b[min(from, int64(len(b))):]
			if testport.Taken(b) {
				return fmt.Errorf("pgtest: postgres exited at start: %w: %s", testport.ErrTaken, tail(b))
			}
			return fmt.Errorf("pgtest: postgres exited at start (%v): %s", s.waitErr, tail(b))
		default:
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres did not accept connections within a minute: %v: %s", err, tail(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// URL returns the connection URL of database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", User, s.Host, s.Port, db)
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// PID returns the postmaster's process id (0 when stopped).
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Signal sends sig to the postmaster and to each of its children (every
// backend is in a session of its own, so its process group is not
// enough): SIGSTOP freezes the server as a frozen host would (its
// connections stay open, nothing answers), SIGCONT lets it go on.
//
// The postmaster is signalled first and its children are then looked
// for until a look finds none not yet signalled: a backend it forked
// while the children were listed (a pool opening a connection) is
// signalled too, instead of being left to answer on a "frozen" server
// (a test saw its query succeed). A stopped postmaster forks nothing
// more, so the looks end.
func (s *Server) Signal(sig syscall.Signal) error {
	pid := s.PID()
	if pid == 0 {
		return errors.New("pgtest: the server is not running")
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("pgtest: signal the postmaster: %w", err)
	}
	done := map[int]bool{pid: true}
	var errs []error
	for {
		found := false
		for _, c := range children(pid) {
			if done[c] {
				continue
			}
			done[c], found = true, true
			if err := syscall.Kill(c, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, err)
			}
		}
		if !found {
			return errors.Join(errs...)
		}
	}
}

// CreateDatabase creates database name and returns its URL.
func (s *Server) CreateDatabase(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// DatabaseT creates a database for the test and returns its URL.
func (s *Server) DatabaseT(t testing.TB) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "_", " ", "_", "#", "_", "-", "_").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("%s_%d", name, time.Now().UnixNano()%1e9)
	url, err := s.CreateDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// Stop shuts the server down (SIGINT to its PID: PostgreSQL's fast
// shutdown, which writes everything committed), waits for it, and removes
// a temporary Dir.
func (s *Server) Stop() error {
	err := s.stopWith(syscall.SIGINT)
	s.cleanup()
	return err
}

// Restart stops the server cleanly and starts it again on the same port
// with the same data.
func (s *Server) Restart() error {
	if err := s.Shutdown(); err != nil {
		return err
	}
	return s.StartAgain()
}

// Shutdown stops the server cleanly and keeps its data (StartAgain).
func (s *Server) Shutdown() error { return s.stopWith(syscall.SIGINT) }

// Crash kills the postmaster and its backends with SIGKILL, as a crash
// of the machine's server would; the data stays for StartAgain, which
// recovers from the write-ahead log.
func (s *Server) Crash() error { return s.stopWith(syscall.SIGKILL) }

// StartAgain starts a stopped server on its port with its data.
func (s *Server) StartAgain() error {
	bin, err := BinDir()
	if err != nil {
		return err
	}
	return s.start(bin)
}

func (s *Server) stopWith(sig syscall.Signal) error {
	if s.cmd == nil {
		return nil
	}
	pid := s.cmd.Process.Pid
	// A server a test froze (Signal(SIGSTOP)) and did not let go on
	// (it failed first) cannot shut down, and its stopped children
	// would outlive the postmaster: it goes on first.
	_ = s.Signal(syscall.SIGCONT)
	var kids []int
	if sig == syscall.SIGKILL {
		// The backends too: each is a session leader of its own, so
		// they are found by parent.
		kids = children(pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	} else {
		_ = syscall.Kill(pid, sig)
	}
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.kill()
		<-s.done
	}
	s.cmd = nil
	if sig == syscall.SIGKILL {
		// Killed backends hold the shared memory until they are gone (a
		// new postmaster refuses to start meanwhile).
		for _, k := range kids {
			for i := 0; i < 3000 && syscall.Kill(k, 0) == nil; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
		return nil
	}
	var ee *exec.ExitError
	if s.waitErr != nil && !errors.As(s.waitErr, &ee) {
		return fmt.Errorf("pgtest: stop: %w", s.waitErr)
	}
	return nil
}

func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (s *Server) cleanup() {
	if s.tmp {
		os.RemoveAll(s.Dir)
	}
}

// children returns the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, _ := strconv.Atoi(f[1]); pp == pid {
			k, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, k)
		}
	}
	return out
}

// Querier is what AdvisoryWaiters reads through (a *pgxpool.Pool, a
// *pgx.Conn).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// AdvisoryWaiters returns how many sessions of db's server wait for an
// advisory lock (0 when that cannot be read): a test in which one
// process waits for another's turn (pgstore's Turn) polls it.
func AdvisoryWaiters(ctx context.Context, db Querier) int {
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n); err != nil {
		return 0
	}
	return n
}

// Execer is what SlowOwnerChanges writes through (a *pgxpool.Pool, a
// *pgx.Conn).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SlowOwnerChanges makes each row of the shared store's actions that an
// UPDATE moves away from owner cost 1.5 ms (a trigger), so that a test's
// few thousand actions of a node cost what a hundred thousand may cost
// for real (a take-over, a release).
func SlowOwnerChanges(t testing.TB, db Execer, owner string) {
	t.Helper()
	SlowOwnerChangesBy(t, db, owner, 1500*time.Microsecond)
}

// SlowOwnerChangesBy is SlowOwnerChanges at a cost of perRow a row.
func SlowOwnerChangesBy(t testing.TB, db Execer, owner string, perRow time.Duration) {
	t.Helper()
	ctx := context.Background()
	lit := "'" + strings.ReplaceAll(owner, "'", "''") + "'"
	for _, q := range []string{
		`CREATE FUNCTION slow_owner_change() RETURNS trigger AS $$
		BEGIN PERFORM pg_sleep(` + strconv.FormatFloat(perRow.Seconds(), 'f', -1, 64) + `); RETURN NEW; END $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER slow_owner_change BEFORE UPDATE ON connector_actions FOR EACH ROW
		WHEN (OLD.owner = ` + lit + ` AND NEW.owner <> ` + lit + `) EXECUTE FUNCTION slow_owner_change()`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("pgtest: slow owner changes: %v", err)
		}
	}
}
