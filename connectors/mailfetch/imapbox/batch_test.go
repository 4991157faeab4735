package imapbox

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// A command's UID set stays within maxSetBytes as go-imap writes it,
// whatever the UIDs; the chunks hold every UID once, in order, at most n
// each; consecutive UIDs fill a chunk to n.
func TestChunkUIDsBoundsTheSetAsSent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sparse := func(start imap.UID, step, n int) []imap.UID {
		var out []imap.UID
		u := start
		for range n {
			out = append(out, u)
			u += imap.UID(1 + r.IntN(step))
		}
		return out
	}
	var dense []imap.UID
	for u := imap.UID(1); u <= 2500; u++ {
		dense = append(dense, u)
	}
	mixed := append(sparse(4000000000, 3, 3000), sparse(7, 2, 3000)...) // changed messages after fresh ones
	cases := map[string][]imap.UID{
		"dense":        dense,
		"sparse large": sparse(4000000000, 1000, 5000),
		"pairs":        sparse(1000000000, 2, 5000),
		"mixed":        mixed,
		"one":          {42},
	}
	for name, uids := range cases {
		for _, n := range []int{1, 100, DefaultFetchBatch, 10000} {
			chunks := chunkUIDs(uids, n)
			var all []imap.UID
			for _, c := range chunks {
				require.NotEmpty(t, c, name)
				require.LessOrEqual(t, len(c), n, name)
				require.LessOrEqual(t, len(imap.UIDSetNum(c...).String()), maxSetBytes, "%s, n=%d", name, n)
				all = append(all, c...)
			}
			require.Equal(t, uids, all, "%s, n=%d", name, n)
			if name == "dense" {
				require.Len(t, chunks, (len(uids)+n-1)/n, "consecutive UIDs are one range")
			}
		}
	}
	// setGrowth counts exactly what go-imap writes for sorted UIDs.
	for name, uids := range cases {
		if !slices.IsSorted(uids) {
			continue
		}
		for k := 1; k <= min(len(uids), 300); k++ {
			size := 0
			for i := range k {
				size += setGrowth(uids[:i], uids[i])
			}
			require.Equal(t, len(imap.UIDSetNum(uids[:k]...).String()), size, "%s, %d UIDs", name, k)
		}
	}
}

// With the default batch, 250 messages are one UID FETCH (one wait of the
// server for a command, not three), handed over in groups of at most
// fetchGroupMessages as they arrive; without the streamed FETCH (Gmail's
// way: flags first, then the bodies), one metadata FETCH and one body
// FETCH per group.
func TestDovecotDefaultBatchIsOneCommandHandedOverInGroups(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice": "pw"}})
	const n = 250
	for i := range n {
		d.MustDeliver(t, "alice", "INBOX", mailtest.Message{From: "a@example.com", Subject: fmt.Sprintf("m%d", i), Text: "hello"}.Raw(), "")
	}
	ctx := context.Background()
	b, err := Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice", Password: "pw"})
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, 1000, b.cfg.FetchBatch)
	plan, err := b.Plan(ctx, mailbox.Collection{Name: "INBOX"}, &known{versions: map[string]string{}})
	require.NoError(t, err)
	require.Len(t, plan.Fetch, n)
	var uids []imap.UID
	var uidValidity uint32
	for _, k := range plan.Fetch {
		v, u, ok := ParseKey(k)
		require.True(t, ok)
		uidValidity, uids = v, append(uids, u)
	}
	for _, way := range []struct {
		name     string
		fetch    func(context.Context, uint32, []imap.UID, func([]*mailbox.Message) bool) error
		commands int64
	}{{"streamed", b.fetchStreamed, 1}, {"flags first", b.fetchGroups, 1 + 3}} {
		base := b.Stats().Commands
		var sizes []int
		var got []uint32
		require.NoError(t, way.fetch(ctx, uidValidity, uids, func(msgs []*mailbox.Message) bool {
			sizes = append(sizes, len(msgs))
			for _, m := range msgs {
				got = append(got, m.UID)
			}
			return true
		}), way.name)
		require.Equal(t, []int{100, 100, 50}, sizes, way.name)
		require.Equal(t, way.commands, b.Stats().Commands-base, way.name)
		require.Len(t, got, n, way.name)
		require.True(t, slices.IsSorted(got), way.name)
	}
}
