package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/connectorhq/connector/bench/internal/result"
)

type riverArgs struct {
	Block bool `json:"b,omitempty"`
}

func (riverArgs) Kind() string { return "noop" }

type riverWorker struct {
	river.WorkerDefaults[riverArgs]
	h *hooks
}

func (w *riverWorker) Work(ctx context.Context, job *river.Job[riverArgs]) error {
	return w.h.work(ctx, strconv.FormatInt(job.ID, 10), job.Args.Block)
}

type riverSystem struct {
	dsn    string
	pool   *pgxpool.Pool
	cl     *river.Client[pgx.Tx] // insert-only client
	worker *river.Client[pgx.Tx]
	events <-chan *river.Event
	unsub  func()
}

func (s *riverSystem) config(workers int, h *hooks) *river.Config {
	ws := river.NewWorkers()
	river.AddWorker(ws, &riverWorker{h: h})
	cfg := &river.Config{
		Logger:  discardLogger(),
		Workers: ws,
		// The settings of River's own benchmark (river bench): fetch
		// every 2 ms at most and poll every 20 ms when no notification
		// came. No job timeout: a blocking job runs until cancelled.
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		JobTimeout:        -1,
		MaxAttempts:       1,
	}
	if workers > 0 {
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}}
	}
	return cfg
}

func (s *riverSystem) open(ctx context.Context, out *result.Output) error {
	if s.dsn == "" {
		return errors.New("peers: -pg is required for river")
	}
	pool, err := pgxpool.New(ctx, s.dsn)
	if err != nil {
		return fmt.Errorf("peers: connect %s: %w", s.dsn, err)
	}
	s.pool = pool
	var sc, fs, ver string
	if err := pool.QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('fsync'), current_setting('server_version')").Scan(&sc, &fs, &ver); err != nil {
		return fmt.Errorf("peers: read settings: %w", err)
	}
	out.Info["durability"] = fmt.Sprintf("postgresql synchronous_commit=%s fsync=%s", sc, fs)
	out.Info["server_version"] = "postgresql " + ver
	drv := riverpgxv5.New(pool)
	m, err := rivermigrate.New(drv, nil)
	if err != nil {
		return fmt.Errorf("peers: migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("peers: migrate: %w", err)
	}
	if s.cl, err = river.NewClient(drv, s.config(0, newHooks())); err != nil {
		return fmt.Errorf("peers: river client: %w", err)
	}
	return s.reset(ctx)
}

func (s *riverSystem) reset(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, "TRUNCATE river_job"); err != nil {
		return fmt.Errorf("peers: truncate: %w", err)
	}
	return nil
}

func (s *riverSystem) close() {
	_ = s.stopWorkers(context.Background())
	s.pool.Close()
}

func (s *riverSystem) enqueue(ctx context.Context, block bool) (string, error) {
	r, err := s.cl.Insert(ctx, riverArgs{Block: block}, nil)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(r.Job.ID, 10), nil
}

func (s *riverSystem) startWorkers(ctx context.Context, n int, h *hooks) error {
	c, err := river.NewClient(riverpgxv5.New(s.pool), s.config(n, h))
	if err != nil {
		return fmt.Errorf("peers: river client: %w", err)
	}
	s.events, s.unsub = c.SubscribeConfig(&river.SubscribeConfig{ChanSize: 1 << 20, Kinds: []river.EventKind{river.EventKindJobCompleted}})
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("peers: river start: %w", err)
	}
	s.worker = c
	return nil
}

func (s *riverSystem) stopWorkers(ctx context.Context) error {
	if s.worker == nil {
		return nil
	}
	s.unsub()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := s.worker.StopAndCancel(ctx)
	s.worker = nil
	if err != nil {
		return fmt.Errorf("peers: river stop: %w", err)
	}
	return nil
}

// waitDrained counts JobCompleted events, which River sends once the
// completion is written.
func (s *riverSystem) waitDrained(ctx context.Context, n int) error {
	timeout := time.After(30 * time.Minute)
	for got := 0; got < n; {
		select {
		case <-s.events:
			got++
		case <-timeout:
			return fmt.Errorf("peers: %d of %d jobs completed after 30 minutes", got, n)
		}
	}
	return nil
}

func (s *riverSystem) id(id string) int64 {
	v, _ := strconv.ParseInt(id, 10, 64)
	return v
}

func (s *riverSystem) status(ctx context.Context, id string) (string, error) {
	j, err := s.cl.JobGet(ctx, s.id(id))
	if err != nil {
		return "", err
	}
	return string(j.State), nil
}

func (s *riverSystem) cancelQueued(ctx context.Context, id string) error {
	_, err := s.cl.JobCancel(ctx, s.id(id))
	return err
}

func (s *riverSystem) queuedFinal(ctx context.Context, id string) (bool, error) {
	j, err := s.cl.JobGet(ctx, s.id(id))
	if err != nil {
		return false, err
	}
	return j.State == rivertype.JobStateCancelled, nil
}

func (s *riverSystem) cancelRunning(ctx context.Context, id string) error {
	_, err := s.cl.JobCancel(ctx, s.id(id))
	return err
}

func (s *riverSystem) runningFinal(ctx context.Context, id string) (bool, string, error) {
	j, err := s.cl.JobGet(ctx, s.id(id))
	if err != nil {
		return false, "", err
	}
	st := string(j.State)
	switch j.State {
	case rivertype.JobStateCancelled, rivertype.JobStateCompleted, rivertype.JobStateDiscarded:
		return true, st, nil
	}
	return false, st, nil
}
