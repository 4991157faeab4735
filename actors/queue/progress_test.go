package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

const (
	queued     = messages.State_STATE_QUEUED
	processing = messages.State_STATE_PROCESSING
	paused     = messages.State_STATE_PAUSED
	finished   = messages.State_STATE_FINISHED
	stopped    = messages.State_STATE_STOPPED
	failed     = messages.State_STATE_ERROR
)

// stagedProgress is what the "stages" test repository publishes: task A
// crawling with its deletions waiting, task B not started, task C done.
func stagedProgress() *messages.Progress {
	return &messages.Progress{Percent: 40, Stage: "A crawl", Stages: []*messages.Stage{
		{Name: "A", Percent: 20, State: processing, Stages: []*messages.Stage{
			{Name: "crawl", Percent: 22, State: processing}, {Name: "deletions", State: queued}}},
		{Name: "B", State: queued, Stages: []*messages.Stage{
			{Name: "crawl", State: queued}, {Name: "deletions", State: queued}}},
		{Name: "C", Percent: 100, State: finished, Stages: []*messages.Stage{
			{Name: "crawl", Percent: 100, State: finished}, {Name: "deletions", Percent: 100, State: finished}}},
	}}
}

// stageStates flattens a stage tree to "path state" lines.
func stageStates(p *messages.Progress) []string {
	var out []string
	var walk func(prefix string, ss []*messages.Stage)
	walk = func(prefix string, ss []*messages.Stage) {
		for _, s := range ss {
			out = append(out, prefix+s.GetName()+" "+messages.StatusName(s.GetState()))
			walk(prefix+s.GetName()+"/", s.GetStages())
		}
	}
	walk("", p.GetStages())
	return out
}

// TestStagesAs: the stages of an ended action end with it, the running
// stages of a paused one read Paused; ended stages keep their state; the
// published snapshot is never changed.
func TestStagesAs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		state messages.State
		want  []string
	}{
		{stopped, []string{"A Stopped", "A/crawl Stopped", "A/deletions Stopped", "B Stopped", "B/crawl Stopped", "B/deletions Stopped",
			"C Finished", "C/crawl Finished", "C/deletions Finished"}},
		{failed, []string{"A Error", "A/crawl Error", "A/deletions Error", "B Error", "B/crawl Error", "B/deletions Error",
			"C Finished", "C/crawl Finished", "C/deletions Finished"}},
		{paused, []string{"A Paused", "A/crawl Paused", "A/deletions Queued", "B Queued", "B/crawl Queued", "B/deletions Queued",
			"C Finished", "C/crawl Finished", "C/deletions Finished"}},
		{finished, []string{"A Finished", "A/crawl Finished", "A/deletions Finished", "B Finished", "B/crawl Finished", "B/deletions Finished",
			"C Finished", "C/crawl Finished", "C/deletions Finished"}},
	}
	for _, c := range cases {
		t.Run(messages.StatusName(c.state), func(t *testing.T) {
			t.Parallel()
			in := stagedProgress()
			orig := proto.Clone(in)
			out := stagesAs(in, c.state)
			require.Equal(t, c.want, stageStates(out))
			require.Equal(t, "A crawl", out.GetStage())
			require.EqualValues(t, 40, out.GetPercent())
			require.True(t, proto.Equal(orig, in), "the published snapshot changed")
		})
	}
	require.Nil(t, stagesAs(nil, stopped))
	flat := &messages.Progress{Percent: 3, Stage: "x"}
	require.Same(t, flat, stagesAs(flat, stopped))
	done := &messages.Progress{Stages: []*messages.Stage{{Name: "a", State: finished}}}
	require.Same(t, done, stagesAs(done, stopped), "nothing to change: the snapshot itself")
}

// TestProgressStagesEndWithTheAction drives real actions whose repository
// published stages still Processing and Queued, ends (or pauses) each in
// a different way, and reads Progress: no stage of an ended action is
// still running.
func TestProgressStagesEndWithTheAction(t *testing.T) {
	t.Parallel()
	running := []string{"A Processing", "A/crawl Processing", "A/deletions Queued", "B Queued", "B/crawl Queued", "B/deletions Queued",
		"C Finished", "C/crawl Finished", "C/deletions Finished"}
	cases := []struct {
		name  string
		mode  string
		end   func(b *bundle, tok string)
		state messages.State
		want  []string
	}{
		{"stopped", "stages", func(b *bundle, tok string) {
			_, err := b.q.Stop(context.Background(), tok)
			require.NoError(t, err)
		}, stopped, []string{"A Stopped", "A/crawl Stopped", "A/deletions Stopped", "B Stopped", "B/crawl Stopped",
			"B/deletions Stopped", "C Finished", "C/crawl Finished", "C/deletions Finished"}},
		{"failed", "stagesfail", func(b *bundle, tok string) { b.repo.Release(tok) }, failed,
			[]string{"A Error", "A/crawl Error", "A/deletions Error", "B Error", "B/crawl Error", "B/deletions Error",
				"C Finished", "C/crawl Finished", "C/deletions Finished"}},
		{"paused", "stages", func(b *bundle, tok string) {
			_, err := b.q.PauseAction(context.Background(), tok)
			require.NoError(t, err)
		}, paused, []string{"A Paused", "A/crawl Paused", "A/deletions Queued", "B Queued", "B/crawl Queued",
			"B/deletions Queued", "C Finished", "C/crawl Finished", "C/deletions Finished"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			tok := b.submit(t, c.mode, 0)
			testwait.For(t, 10*time.Second, func() bool {
				r, err := b.q.Progress(context.Background(), tok)
				require.NoError(t, err)
				return len(r.Progress.GetStages()) > 0
			}, "the action to publish its stages")
			r, err := b.q.Progress(context.Background(), tok)
			require.NoError(t, err)
			require.Equal(t, running, stageStates(r.Progress), "while it runs, the stages as published")

			c.end(b, tok)
			b.waitState(t, tok, c.state)
			r, err = b.q.Progress(context.Background(), tok)
			require.NoError(t, err)
			require.Equal(t, c.state, r.Status.State)
			require.Equal(t, c.want, stageStates(r.Progress))
		})
	}
}
