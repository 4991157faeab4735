package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A group commit whose frame would be over the frame length's limit (a
// uint32: 65 submissions of 64 MiB) is written as several frames, each
// within it, so the next Open replays it all. The limit is lowered here
// so that a few KiB stand for 4 GiB. Not parallel: it changes a package
// variable (the parallel tests run after it).
func TestJournalBatchOverFrameLimitReplays(t *testing.T) {
	defer func(n int) { maxFramePayload = n }(maxFramePayload)
	maxFramePayload = 4095
	dir := t.TempDir()
	s := openJ(t, dir)
	ds, err := s.Datastore("crawl")
	require.NoError(t, err)
	putDeferred(t, ds, "bookkeeping", strings.Repeat("d", 1500)) // rides the batch's frame(s)
	var batch []ActionMutation
	want := map[string]messages.State{}
	for i := range 20 {
		a := rec(fmt.Sprintf("a%03d", i), uint64(i+1), messages.State_STATE_QUEUED)
		a.Spec.Params = []*messages.Param{{Name: "BIG", Value: strings.Repeat("x", 1000)}}
		batch = append(batch, ActionMutation{Put: a})
		want[a.Id] = messages.State_STATE_QUEUED
	}
	seq := s.j.seq
	require.NoError(t, s.ApplyActions("fetch", batch))
	require.Greater(t, s.j.seq-seq, uint64(4), "the batch is in several frames")
	crash(t, s)

	s2 := openJ(t, dir)
	defer s2.Close()
	require.Equal(t, want, ids(t, s2), "every record of the batch is replayed")
	ds2, err := s2.Datastore("crawl")
	require.NoError(t, err)
	v, err := ds2.Get([]byte("bookkeeping"))
	require.NoError(t, err)
	require.Len(t, v, 1500, "the deferred write that rode the batch is replayed")
}

// A change that alone does not fit in a frame is refused before anything
// is written; the store takes later batches.
func TestJournalChangeOverFrameLimitRefused(t *testing.T) {
	defer func(n int) { maxFramePayload = n }(maxFramePayload)
	maxFramePayload = 4095
	s := openJ(t, t.TempDir())
	defer s.Close()
	a := rec("big", 1, messages.State_STATE_QUEUED)
	a.Spec.Params = []*messages.Param{{Name: "BIG", Value: strings.Repeat("x", 5000)}}
	err := s.ApplyActions("fetch", []ActionMutation{{Put: a}})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "does not fit in a journal frame")
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("small", 2, messages.State_STATE_QUEUED)}}))
	require.Equal(t, map[string]messages.State{"small": messages.State_STATE_QUEUED}, ids(t, s))
}
