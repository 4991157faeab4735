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

// A port in use is never picked. (free is replaced: holding real ports
// of the range would take them from services that tests running at the
// same time have picked and not yet bound.)
func TestPickSkipsPortsInUse(t *testing.T) {
	f := filepath.Join(t.TempDir(), "range")
	// Leave exactly 1000 ports below the range, nine in ten of them taken.
	require.NoError(t, os.WriteFile(f, []byte(strconv.Itoa(lowest+1000)+" 60999"), 0o644))
	oldRange, oldFree := rangeFile, free
	defer func() { rangeFile, free = oldRange, oldFree }()
	rangeFile = f
	inUse := func(p int) bool { return p >= lowest && p < lowest+1000 && p%10 != 0 }
	free = func(p int) bool { return !inUse(p) && oldFree(p) }
	for range 50 {
		p, err := Pick()
		require.NoError(t, err)
		require.False(t, inUse(p), "picked %d, which is in use", p)
	}
}

// TakenFirst's first answer ends with the taken port, its later ones are
// PickN's; First makes a Pick of it; Held's port is in use.
func TestTakenFirst(t *testing.T) {
	taken := Held(t)
	require.False(t, free(taken))
	pickN, calls := TakenFirst(taken)
	ports, err := pickN(3)
	require.NoError(t, err)
	require.Len(t, ports, 3)
	require.Equal(t, taken, ports[2])
	pick := First(pickN)
	for range 5 {
		p, err := pick()
		require.NoError(t, err)
		require.NotEqual(t, taken, p)
	}
	require.Equal(t, 6, *calls)
}

// Retry tries again only after ErrTaken, three times at most; Taken reads
// the words the services log (etcd, Dovecot, PostgreSQL, the connector).
func TestRetry(t *testing.T) {
	for _, c := range []struct {
		errs  []error
		calls int
		want  error
	}{
		{[]error{nil}, 1, nil},
		{[]error{ErrTaken, nil}, 2, nil},
		{[]error{ErrTaken, ErrTaken, ErrTaken, nil}, 3, ErrTaken},
		{[]error{os.ErrNotExist, nil}, 1, os.ErrNotExist},
	} {
		calls := 0
		err := Retry(func() error { calls++; return c.errs[calls-1] })
		require.ErrorIs(t, err, c.want)
		if c.want == nil {
			require.NoError(t, err)
		}
		require.Equal(t, c.calls, calls)
	}
	require.True(t, Taken([]byte("listen tcp 127.0.0.1:5: bind: address already in use")))
	require.True(t, Taken([]byte(`could not bind IPv4 address "127.0.0.1": Address already in use`)))
	require.False(t, Taken([]byte("connection refused")))
}
