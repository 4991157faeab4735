package store

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// TestEncodeActionsFramesEachPut checks encodeActions against the
// encoding and framing it replaces: each put's bytes are encodeAction's,
// preceded by the checksum appendFrame gives them under their seq key (the
// value the checkpoint writes to the seqs bucket), deletes get nil, and the
// values do not overlap (the overlay keeps each until it is folded).
func TestEncodeActionsFramesEachPut(t *testing.T) {
	var batch []ActionMutation
	for i := range 20 {
		if i%5 == 4 {
			batch = append(batch, ActionMutation{Delete: fmt.Sprintf("gone-%d", i)})
			continue
		}
		a := rec(fmt.Sprintf("0190f3a2-7c1e-7000-8000-%012x", i), uint64(100+i), messages.State_STATE_QUEUED)
		a.Spec.Params = append(a.Spec.Params, &messages.Param{Name: "N", Value: fmt.Sprint(i * i)})
		batch = append(batch, ActionMutation{Put: a})
	}
	framed, err := encodeActions("fetch", batch)
	require.NoError(t, err)
	require.Len(t, framed, len(batch))
	for i, m := range batch {
		if m.Put == nil {
			require.Nil(t, framed[i], "mutation %d", i)
			continue
		}
		want, err := encodeAction("fetch", m.Put)
		require.NoError(t, err)
		require.Equal(t, frame(seqKey(m.Put.Status.Seq), want), framed[i], "mutation %d", i)
		require.Equal(t, len(framed[i]), cap(framed[i]), "mutation %d: an append to it would overwrite the next", i)
	}
}
