package queue

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// TestDuplicateIsValidatedAsSubmitIs: Duplicate goes through the one
// submit path (admit), so a copy the repository's Validate now refuses
// (its configuration changed since the original was queued) is refused
// with the repository's error naming the setting, and nothing is queued;
// once Validate accepts it again, the copy is queued.
func TestDuplicateIsValidatedAsSubmitIs(t *testing.T) {
	t.Parallel()
	var refuse atomic.Bool
	var validated atomic.Int32
	b := setup(t, func(c *Config) {
		c.MaximumThreads = 1
		c.Repository.(*testRepo).ValidateFunc = func(_ string, _ messages.Params) ([]string, error) {
			validated.Add(1)
			if refuse.Load() {
				return nil, messages.Invalid("[MyTask] Depth", "-7", "must be -1 or more")
			}
			return []string{"MYTASK"}, nil
		}
	})
	ctx := context.Background()
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	require.EqualValues(t, 1, validated.Load(), "Submit validates")

	refuse.Store(true)
	r, err := b.q.Duplicate(ctx, run)
	require.ErrorIs(t, err, messages.ErrInvalidParam)
	require.ErrorContains(t, err, "[MyTask] Depth")
	require.EqualValues(t, 2, validated.Load(), "Duplicate validates")
	if r != nil {
		require.Empty(t, r.NewToken)
	}
	all, err := b.q.ListParams(ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, all, 1, "the refused copy is not queued")

	refuse.Store(false)
	r, err = b.q.Duplicate(ctx, run)
	require.NoError(t, err)
	require.NotEmpty(t, r.NewToken)
	require.EqualValues(t, 3, validated.Load())

	b.repo.Release(run)
	b.waitState(t, run, messages.State_STATE_FINISHED)
	b.repo.Release(r.NewToken)
	b.waitState(t, r.NewToken, messages.State_STATE_FINISHED)
}

// TestSupportedActionAsToUpper: admit's look-up of the FetchAction answers
// as strings.ToUpper and slices.Contains did for an ASCII FetchAction (its
// error names the upper-case form), and a supported action in any ASCII
// case costs no allocation. A non-ASCII letter that Unicode upper-cases to
// an ASCII one (long s, Kelvin sign, dotless i) spells no FetchAction: a
// Synchronize used to be queued for FetchAction=ſynchronize, which a
// proxy refusing FetchAction=Synchronize in any case lets through. Its
// error names it with its ASCII letters upper-cased.
func TestSupportedActionAsToUpper(t *testing.T) {
	supported := []string{"SYNCHRONIZE", "COLLECT", "IDENTIFIERS", "DELETE", "KEEP"}
	for _, fa := range []string{"SYNCHRONIZE", "synchronize", "Synchronize", "sYnChRoNiZe", "collect", "",
		"SYNCHRONIZ", "SYNCHRONIZEE", "keep", "kEEP", "Delete ", "x\x00"} {
		want := strings.ToUpper(fa)
		got, ok := supportedAction(supported, fa)
		require.Equal(t, slices.Contains(supported, want), ok, "%q", fa)
		require.Equal(t, want, got, "%q", fa)
	}
	for fa, want := range map[string]string{"ſynchronize": "ſYNCHRONIZE", "\u212Aeep": "\u212AEEP",
		"\u0131dent\u0131f\u0131ers": "\u0131DENT\u0131F\u0131ERS", "é": "é"} {
		got, ok := supportedAction(supported, fa)
		require.False(t, ok, "%q", fa)
		require.Equal(t, want, got, "%q", fa)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = supportedAction(supported, "Identifiers") })
	require.Zero(t, allocs)
}

// fetchActionsCounter counts its repository's FetchActions calls.
type fetchActionsCounter struct {
	*testRepo
	calls atomic.Int32
}

func (r *fetchActionsCounter) FetchActions() []string {
	r.calls.Add(1)
	return r.testRepo.FetchActions()
}

// TestFetchActionsReadOnce: a queue reads its repository's FetchActions
// once, when it starts (the HTTP connector builds the slice on every
// call); submissions and Duplicate are checked against that list, and an
// action it does not hold is still refused.
func TestFetchActionsReadOnce(t *testing.T) {
	t.Parallel()
	repo := &fetchActionsCounter{testRepo: newTestRepo()}
	b := setup(t, func(c *Config) { c.Repository = repo; c.MaximumThreads = 1 })
	started := repo.calls.Load()
	require.Equal(t, int32(1), started, "FetchActions calls at Start")
	blocker := b.submit(t, "block", 0)
	tok := b.submit(t, "instant", 0)
	_, err := b.q.Duplicate(context.Background(), tok)
	require.NoError(t, err)
	_, err = b.q.Submit(context.Background(), &messages.ActionSpec{FetchAction: "NOSUCHACTION"})
	require.ErrorIs(t, err, messages.ErrInvalidParam)
	require.Equal(t, started, repo.calls.Load(), "FetchActions calls after two submissions, a Duplicate and a refusal")
	// Release, not ReleaseAll: the blocker may not have started yet, and
	// ReleaseAll releases only the actions already waiting.
	repo.Release(blocker)
	b.waitState(t, blocker, messages.State_STATE_FINISHED)
}

// TestDuplicateDoesNotBlockItsAction: a Duplicate's admit (the
// repository's Validate and Seal of the stored parameters, which may hold
// a Config fragment of up to MaxRequestBytes) runs outside the task
// actor's Receive, so while it runs the action still answers: GetStatus
// and Stop of the action being duplicated are answered while Validate is
// held. It used to run in Receive, so both waited behind it. Once Validate
// returns, the Duplicate is answered as before: the copy's token, and the
// original's status as it is then (Stopped).
func TestDuplicateDoesNotBlockItsAction(t *testing.T) {
	t.Parallel()
	gate := fetchtest.NewGate()
	defer gate.Release()
	b := setup(t, func(c *Config) {
		c.MaximumThreads = 1
		c.Repository.(*testRepo).ValidateFunc = func(_ string, _ messages.Params) ([]string, error) {
			gate.Hold()
			return []string{"MYTASK"}, nil
		}
	})
	ctx := context.Background()
	run := b.submit(t, "block", 3)
	b.waitState(t, run, messages.State_STATE_PROCESSING)

	gate.Arm()
	dup, stopped := make(chan askResult, 1), make(chan askResult, 1)
	go func() { dup <- ask(b.q.Duplicate(ctx, run)) }()
	testwait.Recv(t, gate.Entered(), 10*time.Second, "the Duplicate to reach Validate")

	// Validate is held: the action still answers.
	st, err := b.q.Status(ctx, run)
	require.NoError(t, err, "GetStatus while a Duplicate is admitted")
	require.Equal(t, messages.State_STATE_PROCESSING, st.State)
	go func() { stopped <- ask(b.q.Stop(ctx, run)) }()
	s := testwait.Recv(t, stopped, 10*time.Second, "the answer to Stop while a Duplicate is admitted")
	require.NoError(t, s.err)
	require.Equal(t, messages.State_STATE_STOPPED, s.r.Status.State)
	select {
	case d := <-dup:
		t.Fatalf("the Duplicate was answered before Validate returned: %+v", d)
	default:
	}

	gate.Release()
	d := testwait.Recv(t, dup, 10*time.Second, "the Duplicate's answer once Validate returned")
	require.NoError(t, d.err)
	require.NotEmpty(t, d.r.NewToken)
	require.NotEqual(t, run, d.r.NewToken)
	require.Equal(t, messages.State_STATE_STOPPED, d.r.Status.State, "the original's status when the copy is queued")
	cp, err := b.q.Status(ctx, d.r.NewToken)
	require.NoError(t, err)
	require.EqualValues(t, 3, cp.Priority, "the copy keeps the original's priority")
	b.repo.Release(d.r.NewToken)
	b.waitState(t, d.r.NewToken, messages.State_STATE_FINISHED)
}

// askResult is an API request's outcome, for a request asked on another
// goroutine.
type askResult struct {
	r   *messages.ActionReply
	err error
}

func ask(r *messages.ActionReply, err error) askResult { return askResult{r, err} }

// TestDuplicatePanicRefusesTheCopy: a panic in the repository's Validate
// while a Duplicate's copy is checked (outside the task actor) is the
// Duplicate's internal error; it neither crashes the process nor ends the
// original, which runs on, and nothing is queued.
func TestDuplicatePanicRefusesTheCopy(t *testing.T) {
	t.Parallel()
	var boom atomic.Bool
	b := setup(t, func(c *Config) {
		c.MaximumThreads = 1
		c.Repository.(*testRepo).ValidateFunc = func(_ string, _ messages.Params) ([]string, error) {
			if boom.Load() {
				panic("validate exploded")
			}
			return []string{"MYTASK"}, nil
		}
	})
	ctx := context.Background()
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	boom.Store(true)
	r, err := b.q.Duplicate(ctx, run)
	require.ErrorIs(t, err, messages.ErrInternal)
	require.ErrorContains(t, err, "validate exploded")
	require.NotNil(t, r)
	require.Empty(t, r.NewToken)
	require.Equal(t, messages.State_STATE_PROCESSING, r.Status.State)
	st, err := b.q.Status(ctx, run)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PROCESSING, st.State, "the original runs on")
	require.Empty(t, st.Error)
	all, err := b.q.ListParams(ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, all, 1, "the copy is not queued")
	b.repo.Release(run)
	b.waitState(t, run, messages.State_STATE_FINISHED)
}

// TestExcerptOfTextNotUTF8: a refusal quotes a long value that is not
// UTF-8 by the quotedBefore bytes before its first bad byte, never half a
// character, with "…" where text is left out; a short one whole.
func TestExcerptOfTextNotUTF8(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	for _, c := range []struct{ in, want string }{
		{"caf\xe9", "caf\xe9"},
		{long + "\xff" + long, "…" + strings.Repeat("é", 24) + "\xff…"},
		{"x" + long + long + "a\xff", "…" + strings.Repeat("é", 23) + "a\xff"}, // not half an é
		{strings.Repeat("a", 200) + "\xff", "…" + strings.Repeat("a", 48) + "\xff"},
		{"\xff" + strings.Repeat("a", 200), "\xff…"},
	} {
		require.Equal(t, c.want, excerpt(c.in), "%q", c.in)
	}
}
