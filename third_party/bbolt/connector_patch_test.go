package bbolt

import (
	"encoding/binary"
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"go.etcd.io/bbolt/internal/common"
)

// connector patch tests (PATCHES.md): Bucket.Put's reused cursor and
// node.put's doubling growth.

func patchTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func seqKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = binary.BigEndian.AppendUint64(nil, uint64(i+1))
	}
	return keys
}

// A Put allocates only its copy of the key (and, now and then, the node's
// growth): the cursor that finds its place is the bucket's, reused, not a
// new one whose stack grows from nothing (upstream: four allocations).
func TestPutReusesItsCursor(t *testing.T) {
	db := patchTestDB(t)
	keys := seqKeys(2002) // the first, AllocsPerRun's warm-up, and 2000 runs
	value := []byte("value")
	err := db.Update(func(tx *Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		if err := b.Put(keys[0], value); err != nil {
			return err
		}
		i := 1
		allocs := testing.AllocsPerRun(2000, func() {
			if err := b.Put(keys[i], value); err != nil {
				t.Fatal(err)
			}
			i++
		})
		if allocs > 1.1 {
			t.Errorf("%.2f allocations per Put, want about 1 (the key's copy)", allocs)
		}
		if st := tx.Stats(); st.GetCursorCount() < 2002 {
			t.Errorf("cursor count %d, want every Put counted (2002)", st.GetCursorCount())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The keys are all there, in order, after the commit.
	err = db.View(func(tx *Tx) error {
		c := tx.Bucket([]byte("b")).Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if string(k) != string(keys[n]) || string(v) != "value" {
				t.Fatalf("key %d: %x=%q, want %x", n, k, v, keys[n])
			}
			n++
		}
		if n != len(keys) {
			t.Fatalf("%d keys, want %d", n, len(keys))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Keys appended to one node in one transaction (bbolt splits a node only
// when the transaction commits) grow its inodes by doubling: a few
// allocations, each entry copied about once in all, where append's
// growth (1.25× past 256 entries) allocated and copied about twice as
// much again.
func TestPutAppendGrowsNodeByDoubling(t *testing.T) {
	db := patchTestDB(t)
	const n = 16376 // a capacity doubling from 8 (8, 24, 56, …) reaches exactly
	keys := seqKeys(n)
	value := []byte("v")
	err := db.Update(func(tx *Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, k := range keys {
			if err := b.Put(k, value); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		// The keys' copies (8 bytes each), then the node's inodes: what
		// the growth allocated in all, in units of the final slice.
		inodes := float64(after.TotalAlloc-before.TotalAlloc-8*n) / float64(n*int(unsafe.Sizeof(common.Inode{})))
		t.Logf("growth allocated %.2f times the final inodes", inodes)
		if inodes > 3 {
			t.Errorf("appending %d keys allocated %.2f times their inodes, want at most 3 (doubling: about 2)", n, inodes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		if got := tx.Bucket([]byte("b")).Stats().KeyN; got != n {
			t.Fatalf("%d keys, want %d", got, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Bucket copied by value (as Tx does with its root) does not use the
// cursor of the bucket it was copied from.
func TestPutCursorOfCopiedBucket(t *testing.T) {
	db := patchTestDB(t)
	err := db.Update(func(tx *Tx) error {
		a, err := tx.CreateBucket([]byte("a"))
		if err != nil {
			return err
		}
		if err := a.Put([]byte("k1"), []byte("a")); err != nil {
			return err
		}
		c := *a // same bucket, copied: its Puts go to the same tree
		if err := c.Put([]byte("k2"), []byte("c")); err != nil {
			return err
		}
		if c.putCursor == a.putCursor {
			t.Error("the copy used the original's cursor")
		}
		if v := a.Get([]byte("k2")); string(v) != "c" {
			t.Errorf("k2 = %q, want %q", v, "c")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
