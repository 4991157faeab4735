package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// TestPauseResumeInterleavings runs many random interleavings of queue
// Pause and Resume and of Pause and Resume of single actions, from several
// goroutines at once, then one last queue Pause or Resume, and checks that
// the queue and its actions agree once the messages in flight have
// settled: after a Resume nothing is Paused and every action that holds a
// thread is Processing; after a Pause every action that holds a thread is
// Paused and none Processing; and the queue's counts are the actions'
// states (issue 9, item 5: a queue Resume that overtook a queue Pause still
// in flight to a running action left it Paused for good).
//
// Each round's operations come from a seed derived from the base seed
// (CONNECTOR_PAUSE_SEED, default 1) and the round number; a failure prints
// the seed of its round. CONNECTOR_PAUSE_ROUNDS sets the number of rounds.
func TestPauseResumeInterleavings(t *testing.T) {
	t.Parallel()
	base, rounds := uint64(1), 150
	if v, err := strconv.ParseUint(os.Getenv("CONNECTOR_PAUSE_SEED"), 10, 64); err == nil {
		base = v
	}
	if v, err := strconv.Atoi(os.Getenv("CONNECTOR_PAUSE_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	const threads = 3
	mutate := func(c *Config) { c.MaximumThreads = threads }
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		pauseInterleavings(t, setup(t, mutate), base, rounds)
	})
	t.Run("durable", func(t *testing.T) {
		t.Parallel()
		d := openDurable(t, t.TempDir(), nil, mutate)
		t.Cleanup(func() { d.shutdown(t) })
		pauseInterleavings(t, d.bundle(), base, rounds)
	})
}

func pauseInterleavings(t *testing.T, b *bundle, base uint64, rounds int) {
	const threads = 3
	var toks []string
	for i := 0; i < threads+2; i++ { // three hold a thread, two wait
		toks = append(toks, b.submit(t, "block", 0))
	}
	testwait.For(t, 10*time.Second, func() bool {
		qs, err := b.q.QueueStatus(context.Background())
		require.NoError(t, err)
		return qs.Processing == threads
	}, "%d actions processing", threads)
	running := map[string]bool{}
	for _, tok := range toks {
		s, err := b.q.Status(context.Background(), tok)
		require.NoError(t, err)
		running[tok] = s.State == messages.State_STATE_PROCESSING
	}

	for round := 0; round < rounds; round++ {
		seed := base*1_000_003 + uint64(round)
		rng := rand.New(rand.NewPCG(seed, 0))
		// Half the rounds use only the queue's Pause and Resume (and
		// status reads) and end without a last operation, so the state
		// they leave is the one the race left; the others mix in the
		// actions' own Pause and Resume and end with a queue Pause or
		// Resume, whose outcome is then known.
		queueOnly := rng.IntN(2) == 0
		const workers = 4
		plans := make([][]int, workers)
		for w := range plans {
			plans[w] = make([]int, 1+rng.IntN(6))
			for i := range plans[w] {
				op := rng.IntN(2 + 3*len(toks))
				if queueOnly && op >= 2 && op < 2+2*len(toks) {
					op = rng.IntN(2)
				}
				plans[w][i] = op
			}
		}
		finalPause := rng.IntN(2) == 0
		start := make(chan struct{})
		errs := make(chan error, workers*8)
		var wg sync.WaitGroup
		for w := range plans {
			wg.Add(1)
			go func(plan []int) {
				defer wg.Done()
				<-start
				for _, op := range plan {
					if err := b.pauseOp(toks, op); err != nil {
						errs <- err
					}
				}
			}(plans[w])
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "round %d, seed %d", round, seed)
		}
		last := "queue Pause"
		if queueOnly {
			qs, err := b.q.QueueStatus(context.Background())
			require.NoError(t, err)
			finalPause, last = qs.Paused, "racing queue Pause and Resume"
		} else {
			var qs *messages.QueueStatusReply
			var err error
			if finalPause {
				qs, err = b.q.Pause(context.Background())
			} else {
				qs, err = b.q.Resume(context.Background())
				last = "queue Resume"
			}
			require.NoError(t, err, "round %d, seed %d", round, seed)
			require.Equal(t, finalPause, qs.Paused, "round %d, seed %d", round, seed)
		}

		var seen string
		ok := false
		deadline := time.Now().Add(5 * time.Second)
		for !ok && time.Now().Before(deadline) {
			ok, seen = b.pauseAgrees(t, toks, running, finalPause)
			if !ok {
				time.Sleep(testwait.Interval)
			}
		}
		require.True(t, ok, "round %d, seed %d (CONNECTOR_PAUSE_SEED=%d), after %s: %s", round, seed, base, last, seen)
	}
}

// pauseOp performs operation op: 0 pauses the queue, 1 resumes it, then
// pairs of (pause, resume) for each action, then a GetStatus of each (which
// keeps the action's mailbox busy on the caller's goroutine, so that the
// QueueManager's messages to it are handled later, as under real load).
// Refusals that the interleaving makes legitimate (resuming an action that
// is not paused) are not errors.
func (b *bundle) pauseOp(toks []string, op int) error {
	switch op {
	case 0:
		_, err := b.q.Pause(context.Background())
		return err
	case 1:
		_, err := b.q.Resume(context.Background())
		return err
	}
	if op >= 2+2*len(toks) {
		_, err := b.q.Status(context.Background(), toks[op-2-2*len(toks)])
		return err
	}
	tok := toks[(op-2)/2]
	var err error
	if (op-2)%2 == 0 {
		_, err = b.q.PauseAction(context.Background(), tok)
	} else {
		_, err = b.q.ResumeAction(context.Background(), tok)
		if errors.Is(err, messages.ErrNotPaused) {
			err = nil
		}
	}
	return err
}

// pauseAgrees checks the queue and its actions after a final queue Pause
// (paused) or Resume, and describes what it saw.
func (b *bundle) pauseAgrees(t *testing.T, toks []string, running map[string]bool, paused bool) (bool, string) {
	qs, err := b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	var count [8]uint64
	ok := qs.Paused == paused
	desc := fmt.Sprintf("queue paused=%v;", qs.Paused)
	for _, tok := range toks {
		s, err := b.q.Status(context.Background(), tok)
		require.NoError(t, err)
		count[s.State]++
		desc += fmt.Sprintf(" %s(running=%v)", s.State, running[tok])
		switch {
		case paused && running[tok]:
			ok = ok && s.State == messages.State_STATE_PAUSED
		case paused:
			ok = ok && (s.State == messages.State_STATE_QUEUED || s.State == messages.State_STATE_PAUSED)
		case running[tok]:
			ok = ok && s.State == messages.State_STATE_PROCESSING
		default:
			ok = ok && s.State == messages.State_STATE_QUEUED
		}
	}
	desc += fmt.Sprintf("; counts queued=%d processing=%d paused=%d", qs.Queued, qs.Processing, qs.PausedActions)
	ok = ok && qs.Queued == count[messages.State_STATE_QUEUED] &&
		qs.Processing == count[messages.State_STATE_PROCESSING] &&
		qs.PausedActions == count[messages.State_STATE_PAUSED]
	return ok, desc
}
