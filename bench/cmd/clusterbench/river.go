package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/connectorhq/connector/internal/pgtest"
)

// River side by side: N worker processes (this program with -mode
// river-worker), each a River client with MaxWorkers = -threads that also
// accepts submissions over HTTP (GET /submit inserts one job and answers
// once it is committed), on a PostgreSQL started as the cluster's is
// (pgtest: fsync and synchronous_commit on). The jobs do nothing, as the
// connector's Identifiers of a never-crawled task does next to nothing.

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

func riverConfig(workers int) *river.Config {
	ws := river.NewWorkers()
	river.AddWorker(ws, noopWorker{})
	return &river.Config{
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Workers: ws,
		// River's own benchmark settings (as bench/cmd/peers).
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		MaxAttempts:       1,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
	}
}

// riverWorker is one River client process: it works jobs and serves
// /submit until SIGTERM.
func riverWorker(o options) error {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, o.pg)
	if err != nil {
		return err
	}
	defer pool.Close()
	c, err := river.NewClient(riverpgxv5.New(pool), riverConfig(o.threads))
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := c.Insert(r.Context(), noopArgs{}, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, res.Job.ID)
	})}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	_ = srv.Close()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.StopAndCancel(sctx)
}

// riverEnv is PostgreSQL with n River worker processes.
type riverEnv struct {
	pg      *pgtest.Server
	dir     string
	db      *pgx.Conn
	stat    *pgx.Conn
	procs   []*exec.Cmd
	addrs   []string
	queries int64
}

func startRiver(o options, n, workers int) (_ *riverEnv, err error) {
	e := &riverEnv{}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	if e.dir, err = os.MkdirTemp("", "clusterbench-river-"); err != nil {
		return nil, err
	}
	if err = os.MkdirAll(filepath.Join(e.dir, "postgresql"), 0o755); err != nil {
		return nil, err
	}
	if e.pg, err = pgtest.Start(pgtest.Options{Dir: filepath.Join(e.dir, "postgresql")}); err != nil {
		return nil, err
	}
	if _, err = e.pg.CreateDatabase("river"); err != nil {
		return nil, err
	}
	url := e.pg.URL("river")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err == nil {
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	pool.Close()
	if err != nil {
		return nil, fmt.Errorf("river migrate: %w", err)
	}
	if e.db, err = pgx.Connect(ctx, url); err != nil {
		return nil, err
	}
	if e.stat, err = pgx.Connect(ctx, e.pg.URL("postgres")); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		cmd := exec.Command(self, "-mode", "river-worker", "-pg", url, "-threads", strconv.Itoa(workers))
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		e.procs = append(e.procs, cmd)
		line := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			if sc.Scan() {
				line <- sc.Text()
			}
			close(line)
			_, _ = io.Copy(io.Discard, out)
		}()
		select {
		case l := <-line:
			addr, ok := strings.CutPrefix(l, "listening ")
			if !ok {
				return nil, fmt.Errorf("river worker printed %q", l)
			}
			e.addrs = append(e.addrs, "http://"+addr)
		case <-time.After(time.Minute):
			return nil, fmt.Errorf("river worker %d did not start within a minute", i+1)
		}
	}
	return e, nil
}

func (e *riverEnv) stop() {
	for _, c := range e.procs {
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
	if e.db != nil {
		e.db.Close(context.Background())
	}
	if e.stat != nil {
		e.stat.Close(context.Background())
	}
	if e.pg != nil {
		if err := e.pg.Stop(); err != nil {
			logf("stop PostgreSQL: %v", err)
		}
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

func (e *riverEnv) target() *target {
	t := &target{urls: e.addrs, river: true, pgPID: e.pg.PID(), stat: e.stat, dbname: "river", queries: &e.queries}
	for _, c := range e.procs {
		t.pids = append(t.pids, c.Process.Pid)
	}
	t.finished = func() (int64, error) {
		e.queries++
		var n int64
		err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&n)
		return n, err
	}
	return t
}
