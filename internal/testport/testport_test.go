package testport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPickIsBelowTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low-lowest < 1000 {
		t.Skipf("the ephemeral range starts at %d: no room below it", low)
	}
	ports, err := PickN(50)
	require.NoError(t, err)
	require.Len(t, ports, 50)
	seen := map[int]bool{}
	for _, p := range ports {
		require.GreaterOrEqual(t, p, lowest)
		require.Less(t, p, low)
		require.False(t, seen[p], "port %d twice", p)
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		require.NoError(t, err, "port %d is not free", p)
		l.Close()
	}
}

func TestPickFallsBackToTheKernel(t *testing.T) {
	for _, content := range []string{"", "garbage", "10500 60999", "1024 60999"} {
		f := filepath.Join(t.TempDir(), "range")
		require.NoError(t, os.WriteFile(f, []byte(content), 0o644))
		old := rangeFile
		rangeFile = f
		p, err := Pick()
		rangeFile = old
		require.NoError(t, err, content)
		require.Positive(t, p, content)
	}
}

// A port someone listens on is never picked.
func TestPickSkipsPortsInUse(t *testing.T) {
	f := filepath.Join(t.TempDir(), "range")
	// Leave exactly 1000 ports below the range, and hold most of them.
	require.NoError(t, os.WriteFile(f, []byte(strconv.Itoa(lowest+1000)+" 60999"), 0o644))
	old := rangeFile
	rangeFile = f
	defer func() { rangeFile = old }()
	held := map[int]bool{}
	for p := lowest; p < lowest+1000; p++ {
		if p%10 == 0 {
			continue // left free
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // someone else's: not free either
		}
		defer l.Close()
		held[p] = true
	}
	for range 20 {
		p, err := Pick()
		require.NoError(t, err)
		require.False(t, held[p], "picked %d, which is held", p)
	}
}
