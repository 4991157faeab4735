package pgstore

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// withExecMode is url with default_query_exec_mode=mode.
func withExecMode(url, mode string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "default_query_exec_mode=" + mode
}

// A URL with default_query_exec_mode=exec or =simple_protocol (what one
// sets behind PgBouncer in transaction pooling) has every parameter sent
// in text format, without its type, and every result read in text
// format. The arrays built in binary format (arrays.go) failed to encode
// there ("unable to encode ... into text format for unknown type"), so
// every write failed, reported as the database being unavailable, and
// the group commit's raw readers would have refused text results. Every
// write and read of the store works in both modes: the conformance suite,
// and a cluster node's group commit with submissions, a claim that takes
// them, owned writes, deferred writes and merges, and a listing check.
func TestQueryExecModes(t *testing.T) {
	for _, mode := range []string{"exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			t.Run("conformance", func(t *testing.T) {
				storetest.Run(t, func(t *testing.T) store.Store {
					return openConformanceT(t, withExecMode(server.DatabaseT(t), mode))
				}, func(t *testing.T, s store.Store) store.Store {
					url := s.(*Store).cfg.URL
					require.NoError(t, s.Close())
					return openConformanceT(t, url)
				})
			})
			t.Run("cluster", func(t *testing.T) {
				t.Parallel()
				clusterInMode(t, withExecMode(server.DatabaseT(t), mode))
			})
		})
	}
}

func clusterInMode(t *testing.T, url string) {
	ns := nodesAt(t, url, "a", "b")
	a, b := ns[0], ns[1]
	_, err := b.Submit(ctx, "fetch", "b", "b:1", []NewAction{newAction("old", 0)}, 100)
	require.NoError(t, err)
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")
	require.NoError(t, da.Update(put("m", `{"calls":10}`)))
	require.NoError(t, store.UpdateBookkeeping(da, put("k", "v")))
	require.NoError(t, store.UpdateBookkeeping(da, func(w store.Writer) error { return w.Delete([]byte("gone")) }))
	merge(t, da, "m", call("A1", 1))
	require.Equal(t, "", listing(t, da, "x/"), "a cached listing, checked by the next claim")
	n1 := newAction("n1", 5)
	n1.Exclusive = []string{"T"}
	r, err := a.Commit(ctx, "fetch", "a", "a:1", Group{
		Submits: []NewAction{n1, newAction("n2", 0)}, MaxWaiting: 100, Claim: 2,
	})
	require.NoError(t, err)
	require.Len(t, r.Seqs, 2)
	require.NotZero(t, r.Seqs[0])
	require.Less(t, r.Seqs[0], r.Seqs[1])
	require.Equal(t, []string{"n1", "old"}, claimIDs(r.Claimed), "priority, then arrival, the group's own submissions included")
	require.Equal(t, "a", r.Claimed[0].PrevOwner)
	require.Equal(t, "b:1", r.Claimed[1].PrevAddr)
	require.Equal(t, r.Seqs[0], r.Claimed[0].Record.Status.Seq)
	require.EqualValues(t, 5, r.Claimed[0].Record.Status.Priority)
	require.EqualValues(t, 2, r.Claimed[0].Epoch)
	require.Equal(t, "old", r.Claimed[1].Record.Id, "a claimed record read back")
	require.Equal(t, "v", getS(t, db, "k"))
	require.JSONEq(t, `{"calls":11,"action":"A1","last":1}`, getS(t, db, "m"))

	done := r.Claimed[0].Record
	done.Status.State = messages.State_STATE_FINISHED
	stale := r.Claimed[1].Record
	r, err = a.Commit(ctx, "fetch", "a", "a:1", Group{
		Writes: []OwnedWrite{{Epoch: r.Claimed[0].Epoch, Record: done, Release: true}, {Epoch: 1, Record: stale}}, Claim: 4,
	})
	require.NoError(t, err)
	require.Equal(t, []string{"old"}, r.Fenced, "written only at its epoch")
	require.Equal(t, []string{"n2"}, claimIDs(r.Claimed))
	row, ok, err := b.Action(ctx, "fetch", "n1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, messages.State_STATE_FINISHED, row.Record.Status.State)

	got, err := b.Claim(ctx, "fetch", "b", "b:1", 1)
	require.NoError(t, err)
	require.Empty(t, got)
	rec := func(id string, seq uint64) *messages.StoredAction {
		return &messages.StoredAction{Id: id, Spec: &messages.ActionSpec{FetchAction: "SYNCHRONIZE"},
			Status: &messages.ActionStatus{Seq: seq, State: messages.State_STATE_QUEUED}}
	}
	require.NoError(t, b.ApplyActions("other", []store.ActionMutation{{Put: rec("o1", 1)}, {Put: rec("o2", 2)}}))
	require.NoError(t, b.ApplyActions("other", []store.ActionMutation{{Delete: "o1"}}))
	var ids []string
	require.NoError(t, b.LoadActions("other", func(a *messages.StoredAction) error {
		ids = append(ids, a.Id)
		return nil
	}))
	require.Equal(t, []string{"o2"}, ids)
}
