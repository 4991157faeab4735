package probe

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProbe(t *testing.T) {
	t.Parallel()
	p := New()
	started := p.Started("a")
	require.Equal(t, started, p.Started("a"), "one channel per job")
	go func() {
		close(p.Started("a"))
		p.Observed("a") <- time.Unix(1, 0) // never blocks: capacity 1
	}()
	<-started
	require.Equal(t, time.Unix(1, 0), <-p.Observed("a"))
	p.Forget("a")
	require.NotEqual(t, started, p.Started("a"), "forgotten: a new channel")
}
