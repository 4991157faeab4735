//go:build linux

package store_test

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// TestKilledAtRandomKeepsWhatWasAcknowledged kills a process (this test
// binary, as a child) with SIGKILL at a random moment while it writes to
// a store at random: action batches (new actions, moves, state changes,
// deletes), direct and deferred datastore writes and deletes, Clear,
// checkpoints every few milliseconds, compactions, values large enough
// that segments fill and rotate. The child says what it is about to do
// and when it returned; after each kill the store must open, and hold
// every acknowledged change: the actions exactly as acknowledged (with or
// without the one change under way), each datastore key as its last
// durable write left it (a deferred write is durable once a batch that
// began after it returned; later ones may or may not be there, in order),
// and nothing else. The child checks its reads as it goes: each write is
// seen at once by Get, ForEach and Len (deferred ones too, while they wait
// in memory or are folded). Several generations run on one folder, each killed, so
// a replay is itself replayed after. CONNECTOR_TEST_KILLED_SEED=n runs
// another sequence of operations and kills (to look further by hand).
func TestKilledAtRandomKeepsWhatWasAcknowledged(t *testing.T) {
	t.Parallel()
	bin, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	seed, _ := strconv.Atoi(os.Getenv(killSeedEnv))
	r := rand.New(rand.NewPCG(24+uint64(seed), 7))
	m := newKillModel()
	const generations = 6
	for gen := range generations {
		cmd := exec.Command(bin, "-test.run=^TestKilledAtRandomChild$")
		cmd.Env = append(os.Environ(), killDirEnv+"="+dir, killGenEnv+"="+strconv.Itoa(gen))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
		// Killed after a random number of acknowledged operations, or,
		// one time in four, while it opens the store (replaying what the
		// last kill left).
		killAt := 30 + r.IntN(300)
		if r.IntN(4) == 0 {
			killAt = -1 - r.IntN(20) // milliseconds after the child says it opens
		}
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		acks, killed := 0, false
		var lines []string
		for sc.Scan() {
			line := sc.Text()
			lines = append(lines, line)
			if strings.HasPrefix(line, "K") {
				acks++
			}
			if !killed && line == "S" && killAt < 0 {
				time.Sleep(time.Duration(-1-killAt) * time.Millisecond)
				require.NoError(t, cmd.Process.Kill())
				killed = true
			}
			if !killed && acks == killAt {
				require.NoError(t, cmd.Process.Kill())
				killed = true
			}
		}
		_ = cmd.Wait()
		timer.Stop()
		require.True(t, killed, "generation %d: the child ended by itself:\n%s\n%s", gen, strings.Join(lines, "\n"), stderr.String())
		inflight := m.apply(t, lines)
		// Checked on a copy: the folder stays as the kill left it, for the
		// next child to replay.
		cp := copyDir(t, dir)
		s, err := store.Open(store.Config{Dir: cp, CompactFreeFraction: -1})
		require.NoError(t, err, "generation %d: the store does not open after the kill (child's log:\n%s)", gen, strings.Join(lines, "\n"))
		m.check(t, s, inflight, gen)
		require.NoError(t, s.Close())
		require.NoError(t, os.RemoveAll(cp))
	}
}

const (
	killDirEnv  = "CONNECTOR_TEST_KILLED_DIR"
	killGenEnv  = "CONNECTOR_TEST_KILLED_GEN"
	killSeedEnv = "CONNECTOR_TEST_KILLED_SEED"
	killQueue   = "fetch"
)

var killTasks = []string{"crawl", "mail"}

// copyDir copies the files of dir into a new folder, as they are.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	cp := t.TempDir()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(cp, e.Name()), b, 0o600))
	}
	return cp
}

// killValue is the value of datastore write number op: size bytes, that
// say which write they are.
func killValue(op, size int) []byte {
	head := "v" + strconv.Itoa(op) + ":"
	return append([]byte(head), bytes.Repeat([]byte{byte('a' + op%26)}, max(size-len(head), 0))...)
}

// TestKilledAtRandomChild is the child of
// TestKilledAtRandomKeepsWhatWasAcknowledged: it writes at random until it
// is killed. Each operation is a line "T <op>" before the call and "K"
// once it returned; ops:
//
//	A id seq state, ... (a batch; seq 0 is a delete)
//	U task key op size  (a direct write; size -1 is a delete)
//	D task key op size  (a deferred write)
//	C task              (Clear)
//	R                   (Close, then Open)
//	X                   (a compaction)
func TestKilledAtRandomChild(t *testing.T) {
	dir := os.Getenv(killDirEnv)
	if dir == "" {
		t.Skip("run by TestKilledAtRandomKeepsWhatWasAcknowledged")
	}
	gen, err := strconv.Atoi(os.Getenv(killGenEnv))
	if err != nil {
		t.Fatal(err)
	}
	cfg := store.Config{Dir: dir, CheckpointInterval: 3 * time.Millisecond, CompactMinSize: 1 << 20, CompactFreeFraction: 0.2}
	fmt.Println("S")
	s, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := strconv.Atoi(os.Getenv(killSeedEnv))
	r := rand.New(rand.NewPCG(uint64(gen), 99+uint64(seed)))
	// The actions there are (this generation's own, and those before it
	// left), to move and delete.
	live := map[string]uint64{}
	if err := s.LoadActions(killQueue, func(a *messages.StoredAction) error {
		live[a.Id] = a.Status.GetSeq()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// What the datastores hold, as this process wrote it: reads must see
	// every write at once, deferred ones included, through checkpoints,
	// compactions and reopenings.
	latest := map[string]map[string]string{}
	readAll := func(task string) map[string]string {
		ds, err := s.Datastore(task)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		if err := ds.ForEach(func(k, v []byte) error {
			m[string(k)] = string(v)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := ds.Len(); err != nil || n != len(m) {
			fmt.Printf("E read: datastore %s: Len %d (%v), ForEach %d keys\n", task, n, err, len(m))
			os.Exit(3)
		}
		return m
	}
	for _, task := range killTasks {
		latest[task] = readAll(task)
	}
	seq := uint64(gen+1) * 1_000_000_000
	op := gen * 1_000_000
	n := 0
	do := func(line string, f func() error) {
		fmt.Println("T " + line)
		if err := f(); err != nil {
			fmt.Println("E " + err.Error())
			os.Exit(3)
		}
		fmt.Println("K")
	}
	check := func(task, key string) {
		ds, err := s.Datastore(task)
		if err != nil {
			t.Fatal(err)
		}
		v, err := ds.Get([]byte(key))
		if want, ok := latest[task][key]; err != nil || string(v) != want || ok != (v != nil) {
			fmt.Printf("E read: datastore %s key %s: got %.20q (%v), want %.20q\n", task, key, v, err, want)
			os.Exit(3)
		}
		if op%50 == 0 {
			for _, task := range killTasks {
				if got := readAll(task); !maps.Equal(got, latest[task]) {
					fmt.Printf("E read: datastore %s: ForEach gives %d keys, %d written\n", task, len(got), len(latest[task]))
					os.Exit(3)
				}
			}
		}
	}
	for {
		op++
		task := killTasks[r.IntN(len(killTasks))]
		key := "k" + strconv.Itoa(r.IntN(40))
		size := 16 + r.IntN(64)
		if r.IntN(10) == 0 {
			size = 100_000 + r.IntN(400_000) // fills segments
		}
		if r.IntN(6) == 0 {
			size = -1
		}
		ds, err := s.Datastore(task)
		if err != nil {
			t.Fatal(err)
		}
		write := func(w store.Writer) error {
			if size < 0 {
				return w.Delete([]byte(key))
			}
			return w.Put([]byte(key), killValue(op, size))
		}
		switch k := r.IntN(100); {
		case k < 45:
			var muts []store.ActionMutation
			var parts []string
			ids := slices.Sorted(func(yield func(string) bool) {
				for id := range live {
					if !yield(id) {
						return
					}
				}
			})
			taken := map[string]bool{}
			for range 1 + r.IntN(4) {
				switch c := r.IntN(10); {
				case c < 4 || len(ids) == 0:
					n++
					seq++
					id := fmt.Sprintf("g%d-%06d", gen, n)
					if taken[id] {
						continue
					}
					taken[id] = true
					muts = append(muts, storetest.Put(storetest.Record(id, seq, messages.State_STATE_QUEUED)))
					parts = append(parts, fmt.Sprintf("%s %d %d", id, seq, messages.State_STATE_QUEUED))
					live[id] = seq
				case c < 8:
					id := ids[r.IntN(len(ids))]
					if taken[id] || live[id] == 0 {
						continue
					}
					taken[id] = true
					sq := live[id]
					if r.IntN(2) == 0 {
						seq++
						sq = seq
					}
					st := messages.State(1 + r.IntN(5))
					muts = append(muts, storetest.Put(storetest.Record(id, sq, st)))
					parts = append(parts, fmt.Sprintf("%s %d %d", id, sq, st))
					live[id] = sq
				default:
					id := ids[r.IntN(len(ids))]
					if taken[id] || live[id] == 0 {
						continue
					}
					taken[id] = true
					muts = append(muts, storetest.Del(id))
					parts = append(parts, id+" 0 0")
					delete(live, id)
				}
			}
			if len(muts) == 0 {
				continue
			}
			do("A "+strings.Join(parts, ","), func() error { return s.ApplyActions(killQueue, muts) })
		case k < 65:
			do(fmt.Sprintf("D %s %s %d %d", task, key, op, size), func() error { return store.UpdateDeferred(ds, write) })
			wrote(latest[task], key, op, size)
		case k < 93:
			do(fmt.Sprintf("U %s %s %d %d", task, key, op, size), func() error { return ds.Update(write) })
			wrote(latest[task], key, op, size)
		case k < 95:
			do("C "+task, ds.Clear)
			clear(latest[task])
		case k < 97:
			// A clean stop and start (the journal dropped, then
			// recorded again at the next append).
			do("R", func() error {
				if err := s.Close(); err != nil {
					return err
				}
				s, err = store.Open(cfg)
				return err
			})
		default:
			do("X", func() error {
				_, err := s.(store.Compacter).Compact(0)
				return err
			})
		}
		check(task, key)
	}
}

// wrote records in m the datastore write number op of key (size < 0: a
// delete).
func wrote(m map[string]string, key string, op, size int) {
	if size < 0 {
		delete(m, key)
		return
	}
	m[key] = string(killValue(op, size))
}

// killModel is what the children were told was done.
type killModel struct {
	actions map[string]killAction
	// ds holds, per task and key, the value of the last durable write
	// (nil: none, or deleted), then the later deferred writes not yet
	// durable: the store may hold any of them.
	ds map[string]map[string]*killKey
}

type killAction struct {
	seq   uint64
	state messages.State
}

type killKey struct {
	durable  []byte
	deferred [][]byte // nil entries are deletes
}

func newKillModel() *killModel {
	return &killModel{actions: map[string]killAction{}, ds: map[string]map[string]*killKey{}}
}

// killInflight is the operation under way at the kill, applied to a copy
// of the model: the store is as one model or the other.
type killInflight struct {
	with *killModel
}

func (m *killModel) clone() *killModel {
	c := newKillModel()
	for id, a := range m.actions {
		c.actions[id] = a
	}
	for t, keys := range m.ds {
		c.ds[t] = map[string]*killKey{}
		for k, v := range keys {
			c.ds[t][k] = &killKey{durable: v.durable, deferred: slices.Clone(v.deferred)}
		}
	}
	return c
}

func (m *killModel) key(task, key string) *killKey {
	if m.ds[task] == nil {
		m.ds[task] = map[string]*killKey{}
	}
	if m.ds[task][key] == nil {
		m.ds[task][key] = &killKey{}
	}
	return m.ds[task][key]
}

// do applies one operation line (without its "T ").
func (m *killModel) do(t *testing.T, line string) {
	t.Helper()
	f := strings.Fields(line)
	switch f[0] {
	case "A":
		for _, part := range strings.Split(strings.TrimPrefix(line, "A "), ",") {
			p := strings.Fields(part)
			sq, _ := strconv.ParseUint(p[1], 10, 64)
			st, _ := strconv.Atoi(p[2])
			if sq == 0 {
				delete(m.actions, p[0])
			} else {
				m.actions[p[0]] = killAction{seq: sq, state: messages.State(st)}
			}
		}
		// Every deferred write made before this batch began rode it.
		for _, keys := range m.ds {
			for _, k := range keys {
				if n := len(k.deferred); n > 0 {
					k.durable, k.deferred = k.deferred[n-1], nil
				}
			}
		}
	case "U", "D":
		op, _ := strconv.Atoi(f[3])
		size, _ := strconv.Atoi(f[4])
		var v []byte
		if size >= 0 {
			v = killValue(op, size)
		}
		k := m.key(f[1], f[2])
		if f[0] == "U" {
			k.durable, k.deferred = v, nil
		} else {
			k.deferred = append(k.deferred, v)
		}
	case "C":
		for _, k := range m.ds[f[1]] {
			k.durable, k.deferred = nil, nil
		}
	case "X", "R":
	default:
		t.Fatalf("unknown operation %q", line)
	}
}

// apply takes a child's log into the model and returns the operation
// under way at the kill (nil when there was none).
func (m *killModel) apply(t *testing.T, lines []string) *killInflight {
	t.Helper()
	pending := ""
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "T "):
			pending = strings.TrimPrefix(l, "T ")
		case l == "K":
			m.do(t, pending)
			pending = ""
		case strings.HasPrefix(l, "E "):
			t.Fatalf("the child failed: %s", l)
		}
	}
	if pending == "" {
		return nil
	}
	with := m.clone()
	with.do(t, pending)
	return &killInflight{with: with}
}

// check compares the store with the model (or, for what the operation
// under way changed, with the model with it), then makes the model what
// the store holds: deferred writes found or lost are decided.
func (m *killModel) check(t *testing.T, s store.Store, in *killInflight, gen int) {
	t.Helper()
	got := map[string]killAction{}
	require.NoError(t, s.LoadActions(killQueue, func(a *messages.StoredAction) error {
		got[a.Id] = killAction{seq: a.Status.GetSeq(), state: a.Status.GetState()}
		return nil
	}))
	switch {
	case equalActions(got, m.actions):
	case in != nil && equalActions(got, in.with.actions):
		m.actions = in.with.actions
	default:
		var diff []string
		for id, want := range m.actions {
			if g, ok := got[id]; !ok {
				diff = append(diff, fmt.Sprintf("%s (seq %d, state %v) is missing", id, want.seq, want.state))
			} else if g != want {
				diff = append(diff, fmt.Sprintf("%s has seq %d, state %v; want seq %d, state %v", id, g.seq, g.state, want.seq, want.state))
			}
		}
		for id, g := range got {
			if _, ok := m.actions[id]; !ok {
				diff = append(diff, fmt.Sprintf("%s (seq %d, state %v) should not be there", id, g.seq, g.state))
			}
		}
		slices.Sort(diff)
		t.Fatalf("generation %d: the actions after the kill are not those acknowledged (nor with the change under way):\n%s",
			gen, strings.Join(diff[:min(len(diff), 20)], "\n"))
	}
	for _, task := range killTasks {
		ds, err := s.Datastore(task)
		require.NoError(t, err)
		have := map[string][]byte{}
		require.NoError(t, ds.ForEach(func(k, v []byte) error {
			have[string(k)] = bytes.Clone(v)
			return nil
		}))
		keys := map[string]bool{}
		for k := range have {
			keys[k] = true
		}
		for k := range m.ds[task] {
			keys[k] = true
		}
		for k := range keys {
			v := have[k]
			ok, settled := allowedValue(m.ds[task][k], v)
			if !ok && in != nil {
				ok, settled = allowedValue(in.with.ds[task][k], v)
			}
			if !ok {
				want := "nothing"
				if mk := m.ds[task][k]; mk != nil {
					want = fmt.Sprintf("%.20q or one of %d later deferred writes", mk.durable, len(mk.deferred))
				}
				t.Fatalf("generation %d: datastore %s key %s holds %.20q after the kill; want %s", gen, task, k, v, want)
			}
			*m.key(task, k) = killKey{durable: settled}
		}
	}
}

// allowedValue reports whether v is what k's durable write or one of its
// later deferred ones left.
func allowedValue(k *killKey, v []byte) (bool, []byte) {
	if k == nil {
		return v == nil, nil
	}
	if bytes.Equal(k.durable, v) && (k.durable == nil) == (v == nil) {
		return true, v
	}
	for _, d := range k.deferred {
		if bytes.Equal(d, v) && (d == nil) == (v == nil) {
			return true, v
		}
	}
	return false, nil
}

func equalActions(a, b map[string]killAction) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		if y, ok := b[id]; !ok || y != x {
			return false
		}
	}
	return true
}
