package crawlbench

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/bench/internal/result"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	want := []string{"u1", "u2", "u3"}
	for _, tc := range []struct {
		desc        string
		got         []string
		wantRepeats int
		wantErr     bool
	}{
		{"exact, any order", []string{"u3", "u1", "u2"}, 0, false},
		{"repeats counted, still exact", []string{"u1", "u2", "u2", "u3", "u1"}, 2, false},
		{"one missing", []string{"u1", "u2"}, 0, true},
		{"one unexpected", []string{"u1", "u2", "u3", "u4"}, 0, true},
		{"nothing found", nil, 0, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			rep, err := Check(want, tc.got)
			require.Equal(t, tc.wantRepeats, rep)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrMismatch)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

func TestURLsRoundTrip(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "urls.txt")
	in := []string{"http://127.0.0.1:1/index.html", "http://127.0.0.1:1/a.html"}
	require.NoError(t, WriteURLs(p, in))
	out, err := ReadURLs(p)
	require.NoError(t, err)
	require.Equal(t, in, out)
}

var sink []byte

func TestMeter(t *testing.T) {
	t.Parallel()
	m, err := Start()
	require.NoError(t, err)
	sink = make([]byte, 64<<10) // some allocation to see
	o := result.New("crawl", "test")
	require.Error(t, m.Record(o, 10, 10), "Record before End")
	deadline := time.Now().Add(20 * time.Millisecond)
	for time.Now().Before(deadline) { // burn a little CPU
	}
	require.NoError(t, m.End())
	require.Error(t, m.Record(o, 0, 0), "no page")
	require.NoError(t, m.Record(o, 10, -1))
	for _, name := range []string{"pages", "elapsed_s", "pages_per_s", "cpu_s", "cpu_ms_per_kpage", "maxrss_mib", "alloc_kib_per_page"} {
		v, ok := o.Get(name)
		require.True(t, ok, name)
		require.Greater(t, v, 0.0, name)
	}
	_, ok := o.Get("requests")
	require.False(t, ok, "requests not known")
	pages, _ := o.Get("pages")
	el, _ := o.Get("elapsed_s")
	rate, _ := o.Get("pages_per_s")
	require.InDelta(t, pages/el, rate, 1e-9)
}
