package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// boltOptions returns the bbolt options; file receives the opened file so a
// panic inside bolt.Open can still release it (and its lock).
func (s *boltStore) boltOptions(file **os.File, readOnly bool) *bolt.Options {
	o := &bolt.Options{
		Timeout:  s.cfg.LockTimeout,
		ReadOnly: readOnly,
		// The freelist is written with each commit (bbolt's default).
		// Without it (NoFreelistSync) commits are cheaper and the file
		// stays flat under churn, but every read-write open rebuilds the
		// freelist by walking all pages on a goroutine of bbolt's, where
		// a damaged page is a panic or fault that kills the process
		// (seen in TestDamageFlippedBytes). See bench/RESULTS.md.
		NoFreelistSync: false,
		FreelistType:   bolt.FreelistMapType,
		MaxSize:        int(s.cfg.MaxSize),
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			*file = f
			return f, err
		},
		// No Logger: bbolt then uses its own discarding logger, which it
		// recognises and skips. Any other logger, even one that discards
		// everything, makes each Put and Delete box its key for two
		// Debugf calls (two allocations per key written: 17 % of a
		// durable submit's allocations, bench/RESULTS.md). The store
		// reports what matters itself; bbolt never calls Fatal or Panic.
	}
	if !readOnly && s.cfg.MaxSize == 0 {
		o.InitialMmapSize = mmapReserve
	}
	return o
}

// mmapReserve is the address space a writable open maps at once (bbolt's
// Options.InitialMmapSize), so that the file grows into it without a
// remap. At each remap bbolt copies every key and value of the open
// write transaction's nodes to the heap (node.dereference) and maps again:
// a file growing from empty doubles its map from 32 KiB, so the commit
// that folds a task's datastore of 10k records into a new file remapped at
// each doubling and copied what it wrote as many times over (61 % of the
// bytes BenchmarkCloseFreshDatastore allocated, a third of its CPU:
// bench/RESULTS.md). The mapping is shared and read-only: pages past the
// file's end are never touched, so it costs address space, not memory
// (measured: RSS not higher). Beyond it bbolt doubles as before. Not on
// 32-bit platforms, whose address space it would crowd; not on Windows,
// where bbolt grows the file to its map; not for read-only opens (they
// write nothing); not under a Config.MaxSize: bbolt checks a growth
// against the cap as if the map were only as big as the file needs, and
// with the reserve a file under 1 MiB then grew by fileAllocStep, past a
// cap below 2 MiB (TestMaxSize). With a cap nothing is journaled, so no
// checkpoint folds into a new file.
var mmapReserve = func() int {
	if strconv.IntSize < 64 || runtime.GOOS == "windows" {
		return 0
	}
	return 256 << 20
}()

// fileAllocStep is by how much a writable open grows the file past what a
// commit needs (bbolt's DB.AllocSize). bbolt grows the file to the whole
// map while the map is at most AllocSize (16 MiB by default), which with
// mmapReserve would make every file at least that big; above it, by what
// the commit needs plus AllocSize. 1 MiB keeps small files small (before
// the reserve they grew to the next power of two) and large ones tighter
// than bbolt's 16 MiB steps, at one truncate and fsync per MiB of growth.
var fileAllocStep = 1 << 20

// openWritable opens a bbolt file for writing with opts (from boltOptions)
// and sets what Options cannot (fileAllocStep), before any transaction.
func openWritable(path string, opts *bolt.Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		return nil, err
	}
	db.AllocSize = fileAllocStep
	return db, nil
}

func (s *boltStore) boltOpen(path string, readOnly bool) (db *bolt.DB, err error) {
	var file *os.File
	defer func() {
		// A damaged file can make bolt.Open panic after it opened and
		// locked the file; close it so the lock is released.
		if err != nil && db == nil && file != nil {
			_ = file.Close()
		}
	}()
	defer s.protect(&err, "open", false)()
	if readOnly {
		db, err = bolt.Open(path, 0o600, s.boltOptions(&file, true))
	} else {
		db, err = openWritable(path, s.boltOptions(&file, false))
	}
	if err != nil {
		return nil, s.openErr("open", err)
	}
	return db, nil
}

// create makes a new, empty store file: built under a temporary name, then
// linked into place, so that a store file, once it exists, is never empty
// or half-initialised (an empty or truncated file is reported as damage, not
// silently reinitialised).
func (s *boltStore) create() (err error) {
	tmp, err := os.CreateTemp(s.cfg.Dir, "."+s.cfg.File+".new-*")
	if err != nil {
		return s.openErr("create", err)
	}
	name := tmp.Name()
	_ = tmp.Close()
	defer os.Remove(name)
	var file *os.File
	db, err := openWritable(name, s.boltOptions(&file, false))
	if err != nil {
		return s.openErr("create", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keyMagic, []byte(storeMagic)); err != nil {
			return err
		}
		if err := meta.Put(keyFormat, []byte(strconv.Itoa(FormatVersion))); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketQueues, bucketDS, bucketDSLen} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.openErr("create", err)
	}
	// Link refuses to replace a file another process created meanwhile;
	// that one is then opened (or found locked) like any existing store.
	if err := os.Link(name, s.path); err != nil && !errors.Is(err, os.ErrExist) {
		return s.openErr("create", err)
	}
	return syncDir(s.cfg.Dir)
}

// probeWritable refuses a folder in which files cannot be created: the
// store file may still be writable there, but the journal, and a new store
// file, need the folder; finding out at the first write would refuse every
// submission of a server that had started.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".connector-probe-*")
	if err != nil {
		if permissionError(err) {
			return fmt.Errorf("store: the folder %s cannot be written: %w: %w", dir, ErrReadOnly, err)
		}
		return fmt.Errorf("store: the folder %s cannot be written: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("store: the folder %s: remove %s: %w", dir, name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync folder %s: %w", dir, err)
	}
	return nil
}

// boltHeader is how every bbolt file starts: the header of meta page 0
// (id 0, flags 0x04, no elements, no overflow) then the magic 0xED0CDAED in
// little-endian byte order.
var boltHeader = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0xED, 0xDA, 0x0C, 0xED}

// sniff tells a bbolt file from a foreign one before bbolt reads it, so a
// foreign file gets ErrFormat instead of bbolt's generic "invalid
// database", and an empty or cut-short one ErrCorrupt.
func sniff(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if permissionError(err) {
			return fmt.Errorf("store: open %s: %w: %w", path, ErrReadOnly, err)
		}
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 64<<10+len(boltHeader))
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("store: read %s: %w", path, err)
	}
	head = head[:n]
	switch {
	case n == 0:
		return fmt.Errorf("store: %s is empty (a store file is never empty: it was truncated): %w", path, ErrCorrupt)
	case bytes.HasPrefix(head, boltHeader):
		return nil
	case n < len(boltHeader) && bytes.HasPrefix(boltHeader, head):
		return fmt.Errorf("store: %s is cut short at %d bytes: %w", path, n, ErrCorrupt)
	}
	// Meta page 0 is damaged; bbolt can still use meta page 1, which sits
	// one page further on. Page sizes are powers of two from 1 KiB.
	magic := boltHeader[16:]
	for off := 1 << 10; off <= 64<<10; off <<= 1 {
		if off+len(boltHeader) <= n && bytes.Equal(head[off+16:off+20], magic) {
			return nil
		}
	}
	return fmt.Errorf("store: %s has no bbolt header (another program's file?): %w", path, ErrFormat)
}

// checkOpened validates a file opened read-only: not truncated, ours, of
// our version, every page readable (a walk of every key and value, on this
// goroutine where a panic or fault is recovered) and, with VerifyOnOpen,
// every checksum.
func (s *boltStore) checkOpened(db *bolt.DB) (err error) {
	defer s.protect(&err, "check", false)()
	info, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("store: stat %s: %w", s.path, err)
	}
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > info.Size() {
			return fmt.Errorf("store: %s is %d bytes but its pages reach byte %d (truncated): %w", s.path, info.Size(), tx.Size(), ErrCorrupt)
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("store: %s is a bbolt database without connector metadata: %w", s.path, ErrFormat)
		}
		if m := meta.Get(keyMagic); string(m) != storeMagic {
			return fmt.Errorf("store: %s has magic %q, want %q: %w", s.path, m, storeMagic, ErrFormat)
		}
		v := string(meta.Get(keyFormat))
		if v != strconv.Itoa(FormatVersion) {
			return fmt.Errorf("store: %s has format version %q; this build reads version %d only: %w", s.path, v, FormatVersion, ErrVersion)
		}
		for _, b := range [][]byte{bucketQueues, bucketDS, bucketDSLen} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("store: %s lacks bucket %s: %w", s.path, b, ErrCorrupt)
			}
		}
		return s.verify(tx, s.cfg.VerifyOnOpen)
	})
}

// verify reads every key and value of every bucket but meta; with sums, it
// also checks every frame and decodes every action.
func (s *boltStore) verify(tx *bolt.Tx, sums bool) error {
	var touched byte
	var walk func(b *bolt.Bucket, path string, actions bool) error
	walk = func(b *bolt.Bucket, path string, actions bool) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				sub := b.Bucket(k)
				if sub == nil {
					return fmt.Errorf("store: %s: %s/%q is neither a key nor a bucket: %w", s.path, path, k, ErrCorrupt)
				}
				return walk(sub, path+"/"+string(k), bytes.Equal(k, bucketSeq))
			}
			// Touch both ends of key and value: damaged offsets fault
			// here, where protect recovers, rather than in bbolt.
			touched ^= k[0] ^ k[len(k)-1]
			if len(v) > 0 {
				touched ^= v[0] ^ v[len(v)-1]
			}
			if !sums {
				return nil
			}
			p, ok := unframe(k, v)
			if !ok {
				return fmt.Errorf("store: %s: %s/%x: checksum mismatch: %w", s.path, path, k, ErrCorrupt)
			}
			if actions {
				a, err := decodeAction(p)
				if err != nil {
					return fmt.Errorf("store: %s: %s/%x: %w: %w", s.path, path, k, ErrCorrupt, err)
				}
				if len(k) != 8 || a.GetStatus().GetSeq() != binary.BigEndian.Uint64(k) {
					return fmt.Errorf("store: %s: %s/%x: record has seq %d: %w", s.path, path, k, a.GetStatus().GetSeq(), ErrCorrupt)
				}
			}
			return nil
		})
	}
	for _, name := range [][]byte{bucketQueues, bucketDS, bucketDSLen} {
		if err := walk(tx.Bucket(name), string(name), false); err != nil {
			return err
		}
	}
	sink.Store(uint32(touched))
	return nil
}

// sink keeps verify's reads from being optimised away.
var sink atomic.Uint32
