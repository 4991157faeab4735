package store_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// The churn the compaction tests start from: churnKeys keys of ~500 bytes
// in datastore "crawl", then all but one in churnKeep deleted, and
// churnActions actions in queue "fetch", half of them deleted.
const (
	churnKeys    = 20000
	churnKeep    = 5
	churnActions = 200
)

func churnValue(i int) []byte {
	return []byte(strings.Repeat(fmt.Sprintf("value-%06d;", i), 40))
}

func churnKey(i int) []byte { return fmt.Appendf(nil, "https://example.com/page/%06d", i) }

// compactConfig is a store small enough to be worth compacting in a test.
func compactConfig(dir string) store.Config {
	return store.Config{Dir: dir, CompactMinSize: 1 << 20, CheckpointInterval: 20 * time.Millisecond}
}

// churn fills and thins the store s.
func churn(t *testing.T, s store.Store) {
	t.Helper()
	d, err := s.Datastore("crawl")
	require.NoError(t, err)
	for from := 0; from < churnKeys; from += 500 {
		require.NoError(t, d.Update(func(w store.Writer) error {
			for i := from; i < from+500; i++ {
				if err := w.Put(churnKey(i), churnValue(i)); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	var muts []store.ActionMutation
	for i := range churnActions {
		muts = append(muts, storetest.Put(storetest.Record(fmt.Sprintf("a%04d", i), uint64(i+1), messages.State_STATE_FINISHED)))
	}
	require.NoError(t, s.ApplyActions("fetch", muts))
	for from := 0; from < churnKeys; from += 2000 {
		require.NoError(t, d.Update(func(w store.Writer) error {
			for i := from; i < from+2000; i++ {
				if i%churnKeep != 0 {
					if err := w.Delete(churnKey(i)); err != nil {
						return err
					}
				}
			}
			return nil
		}))
	}
	muts = muts[:0]
	for i := 0; i < churnActions; i += 2 {
		muts = append(muts, storetest.Del(fmt.Sprintf("a%04d", i)))
	}
	require.NoError(t, s.ApplyActions("fetch", muts))
}

// churned makes a closed store in dir holding churn's result, never
// compacted, and returns its file size.
func churned(t *testing.T, dir string) int64 {
	t.Helper()
	cfg := compactConfig(dir)
	cfg.CompactFreeFraction = -1
	s, err := store.Open(cfg)
	require.NoError(t, err)
	churn(t, s)
	require.NoError(t, s.Close())
	return fileSize(t, dir)
}

func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, store.DefaultFile))
	require.NoError(t, err)
	return fi.Size()
}

// requireChurned checks that s holds exactly what churn left.
func requireChurned(t *testing.T, s store.Store) {
	t.Helper()
	d, err := s.Datastore("crawl")
	require.NoError(t, err)
	n, err := d.Len()
	require.NoError(t, err)
	require.Equal(t, churnKeys/churnKeep, n)
	i := 0
	require.NoError(t, d.ForEach(func(k, v []byte) error {
		if string(k) != string(churnKey(i)) || string(v) != string(churnValue(i)) {
			return fmt.Errorf("entry %d: got key %q", i, k)
		}
		i += churnKeep
		return nil
	}))
	var want []*messages.StoredAction
	for i := 1; i < churnActions; i += 2 {
		want = append(want, storetest.Record(fmt.Sprintf("a%04d", i), uint64(i+1), messages.State_STATE_FINISHED))
	}
	storetest.RequireActions(t, s, "fetch", want...)
}

func noCopyLeft(t *testing.T, dir string) {
	t.Helper()
	_, err := os.Stat(filepath.Join(dir, "."+store.DefaultFile+".compact"))
	require.ErrorIs(t, err, os.ErrNotExist, "the compaction's copy is left in %s", dir)
}

func TestCompactAtOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	before := churned(t, dir)
	s, err := store.Open(compactConfig(dir))
	require.NoError(t, err)
	defer s.Close()
	after := fileSize(t, dir)
	require.Less(t, after, before/2, "file %d bytes before the open, %d after", before, after)
	requireChurned(t, s)
	noCopyLeft(t, dir)
	// A store that is not worth compacting is left alone.
	require.NoError(t, s.Close())
	s, err = store.Open(compactConfig(dir))
	require.NoError(t, err)
	require.Equal(t, after, fileSize(t, dir))
	requireChurned(t, s)
}

func TestCompactDisabledAndSmall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	before := churned(t, dir)
	cfg := compactConfig(dir)
	cfg.CompactFreeFraction = -1
	s, err := store.Open(cfg)
	require.NoError(t, err)
	require.Equal(t, before, fileSize(t, dir))
	require.NoError(t, s.Close())
	cfg = compactConfig(dir)
	cfg.CompactMinSize = before + 1
	s, err = store.Open(cfg)
	require.NoError(t, err)
	require.Equal(t, before, fileSize(t, dir))
	require.NoError(t, s.Close())
	cfg.CompactFreeFraction = 1
	_, err = store.Open(cfg)
	require.ErrorIs(t, err, store.ErrInvalid)
}

// TestCompactOnline churns a running store while other goroutines keep
// writing to a datastore and to the queue: the checkpointer compacts the
// file, and every write acknowledged before, during and after it is there,
// also after a reopen.
func TestCompactOnline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logs := &syncBuffer{}
	cfg := compactConfig(dir)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := store.Open(cfg)
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	live, err := s.Datastore("live")
	require.NoError(t, err)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var keys, actions atomic.Int64 // acknowledged
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := int64(0); !stop.Load(); i++ {
			if err := live.Update(func(w store.Writer) error { return w.Put(fmt.Appendf(nil, "k%08d", i), []byte("v")) }); err != nil {
				t.Errorf("datastore update %d: %v", i, err)
				return
			}
			keys.Store(i + 1)
		}
	}()
	go func() {
		defer wg.Done()
		for i := int64(0); !stop.Load(); i++ {
			a := storetest.Record(fmt.Sprintf("q%08d", i), uint64(1_000_000+i), messages.State_STATE_QUEUED)
			if err := s.ApplyActions("other", []store.ActionMutation{storetest.Put(a)}); err != nil {
				t.Errorf("apply %d: %v", i, err)
				return
			}
			actions.Store(i + 1)
		}
	}()
	churn(t, s)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `msg="store compacted"`) }, 60*time.Second, 20*time.Millisecond,
		"the file was not compacted: %s", logs)
	// Keep writing a little after the swap.
	n := keys.Load()
	require.Eventually(t, func() bool { return keys.Load() > n+20 }, 30*time.Second, 5*time.Millisecond)
	stop.Store(true)
	wg.Wait()

	check := func(s store.Store) {
		t.Helper()
		requireChurned(t, s)
		live, err := s.Datastore("live")
		require.NoError(t, err)
		got, err := live.Len()
		require.NoError(t, err)
		require.EqualValues(t, keys.Load(), got)
		as := storetest.Load(t, s, "other")
		require.EqualValues(t, actions.Load(), len(as))
	}
	check(s)
	// Closed before looking for the copy: the checkpointer may have
	// started another compaction (the file is compacted whenever a
	// quarter of it is free), which Close waits for.
	require.NoError(t, s.Close())
	noCopyLeft(t, dir)
	s = openDurable(t, dir, nil)
	check(s)
}

// syncBuffer is a log sink read while the store writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestCompactTimeoutKeepsTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	before := churned(t, dir)
	cfg := compactConfig(dir)
	cfg.CompactFreeFraction = -1
	s, err := store.Open(cfg)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.(store.Compacter).Compact(time.Nanosecond)
	require.ErrorContains(t, err, "took longer than its time limit")
	require.Equal(t, before, fileSize(t, dir))
	noCopyLeft(t, dir)
	requireChurned(t, s)
	require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{storetest.Del("a0001")}))
	st, err := s.(store.Compacter).Compact(0)
	require.NoError(t, err)
	require.Less(t, st.After, before/2)
	require.Positive(t, st.Keys)
	require.Equal(t, before, st.Before)
}

// TestCompactKilled kills a process (this test binary, as a child) with
// SIGKILL at each step of a compaction: while it copies, once the copy is
// synced, once it replaced the store file. Each time the store opens again
// with nothing lost, including writes acknowledged just before the
// compaction and not yet checkpointed (still in the journal).
func TestCompactKilled(t *testing.T) {
	t.Parallel()
	bin, err := os.Executable()
	require.NoError(t, err)
	for _, step := range []string{"copying", "synced", "renamed"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			before := churned(t, dir)
			cmd := exec.Command(bin, "-test.run=^TestCompactKilledChild$", "-test.v")
			cmd.Env = append(os.Environ(), compactChildEnv+"="+dir, compactStepEnv+"="+step)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			killed := make(chan struct{})
			timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
			defer timer.Stop()
			var lines []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if sc.Text() == "at "+step {
					require.NoError(t, cmd.Process.Kill())
					close(killed)
					break
				}
			}
			_ = cmd.Wait()
			select {
			case <-killed:
			default:
				t.Fatalf("the child ended before step %s:\n%s", step, strings.Join(lines, "\n"))
			}
			if step == "copying" {
				_, err := os.Stat(filepath.Join(dir, "."+store.DefaultFile+".compact"))
				require.NoError(t, err, "the kill was meant to leave a half-made copy")
			}
			cfg := compactConfig(dir)
			cfg.CompactFreeFraction = -1 // what the crash left, not a new compaction
			s, err := store.Open(cfg)
			require.NoError(t, err)
			defer s.Close()
			noCopyLeft(t, dir)
			if step == "renamed" {
				require.Less(t, fileSize(t, dir), before/2)
			} else {
				require.GreaterOrEqual(t, fileSize(t, dir), before)
			}
			requireChurned(t, s)
			d, err := s.Datastore("after")
			require.NoError(t, err)
			v, err := d.Get([]byte("k"))
			require.NoError(t, err)
			require.Equal(t, "acknowledged", string(v))
			storetest.RequireActions(t, s, "late", storetest.Record("late1", 1, messages.State_STATE_QUEUED))
			// And it compacts, and works, afterwards.
			_, err = s.(store.Compacter).Compact(0)
			require.NoError(t, err)
			requireChurned(t, s)
			require.NoError(t, s.ApplyActions("late", []store.ActionMutation{storetest.Del("late1")}))
		})
	}
}

const (
	compactChildEnv = "CONNECTOR_TEST_COMPACT_DIR"
	compactStepEnv  = "CONNECTOR_TEST_COMPACT_STEP"
)

// TestCompactKilledChild is TestCompactKilled's child process: it writes
// (acknowledged, journaled, not checkpointed), compacts, and stops at the
// step it is told to, where its parent kills it.
func TestCompactKilledChild(t *testing.T) {
	dir := os.Getenv(compactChildEnv)
	if dir == "" {
		t.Skip("run by TestCompactKilled")
	}
	step := os.Getenv(compactStepEnv)
	cfg := compactConfig(dir)
	cfg.CompactFreeFraction = -1
	cfg.CheckpointInterval = time.Hour
	s, err := store.Open(cfg)
	require.NoError(t, err)
	require.NoError(t, s.ApplyActions("late", []store.ActionMutation{storetest.Put(storetest.Record("late1", 1, messages.State_STATE_QUEUED))}))
	d, err := s.Datastore("after")
	require.NoError(t, err)
	require.NoError(t, d.Update(func(w store.Writer) error { return w.Put([]byte("k"), []byte("acknowledged")) }))
	store.SetCompactHook(func(at string) {
		if at == step {
			fmt.Println("at " + at)
			_ = os.Stdout.Sync()
			select {} // killed here
		}
	})
	_, err = s.(store.Compacter).Compact(0)
	assert.NoError(t, err)
	fmt.Println("compaction ended without reaching step " + step)
}

// TestCompactOnlineAgain: a running store compacts again when the live data
// moves on (new keys put, the oldest deleted: whole pages freed), not only
// once: the second round of churn is compacted too, and the store holds
// exactly the live keys.
func TestCompactOnlineAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logs := &syncBuffer{}
	cfg := compactConfig(dir)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := store.Open(cfg)
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	d, err := s.Datastore("crawl")
	require.NoError(t, err)
	const n = churnKeys / 2
	update := func(from, to int, del bool) {
		t.Helper()
		for i := from; i < to; i += 500 {
			require.NoError(t, d.Update(func(w store.Writer) error {
				for k := i; k < min(i+500, to); k++ {
					if del {
						if err := w.Delete(churnKey(k)); err != nil {
							return err
						}
					} else if err := w.Put(churnKey(k), churnValue(k)); err != nil {
						return err
					}
				}
				return nil
			}))
		}
	}
	compacted := func(times int) {
		t.Helper()
		require.Eventually(t, func() bool { return strings.Count(logs.String(), `msg="store compacted"`) >= times }, 60*time.Second, 20*time.Millisecond,
			"the file was not compacted %d times: %s", times, logs)
	}
	update(0, n, false)
	update(0, n*3/4, true)
	compacted(1)
	update(n, 2*n, false)
	update(n*3/4, n*7/4, true)
	compacted(2)
	got, err := d.Len()
	require.NoError(t, err)
	require.Equal(t, n/4, got)
	k := n * 7 / 4
	require.NoError(t, d.ForEach(func(key, v []byte) error {
		if string(key) != string(churnKey(k)) || string(v) != string(churnValue(k)) {
			return fmt.Errorf("entry %d: got key %q", k, key)
		}
		k++
		return nil
	}))
	require.Equal(t, 2*n, k)
	// Closed first: the checkpointer may have started another compaction
	// (the file is compacted whenever a quarter of it is free), which
	// Close waits for.
	require.NoError(t, s.Close())
	noCopyLeft(t, dir)
}

// TestCompactOnlineRetriesAfterTimeout: an online compaction that reaches
// its time limit is tried again later with twice the limit, compactTries
// times in all; then the running store stops trying. The file stays whole
// throughout.
func TestCompactOnlineRetriesAfterTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logs := &syncBuffer{}
	cfg := compactConfig(dir)
	cfg.CompactTimeout = time.Nanosecond // every copy passes its limit...
	cfg.CompactMinSize = 8 << 20         // ...once it holds more than compactCheckKeys keys
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := store.Open(cfg)
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	churn(t, s)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "compacts at the next start")
	}, 60*time.Second, 20*time.Millisecond, "the store did not stop trying: %s", logs)
	require.Equal(t, 2, strings.Count(logs.String(), "tries again later with a longer limit"), logs.String())
	require.Contains(t, logs.String(), "next_limit=4ns")
	require.NotContains(t, logs.String(), `msg="store compacted"`)
	noCopyLeft(t, dir)
	requireChurned(t, s)
	s = reopenDurable(t, s)
	requireChurned(t, s)
}
