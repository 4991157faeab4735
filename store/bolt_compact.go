package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Compaction. bbolt never gives pages back to the file system: a page freed
// by a delete is reused by later writes, but under churn (crawl datastores
// that add and delete, retention of finished actions) the file keeps the
// size of its peak, and the synced freelist of a fragmented file makes it
// grow further (bench/RESULTS.md, "Store engine choice": 1.1 GiB after 1M
// puts, 2.2 GiB after two churn rounds). So the store copies its live data
// into a new file, pages filled, and puts that file in place of the old one
// when most of the file is free:
//
//   - at Open, bounded by Config.CompactOpenTimeout, before anything uses
//     the store;
//   - while it runs, on the checkpointer's goroutine (so only with the
//     journal), bounded by Config.CompactTimeout, checked after every
//     checkpoint (maybeCompact).
//
// How: the copy is made from a read transaction into
// "."+File+".compact" beside the store file (the file a symbolic link at
// its name points to: realPath), without fsyncs, then synced once, then
// renamed over the store file and the folder synced. A crash (or
// kill -9) at any moment leaves either the old file, complete, with perhaps
// a half-written copy beside it (removed at the next Open), or the new one,
// complete: the rename is atomic and the copy is on disk before it. The
// journal needs nothing: the copy carries the journal record of the file it
// copied, and nothing is checkpointed while it is made.
//
// What waits: writers to the file (datastore updates, checkpoints, direct
// commits) wait for the whole copy, at most the timeout; readers do not;
// the queue's ApplyActions, which appends to the journal, waits only for the
// swap (rename, folder sync, closing the old file), under s.mu. A copy that
// exceeds its timeout is abandoned (the store goes on with the old file);
// online, it is tried again with twice the bound after three times as long
// as it ran (compactTries in all), then not until the next Open, whose bound
// is larger.

// Defaults of the compaction settings (Config).
const (
	defaultCompactFreeFraction = 0.25
	defaultCompactMinSize      = 64 << 20
	defaultCompactTimeout      = 30 * time.Second
	defaultCompactOpenTimeout  = time.Minute
	// compactTxBytes bounds the keys and values copied in one transaction
	// of the new file (bbolt keeps a transaction's dirty pages in memory).
	compactTxBytes = 64 << 20
	// compactCheckKeys is how many keys are copied between two looks at
	// the clock.
	compactCheckKeys = 1024
	// compactTries is how many online compactions in a row may reach
	// their time limit (CompactTimeout, then twice, then four times that)
	// before the running store stops trying until the next Open.
	compactTries = 3
)

// errCompactTimeout abandons a copy that took longer than its bound.
var errCompactTimeout = errors.New("store: compaction took longer than its time limit")

// CompactStats describes the last compaction (see Compacter).
type CompactStats struct {
	Before, After int64         // file size in bytes
	Keys          int64         // keys copied
	Took          time.Duration // the whole compaction
	Pause         time.Duration // the swap, during which every call of the store waits
}

// Compacter is implemented by stores whose file can be compacted on demand
// (the bbolt engine). Compact copies the live data into a new file and puts
// it in place; it returns ErrInvalid-free errors of the copy (ErrNoSpace,
// a timeout) with the store still usable on its old file.
type Compacter interface {
	Compact(timeout time.Duration) (CompactStats, error)
}

// realPath returns the store file's path with symbolic links resolved. A
// compaction makes its copy beside the file itself and renames it over
// that file, not over the link: a store file linked from the data folder
// (kept on another disk) stays where the link points, and the link stays.
// Renamed over the link, the copy put the store in the data folder, and
// left the file the link pointed to as it was, never updated again.
func (s *boltStore) realPath() string {
	if p, err := filepath.EvalSymlinks(s.path); err == nil {
		return p
	}
	return s.path
}

// compactPath is where the compaction of the store file at path (its real
// path) makes its copy.
func compactPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".compact")
}

// compactDue reports whether the file is large enough and has enough room
// to reclaim to be worth compacting, and the figures it decided on. Room to
// reclaim is what the pages up to the last one in use do not hold: free
// pages, and the unused part of pages in use (after deletes, pages stay
// half empty without ever becoming free). Not the file's tail beyond the
// last page: bbolt grows files ahead of need (to the next power of two up
// to 16 MiB, then by 16 MiB), and would grow a copy the same. Finding the
// bytes in use walks every page's header (bbolt's bucket statistics).
func (s *boltStore) compactDue() (due bool, size, reclaim int64, err error) {
	if s.cfg.CompactFreeFraction < 0 || s.failed.Load() != nil {
		return false, 0, 0, nil
	}
	fi, err := os.Stat(s.path)
	if err != nil || fi.Size() < s.cfg.CompactMinSize {
		return false, 0, 0, nil
	}
	size = fi.Size()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return false, 0, 0, nil
	}
	defer s.protect(&err, "compaction check", false)()
	var inuse, hwm int64
	err = s.db.View(func(tx *bolt.Tx) error {
		hwm = tx.Size()
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			st := b.Stats()
			inuse += int64(st.BranchInuse + st.LeafInuse)
			return nil
		})
	})
	if err != nil {
		return false, 0, 0, err
	}
	reclaim = max(hwm-inuse, 0)
	return float64(reclaim) >= s.cfg.CompactFreeFraction*float64(size), size, reclaim, nil
}

// maybeCompact compacts the file online when it is due. Called by the
// checkpointer after each checkpoint. Two looks decide:
//
//   - the free pages alone, from bbolt's counters (no cost): due when they
//     are the fraction of the file. Deletes of whole runs of keys (the
//     oldest actions, a crawl's old pages) free whole pages, so a burst of
//     them is seen at the next tick;
//   - the walk of every page header (compactDue), which also counts the
//     unused part of pages in use (deletes of every other key leave pages
//     half empty without freeing any): at most 2% of the time, or 10%
//     while keys are being deleted (a quarter as many keys deleted since
//     the last walk as the file has pages).
//
// Compactions themselves take at most a quarter of the time: the next one
// waits at least three times as long as the last took, so a store whose
// pages keep splitting is not copied over and over.
func (s *boltStore) maybeCompact() {
	now := time.Now()
	if s.compactOff || now.Before(s.compactAfter) {
		return
	}
	due, size, reclaim := s.compactFreeDue()
	if size == 0 {
		return // small, or compaction off
	}
	if !due {
		walk := !now.Before(s.compactNext) ||
			!now.Before(s.compactWalkAfter) && s.deleted.Load() >= size/int64(os.Getpagesize())/4
		if !walk {
			return
		}
		var err error
		s.deleted.Store(0)
		due, size, reclaim, err = s.compactDue()
		took := time.Since(now)
		s.compactNext = time.Now().Add(max(50*took, time.Second))
		s.compactWalkAfter = time.Now().Add(max(10*took, time.Second))
		if err != nil {
			s.compactOff = true
			s.log.Error("store compaction check failed; no compaction until the next start", "err", err)
			return
		}
		if !due {
			return
		}
	}
	limit := s.cfg.CompactTimeout << s.compactTimeouts
	s.log.Info("store compaction starting", "bytes", size, "reclaimable_bytes", reclaim, "limit", limit)
	t0 := time.Now()
	st, err := s.Compact(limit)
	if errors.Is(err, errCompactTimeout) && s.compactTimeouts+1 < compactTries {
		// A loaded machine: try again with twice the time, once as long
		// again as this one ran has passed three times over.
		s.compactTimeouts++
		s.compactAfter = time.Now().Add(3 * time.Since(t0))
		s.log.Warn("store compaction abandoned at its time limit; the store goes on with its file and tries again later with a longer limit",
			"err", err, "retry_after", time.Until(s.compactAfter).Round(time.Second), "next_limit", s.cfg.CompactTimeout<<s.compactTimeouts)
		return
	}
	if err != nil {
		s.compactOff = true
		s.log.Warn("store compaction abandoned; the store goes on with its file, and compacts at the next start", "err", err)
		return
	}
	s.compactTimeouts = 0
	s.deleted.Store(0)
	s.compactAfter = time.Now().Add(3 * st.Took)
	s.compactNext = s.compactAfter
	s.logCompacted(st)
}

// compactFreeDue reports whether the file's free pages alone (bbolt's
// counters as of the last write transaction: free, and freed but still
// seen by a reader) make it due for compaction, without reading a page,
// and the file's size (0 when it is too small to compact, or compaction is
// off).
func (s *boltStore) compactFreeDue() (due bool, size, free int64) {
	if s.cfg.CompactFreeFraction < 0 || s.failed.Load() != nil {
		return false, 0, 0
	}
	fi, err := os.Stat(s.path)
	if err != nil || fi.Size() < s.cfg.CompactMinSize {
		return false, 0, 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return false, 0, 0
	}
	free = int64(s.db.Stats().FreeAlloc)
	return float64(free) >= s.cfg.CompactFreeFraction*float64(fi.Size()), fi.Size(), free
}

func (s *boltStore) logCompacted(st CompactStats) {
	s.log.Info("store compacted", "bytes_before", st.Before, "bytes_after", st.After, "keys", st.Keys,
		"took", st.Took, "pause", st.Pause)
}

// compactAtOpen compacts a freshly opened store when it is due, bounded by
// CompactOpenTimeout. A failure is logged, not returned: the store works on
// its old file.
func (s *boltStore) compactAtOpen() {
	due, size, reclaim, err := s.compactDue()
	if err != nil {
		s.log.Error("store compaction check failed", "err", err)
		return
	}
	if !due {
		return
	}
	s.log.Info("store compaction at start-up", "bytes", size, "reclaimable_bytes", reclaim, "limit", s.cfg.CompactOpenTimeout)
	st, err := s.Compact(s.cfg.CompactOpenTimeout)
	if err != nil {
		s.log.Warn("store compaction at start-up abandoned; the store goes on with its file", "err", err)
		return
	}
	s.logCompacted(st)
}

// removeCompactLeftover deletes a copy an interrupted compaction left.
func (s *boltStore) removeCompactLeftover() error {
	tmp := compactPath(s.realPath())
	switch err := os.Remove(tmp); {
	case err == nil:
		s.log.Warn("removed the copy of an interrupted compaction", "file", tmp)
		return syncDir(filepath.Dir(tmp))
	case errors.Is(err, os.ErrNotExist):
		return nil
	default:
		return s.openErr("remove the copy of an interrupted compaction", err)
	}
}

// Compact copies the store's live data into a new file and puts it in place
// of the current one (see the comment at the top of this file). It gives up
// after timeout (0: no limit), leaving the store on its old file.
func (s *boltStore) Compact(timeout time.Duration) (st CompactStats, err error) {
	start := time.Now()
	// No checkpoint and no other write to the file while it is copied:
	// what is not in the copy would be lost with the old file.
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.gate.Lock()
	defer s.gate.Unlock()
	s.mu.RLock()
	src := s.db
	s.mu.RUnlock()
	if src == nil {
		return st, fmt.Errorf("store: %s: compact: %w", s.path, ErrClosed)
	}
	if f := s.failed.Load(); f != nil {
		return st, fmt.Errorf("store: %s: compact: %w (after: %w)", s.path, ErrFailed, *f)
	}
	if fi, err := os.Stat(s.path); err == nil {
		st.Before = fi.Size()
	}
	file := s.realPath()
	tmp := compactPath(file)
	_ = os.Remove(tmp)
	dst, keys, err := s.copyTo(src, tmp, start, timeout)
	if err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, errCompactTimeout) {
			return st, fmt.Errorf("store: %s: compact: %w (%s, %d keys copied)", s.path, err, timeout, keys)
		}
		return st, s.commitErr("compact", err, false)
	}
	st.Keys = keys
	if testCompactHook != nil {
		testCompactHook("synced")
	}

	// The swap: nothing may use the old file from here on.
	t0 := time.Now()
	s.mu.Lock()
	if err := os.Rename(tmp, file); err != nil {
		s.mu.Unlock()
		_ = dst.Close()
		_ = os.Remove(tmp)
		return st, s.commitErr("compact: rename", err, false)
	}
	if testCompactHook != nil {
		testCompactHook("renamed")
	}
	// The new file is in place for this process whatever happens next;
	// a failed folder sync only leaves it unsure which of two complete
	// files a power loss would keep.
	serr := syncDir(filepath.Dir(file))
	old := s.db
	s.db = dst
	s.mu.Unlock()
	st.Pause = time.Since(t0)
	if err := old.Close(); err != nil {
		s.log.Warn("closing the store file replaced by its compacted copy", "err", err)
	}
	if serr != nil {
		s.log.Warn("store compaction: folder not synced after the rename", "err", serr)
	}
	if fi, err := os.Stat(s.path); err == nil {
		st.After = fi.Size()
	}
	st.Took = time.Since(start)
	return st, nil
}

// copyTo copies every bucket and key of src into a new bbolt file at path,
// pages filled (adapted from bbolt's Compact, compact.go, MIT licence: this
// one gives up at the deadline, syncs once at the end instead of at every
// commit, and recovers from panics on damaged pages). It returns the new
// file open for writing, with the store's options.
func (s *boltStore) copyTo(src *bolt.DB, path string, start time.Time, timeout time.Duration) (_ *bolt.DB, keys int64, err error) {
	var file *os.File
	opts := s.boltOptions(&file, false)
	opts.NoSync = true // synced once, below: a crash before discards it
	dst, err := openWritable(path, opts)
	if err != nil {
		if file != nil {
			_ = file.Close()
		}
		return nil, 0, err
	}
	defer func() {
		if err != nil {
			_ = dst.Close()
		}
	}()
	defer s.protect(&err, "compact", false)()
	tx, err := dst.Begin(true)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	var size int64
	var copyBucket func(from *bolt.Bucket, path [][]byte) error
	// into returns the bucket at path in the current transaction (which
	// changes at each intermediate commit).
	into := func(path [][]byte) *bolt.Bucket {
		b := tx.Bucket(path[0])
		for _, k := range path[1:] {
			b = b.Bucket(k)
		}
		b.FillPercent = 1.0
		return b
	}
	copyBucket = func(from *bolt.Bucket, path [][]byte) error {
		return from.ForEach(func(k, v []byte) error {
			keys++
			if keys%compactCheckKeys == 0 {
				if testCompactHook != nil {
					testCompactHook("copying")
				}
				if timeout > 0 && time.Since(start) > timeout {
					return errCompactTimeout
				}
			}
			if sz := int64(len(k) + len(v)); size+sz > compactTxBytes {
				if err := tx.Commit(); err != nil {
					tx = nil
					return err
				}
				if tx, err = dst.Begin(true); err != nil {
					tx = nil
					return err
				}
				size = 0
			} else {
				size += sz
			}
			if v != nil {
				return into(path).Put(k, v)
			}
			sub := from.Bucket(k)
			if sub == nil {
				return fmt.Errorf("store: %s: compact: %x is neither a key nor a bucket: %w", s.path, k, ErrCorrupt)
			}
			nb, err := into(path).CreateBucket(k)
			if err != nil {
				return err
			}
			if err := nb.SetSequence(sub.Sequence()); err != nil {
				return err
			}
			return copyBucket(sub, append(path[:len(path):len(path)], k))
		})
	}
	err = src.View(func(stx *bolt.Tx) error {
		return stx.ForEach(func(name []byte, b *bolt.Bucket) error {
			nb, err := tx.CreateBucket(name)
			if err != nil {
				return err
			}
			if err := nb.SetSequence(b.Sequence()); err != nil {
				return err
			}
			return copyBucket(b, [][]byte{name})
		})
	})
	if err != nil {
		return nil, keys, err
	}
	err = tx.Commit()
	tx = nil
	if err != nil {
		return nil, keys, err
	}
	dst.NoSync = false
	if err := dst.Sync(); err != nil {
		return nil, keys, err
	}
	return dst, keys, nil
}

// testCompactHook, when set by a test, is called at the steps of a
// compaction ("copying": every compactCheckKeys keys copied; "synced": the
// copy is on disk; "renamed": it replaced the store file), so that a test can kill the process there.
var testCompactHook func(step string)
