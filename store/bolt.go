package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/connectorhq/connector/internal/readfile"
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
	ovSize   map[string]int        // per queue, the mutations its last active overlay took (newOverlay)
	spare    map[string]*overlay   // per queue, a folded overlay, emptied, for its next active one (see checkpoint)
	pending  atomic.Int64          // mutations in active
	full     atomic.Pointer[error] // the last checkpoint found no space
	recorded atomic.Bool           // the file's journal record names the journal's segments (set under applyMu)
	ckptMu   sync.Mutex            // one checkpoint at a time
	ckptWake chan struct{}
	ckptStop chan struct{}
	ckptDone chan struct{}
	// direct is set when the journal found no room (suspendJournal):
	// everything journaled is folded into bbolt and, until there is room
	// again (resumeJournal, tried by the checkpointer) or the next Open,
	// actions and datastore writes are committed to bbolt directly, as
	// with no journal (j nil). Set and cleared holding dsMu, ckptMu and
	// applyMu (and resumeMu to clear it).
	direct atomic.Bool
	// resumeMu is held for reading by an ApplyActions that commits
	// directly because the journal is suspended, and for writing by
	// resumeJournal: no direct commit runs across the journal's return
	// (a later journaled write of the same action would not be folded
	// over it). Taken before dsMu.
	resumeMu sync.RWMutex
	// resumeTry: when the checkpointer last tried resumeJournal, or saw
	// the journal suspended (checkpointer goroutine only); resumeEvery
	// (nanoseconds) is how long it waits between tries.
	resumeTry   time.Time
	resumeEvery atomic.Int64
	// frameBuf is the memory of the last frame appended, reused for the
	// next (under applyMu; see frameInto).
	frameBuf []byte
	// high holds, per queue, bounds on the ids and seqs the queue's
	// actions have (validate): none in bbolt or the overlays is above
	// them. Under applyMu; a queue is missing until its first batch.
	high map[string]*queueHigh

	// gate is held for reading by every write to the bbolt file (write,
	// writeRaw; taken before s.mu) and for writing by a compaction while
	// it copies the file (bolt_compact.go). compactOff: online compaction
	// gave up once; it waits for the next Open.
	gate       sync.RWMutex
	compactOff bool
	// commitMu is held by every write transaction of the bbolt file
	// (write, writeRawLocked) from its start until its failure is
	// classified: bbolt serialises them anyway, and commitUncertain reads
	// the last committed transaction with no other commit in between.
	commitMu sync.Mutex
	// compactTimeouts: online compactions in a row abandoned at their time
	// limit (checkpointer goroutine only).
	compactTimeouts uint
	compactNext     time.Time // no walk of the pages before (checkpointer goroutine only)
	compactAfter    time.Time // no online compaction before (checkpointer goroutine only)
	// compactWalkAfter: no walk of the pages before, even after many
	// deletes (checkpointer goroutine only); deleted: keys deleted from
	// the file since the last walk (maybeCompact).
	compactWalkAfter time.Time
	deleted          atomic.Int64

	// Deferred datastore writes (bolt_deferred.go), guarded by ovMu:
	// not yet journaled, journaled, being checkpointed. dsMu serialises
	// UpdateDeferred with the direct writes of datastores (Update, Clear),
	// each held for its whole call, callback included, and with
	// suspendJournal (from ApplyActions, the checkpointer, Close), which
	// takes it to fold dsPending: when the journal's next segment finds no
	// room (once per suspension, or once per retry while the fold itself
	// finds none), an ApplyActions waits for the update under way, its
	// callback included; and with resumeJournal (the checkpointer), which
	// holds it while it turns the journal back on, so a resumption waits
	// for the update under way too. closing (under dsMu) is set by Close once the updates
	// under way have returned: later ones are refused (ErrClosed), so
	// none applies a write after Close's final flush, and none runs its
	// callback (which may read, taking s.mu for reading) while Close waits
	// for s.mu.
	dsMu      sync.Mutex
	closing   bool
	dsPending dsOverlay
	dsActive  dsOverlay
	dsFrozen  dsOverlay
	// dsBytes is what the three hold (dsSize each), counted as writes
	// come and recounted when a checkpoint drops dsFrozen: never less
	// than they hold but by an in-flight frame's writes replaced meanwhile
	// (Config.MaxDeferredBytes bounds it). Changed under ovMu, read
	// without it.
	dsBytes atomic.Int64

	// closeHook, when a test sets it (before Close), is called at Close's
	// steps: "updates" (before it waits for the datastore updates under
	// way), "flushed" (after its final flush and checkpoint, before it
	// takes s.mu for writing).
	closeHook func(step string)
	// resumeHook, when a test sets it, is called by resumeJournal once it
	// has prepared the new segment, before it checks the room left.
	resumeHook func()
	// directHook, when a test sets it, is called by commitDirect at its
	// steps: "before" (before it takes resumeMu), "checked" (holding it
	// for reading, having found the journal still suspended, before the
	// commit); resumeWaitHook by resumeJournal when resumeMu is held
	// (a direct commit is under way), before it waits for it.
	directHook     func(step string)
	resumeWaitHook func()
}

// checkpointEvery is how many journaled mutations wake the checkpointer
// early; otherwise it runs every Config.CheckpointInterval (default
// checkpointInterval) when there is any.
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
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = checkpointInterval
	}
	if cfg.CompactFreeFraction == 0 {
		cfg.CompactFreeFraction = defaultCompactFreeFraction
	}
	if cfg.CompactFreeFraction >= 1 {
		return nil, fmt.Errorf("store: Config.CompactFreeFraction %g is not below 1: %w", cfg.CompactFreeFraction, ErrInvalid)
	}
	if cfg.MaxDeferredBytes <= 0 {
		cfg.MaxDeferredBytes = defaultMaxDeferredBytes
	}
	if cfg.CompactMinSize <= 0 {
		cfg.CompactMinSize = defaultCompactMinSize
	}
	if cfg.CompactTimeout <= 0 {
		cfg.CompactTimeout = defaultCompactTimeout
	}
	if cfg.CompactOpenTimeout <= 0 {
		cfg.CompactOpenTimeout = defaultCompactOpenTimeout
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
	switch fi, err := os.Stat(path); {
	case errors.Is(err, os.ErrNotExist):
		if err := refuseOrphanJournal(cfg.Dir, cfg.File, path); err != nil {
			return nil, err
		}
		if err := s.create(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, s.openErr("stat", err)
	case !fi.Mode().IsRegular():
		// Refused before it is opened: opening a FIFO waits for a
		// writer for ever (start-up hung, without a word).
		return nil, fmt.Errorf("store: %s is not a regular file (%s): %w", path, readfile.Kind(fi.Mode()), ErrFormat)
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
	// Only now, with the file locked: another process's compaction may
	// have been writing it.
	if err := s.removeCompactLeftover(); err != nil {
		_ = s.db.Close()
		s.db = nil
		return nil, err
	}
	// Before the journal's replay and its checkpointer: nothing else
	// uses the file yet. The copy carries the file's journal record.
	s.compactAtOpen()
	if err := s.startJournal(); err != nil {
		_ = s.db.Close()
		s.db = nil
		return nil, err
	}
	s.log.Info("store opened", "engine", engineBolt, "bytes", s.Info().SizeBytes)
	return s, nil
}

// refuseOrphanJournal refuses to make a new store file where journal
// segments are left (ErrCorrupt, naming the file): the store file is made
// before any segment, and a clean Close deletes them, so segments without
// it mean the file was deleted or moved (after a crash, or while the
// server ran). A new file with their replay would hold the actions of
// whatever segments are left, and none of the datastore writes made
// directly or of what the checkpoints had folded, and say nothing.
func refuseOrphanJournal(dir, file, path string) error {
	nums, err := listSegments(dir, file)
	if err != nil || len(nums) == 0 {
		return nil // a folder that cannot be listed fails further on, with its own error
	}
	return fmt.Errorf("store: %s is missing, but its journal is there (%s): the store file was deleted or moved, "+
		"and the journal alone does not hold every acknowledged change; put the file back, or, to start with an empty store, "+
		"delete the journal segments too: %w", path, filepath.Join(dir, segmentName(file, nums[0])), ErrCorrupt)
}

func (s *boltStore) Info() Info {
	info := Info{Path: s.path, Engine: engineBolt}
	if fi, err := os.Stat(s.path); err == nil {
		info.SizeBytes = fi.Size()
	}
	if s.journaling() {
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
	// Wait for the datastore updates under way, and refuse the next ones:
	// every update that returned nil is in what Close flushes below.
	if s.closeHook != nil {
		s.closeHook("updates")
	}
	s.dsMu.Lock()
	s.closing = true
	s.dsMu.Unlock()
	// Fold the journal into bbolt first, so a clean close leaves one file.
	s.stopCheckpointer()
	ferr := s.flushDeferred() // deferred datastore writes no batch carried
	if noRoom(ferr) {
		ferr = s.suspendJournal(ferr)
	}
	if s.j != nil {
		// An ApplyActions from now on is refused (ErrClosed): the final
		// checkpoint folds every frame appended (see seal).
		s.j.seal()
	}
	cerr := s.checkpoint()
	if cerr == nil {
		cerr = ferr
	}
	if s.journaling() {
		s.j.close()
		if cerr == nil && s.failed.Load() == nil {
			cerr = s.dropJournal()
		}
	}
	if s.closeHook != nil {
		s.closeHook("flushed")
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
