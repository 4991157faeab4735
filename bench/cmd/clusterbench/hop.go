package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/connectorhq/connector/bench/internal/latency"
	"github.com/connectorhq/connector/messages"
)

// ms converts the histogram's microseconds to milliseconds.
func ms(us int64) float64 { return float64(us) / 1e3 }

// hop: GetStatus of running actions asked of their owner and of the other
// nodes, interleaved; Stops on the owner and on a non-owner.
func (r *report) hop() error {
	for run := 1; run <= r.o.runs; run++ {
		if err := r.hopRun(run); err != nil {
			return err
		}
	}
	return nil
}

func (r *report) hopRun(run int) error {
	site := slowSite()
	defer site.Close()
	e, err := r.o.startCluster(3, r.o.threads, "info", site.URL)
	if err != nil {
		return err
	}
	defer e.stop()
	urls := e.urls()
	members := e.memberNodes()
	if len(members) != 3 {
		return fmt.Errorf("member ids of the nodes from their logs: %v", members)
	}
	// One running action per node it was submitted to (each lands where a
	// thread is free).
	var tokens []string
	for i, u := range urls {
		t, err := submit(u, slowSubmit(i))
		if err != nil {
			return err
		}
		tokens = append(tokens, t)
	}
	rows, err := e.waitState(tokens, time.Minute, "", messages.State_STATE_PROCESSING)
	if err != nil {
		return err
	}
	owner, other := latency.New(), latency.New()
	for _, t := range tokens {
		oi, ok := members[rows[t].owner]
		if !ok {
			return fmt.Errorf("owner %q of %s is no node's member id (%v)", rows[t].owner, t, members)
		}
		// warm the connections and the paths
		for i := range urls {
			if _, err := status(urls[i], t); err != nil {
				return err
			}
		}
		for k := 0; k < r.o.iters; k++ {
			for i, u := range urls {
				t0 := time.Now()
				st, err := status(u, t)
				d := time.Since(t0)
				if err != nil {
					return err
				}
				if st != "Processing" {
					return fmt.Errorf("GetStatus of a running action on node %d: %s", i+1, st)
				}
				if i == oi {
					owner.Record(d)
				} else {
					other.Record(d)
				}
			}
		}
	}
	op50, op99 := ms(owner.Quantile(50)), ms(owner.Quantile(99))
	xp50, xp99 := ms(other.Quantile(50)), ms(other.Quantile(99))
	r.add("hop_owner_p50", op50, "ms")
	r.add("hop_owner_p99", op99, "ms")
	r.add("hop_other_p50", xp50, "ms")
	r.add("hop_other_p99", xp99, "ms")
	r.add("hop_extra_p50", xp50-op50, "ms")
	r.add("hop_ratio_p50", xp50/op50, "x")
	r.add("hop_ratio_p99", xp99/op99, "x")
	logf("hop run %d: owner p50 %.2f p99 %.2f ms; non-owner p50 %.2f p99 %.2f ms", run, op50, op99, xp50, xp99)
	for _, t := range tokens {
		if err := stop(urls[0], t); err != nil {
			return err
		}
	}
	if _, err := e.waitState(tokens, time.Minute, "", messages.State_STATE_STOPPED); err != nil {
		return err
	}

	// Stops: each on a fresh running action, alternately on its owner and
	// on a node that does not own it; the time from sending Stop until
	// that node answers Stopped.
	stopOwner, stopOther, commit := latency.New(), latency.New(), latency.New()
	if _, err := e.db.Exec(context.Background(), `CREATE TABLE IF NOT EXISTS clusterbench_probe (k bigserial PRIMARY KEY, v int)`); err != nil {
		return err
	}
	for k := 0; k < r.o.stops; k++ {
		// the reference: one-row commits on the same PostgreSQL, just
		// before each Stop (a Stop ends with a durable write there)
		for j := 0; j < 4; j++ {
			t0 := time.Now()
			if _, err := e.db.Exec(context.Background(), `INSERT INTO clusterbench_probe (v) VALUES (1)`); err != nil {
				return err
			}
			commit.Record(time.Since(t0))
		}
		t, err := submit(pick(urls), slowSubmit(k))
		if err != nil {
			return err
		}
		rs, err := e.waitState([]string{t}, time.Minute, "", messages.State_STATE_PROCESSING)
		if err != nil {
			return err
		}
		oi := members[rs[t].owner]
		target := oi
		if k%2 == 1 {
			target = (oi + 1 + k/2%2) % 3
		}
		u := urls[target]
		t0 := time.Now()
		if err := stop(u, t); err != nil {
			return err
		}
		for {
			st, err := status(u, t)
			if err != nil {
				return err
			}
			if st == "Stopped" {
				break
			}
			if time.Since(t0) > 30*time.Second {
				return fmt.Errorf("Stop on node %d: still %s after 30 s", target+1, st)
			}
			time.Sleep(500 * time.Microsecond)
		}
		d := time.Since(t0)
		if target == oi {
			stopOwner.Record(d)
		} else {
			stopOther.Record(d)
		}
	}
	if busyStops > 0 {
		r.note("hop run %d: %d Stops were answered ERRORSERVERBUSY and asked again (counted in the time to Stopped): %q", run, busyStops, busyText)
		busyStops, busyText = 0, ""
	}
	r.add("stop_owner_p99", ms(stopOwner.Quantile(99)), "ms")
	r.add("stop_other_p50", ms(stopOther.Quantile(50)), "ms")
	r.add("stop_other_p99", ms(stopOther.Quantile(99)), "ms")
	r.add("stop_ratio_p99", float64(stopOther.Quantile(99))/float64(stopOwner.Quantile(99)), "x")
	r.add("commit_p50", ms(commit.Quantile(50)), "ms")
	r.add("commit_p99", ms(commit.Quantile(99)), "ms")
	r.add("stop_commit_ratio_p99", float64(stopOther.Quantile(99))/float64(commit.Quantile(99)), "x")
	logf("hop run %d: Stop → Stopped p99 owner %.2f ms, non-owner %.2f ms", run, ms(stopOwner.Quantile(99)), ms(stopOther.Quantile(99)))
	return nil
}

// takeover: rounds of SIGKILL of a node that runs actions.
func (r *report) takeover() error {
	site := slowSite()
	defer site.Close()
	e, err := r.o.startCluster(3, r.o.threads, "info", site.URL)
	if err != nil {
		return err
	}
	defer e.stop()
	per := 2 * len(e.c.Nodes) // running actions per round: survivors have room for all
	for round := 1; round <= r.o.rounds; round++ {
		urls := e.urls()
		members := e.memberNodes()
		var tokens []string
		for k := 0; k < per; k++ {
			t, err := submit(urls[k%len(urls)], slowSubmit(k))
			if err != nil {
				return err
			}
			tokens = append(tokens, t)
		}
		rows, err := e.waitState(tokens, time.Minute, "", messages.State_STATE_PROCESSING)
		if err != nil {
			return err
		}
		owned := map[int][]string{}
		for _, t := range tokens {
			i, ok := members[rows[t].owner]
			if !ok {
				return fmt.Errorf("owner %q is no node's member id (%v)", rows[t].owner, members)
			}
			owned[i] = append(owned[i], t)
		}
		var candidates []int
		for i := range owned {
			candidates = append(candidates, i)
		}
		slices.Sort(candidates)
		victim := candidates[(round-1)%len(candidates)]
		orphans := owned[victim]
		victimID := e.c.Nodes[victim].MemberID()
		survivor := urls[(victim+1)%len(urls)]

		// The client of the victim: it asks the victim about an orphaned
		// action, and on a connection error asks a survivor instead, until
		// it gets an answer.
		var stall time.Duration
		var wg sync.WaitGroup
		killed := make(chan time.Time, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := <-killed
			u := urls[victim]
			for time.Since(t0) < time.Minute {
				st, err := status(u, orphans[0])
				if err == nil && st != "" {
					stall = time.Since(t0)
					return
				}
				var errno syscall.Errno
				if u == urls[victim] || errors.As(err, &errno) {
					u = survivor
				}
			}
			stall = time.Minute
		}()
		k0 := time.Now()
		if err := e.c.Nodes[victim].Kill(); err != nil {
			return err
		}
		killed <- k0
		if _, err := e.waitState(orphans, 2*time.Minute, victimID, messages.State_STATE_PROCESSING); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		took := time.Since(k0)
		wg.Wait()
		r.add("takeover_s", took.Seconds(), "s")
		r.add("stall_s", stall.Seconds(), "s")
		r.add("stall_lease", stall.Seconds()/r.o.lease.Seconds(), "x")
		logf("takeover round %d: node%d killed with %d running actions: all running on survivors after %.2f s; its client's stall %.2f s", round, victim+1, len(orphans), took.Seconds(), stall.Seconds())
		if err := e.c.Nodes[victim].Start(); err != nil {
			return err
		}
		if err := e.c.WaitMembers(len(e.c.Nodes), time.Minute); err != nil {
			return err
		}
		for _, t := range tokens {
			if err := stop(survivor, t); err != nil {
				return fmt.Errorf("round %d: stop: %w", round, err)
			}
		}
		if _, err := e.waitState(tokens, time.Minute, "", messages.State_STATE_STOPPED); err != nil {
			return err
		}
	}
	return nil
}
