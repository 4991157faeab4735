package pgstore

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// damage overwrites the record of action id with bytes that do not decode.
func damage(t *testing.T, s *Store, id string) {
	t.Helper()
	_, err := s.pool.Exec(ctx, `UPDATE connector_actions SET record = '\xffffffff'::bytea WHERE id = $1`, []byte(id))
	require.NoError(t, err)
}

// A claim that takes an action whose record does not decode has been
// committed by the time its rows are read (they are decoded after the
// transaction): the node owns the action, Processing, at the claim's
// epoch. The group commit still succeeds, its submissions and its other
// claims with it, and the damaged claim is reported as such (it used to
// fail the whole group with ErrCorrupt: its submissions were answered as
// not accepted, and the action stayed Processing with no worker, for
// ever). Taking it again (Reown, as the node's reconciliation does; Adopt,
// as another node's take-over does) ends it as Error, in a record that
// decodes and says why, and frees its tasks; a damaged record among the
// rows taken no longer fails the others.
func TestDamagedClaimEndsAsError(t *testing.T) {
	t.Parallel()
	a, url, logged := nodeA(t)
	d, sound, next := newAction("damaged", 9), newAction("sound", 5), newAction("next", 1)
	d.Exclusive, next.Exclusive = []string{"T"}, []string{"T"}
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{d, sound, next}, 100)
	require.NoError(t, err)
	damage(t, a, "damaged")

	r, err := a.Commit(ctx, "fetch", "a", "a:1", Group{Submits: []NewAction{newAction("new", 0)}, MaxWaiting: 100, Claim: 2})
	require.NoError(t, err, "a damaged claim does not fail the group")
	require.Len(t, r.Seqs, 1)
	require.NotZero(t, r.Seqs[0], "the submission is committed, and said so")
	require.Equal(t, []string{"damaged", "sound"}, claimIDs(r.Claimed))
	require.ErrorIs(t, r.Claimed[0].Damaged, store.ErrCorrupt)
	require.NoError(t, r.Claimed[1].Damaged)
	require.Equal(t, messages.State_STATE_QUEUED, r.Claimed[1].Record.Status.State)
	require.Contains(t, logged.String(), "damaged")
	require.Contains(t, logged.String(), "id=damaged")

	// Reading it still says it is damaged (the claim did not write its
	// record); the node owns it, Processing.
	got, ok, err := a.Action(ctx, "fetch", "damaged")
	require.NoError(t, err)
	require.True(t, ok)
	require.ErrorIs(t, got.Damaged, store.ErrCorrupt, "the claim wrote no record")
	require.Equal(t, messages.State_STATE_PROCESSING, got.Record.Status.State)
	os, err := a.Owners(ctx, "fetch", "a", []string{"damaged"})
	require.NoError(t, err)
	require.Contains(t, os, Ownership{ID: "damaged", Owner: "a", Epoch: r.Claimed[0].Epoch, State: messages.State_STATE_PROCESSING, Running: true})

	// Taken again at the claim's epoch, it ends as Error.
	rows, err := a.Reown(ctx, "fetch", "a", "a:1", []string{"damaged"}, []int64{r.Claimed[0].Epoch},
		func(*messages.StoredAction) { t.Fatal("a damaged action is not put back as interrupted") })
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, "damaged", rows[0].Record.Id)
	require.Equal(t, r.Claimed[0].Epoch+1, rows[0].Epoch)
	requireDamagedError(t, rows[0].Record.Status)
	got, ok, err = a.Action(ctx, "fetch", "damaged")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, got.Damaged, "its record decodes now")
	require.Equal(t, "a", got.Owner)
	requireDamagedError(t, got.Record.Status)
	require.EqualValues(t, 9, got.Record.Status.Priority)
	requireQueuedKept(t, a, "damaged", rows[0].Record.Status)

	// Its task is free: next, which needs it, is claimed.
	cs, err := a.Claim(ctx, "fetch", "a", "a:1", 5)
	require.NoError(t, err)
	require.Equal(t, []string{"next", "new"}, claimIDs(cs))

	// Another node takes over a's actions, one of them damaged while it
	// ran: that one ends as Error, the others are put back.
	damage(t, a, "sound")
	b := nodesAt(t, url, "b")[0]
	adopted, err := b.Adopt(ctx, "fetch", "b", "b:1", []string{"a"}, 0, func(x *messages.StoredAction) {
		x.Status.State = messages.State_STATE_QUEUED
	})
	require.NoError(t, err, "a damaged record does not fail the take-over of the others")
	byID := map[string]*messages.ActionStatus{}
	for _, row := range adopted {
		require.Equal(t, "b", row.Owner)
		byID[row.Record.Id] = row.Record.Status
	}
	require.Len(t, byID, 4)
	requireDamagedError(t, byID["sound"])
	require.Equal(t, messages.State_STATE_QUEUED, byID["next"].State)
	require.Equal(t, messages.State_STATE_QUEUED, byID["new"].State)
	got, _, err = b.Action(ctx, "fetch", "sound")
	require.NoError(t, err)
	require.NoError(t, got.Damaged, "its record decodes now")
	requireDamagedError(t, got.Record.Status)
	requireQueuedKept(t, b, "sound", byID["sound"])
}

// requireQueuedKept: an action ended as damaged by a node that took it
// keeps its row's queued time (the record, which held it, cannot be
// read; writing the new record writes its times into the row).
func requireQueuedKept(t *testing.T, s *Store, id string, st *messages.ActionStatus) {
	t.Helper()
	require.EqualValues(t, 1000, st.QueuedUnixMs, "%s: the row's queued time", id)
	var queued int64
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT queued_ms FROM connector_actions WHERE id = $1`, []byte(id)).Scan(&queued))
	require.EqualValues(t, 1000, queued, "%s: queued_ms is not cleared", id)
	got, _, err := s.Action(ctx, "fetch", id)
	require.NoError(t, err)
	require.EqualValues(t, 1000, got.Record.Status.QueuedUnixMs, id)
}

func requireDamagedError(t *testing.T, st *messages.ActionStatus) {
	t.Helper()
	require.Equal(t, messages.State_STATE_ERROR, st.State)
	require.False(t, st.Running)
	require.Contains(t, st.Error, "record in the shared store is damaged")
	require.NotZero(t, st.EndedUnixMs)
}

// A damaged row that no node takes (queued and not yet claimed, or ended:
// an ended action is neither claimed nor taken over) used to fail every
// list that included it (ErrCorrupt), on every node, until retention
// removed it. A list now shows it with Damaged set, from its row's
// columns, with an error saying its record cannot be read, and the rows
// around it as they are; nothing is written or logged. Read alone
// (Action, GetStatus by token) it is the same entry.
func TestDamagedRowIsListed(t *testing.T) {
	t.Parallel()
	a, _, logged := nodeA(t)
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("first", 3), newAction("queued", 2), newAction("ended", 1), newAction("last", 0)}, 100)
	require.NoError(t, err)
	_, err = a.pool.Exec(ctx, `UPDATE connector_actions SET state = $2, ended_ms = 5000 WHERE id = $1`,
		[]byte("ended"), int16(messages.State_STATE_FINISHED))
	require.NoError(t, err)
	damage(t, a, "queued")
	damage(t, a, "ended")

	check := func(what string, rows []Row) {
		t.Helper()
		require.Len(t, rows, 4, what)
		byID := map[string]Row{}
		for _, r := range rows {
			byID[r.Record.Id] = r
		}
		for _, id := range []string{"first", "last"} {
			require.NoError(t, byID[id].Damaged, what)
			require.Equal(t, "tok-"+id, byID[id].Record.Status.Token, what)
		}
		for id, want := range map[string]messages.State{"queued": messages.State_STATE_QUEUED, "ended": messages.State_STATE_FINISHED} {
			r := byID[id]
			require.ErrorIs(t, r.Damaged, store.ErrCorrupt, what)
			require.Equal(t, "a", r.Owner, what)
			st := r.Record.Status
			require.Equal(t, want, st.State, "%s: the row's state", what)
			require.NotZero(t, st.Seq, what)
			require.Contains(t, st.Error, "record in the shared store is damaged and cannot be read", what)
			require.Contains(t, st.Error, "damaged data in the shared database", what)
			require.NotContains(t, st.Error, "file", "%s: a row is damaged, not a file", what)
			require.Empty(t, st.Token, "%s: the token was in the record", what)
			require.EqualValues(t, 1000, st.QueuedUnixMs, "%s: the row's queued_ms", what)
		}
		require.EqualValues(t, 5000, byID["ended"].Record.Status.EndedUnixMs, "%s: the row's ended_ms", what)
		require.Zero(t, byID["queued"].Record.Status.EndedUnixMs, what)
	}
	rows, err := a.ListRows(ctx, "fetch", nil)
	require.NoError(t, err, "a damaged row does not fail the list")
	check("ListRows", rows)
	rows, err = a.ListRows(ctx, "fetch", &messages.ListActions{States: []messages.State{messages.State_STATE_FINISHED}})
	require.NoError(t, err)
	require.Len(t, rows, 1, "filtered by its row's state")
	require.Equal(t, "ended", rows[0].Record.Id)

	// Read alone (GetStatus by token), a damaged row is the list's entry
	// (it used to fail with ErrCorrupt); nothing was written: the record
	// is still damaged.
	listed := map[string]Row{}
	rows, err = a.ListRows(ctx, "fetch", nil)
	require.NoError(t, err)
	for _, r := range rows {
		listed[r.Record.Id] = r
	}
	for _, id := range []string{"queued", "ended", "first"} {
		got, ok, err := a.Action(ctx, "fetch", id)
		require.NoError(t, err, "a damaged row does not fail the read")
		require.True(t, ok)
		require.Equal(t, listed[id].Damaged, got.Damaged, id)
		require.Equal(t, listed[id].Owner, got.Owner, id)
		require.Equal(t, listed[id].Epoch, got.Epoch, id)
		require.True(t, proto.Equal(listed[id].Record, got.Record), "%s: the list's entry: %v, read alone: %v", id, listed[id].Record, got.Record)
	}
	got, _, err := a.Action(ctx, "fetch", "ended")
	require.NoError(t, err)
	require.ErrorIs(t, got.Damaged, store.ErrCorrupt)
	require.Equal(t, messages.State_STATE_FINISHED, got.Record.Status.State)
	require.NotContains(t, logged.String(), "level=ERROR", "a list logs nothing")
	require.NotContains(t, logged.String(), "level=WARN", "a list logs nothing")
}
