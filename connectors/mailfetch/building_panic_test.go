package mailfetch

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// A panic while a message is built (on a builder goroutine) or delivered
// (on the deliverer's) would end the process: the goroutines are the
// Synchronize's own, outside the worker's recovery. It ends the task's
// deliveries with an error that says so instead (so the action ends as
// Error with the panic's message), and every goroutine of the building
// ends.
func TestBuildingPanicIsAnError(t *testing.T) {
	msgs := make([]*mailbox.Message, 3*jobMessages)
	for i := range msgs {
		raw := mailtest.Message{From: "a@example.com", To: "b@example.com", Subject: fmt.Sprint("m", i), HTML: "<p>hello</p>"}.Raw()
		msgs[i] = &mailbox.Message{Meta: mailbox.Meta{Key: fmt.Sprint("7.", i+1), UID: uint32(i + 1), UIDValidity: 7, Size: int64(len(raw))},
			Reference: fmt.Sprint("ref-", i), Raw: raw}
	}
	s := defaults("MAIL")
	s.Username = "b@example.com"
	good, err := newDocBuilder(s)
	require.NoError(t, err)
	cases := []struct {
		name    string
		builder *docBuilder
		deliver func(*mailbox.Message, *built) error
		want    string
	}{
		// No extractor: an HTML body's text panics (a nil *Extractor),
		// standing for any fault of the MIME reading of a message.
		{"build", &docBuilder{s: s, account: "b@example.com"}, func(*mailbox.Message, *built) error { return nil }, "panic: runtime error"},
		{"deliver", good, func(m *mailbox.Message, _ *built) error {
			if m.UID == 5 {
				panic("deliver kaboom")
			}
			return nil
		}, "panic: deliver kaboom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			bp := startBuilding(context.Background(), slog.New(slog.DiscardHandler), tc.builder, "MAIL", mailbox.Collection{Name: "INBOX"}, tc.deliver)
			var addErr error
			for _, m := range msgs {
				if addErr = bp.add(m); addErr != nil {
					break
				}
			}
			err := bp.wait()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			if addErr != nil {
				require.Contains(t, addErr.Error(), tc.want)
			}
			deadline := time.Now().Add(10 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				runtime.Gosched()
			}
			require.LessOrEqual(t, runtime.NumGoroutine(), before, "the building's goroutines ended")
		})
	}
}
