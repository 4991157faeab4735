package mailfetch

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/mailfetch/imapbox"
	"github.com/connectorhq/connector/store"
)

// Two tasks letting one message go at the same time (runs of two
// actions) must not each keep it for the other: the first to take its
// turn keeps it and forgets its own record within its turn, before its
// batch is written, so that the second finds no other record holding it
// and removes it.
func TestSharedKeepTakesTurns(t *testing.T) {
	g := newRig(t, "[FetchTasks]\n0=A\n1=B\n2=C\n[A]\nTransport=GMAILAPI\nUsername="+user+"\nServiceAccountKeyFile=/nonexistent\n"+
		"[B]\nTransport=GMAILAPI\nUsername="+user+"\nServiceAccountKeyFile=/nonexistent\n"+
		"[C]\nTransport=GMAILAPI\nUsername=carol@example.com\nServiceAccountKeyFile=/nonexistent\n")
	ref := imapbox.GmailReference(user, "18c1")
	rec := &record{Version: "INBOX", Ref: ref, Kids: []string{"2"}}
	refs := append([]string{ref}, kidRefs(ref, rec.Kids)...)
	key := recordKey("", "18c1")
	dss := map[string]store.Datastore{}
	for _, task := range []string{"A", "B", "C"} {
		d, err := g.st.Datastore(task)
		require.NoError(t, err)
		require.NoError(t, d.Update(func(w store.Writer) error { return w.Put(key, rec.encode()) }))
		dss[task] = d
	}
	dsA, dsB := dss["A"], dss["B"]
	log := slog.New(slog.DiscardHandler)
	require.Nil(t, g.repo.shared("C", dss["C"], log), "no other task reads carol's mailbox")

	shA, shB := g.repo.shared("A", dsA, log), g.repo.shared("B", dsB, log)
	shB.load() // B's index, read before A's turn: it names A's record
	// Each keep is given a copy: it takes the kept references out of the
	// slice it is given, in place (given refs itself, B's answer was
	// compared with what A's keep had left of it).
	left, err := shA.keep(ref, slices.Clone(refs), key)
	require.NoError(t, err)
	require.Empty(t, left, "B holds it: kept")
	v, err := dsA.Get(key)
	require.NoError(t, err)
	require.Nil(t, v, "A forgot its record within its turn")
	v, err = dsB.Get(key)
	require.NoError(t, err)
	require.Contains(t, string(v), `"a":true`, "B delivers it again")

	left, err = shB.keep(ref, slices.Clone(refs), key)
	require.NoError(t, err)
	require.Equal(t, refs, left, "A holds it no longer: B removes it")
}

// keepBatch reads the other tasks' records again for a later batch once
// another task wrote records since (its restsync.Batch's Wrote): a
// message B delivered for the first time after A's first batch with
// removals, then let go by A in a later batch, stays.
func TestSharedKeepBatchSeesRecordsWrittenSinceItsLastBatch(t *testing.T) {
	g := newRig(t, "[FetchTasks]\n0=A\n1=B\n[A]\nTransport=GMAILAPI\nUsername="+user+"\nServiceAccountKeyFile=/nonexistent\n"+
		"[B]\nTransport=GMAILAPI\nUsername="+user+"\nServiceAccountKeyFile=/nonexistent\n")
	dsA, err := g.st.Datastore("A")
	require.NoError(t, err)
	dsB, err := g.st.Datastore("B")
	require.NoError(t, err)
	sh := g.repo.shared("A", dsA, slog.New(slog.DiscardHandler))
	drop := func(id string) *restsync.Dropping {
		ref := imapbox.GmailReference(user, id)
		return &restsync.Dropping{Key: string(recordKey("", id)), Rec: &restsync.Record{Ref: ref}, Refs: []string{ref}, Forget: true}
	}

	x := drop("18c1")
	require.NoError(t, sh.keepBatch([]*restsync.Dropping{x}))
	require.Len(t, x.Refs, 1, "no other task holds it: removed")

	// B delivers 18c2 and records it (its batch's Wrote).
	rec := &record{Version: "INBOX", Ref: imapbox.GmailReference(user, "18c2")}
	require.NoError(t, dsB.Update(func(w store.Writer) error { return w.Put(recordKey("", "18c2"), rec.encode()) }))
	g.repo.wrote["B"].Add(1)

	y := drop("18c2")
	require.NoError(t, sh.keepBatch([]*restsync.Dropping{y}))
	require.Empty(t, y.Refs, "B holds it now: kept")
	v, err := dsB.Get(recordKey("", "18c2"))
	require.NoError(t, err)
	require.Contains(t, string(v), `"a":true`, "B delivers it again")
}
