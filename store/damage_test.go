package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// contents is everything a store holds, read through its API.
type contents struct {
	actions []*messages.StoredAction
	ds      map[string][][2]string
}

func readAll(s store.Store) (*contents, error) {
	c := &contents{ds: map[string][][2]string{}}
	if err := s.LoadActions("fetch", func(a *messages.StoredAction) error {
		c.actions = append(c.actions, a)
		return nil
	}); err != nil {
		return nil, err
	}
	names, err := s.DatastoreNames()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		d, err := s.Datastore(n)
		if err != nil {
			return nil, err
		}
		var kv [][2]string
		if err := d.ForEach(func(k, v []byte) error {
			kv = append(kv, [2]string{string(k), string(v)})
			return nil
		}); err != nil {
			return nil, err
		}
		l, err := d.Len()
		if err != nil {
			return nil, err
		}
		if l != len(kv) {
			return nil, fmt.Errorf("datastore %s: Len %d, %d keys", n, l, len(kv))
		}
		c.ds[n] = kv
	}
	return c, nil
}

func (c *contents) equal(o *contents) bool {
	if len(c.actions) != len(o.actions) || len(c.ds) != len(o.ds) {
		return false
	}
	for i := range c.actions {
		if !proto.Equal(c.actions[i], o.actions[i]) {
			return false
		}
	}
	for n, kv := range c.ds {
		okv := o.ds[n]
		if len(kv) != len(okv) {
			return false
		}
		for i := range kv {
			if kv[i] != okv[i] {
				return false
			}
		}
	}
	return true
}

// sample writes a closed store with actions and two datastores into dir,
// and returns its file, its contents, and its contents before the last
// commit.
func sample(t *testing.T, dir string) (string, *contents, *contents) {
	t.Helper()
	s := openDurable(t, dir, nil)
	var batch []store.ActionMutation
	for i := 0; i < 300; i++ {
		batch = append(batch, storetest.Put(storetest.Record(fmt.Sprintf("0190-%04d", i), uint64(i), messages.State_STATE_QUEUED)))
	}
	require.NoError(t, s.ApplyActions("fetch", batch))
	// Close and reopen, so the journal is folded into the file now and the
	// store's last commit is the last datastore update below (a close
	// checkpoints only what is still journaled).
	require.NoError(t, s.Close())
	s = openDurable(t, dir, nil)
	var prev *contents
	for _, task := range []string{"A", "B"} {
		d, err := s.Datastore(task)
		require.NoError(t, err)
		prev, err = readAll(s) // the state before the last commit
		require.NoError(t, err)
		require.NoError(t, d.Update(func(w store.Writer) error {
			for i := 0; i < 200; i++ {
				if err := w.Put(fmt.Appendf(nil, "http://example.com/%s/%d", task, i), bytes.Repeat([]byte{byte(i)}, 40)); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	want, err := readAll(s)
	require.NoError(t, err)
	path := s.Info().Path
	require.NoError(t, s.Close())
	return path, want, prev
}

// damaged opens a damaged copy and checks the store either refuses it with
// one of the damage errors, or serves exactly the original contents (or,
// when prev is given, the contents before the last commit), or reports
// ErrCorrupt when the damaged part is read. It never panics.
func damaged(t *testing.T, dir string, want, prev *contents, what string) (refused bool) {
	t.Helper()
	s, err := store.Open(store.Config{Dir: dir, LockTimeout: 50 * time.Millisecond})
	if err != nil {
		require.Truef(t, errors.Is(err, store.ErrCorrupt) || errors.Is(err, store.ErrFormat) || errors.Is(err, store.ErrVersion),
			"%s: open: unexpected error %v", what, err)
		require.Contains(t, err.Error(), filepath.Join(dir, store.DefaultFile), "%s: the error names the file", what)
		return true
	}
	defer s.Close()
	got, err := readAll(s)
	if err != nil {
		require.ErrorIsf(t, err, store.ErrCorrupt, "%s: read: %v", what, err)
		return true
	}
	if prev != nil && prev.equal(got) {
		return false
	}
	require.Truef(t, want.equal(got), "%s: opened and read without error, but the contents differ", what)
	return false
}

func copyFile(t *testing.T, src, dstDir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	dst := filepath.Join(dstDir, store.DefaultFile)
	require.NoError(t, os.WriteFile(dst, b, 0o600))
	return dst
}

func TestDamageTruncated(t *testing.T) {
	t.Parallel()
	src, want, _ := sample(t, t.TempDir())
	fi, err := os.Stat(src)
	require.NoError(t, err)
	size := fi.Size()
	offsets := []int64{0, 1, 10, 19, 20, 100, 4095, 4096, 4097, 8192, 3 * 4096, size / 2, size - 4096, size - 1}
	for _, off := range offsets {
		if off < 0 || off >= size {
			continue
		}
		dir := t.TempDir()
		path := copyFile(t, src, dir)
		require.NoError(t, os.Truncate(path, off))
		refused := damaged(t, dir, want, nil, fmt.Sprintf("truncated at %d of %d", off, size))
		if off < 3*4096 {
			require.True(t, refused, "truncated at %d must be refused", off)
		}
	}
}

func TestDamageForeignFiles(t *testing.T) {
	t.Parallel()
	cases := map[string]func(path string){
		"text": func(path string) {
			require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("not a database\n"), 1000), 0o600))
		},
		"short text": func(path string) { require.NoError(t, os.WriteFile(path, []byte("hello"), 0o600)) },
		"sqlite": func(path string) {
			require.NoError(t, os.WriteFile(path, append([]byte("SQLite format 3\x00"), make([]byte, 8192)...), 0o600))
		},
		"another bbolt database": func(path string) {
			db, err := bolt.Open(path, 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("widgets"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			}))
			require.NoError(t, db.Close())
		},
	}
	for name, write := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, store.DefaultFile)
			write(path)
			before, err := os.ReadFile(path)
			require.NoError(t, err)
			_, err = store.Open(store.Config{Dir: dir})
			require.ErrorIs(t, err, store.ErrFormat)
			require.Contains(t, err.Error(), path)
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, before, after, "a foreign file is left untouched")
		})
	}
}

func TestDamageFutureVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, _, _ := sample(t, dir)
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("2"))
	}))
	require.NoError(t, db.Close())
	_, err = store.Open(store.Config{Dir: dir})
	require.ErrorIs(t, err, store.ErrVersion)
	msg := err.Error()
	require.Contains(t, msg, path)
	require.Contains(t, msg, `"2"`, "names the file's version")
	require.Contains(t, msg, fmt.Sprint(store.FormatVersion), "names the version this build reads")
}

func TestLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openDurable(t, dir, nil)
	defer s.Close()
	_, err := store.Open(store.Config{Dir: dir, LockTimeout: 50 * time.Millisecond})
	require.ErrorIs(t, err, store.ErrLocked)
	require.Contains(t, err.Error(), filepath.Join(dir, store.DefaultFile))
	// The first store is unaffected.
	require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{storetest.Put(storetest.Record("a", 1, 1))}))
	require.NoError(t, s.Close())
	s2 := openDurable(t, dir, nil)
	storetest.RequireActions(t, s2, "fetch", storetest.Record("a", 1, 1))
	require.NoError(t, s2.Close())
}

func TestReadOnlyFolderChmod(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	require.NoError(t, os.Chmod(parent, 0o500))
	t.Cleanup(func() { _ = os.Chmod(parent, 0o700) })
	if f, err := os.Create(filepath.Join(parent, "probe")); err == nil {
		f.Close()
		t.Skip("chmod does not stop writes here (running as root); TestReadOnlyMount covers this case")
	}
	_, err := store.Open(store.Config{Dir: filepath.Join(parent, "data")})
	require.ErrorIs(t, err, store.ErrReadOnly)
	_, err = store.Open(store.Config{Dir: parent})
	require.ErrorIs(t, err, store.ErrReadOnly)
	require.Contains(t, err.Error(), parent)
}

func TestDamageTruncatedWhileOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, want, _ := sample(t, dir)
	s := openDurable(t, dir, nil)
	defer s.Close()
	got, err := readAll(s)
	require.NoError(t, err)
	require.True(t, want.equal(got))
	// Someone truncates the file under the running store: reads that
	// touch the lost pages fault, and the fault is reported, not fatal.
	require.NoError(t, os.Truncate(path, 3*4096))
	_, err = readAll(s)
	require.ErrorIs(t, err, store.ErrCorrupt)
	require.Contains(t, err.Error(), path)
	require.NoError(t, s.Close())
	_, err = store.Open(store.Config{Dir: dir})
	require.ErrorIs(t, err, store.ErrCorrupt)
}

func TestMaxSize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := store.Open(store.Config{Dir: dir, MaxSize: 1 << 20})
	require.NoError(t, err)
	defer s.Close()
	var applied []*messages.StoredAction
	var full error
	for i := 0; i < 10_000 && full == nil; i++ {
		var batch []store.ActionMutation
		var recs []*messages.StoredAction
		for j := 0; j < 16; j++ {
			r := storetest.Record(fmt.Sprintf("id-%06d", i*16+j), uint64(i*16+j), 1)
			r.Status.Error = strings.Repeat("x", 300)
			recs = append(recs, r)
			batch = append(batch, storetest.Put(r))
		}
		if full = s.ApplyActions("fetch", batch); full == nil {
			applied = append(applied, recs...)
		}
	}
	require.ErrorIs(t, full, store.ErrNoSpace)
	require.Contains(t, full.Error(), filepath.Join(dir, store.DefaultFile))
	// The file itself is within the cap: its growth step past what a
	// commit needs is not taken past it.
	fi, err := os.Stat(filepath.Join(dir, store.DefaultFile))
	require.NoError(t, err)
	require.LessOrEqual(t, fi.Size(), int64(1<<20), "file size over MaxSize")
	// Nothing of the failed batch, everything before it; still readable.
	storetest.RequireActions(t, s, "fetch", applied...)
	// Still writable once there is room: delete, then write again.
	var dels []store.ActionMutation
	for _, a := range applied[:len(applied)/2] {
		dels = append(dels, storetest.Del(a.Id))
	}
	require.NoError(t, s.ApplyActions("fetch", dels))
	extra := storetest.Record("extra", 1<<30, 1)
	require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{storetest.Put(extra)}))
	storetest.RequireActions(t, s, "fetch", append(applied[len(applied)/2:], extra)...)
}

func TestVerifyOnOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, _, _ := sample(t, dir)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	// Change one byte inside a datastore value: a lazy open succeeds and
	// the damage is found when read; VerifyOnOpen finds it at once.
	i := bytes.Index(b, bytes.Repeat([]byte{7}, 40))
	require.Positive(t, i)
	b[i+3] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o600))
	s, err := store.Open(store.Config{Dir: dir})
	require.NoError(t, err)
	_, err = readAll(s)
	require.ErrorIs(t, err, store.ErrCorrupt)
	require.NoError(t, s.Close())
	_, err = store.Open(store.Config{Dir: dir, VerifyOnOpen: true})
	require.ErrorIs(t, err, store.ErrCorrupt)
}

func TestOpenInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := store.Open(store.Config{})
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = store.Open(store.Config{Dir: t.TempDir(), MaxSize: -1})
	require.ErrorIs(t, err, store.ErrInvalid)
}
