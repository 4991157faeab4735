package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/connectorhq/connector/bench/internal/result"
)

const asynqType = "noop"

type asynqPayload struct {
	Block bool `json:"b,omitempty"`
}

type asynqSystem struct {
	addr string
	rdb  *redis.Client
	cl   *asynq.Client
	ins  *asynq.Inspector
	srv  *asynq.Server
	hk   *hooks
}

func (s *asynqSystem) opt() asynq.RedisClientOpt {
	return asynq.RedisClientOpt{Addr: s.addr, PoolSize: 64}
}

func (s *asynqSystem) open(ctx context.Context, out *result.Output) error {
	s.rdb = redis.NewClient(&redis.Options{Addr: s.addr})
	cfg, err := s.rdb.ConfigGet(ctx, "appendfsync").Result()
	if err != nil {
		return fmt.Errorf("peers: redis %s: %w", s.addr, err)
	}
	aof, err := s.rdb.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return fmt.Errorf("peers: redis %s: %w", s.addr, err)
	}
	out.Info["durability"] = fmt.Sprintf("redis appendonly=%s appendfsync=%s", aof["appendonly"], cfg["appendfsync"])
	if v, err := s.rdb.Info(ctx, "server").Result(); err == nil {
		for _, l := range splitLines(v) {
			if len(l) > 14 && l[:14] == "redis_version:" {
				out.Info["server_version"] = "redis " + l[14:]
			}
		}
	}
	s.ins = asynq.NewInspector(s.opt())
	return s.reset(ctx)
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			l := s[start:i]
			if len(l) > 0 && l[len(l)-1] == '\r' {
				l = l[:len(l)-1]
			}
			out = append(out, l)
			start = i + 1
		}
	}
	return out
}

func (s *asynqSystem) reset(ctx context.Context) error {
	if err := s.rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("peers: flush redis: %w", err)
	}
	// A client remembers which queues it has registered and would not
	// register "default" again after the flush: start afresh.
	if s.cl != nil {
		_ = s.cl.Close()
	}
	s.cl = asynq.NewClientFromRedisClient(redis.NewClient(&redis.Options{Addr: s.addr, PoolSize: 64}))
	return nil
}

func (s *asynqSystem) close() {
	if s.srv != nil {
		s.srv.Shutdown()
	}
	_ = s.cl.Close()
	_ = s.ins.Close()
	_ = s.rdb.Close()
}

func (s *asynqSystem) enqueue(ctx context.Context, block bool) (string, error) {
	p, _ := json.Marshal(asynqPayload{Block: block})
	// MaxRetry(0): a cancelled or failed job is archived, not retried, so
	// that "final" means final (asynq's default would retry it 25 times).
	info, err := s.cl.EnqueueContext(ctx, asynq.NewTask(asynqType, p), asynq.MaxRetry(0))
	if err != nil {
		return "", err
	}
	return info.ID, nil
}

func (s *asynqSystem) startWorkers(_ context.Context, n int, h *hooks) error {
	s.hk = h
	s.srv = asynq.NewServer(s.opt(), asynq.Config{
		Concurrency: n,
		// Check for new tasks every 20 ms when idle (default 1 s), as
		// River is set up with a 20 ms poll interval.
		TaskCheckInterval: 20 * time.Millisecond,
		LogLevel:          asynq.FatalLevel,
		ShutdownTimeout:   10 * time.Second,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(asynqType, func(ctx context.Context, t *asynq.Task) error {
		var p asynqPayload
		_ = json.Unmarshal(t.Payload(), &p)
		id, _ := asynq.GetTaskID(ctx)
		return h.work(ctx, id, p.Block)
	})
	if err := s.srv.Start(mux); err != nil {
		return fmt.Errorf("peers: asynq server: %w", err)
	}
	return nil
}

func (s *asynqSystem) stopWorkers(context.Context) error {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv = nil
	}
	return nil
}

func (s *asynqSystem) waitDrained(_ context.Context, n int) error {
	deadline := time.Now().Add(30 * time.Minute)
	for {
		if s.hk.done.Load() >= int64(n) {
			qi, err := s.ins.GetQueueInfo("default")
			if err != nil {
				return fmt.Errorf("peers: queue info: %w", err)
			}
			if qi.Pending == 0 && qi.Active == 0 && qi.Retry == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("peers: %d of %d jobs done after 30 minutes", s.hk.done.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *asynqSystem) status(_ context.Context, id string) (string, error) {
	info, err := s.ins.GetTaskInfo("default", id)
	if err != nil {
		return "", err
	}
	return info.State.String(), nil
}

func (s *asynqSystem) cancelQueued(_ context.Context, id string) error {
	return s.ins.DeleteTask("default", id)
}

func (s *asynqSystem) queuedFinal(_ context.Context, id string) (bool, error) {
	_, err := s.ins.GetTaskInfo("default", id)
	if errors.Is(err, asynq.ErrTaskNotFound) {
		return true, nil
	}
	return false, err
}

func (s *asynqSystem) cancelRunning(_ context.Context, id string) error {
	return s.ins.CancelProcessing(id)
}

func (s *asynqSystem) runningFinal(_ context.Context, id string) (bool, string, error) {
	info, err := s.ins.GetTaskInfo("default", id)
	if errors.Is(err, asynq.ErrTaskNotFound) {
		return true, "deleted", nil
	}
	if err != nil {
		return false, "", err
	}
	st := info.State.String()
	switch info.State {
	case asynq.TaskStateActive, asynq.TaskStatePending:
		return false, st, nil
	}
	return true, st, nil
}
