package queue

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A confirmed CancelQueued whose Cancels the disk refuses says so, as a
// Cancel does: the actions are Cancelled (the change is in effect, and
// written again once the disk allows), but not on disk, so the reply is
// an ErrStore that says how many and what became of them. On main it was
// a success that counted them all as skipped ("started or ended before
// their Cancel arrived") and cancelled none, while they were Cancelled,
// and a crash before the retry would bring them back.
func TestCancelQueuedOnAFailingDiskSaysSo(t *testing.T) {
	t.Parallel()
	faults := &failAfter{}
	d := openDurable(t, t.TempDir(), faults, nil) // one thread
	defer d.shutdown(t)
	b := d.bundle()
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	q1 := b.submit(t, "instant", 0)
	q2 := b.submit(t, "instant", 0)
	faults.armed.Store(true)

	r, err := d.q.CancelQueued(context.Background(), &messages.ListActions{}, false, 10)
	require.ErrorIs(t, err, messages.ErrStore, "result %+v", r)
	require.Contains(t, err.Error(), "2 of the 2 selected actions are now Cancelled")
	require.Contains(t, err.Error(), "not on disk yet")
	for _, tok := range []string{q1, q2} {
		s, err := d.q.Status(context.Background(), tok)
		require.NoError(t, err)
		require.Equal(t, messages.State_STATE_CANCELLED, s.State)
	}
	faults.armed.Store(false)
	for _, tok := range []string{q1, q2} {
		d.waitDurable(t, tok, func(s *messages.ActionStatus) bool { return s.State == messages.State_STATE_CANCELLED })
	}
}
