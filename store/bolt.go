package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/connectorhq/connector/messages"
)

// File layout (bbolt buckets; every value outside "meta" is framed with a
// CRC-32C, see frame.go):
//
//	meta        magic = "connector-store", format = "1" (decimal)
//	queues/<q>/seq   8-byte big-endian Status.Seq → StoredAction (protobuf)
//	queues/<q>/ids   action id → 8-byte seq (index for Put/Delete by id)
//	datastores/<t>   the task's keys → values
//	datastore-len    task → 8-byte key count (Len in O(1))
const (
	engineBolt = "bbolt"
	// FormatVersion is the layout version this build writes and reads. A
	// store of another version is refused with ErrVersion.
	FormatVersion = 1
	storeMagic    = "connector-store"
)

var (
	bucketMeta    = []byte("meta")
	bucketQueues  = []byte("queues")
	bucketSeq     = []byte("seq")
	bucketIDs     = []byte("ids")
	bucketDS      = []byte("datastores")
	bucketDSLen   = []byte("datastore-len")
	keyMagic      = []byte("magic")
	keyFormat     = []byte("format")
	defaultLockTO = 500 * time.Millisecond
)

// chunk sizes for LoadActions and ForEach: a read transaction never spans a
// callback.
const (
	appendFill   = 0.9
	chunkRecords = 512
	chunkBytes   = 4 << 20
)

type boltStore struct {
	path string
	cfg  Config
	log  *slog.Logger

	mu sync.RWMutex // write-held only by Close; db is nil once closed
	db *bolt.DB

	failed atomic.Pointer[error] // set when a commit's outcome is unknown

	// Actions go through the journal (journal.go): applyMu serialises
	// ApplyActions (validate, append, update the overlay); ovMu guards the
	// overlays of mutations not yet checkpointed into bbolt (active takes
	// new ones; frozen is being checkpointed).
	j        *journal
	applyMu  sync.Mutex
	ovMu     sync.RWMutex
	active   map[string]*overlay
	frozen   map[string]*overlay
	pending  atomic.Int64          // mutations in active
	full     atomic.Pointer[error] // the last checkpoint found no space
	recorded bool                  // the file's journal record names the journal's segments (under applyMu)
	ckptMu   sync.Mutex            // one checkpoint at a time
	ckptWake chan struct{}
	ckptStop chan struct{}
	ckptDone chan struct{}
}

// checkpointEvery is how many journaled mutations wake the checkpointer
// early; otherwise it runs every checkpointInterval when there is any.
const (
	checkpointEvery    = 4096
	checkpointInterval = time.Second
)

func openBolt(cfg Config) (_ Store, err error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("store: Config.Dir is required for a durable store: %w", ErrInvalid)
	}
	if cfg.File == "" {
		cfg.File = DefaultFile
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = defaultLockTO
	}
	if cfg.MaxSize < 0 {
		return nil, fmt.Errorf("store: Config.MaxSize %d is negative: %w", cfg.MaxSize, ErrInvalid)
	}
	path := filepath.Join(cfg.Dir, cfg.File)
	s := &boltStore{path: path, cfg: cfg, log: cfg.Logger.With("component", "store", "path", path)}

	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, s.openErr("create folder", err)
	}
	if err := probeWritable(cfg.Dir); err != nil {
		return nil, err
	}
	switch _, err := os.Stat(path); {
	case errors.Is(err, os.ErrNotExist):
		if err := s.create(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, s.openErr("stat", err)
	}
	if err := sniff(path); err != nil {
		return nil, err
	}
	if err := checkTruncated(path); err != nil {
		return nil, err
	}
	// Check the file read-only first (bbolt then neither writes it nor
	// reads its freelist), walking every page on this goroutine where a
	// panic or fault is recovered, then open it for writing.
	ro, err := s.boltOpen(path, true)
	if err != nil {
		return nil, err
	}
	err = s.checkOpened(ro)
	if cerr := ro.Close(); err == nil && cerr != nil {
		err = s.openErr("close", cerr)
	}
	if err != nil {
		return nil, err
	}
	if s.db, err = s.boltOpen(path, false); err != nil {
		return nil, err
	}
	if err := s.startJournal(); err != nil {
		_ = s.db.Close()
		s.db = nil
		return nil, err
	}
	s.log.Info("store opened", "engine", engineBolt, "bytes", s.Info().SizeBytes)
	return s, nil
}

// startJournal replays what a crash left in the journal into bbolt (see
// journal.go for what is replayed and what is refused), starts a fresh
// journal in a new segment, records in the same transaction as the replay
// where the journal goes on, and deletes the replayed segments. With
// Config.MaxSize the store commits directly instead: only then can a write
// that would grow the file beyond the cap be refused when it is made; so it
// does when the folder has no room for a segment.
func (s *boltStore) startJournal() error {
	base := filepath.Base(s.path)
	pathOf := func(n uint64) string { return filepath.Join(s.cfg.Dir, segmentName(base, n)) }
	rec, err := s.journalRecord()
	if err != nil {
		return err
	}
	nums, err := listSegments(s.cfg.Dir, base)
	if err != nil {
		return s.openErr("list journal", err)
	}
	segs := make([]segmentData, 0, len(nums))
	for _, n := range nums {
		sd := segmentData{n: n, path: pathOf(n)}
		if rec == nil || n >= rec.M { // those below are folded: not read
			if sd.data, err = os.ReadFile(sd.path); err != nil {
				return s.openErr("read journal", err)
			}
		}
		segs = append(segs, sd)
	}
	r, err := replayJournal(rec, segs, pathOf)
	if err != nil {
		return fmt.Errorf("store: %s: replay journal: %w", s.path, err)
	}
	if t := r.torn; t != nil {
		if rec != nil && t.seq != 0 && t.seq <= rec.S {
			s.log.Warn("journal: dropped a damaged frame at the end of the journal; it had been folded into the store file, so nothing is lost",
				"segment", t.segment, "offset", t.offset, "bytes", t.bytes, "seq", t.seq)
		} else {
			s.log.Warn("journal: dropped the last frame of the journal, which is incomplete or damaged: "+
				"if the crash interrupted its write it had not been acknowledged; if the disk damaged it after it was written, "+
				"the change it held is lost (the two cannot be told apart)",
				"segment", t.segment, "offset", t.offset, "bytes", t.bytes)
		}
	}

	// The new journal starts in the segment after every one there is.
	next, last := uint64(1), r.lastSeq
	if rec != nil {
		next, last = max(next, rec.M), max(last, rec.S)
	}
	if len(nums) > 0 {
		next = max(next, nums[len(nums)-1]+1)
	}
	if s.cfg.MaxSize == 0 {
		if s.j, err = startJournal(s.cfg.Dir, base, next, last); err != nil {
			if !spaceError(err) {
				return s.openErr("start journal", err)
			}
			// Too little room for a journal segment: commit actions to
			// bbolt directly (two fsyncs per commit instead of one).
			s.log.Warn("no room for the journal; actions are committed to the store file directly", "err", err)
			s.j = nil
		}
	}
	// The file must say where the journal goes on before a segment it
	// said must be there is deleted, and before anything is acknowledged
	// from the new one. After a clean close (or on a new store) nothing
	// needs writing yet: the first append records it (recordJournal), so
	// that opening and reading a store writes nothing to it.
	if len(r.frames) > 0 || rec != nil && rec.Exists || rec == nil && len(nums) > 0 {
		newRec := journalRecord{M: next, S: last, Exists: s.j != nil}
		err = s.writeRaw("replay journal", func(tx *bolt.Tx) error {
			for _, f := range r.frames {
				for _, m := range f.muts {
					if err := s.applyJournal(tx, f.queue, m); err != nil {
						return err
					}
				}
			}
			return putJournalRecord(tx, newRec)
		})
		if err != nil {
			s.stopJournal()
			return err
		}
		s.recorded = s.j != nil
	}
	if len(r.frames) > 0 {
		s.log.Info("journal replayed", "segments", len(r.chain), "batches", len(r.frames))
	}
	removed := false
	for _, n := range nums {
		if err := os.Remove(pathOf(n)); err != nil {
			s.stopJournal()
			return s.openErr("remove replayed journal", err)
		}
		removed = true
	}
	// Leftovers of an interrupted segment creation.
	if ents, err := os.ReadDir(s.cfg.Dir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), base+journalExt) && strings.HasSuffix(e.Name(), ".tmp") {
				_ = os.Remove(filepath.Join(s.cfg.Dir, e.Name()))
				removed = true
			}
		}
	}
	if removed {
		if err := syncDir(s.cfg.Dir); err != nil {
			s.stopJournal()
			return s.openErr("sync folder", err)
		}
	}
	if s.j == nil {
		return nil
	}
	s.active = map[string]*overlay{}
	s.ckptWake = make(chan struct{}, 1)
	s.ckptStop = make(chan struct{})
	s.ckptDone = make(chan struct{})
	go s.checkpointer()
	return nil
}

// stopJournal abandons a journal started by a failed Open.
func (s *boltStore) stopJournal() {
	if s.j != nil {
		s.j.close()
		s.j = nil
	}
}

// keyJournal holds the journal record (journalRecord) in the meta bucket.
var keyJournal = []byte("journal")

// journalRecord reads the journal record; nil when the file has none (a
// store written before journal records).
func (s *boltStore) journalRecord() (*journalRecord, error) {
	var rec *journalRecord
	err := s.read("read journal record", func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyJournal)
		if v == nil {
			return nil
		}
		r, ok := decodeJournalRecord(v)
		if !ok {
			return fmt.Errorf("store: %s: the journal record does not match its checksum: %w", s.path, ErrCorrupt)
		}
		rec = &r
		return nil
	})
	return rec, err
}

func putJournalRecord(tx *bolt.Tx, r journalRecord) error {
	return tx.Bucket(bucketMeta).Put(keyJournal, r.encode())
}

// checkpointer folds the journal into bbolt: when woken (enough pending
// mutations) or every checkpointInterval, until stopped.
func (s *boltStore) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ckptStop:
			return
		case <-s.ckptWake:
		case <-t.C:
		}
		if err := s.checkpoint(); err != nil {
			s.log.Error("checkpoint failed", "err", err)
		}
	}
}

// checkpoint folds the journaled mutations into bbolt and deletes the
// journal segments that hold nothing else. Reads stay correct throughout:
// they consult active, then frozen, then bbolt. The record of what is
// folded (the current segment and the seq of the last frame written) goes
// into bbolt in the same transaction. A checkpoint that finds no space
// keeps everything (frozen, the segments) and marks the store full; the
// next one retries, with whatever came since.
func (s *boltStore) checkpoint() error {
	if s.j == nil {
		return nil
	}
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.ovMu.RLock()
	retry := s.frozen != nil
	s.ovMu.RUnlock()
	if s.pending.Load() == 0 && !retry || s.failed.Load() != nil {
		return nil
	}
	s.applyMu.Lock()
	m, seq := s.j.position()
	s.ovMu.Lock()
	if s.frozen == nil {
		s.frozen = s.active
	} else {
		for q, o := range s.active {
			f := s.frozen[q]
			if f == nil {
				f = newOverlay()
				s.frozen[q] = f
			}
			for _, e := range o.order {
				f.add(e)
			}
		}
	}
	s.active = map[string]*overlay{}
	s.pending.Store(0)
	frozen := s.frozen
	s.ovMu.Unlock()
	s.applyMu.Unlock()

	if err := s.applyFrozen(frozen, journalRecord{M: m, S: seq, Exists: true}); err != nil {
		if errors.Is(err, ErrNoSpace) {
			s.full.Store(&err)
			return err
		}
		// Outcome unknown or file damaged: the mutations stay in frozen
		// and in the journal; the store refuses writes until reopened,
		// which replays them.
		s.fail(err)
		return err
	}
	s.full.Store(nil)
	s.ovMu.Lock()
	s.frozen = nil
	s.ovMu.Unlock()
	return s.j.drop(m)
}

// applyFrozen writes the latest mutation of every id in frozen to bbolt in
// two transactions: first the removals (deleted ids, and ids whose record
// moves to another seq), so that the second, which writes the records and
// the journal record rec, finds no stale seq in its way and can reuse the
// pages the first freed. A crash in between is harmless: the journal
// record still says the frames are not folded, and replaying them gives
// the same state.
func (s *boltStore) applyFrozen(frozen map[string]*overlay, rec journalRecord) error {
	buckets := func(tx *bolt.Tx, q string) (*bolt.Bucket, *bolt.Bucket, error) {
		qb, err := tx.Bucket(bucketQueues).CreateBucketIfNotExists([]byte(q))
		if err != nil {
			return nil, nil, err
		}
		seqs, err := qb.CreateBucketIfNotExists(bucketSeq)
		if err != nil {
			return nil, nil, err
		}
		ids, err := qb.CreateBucketIfNotExists(bucketIDs)
		if err != nil {
			return nil, nil, err
		}
		seqs.FillPercent, ids.FillPercent = appendFill, appendFill
		return seqs, ids, nil
	}
	removals := false
	err := s.writeRaw("checkpoint journal: removals", func(tx *bolt.Tx) error {
		for q, o := range frozen {
			seqs, ids, err := buckets(tx, q)
			if err != nil {
				return err
			}
			for id, i := range o.latest {
				e := o.order[i]
				v := ids.Get([]byte(id))
				if v == nil {
					continue
				}
				p, ok := unframe([]byte(id), v)
				if !ok || len(p) != 8 {
					return fmt.Errorf("store: %s: checkpoint: index entry of action %s: checksum mismatch: %w", s.path, id, ErrCorrupt)
				}
				if e.put != nil && binary.BigEndian.Uint64(p) == e.seq {
					continue // rewritten in place
				}
				removals = true
				if err := seqs.Delete(p); err != nil {
					return err
				}
				if err := ids.Delete([]byte(id)); err != nil {
					return err
				}
			}
		}
		if !removals {
			return errNothing
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNothing) {
		return err
	}
	return s.writeRaw("checkpoint journal: records", func(tx *bolt.Tx) error {
		for q, o := range frozen {
			seqs, ids, err := buckets(tx, q)
			if err != nil {
				return err
			}
			for id, i := range o.latest {
				if e := o.order[i]; e.put != nil {
					if err := s.applyRaw("checkpoint journal", seqs, ids, id, e.seq, e.put, false); err != nil {
						return err
					}
				}
			}
		}
		return putJournalRecord(tx, rec)
	})
}

// errNothing rolls back a transaction that had nothing to do.
var errNothing = errors.New("store: nothing to write")

func (s *boltStore) stopCheckpointer() {
	if s.ckptStop == nil {
		return
	}
	select {
	case <-s.ckptStop:
	default:
		close(s.ckptStop)
	}
	<-s.ckptDone
}

// writeRaw runs fn in a write transaction without the fault injector's
// hooks (checkpoints and replay are not ApplyActions calls).
func (s *boltStore) writeRaw(what string, fn func(tx *bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.writeRawLocked(what, fn)
}

// writeRawLocked is writeRaw for a caller that holds s.mu for reading.
func (s *boltStore) writeRawLocked(what string, fn func(tx *bolt.Tx) error) (err error) {
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	defer s.protect(&err, what, true)()
	if err := s.db.Update(fn); err != nil {
		if errors.Is(err, errNothing) {
			return err
		}
		return s.commitErr(what, err, true)
	}
	return nil
}

// applyJournal applies one journaled mutation to bbolt.
func (s *boltStore) applyJournal(tx *bolt.Tx, queue string, m journalMutation) error {
	what := "apply journal to queue " + queue
	q, err := tx.Bucket(bucketQueues).CreateBucketIfNotExists([]byte(queue))
	if err != nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
	}
	seqs, err := q.CreateBucketIfNotExists(bucketSeq)
	if err != nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
	}
	ids, err := q.CreateBucketIfNotExists(bucketIDs)
	if err != nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
	}
	seqs.FillPercent, ids.FillPercent = appendFill, appendFill
	if m.kind == kindDelete {
		return s.applyRaw(what, seqs, ids, m.id, 0, nil, false)
	}
	return s.applyRaw(what, seqs, ids, m.pid, m.seq, m.put, false)
}

// boltOptions returns the bbolt options; file receives the opened file so a
// panic inside bolt.Open can still release it (and its lock).
func (s *boltStore) boltOptions(file **os.File, readOnly bool) *bolt.Options {
	return &bolt.Options{
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
		Logger: discardBoltLogger{},
	}
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
	db, err = bolt.Open(path, 0o600, s.boltOptions(&file, readOnly))
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
	db, err := bolt.Open(name, 0o600, s.boltOptions(&file, false))
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

// protect turns a panic (bbolt panics on some damaged pages) or a memory
// fault in the mapped file (a file truncated under us) into ErrCorrupt.
// Use as `defer s.protect(&err, what, write)()`. A panic during a write also
// stops later writes, since the file is known to be damaged.
func (s *boltStore) protect(err *error, what string, write bool) func() {
	prev := debug.SetPanicOnFault(true)
	return func() {
		r := recover()
		debug.SetPanicOnFault(prev)
		if r == nil {
			return
		}
		*err = fmt.Errorf("store: %s: %s: %w: %v", s.path, what, ErrCorrupt, r)
		s.log.Error("store panic recovered", "op", what, "panic", fmt.Sprint(r))
		if write {
			s.fail(*err)
		}
	}
}

func (s *boltStore) fail(err error) {
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("store refuses further writes", "err", err)
	}
}

// openErr wraps an error met while opening.
func (s *boltStore) openErr(what string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("store: %s: %w (lock not obtained within %s)", s.path, ErrLocked, s.cfg.LockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum):
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrCorrupt, err)
	case errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("store: %s: %s: bbolt page format: %w: %w", s.path, what, ErrVersion, err)
	case errors.Is(err, berrors.ErrMaxSizeReached):
		return fmt.Errorf("store: %s: %s: file larger than MaxSize %d: %w: %w", s.path, what, s.cfg.MaxSize, ErrNoSpace, err)
	case strings.Contains(err.Error(), "file size too small"):
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrCorrupt, err)
	case permissionError(err):
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrReadOnly, err)
	case spaceError(err):
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrNoSpace, err)
	}
	return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
}

// read runs fn in a read transaction, guarded.
func (s *boltStore) read(what string, fn func(tx *bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	defer s.protect(&err, what, false)()
	return s.db.View(fn)
}

// errUserPanic aborts a transaction whose callback panicked; the panic is
// raised again once the transaction is rolled back.
var errUserPanic = errors.New("store: callback panicked")

// write runs fn in a write transaction and commits it, applying the failure
// policy: errors before the commit, and out-of-space or permission errors
// from it, leave nothing applied and the store writable; any other commit
// error, or a failed sync, leaves the outcome unknown and stops later writes
// (ErrFailed).
func (s *boltStore) write(what string, fn func(tx *bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("store: %s: %s: %w (after: %w)", s.path, what, ErrFailed, *f)
	}
	defer s.protect(&err, what, true)()
	tx, err := s.db.Begin(true)
	if err != nil {
		return s.commitErr(what, err, false)
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if f := s.cfg.Faults; f != nil {
		if err := f.Commit(); err != nil {
			return s.commitErr(what, err, false)
		}
	}
	done = true // Commit rolls back itself when it fails
	if err := tx.Commit(); err != nil {
		return s.commitErr(what, err, true)
	}
	if f := s.cfg.Faults; f != nil {
		if err := f.Synced(); err != nil {
			return s.commitErr(what, err, true)
		}
	}
	return nil
}

// commitErr wraps an error of a write; uncertain says whether the batch may
// have reached the disk in part.
func (s *boltStore) commitErr(what string, err error, uncertain bool) error {
	switch {
	case errors.Is(err, berrors.ErrMaxSizeReached) || spaceError(err):
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrNoSpace, err)
	case permissionError(err):
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrReadOnly, err)
	case !uncertain:
		return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
	}
	wrapped := fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrFailed, err)
	s.fail(wrapped)
	return wrapped
}

func (s *boltStore) hookWrite() error {
	if f := s.cfg.Faults; f != nil {
		return f.Write()
	}
	return nil
}

// --- actions ---------------------------------------------------------------

// ApplyActions validates the batch against the current state (the journal's
// overlays, then bbolt), appends it to the journal as one frame with one
// fdatasync, and records it in the active overlay. A checkpoint later folds
// it into bbolt.
func (s *boltStore) ApplyActions(queue string, batch []ActionMutation) error {
	if err := checkName("queue", queue); err != nil {
		return err
	}
	what := "apply actions to queue " + queue
	muts := make([]journalMutation, len(batch))
	for i, m := range batch {
		if err := checkMutation(queue, i, m); err != nil {
			return err
		}
		if m.Put != nil {
			b, err := encodeAction(queue, m.Put)
			if err != nil {
				return err
			}
			muts[i] = journalMutation{kind: kindPut, put: b, pid: m.Put.Id, seq: m.Put.GetStatus().GetSeq()}
		} else {
			muts[i] = journalMutation{kind: kindDelete, id: m.Delete}
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	if s.j == nil {
		return s.applyDirect(what, queue, batch, muts)
	}
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("store: %s: %s: %w (after: %w)", s.path, what, ErrFailed, *f)
	}
	if s.full.Load() != nil && slices.ContainsFunc(muts, func(m journalMutation) bool { return m.kind == kindPut }) {
		// The store file had no room at the last checkpoint: try again
		// now (deletes since may have made room); refuse if it still has
		// none. Delete-only batches, which make room, are always taken.
		if err := s.checkpoint(); err != nil && errors.Is(err, ErrNoSpace) {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
		}
		if f := s.full.Load(); f != nil {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, *f)
		}
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if err := s.validate(what, queue, muts); err != nil {
		return err
	}
	if err := s.recordJournal(what); err != nil {
		return err
	}
	for range muts {
		if err := s.hookWrite(); err != nil {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
		}
	}
	frame := encodeFrame(queue, muts)
	err := s.j.append(frame,
		func() error {
			if f := s.cfg.Faults; f != nil {
				if err := f.Commit(); err != nil {
					return s.commitErr(what, err, false)
				}
			}
			return nil
		},
		func() error {
			if f := s.cfg.Faults; f != nil {
				if err := f.Synced(); err != nil {
					return s.commitErr(what, err, true)
				}
			}
			return nil
		})
	if err != nil {
		var se *syncError
		var nw *notWritten
		switch {
		case errors.Is(err, ErrFailed) || errors.Is(err, ErrNoSpace) || errors.Is(err, ErrReadOnly) || strings.HasPrefix(err.Error(), "store: "):
			return err // already classified by commitErr
		case errors.As(err, &nw):
			return s.commitErr(what, err, false)
		case errors.As(err, &se):
			return s.commitErr(what, err, true)
		case spaceError(err) || permissionError(err):
			return s.commitErr(what, err, false)
		default:
			// A failed write may have left a partial frame: stop writing,
			// so it stays the torn tail that replay ignores.
			return s.commitErr(what, err, true)
		}
	}
	s.ovMu.Lock()
	o := s.active[queue]
	if o == nil {
		o = newOverlay()
		s.active[queue] = o
	}
	for _, m := range muts {
		if m.kind == kindPut {
			o.add(ovEntry{id: m.pid, seq: m.seq, put: m.put})
		} else {
			o.add(ovEntry{id: m.id})
		}
	}
	s.ovMu.Unlock()
	if s.pending.Add(int64(len(muts))) >= checkpointEvery {
		select {
		case s.ckptWake <- struct{}{}:
		default:
		}
	}
	return nil
}

// recordJournal makes sure, before the first frame of this run is
// appended, that the store file says the journal goes on in the current
// segment: a replay then knows that segment must be there. Callers hold
// applyMu and s.mu for reading.
func (s *boltStore) recordJournal(what string) error {
	if s.recorded {
		return nil
	}
	m, seq := s.j.position()
	err := s.writeRawLocked(what+": record the journal", func(tx *bolt.Tx) error {
		return putJournalRecord(tx, journalRecord{M: m, S: seq, Exists: true})
	})
	if err != nil {
		return err
	}
	s.recorded = true
	return nil
}

// applyDirect commits a batch to bbolt at once (no journal: too little
// room for its segments).
func (s *boltStore) applyDirect(what, queue string, batch []ActionMutation, muts []journalMutation) error {
	return s.write(what, func(tx *bolt.Tx) error {
		q, err := tx.Bucket(bucketQueues).CreateBucketIfNotExists([]byte(queue))
		if err != nil {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
		}
		seqs, err := q.CreateBucketIfNotExists(bucketSeq)
		if err != nil {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
		}
		ids, err := q.CreateBucketIfNotExists(bucketIDs)
		if err != nil {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
		}
		seqs.FillPercent, ids.FillPercent = appendFill, appendFill
		for _, m := range muts {
			id, record := m.id, []byte(nil)
			if m.kind == kindPut {
				id, record = m.pid, m.put
			}
			if err := s.applyRaw(what, seqs, ids, id, m.seq, record, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// validate checks a batch as if it were applied in order: a Put may not
// take a seq that another action holds. State is read from the overlays,
// then bbolt.
func (s *boltStore) validate(what, queue string, muts []journalMutation) error {
	s.ovMu.RLock()
	defer s.ovMu.RUnlock()
	act, frz := s.active[queue], s.frozen[queue]
	return s.read(what, func(tx *bolt.Tx) error {
		var seqs, ids *bolt.Bucket
		if q := tx.Bucket(bucketQueues).Bucket([]byte(queue)); q != nil {
			seqs, ids = q.Bucket(bucketSeq), q.Bucket(bucketIDs)
		}
		// seqOf returns the seq id holds now (0, false: none).
		seqOf := func(id string) (uint64, bool) {
			for _, o := range []*overlay{act, frz} {
				if e, ok := o.get(id); ok {
					return e.seq, e.put != nil
				}
			}
			if ids == nil {
				return 0, false
			}
			v := ids.Get([]byte(id))
			if v == nil {
				return 0, false
			}
			p, ok := unframe([]byte(id), v)
			if !ok || len(p) != 8 {
				return 0, false
			}
			return binary.BigEndian.Uint64(p), true
		}
		// ownerOf returns the action holding seq now ("" if none).
		ownerOf := func(seq uint64) (string, error) {
			for _, o := range []*overlay{act, frz} {
				if id, ok := o.owner(seq); ok {
					return id, nil
				}
			}
			if seqs == nil {
				return "", nil
			}
			v := seqs.Get(seqKey(seq))
			if v == nil {
				return "", nil
			}
			p, ok := unframe(seqKey(seq), v)
			if !ok {
				return "", fmt.Errorf("store: %s: %s: record at seq %d: checksum mismatch: %w", s.path, what, seq, ErrCorrupt)
			}
			a, err := decodeAction(p)
			if err != nil {
				return "", fmt.Errorf("store: %s: %s: record at seq %d: %w: %w", s.path, what, seq, ErrCorrupt, err)
			}
			// bbolt's holder may since have moved or gone (overlay).
			if cur, held := seqOf(a.GetId()); !held || cur != seq {
				return "", nil
			}
			return a.GetId(), nil
		}
		// The batch's own effects, in order.
		bSeq := map[string]uint64{}   // id → seq after the batch so far (0 with bDel)
		bDel := map[string]bool{}     // ids deleted by the batch so far
		bOwner := map[uint64]string{} // seq → id per the batch ("" freed)
		for _, m := range muts {
			if m.kind == kindDelete {
				if old, ok := bSeq[m.id]; ok {
					bOwner[old] = ""
				} else if old, held := seqOf(m.id); held {
					bOwner[old] = ""
				}
				bDel[m.id], bSeq[m.id] = true, 0
				delete(bSeq, m.id)
				continue
			}
			owner, decided := bOwner[m.seq]
			if !decided {
				o, err := ownerOf(m.seq)
				if err != nil {
					return err
				}
				owner = o
				if owner != "" && owner != m.pid {
					if bDel[owner] {
						owner = ""
					} else if cur, moved := bSeq[owner]; moved && cur != m.seq {
						owner = ""
					}
				}
			}
			if owner != "" && owner != m.pid {
				return fmt.Errorf("store: %s: %s: action %s: seq %d belongs to another action: %w", s.path, what, m.pid, m.seq, ErrInvalid)
			}
			if old, ok := bSeq[m.pid]; ok && old != m.seq {
				bOwner[old] = ""
			} else if !ok && !bDel[m.pid] {
				if old, held := seqOf(m.pid); held && old != m.seq {
					bOwner[old] = ""
				}
			}
			bSeq[m.pid] = m.seq
			delete(bDel, m.pid)
			bOwner[m.seq] = m.pid
		}
		return nil
	})
}

// applyRaw applies a put (record != nil) or delete of action id to the
// queue's buckets; hooks consults the fault injector per key written.
func (s *boltStore) applyRaw(what string, seqs, ids *bolt.Bucket, id string, seq uint64, record []byte, hooks bool) error {
	var old []byte
	if v := ids.Get([]byte(id)); v != nil {
		p, ok := unframe([]byte(id), v)
		if !ok || len(p) != 8 {
			return fmt.Errorf("store: %s: %s: index entry of action %s: checksum mismatch: %w", s.path, what, id, ErrCorrupt)
		}
		old = p
	}
	put := func(b *bolt.Bucket, k, v []byte) error {
		if hooks {
			if err := s.hookWrite(); err != nil {
				return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
			}
		}
		if err := b.Put(k, v); err != nil {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
		}
		return nil
	}
	del := func(b *bolt.Bucket, k []byte) error {
		if hooks {
			if err := s.hookWrite(); err != nil {
				return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
			}
		}
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
		}
		return nil
	}
	if record == nil {
		if old == nil {
			return nil
		}
		if err := del(seqs, old); err != nil {
			return err
		}
		return del(ids, []byte(id))
	}
	sk := seqKey(seq)
	if !bytes.Equal(old, sk) && seqs.Get(sk) != nil {
		return fmt.Errorf("store: %s: %s: action %s: seq %d belongs to another action: %w", s.path, what, id, seq, ErrInvalid)
	}
	if old != nil && !bytes.Equal(old, sk) {
		if err := del(seqs, old); err != nil {
			return err
		}
	}
	if err := put(seqs, sk, frame(sk, record)); err != nil {
		return err
	}
	if bytes.Equal(old, sk) {
		return nil
	}
	return put(ids, []byte(id), frame([]byte(id), sk))
}

// LoadActions reads bbolt's records and the journal's newer ones (the
// overlays: active over frozen over bbolt) and calls fn in seq order.
// Overlays are read first, so a checkpoint finishing meanwhile only moves
// what was read from an overlay into bbolt, where it is then skipped.
func (s *boltStore) LoadActions(queue string, fn func(*messages.StoredAction) error) error {
	if err := checkName("queue", queue); err != nil {
		return err
	}
	what := "load actions of queue " + queue
	newer := map[string]ovEntry{}
	s.ovMu.RLock()
	for _, o := range []*overlay{s.frozen[queue], s.active[queue]} {
		if o == nil {
			continue
		}
		for id, i := range o.latest {
			newer[id] = o.order[i]
		}
	}
	s.ovMu.RUnlock()

	var all []*messages.StoredAction
	var after []byte
	for {
		n := 0
		err := s.read(what, func(tx *bolt.Tx) error {
			q := tx.Bucket(bucketQueues).Bucket([]byte(queue))
			if q == nil {
				return nil
			}
			seqs := q.Bucket(bucketSeq)
			if seqs == nil {
				return nil
			}
			c := seqs.Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && n < chunkRecords; k, v = c.Next() {
				if after != nil && bytes.Compare(k, after) <= 0 {
					return fmt.Errorf("store: %s: %s: key %x after %x: keys out of order: %w", s.path, what, k, after, ErrCorrupt)
				}
				p, ok := unframe(k, v)
				if !ok || len(k) != 8 {
					return fmt.Errorf("store: %s: %s: record at seq %x: checksum mismatch: %w", s.path, what, k, ErrCorrupt)
				}
				a, err := decodeAction(p)
				if err != nil {
					return fmt.Errorf("store: %s: %s: record at seq %x: %w: %w", s.path, what, k, ErrCorrupt, err)
				}
				if a.GetStatus().GetSeq() != binary.BigEndian.Uint64(k) {
					return fmt.Errorf("store: %s: %s: record at seq %x has seq %d: %w", s.path, what, k, a.GetStatus().GetSeq(), ErrCorrupt)
				}
				n++
				after = append(after[:0], k...)
				if _, replaced := newer[a.GetId()]; !replaced {
					all = append(all, a)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n < chunkRecords {
			break
		}
	}
	for _, e := range newer {
		if e.put == nil {
			continue
		}
		a, err := decodeAction(e.put)
		if err != nil {
			return fmt.Errorf("store: %s: %s: journaled record of %s: %w: %w", s.path, what, e.id, ErrCorrupt, err)
		}
		all = append(all, a)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].GetStatus().GetSeq() < all[j].GetStatus().GetSeq() })
	for _, a := range all {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

func (s *boltStore) QueueNames() ([]string, error) {
	names, err := s.names("list queues", bucketQueues)
	if err != nil {
		return nil, err
	}
	s.ovMu.RLock()
	for _, ovs := range []map[string]*overlay{s.active, s.frozen} {
		for q := range ovs {
			if !slices.Contains(names, q) {
				names = append(names, q)
			}
		}
	}
	s.ovMu.RUnlock()
	slices.Sort(names)
	return names, nil
}

func (s *boltStore) names(what string, bucket []byte) ([]string, error) {
	var out []string
	err := s.read(what, func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			if v == nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	sort.Strings(out) // already in byte order; kept explicit for the contract
	return out, err
}

// --- datastores ------------------------------------------------------------

func (s *boltStore) Datastore(task string) (Datastore, error) {
	if err := checkName("task", task); err != nil {
		return nil, err
	}
	d := &boltDatastore{s: s, name: []byte(task), what: "datastore " + task}
	exists := false
	if err := s.read(d.what, func(tx *bolt.Tx) error {
		exists = tx.Bucket(bucketDS).Bucket(d.name) != nil
		return nil
	}); err != nil {
		return nil, err
	}
	if exists {
		return d, nil
	}
	err := s.write("create "+d.what, func(tx *bolt.Tx) error {
		_, err := d.bucket(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (s *boltStore) DatastoreNames() ([]string, error) {
	return s.names("list datastores", bucketDS)
}

func (s *boltStore) Info() Info {
	info := Info{Path: s.path, Engine: engineBolt}
	if fi, err := os.Stat(s.path); err == nil {
		info.SizeBytes = fi.Size()
	}
	if s.j != nil {
		info.SizeBytes += s.j.bytes()
	}
	return info
}

func (s *boltStore) Close() error {
	s.mu.RLock()
	open := s.db != nil
	s.mu.RUnlock()
	if !open {
		return nil
	}
	// Fold the journal into bbolt first, so a clean close leaves one file.
	s.stopCheckpointer()
	cerr := s.checkpoint()
	if s.j != nil {
		s.j.close()
		if cerr == nil && s.failed.Load() == nil {
			cerr = s.dropJournal()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	if cerr != nil {
		s.log.Error("final checkpoint failed; the journal will be replayed at the next open", "err", cerr)
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	s.log.Info("store closed")
	return nil
}

// dropJournal, once everything is folded, records that no journal segment
// is expected any more and deletes them all.
func (s *boltStore) dropJournal() error {
	if s.recorded { // otherwise the file already expects no segment
		m, seq := s.j.position()
		if err := s.writeRaw("close journal", func(tx *bolt.Tx) error {
			return putJournalRecord(tx, journalRecord{M: m + 1, S: seq})
		}); err != nil {
			return err
		}
	}
	base := filepath.Base(s.path)
	nums, err := listSegments(s.cfg.Dir, base)
	if err != nil {
		return err
	}
	for _, n := range nums {
		if err := os.Remove(filepath.Join(s.cfg.Dir, segmentName(base, n))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: %s: remove folded journal: %w", s.path, err)
		}
	}
	return syncDir(s.cfg.Dir)
}

type boltDatastore struct {
	s    *boltStore
	name []byte
	what string
}

// bucket returns the task's bucket in a write transaction, creating it.
func (d *boltDatastore) bucket(tx *bolt.Tx) (*bolt.Bucket, error) {
	if b := tx.Bucket(bucketDS).Bucket(d.name); b != nil {
		return b, nil
	}
	if err := d.s.hookWrite(); err != nil {
		return nil, fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
	}
	b, err := tx.Bucket(bucketDS).CreateBucket(d.name)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
	}
	return b, d.setLen(tx, 0)
}

func (d *boltDatastore) readLen(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketDSLen).Get(d.name)
	if v == nil {
		return 0, nil
	}
	p, ok := unframe(d.name, v)
	if !ok || len(p) != 8 {
		return 0, fmt.Errorf("store: %s: %s: key count: checksum mismatch: %w", d.s.path, d.what, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(p), nil
}

func (d *boltDatastore) setLen(tx *bolt.Tx, n uint64) error {
	if err := d.s.hookWrite(); err != nil {
		return fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
	}
	v := frame(d.name, binary.BigEndian.AppendUint64(nil, n))
	if err := tx.Bucket(bucketDSLen).Put(d.name, v); err != nil {
		return fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
	}
	return nil
}

func (d *boltDatastore) getFrom(b *bolt.Bucket, key []byte) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	v := b.Get(key)
	if v == nil {
		return nil, nil
	}
	p, ok := unframe(key, v)
	if !ok {
		return nil, fmt.Errorf("store: %s: %s: key %q: checksum mismatch: %w", d.s.path, d.what, key, ErrCorrupt)
	}
	return bytes.Clone(p), nil
}

func (d *boltDatastore) Get(key []byte) ([]byte, error) {
	if err := checkKey(string(d.name), key); err != nil {
		return nil, err
	}
	var out []byte
	err := d.s.read(d.what+": get", func(tx *bolt.Tx) error {
		var err error
		out, err = d.getFrom(tx.Bucket(bucketDS).Bucket(d.name), key)
		return err
	})
	return out, err
}

func (d *boltDatastore) Update(fn func(w Writer) error) error {
	var (
		panicked bool
		pv       any
	)
	err := d.s.write(d.what+": update", func(tx *bolt.Tx) error {
		b, err := d.bucket(tx)
		if err != nil {
			return err
		}
		n, err := d.readLen(tx)
		if err != nil {
			return err
		}
		w := &boltWriter{d: d, b: b, n: n}
		ferr := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					panicked, pv = true, r
					err = errUserPanic
				}
			}()
			return fn(w)
		}()
		w.done = true
		if ferr != nil {
			return ferr
		}
		if w.broken != nil {
			return w.broken
		}
		if w.n != n {
			return d.setLen(tx, w.n)
		}
		return nil
	})
	if panicked {
		panic(pv)
	}
	return err
}

func (d *boltDatastore) ForEach(fn func(key, value []byte) error) error {
	var after []byte
	for {
		var keys, vals [][]byte
		err := d.s.read(d.what+": for each", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketDS).Bucket(d.name)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			size := 0
			for ; k != nil && len(keys) < chunkRecords && size < chunkBytes; k, v = c.Next() {
				if after != nil && bytes.Compare(k, after) <= 0 {
					return fmt.Errorf("store: %s: %s: key %q after %q: keys out of order: %w", d.s.path, d.what, k, after, ErrCorrupt)
				}
				if v == nil {
					continue // not ours: datastores hold no sub-buckets
				}
				p, ok := unframe(k, v)
				if !ok {
					return fmt.Errorf("store: %s: %s: key %q: checksum mismatch: %w", d.s.path, d.what, k, ErrCorrupt)
				}
				keys = append(keys, bytes.Clone(k))
				vals = append(vals, bytes.Clone(p))
				size += len(k) + len(p)
				after = keys[len(keys)-1]
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range keys {
			if err := fn(keys[i], vals[i]); err != nil {
				return err
			}
		}
		if len(keys) == 0 {
			return nil
		}
	}
}

func (d *boltDatastore) Len() (int, error) {
	var n uint64
	err := d.s.read(d.what+": len", func(tx *bolt.Tx) error {
		var err error
		n, err = d.readLen(tx)
		return err
	})
	return int(n), err
}

func (d *boltDatastore) Clear() error {
	return d.s.write(d.what+": clear", func(tx *bolt.Tx) error {
		if err := d.s.hookWrite(); err != nil {
			return fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
		}
		if err := tx.Bucket(bucketDS).DeleteBucket(d.name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
		}
		_, err := d.bucket(tx)
		return err
	})
}

type boltWriter struct {
	d      *boltDatastore
	b      *bolt.Bucket
	n      uint64 // key count as this batch leaves it
	done   bool
	broken error // a failed write; the batch is not committed
}

func (w *boltWriter) check(key []byte) error {
	if w.done {
		return fmt.Errorf("store: %s: writer used after Update returned: %w", w.d.what, ErrInvalid)
	}
	if w.broken != nil {
		return w.broken
	}
	return checkKey(string(w.d.name), key)
}

// guarded runs f, turning a bbolt panic into an error that also breaks the
// batch.
func (w *boltWriter) guarded(what string, f func() error) (err error) {
	defer func() {
		if err != nil && w.broken == nil {
			w.broken = err
		}
	}()
	defer w.d.s.protect(&err, w.d.what+": "+what, true)()
	return f()
}

func (w *boltWriter) Get(key []byte) ([]byte, error) {
	if err := w.check(key); err != nil {
		return nil, err
	}
	var out []byte
	err := w.guarded("get", func() error {
		var err error
		out, err = w.d.getFrom(w.b, key)
		return err
	})
	return out, err
}

func (w *boltWriter) Put(key, value []byte) error {
	if err := w.check(key); err != nil {
		return err
	}
	if err := checkValue(string(w.d.name), key, value); err != nil {
		return err
	}
	return w.guarded("put", func() error {
		if err := w.d.s.hookWrite(); err != nil {
			return fmt.Errorf("store: %s: %s: put: %w", w.d.s.path, w.d.what, err)
		}
		existed := w.b.Get(key) != nil
		if err := w.b.Put(key, frame(key, value)); err != nil {
			return fmt.Errorf("store: %s: %s: put: %w", w.d.s.path, w.d.what, err)
		}
		if !existed {
			w.n++
		}
		return nil
	})
}

func (w *boltWriter) Delete(key []byte) error {
	if err := w.check(key); err != nil {
		return err
	}
	return w.guarded("delete", func() error {
		if w.b.Get(key) == nil {
			return nil
		}
		if err := w.d.s.hookWrite(); err != nil {
			return fmt.Errorf("store: %s: %s: delete: %w", w.d.s.path, w.d.what, err)
		}
		if err := w.b.Delete(key); err != nil {
			return fmt.Errorf("store: %s: %s: delete: %w", w.d.s.path, w.d.what, err)
		}
		w.n--
		return nil
	})
}

// discardBoltLogger silences bbolt; the store reports what matters itself.
type discardBoltLogger struct{}

func (discardBoltLogger) Debug(...any)            {}
func (discardBoltLogger) Debugf(string, ...any)   {}
func (discardBoltLogger) Error(...any)            {}
func (discardBoltLogger) Errorf(string, ...any)   {}
func (discardBoltLogger) Info(...any)             {}
func (discardBoltLogger) Infof(string, ...any)    {}
func (discardBoltLogger) Warning(...any)          {}
func (discardBoltLogger) Warningf(string, ...any) {}
func (discardBoltLogger) Fatal(...any)            {}
func (discardBoltLogger) Fatalf(string, ...any)   {}
func (discardBoltLogger) Panic(...any)            {}
func (discardBoltLogger) Panicf(string, ...any)   {}
