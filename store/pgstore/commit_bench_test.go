package pgstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// BenchmarkClusterCommit measures a cluster node's group commit as the
// scale benchmark's nodes make them (issue 17): each commit carries k
// submissions of Identifiers-like actions, the ends of the k actions the
// previous commit claimed, the bookkeeping merges of their tasks, and a
// claim for the node's free threads (which takes the k submissions).
// Besides the wall time it reports this process's CPU per commit
// (cpu-µs/op: the client's share; PostgreSQL's is not counted), which is
// what a node pays per round trip of its pipeline.
func BenchmarkClusterCommit(b *testing.B) {
	for _, k := range []int{1, 5, 16} {
		b.Run(fmt.Sprintf("items=%d", k), func(b *testing.B) { benchCommit(b, k) })
	}
}

func benchCommit(b *testing.B, k int) {
	url := server.DatabaseT(b)
	s, err := Open(ctx, Config{URL: url, Node: "n1"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.RegisterNode(ctx, "n1", "n1:1", 64); err != nil {
		b.Fatal(err)
	}
	const tasks = 16
	dss := make([]store.MergeBookkeeper, tasks)
	for i := range dss {
		ds, err := s.Datastore("EMPTY" + strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		dss[i] = ds.(store.MergeBookkeeper)
	}
	seq := 0
	var running []Claimed
	commit := func() {
		g := Group{MaxWaiting: 5000000, Claim: 64}
		for _, c := range running {
			rec := c.Record
			now := time.Now().UnixMilli()
			rec.Status.State, rec.Status.Running, rec.Status.StartedUnixMs, rec.Status.EndedUnixMs =
				messages.State_STATE_FINISHED, false, c.StartedMs, now
			g.Writes = append(g.Writes, OwnedWrite{Epoch: c.Epoch, Record: rec, Release: false})
			m := store.Merge{Add: map[string]int64{"calls": 1}, Set: map[string]json.RawMessage{
				"action": json.RawMessage(`"IDENTIFIERS"`), "laststart": json.RawMessage(strconv.FormatInt(now, 10)),
				"lastfinish": json.RawMessage(strconv.FormatInt(now, 10))}}
			if err := dss[seq%tasks].MergeBookkeeping([]byte("meta"), m); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < k; i++ {
			seq++
			id := uuid.Must(uuid.NewV7()).String()
			g.Submits = append(g.Submits, NewAction{Record: &messages.StoredAction{
				Id: id,
				Spec: &messages.ActionSpec{Action: "FETCH", FetchAction: "IDENTIFIERS",
					Params: []*messages.Param{{Name: "configsection", Value: "EMPTY" + strconv.Itoa(seq%tasks)}},
					Tasks:  []string{"EMPTY" + strconv.Itoa(seq%tasks)}, Client: "127.0.0.1:54321", Role: "admin"},
				Status: &messages.ActionStatus{Token: "MTI3LjAuMC4xOjkwMDA6RkVUQ0g6" + id, State: messages.State_STATE_QUEUED,
					QueuedUnixMs: time.Now().UnixMilli()},
			}})
		}
		r, err := s.Commit(ctx, "fetch", "n1", "n1:1", g)
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Claimed) != k || len(r.Fenced) != 0 {
			b.Fatalf("claimed %d of %d, fenced %d", len(r.Claimed), k, len(r.Fenced))
		}
		running = r.Claimed
	}
	for i := 0; i < 20; i++ { // prepared statements, the queue row
		commit()
	}
	b.ResetTimer()
	c0 := cpuNow()
	for i := 0; i < b.N; i++ {
		commit()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuNow()-c0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// cpuNow is this process's user and system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
