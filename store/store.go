package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/connectorhq/connector/messages"
)

// Store is the connector's durable state: the actions of every queue and the
// per-task incremental datastores. Implementations are safe for concurrent
// use. The QueueManager is the only writer of actions; datastores are
// written by the tasks that own them.
type Store interface {
	// LoadActions calls fn with every stored action of queue, in ascending
	// Status.Seq order, each a fresh message that fn may keep. An unknown
	// queue has no actions. The records are read in chunks, so fn may call
	// other methods of the store; writes made meanwhile may or may not be
	// seen. An error from fn stops the walk and is returned as is.
	LoadActions(queue string, fn func(*messages.StoredAction) error) error

	// ApplyActions applies batch to queue atomically and durably: when it
	// returns nil, every mutation is on disk (fsync'd); when it returns an
	// error, none is applied, except after ErrFailed (see there). (A
	// batch whose journal frame would be over 4 GiB is written as
	// several frames: a crash before the last keeps a first part of it,
	// never acknowledged. Each part leaves every record in a state it
	// had, since the batch is valid applied in order.) An empty
	// batch is a no-op. A Put replaces the record with the same Id (its
	// Seq may change); two records of a queue may not share a Seq. Deleting
	// an id that is not stored is not an error. The store keeps no
	// reference to the records, nor to batch (the queue reuses it).
	ApplyActions(queue string, batch []ActionMutation) error

	// QueueNames returns the queues that have stored actions or had some,
	// sorted.
	QueueNames() ([]string, error)

	// Datastore returns the incremental state of task, creating it on
	// first use. Names are compared exactly (callers normalise case).
	Datastore(task string) (Datastore, error)

	// DatastoreNames returns the tasks that have a datastore, sorted.
	DatastoreNames() ([]string, error)

	// Info describes the store.
	Info() Info

	// Close releases the store. Calls after Close return ErrClosed; Close
	// itself may be called more than once. Close waits for the datastore
	// updates (Update, UpdateDeferred, Clear) under way, whose callbacks
	// may still read, and refuses those that start once it has begun with
	// ErrClosed: an update that returned nil is durable at Close.
	Close() error
}

// ActionMutation is one change of a batch: exactly one of Put and Delete is
// set.
type ActionMutation struct {
	Put    *messages.StoredAction // store (or replace) this record
	Delete string                 // remove the record with this id
}

// Datastore is one task's incremental state: a sorted map of byte keys to
// byte values (per-URL validators, content hashes, out-links, ...). It is
// safe for concurrent use; Updates are serialised.
type Datastore interface {
	// Get returns the value of key, or nil, nil when it is absent. The
	// returned slice is the caller's.
	Get(key []byte) ([]byte, error)

	// Update runs fn with a Writer and applies everything fn wrote as one
	// atomic batch, durable when Update returns nil (see the package doc
	// for the cost). If fn returns an error nothing is applied and that
	// error is returned. The Writer must not be used after fn returns.
	// fn must not call Update or Clear of any datastore, nor
	// ApplyActions: writes are serialised, so it would wait for itself.
	// It may read (w.Get, or Get of another datastore).
	Update(fn func(w Writer) error) error

	// ForEach calls fn for every key in ascending byte order. key and
	// value are valid only until fn returns. Entries are read in chunks,
	// so fn may call Update; changes made meanwhile may or may not be
	// seen. An error from fn stops the walk and is returned as is.
	ForEach(fn func(key, value []byte) error) error

	// Len returns the number of keys.
	Len() (int, error)

	// Clear removes every key (PurgeDatastore). The datastore itself
	// remains, empty.
	Clear() error
}

// Deferrer is implemented by datastores whose writes can ride the store's
// next durable write instead of making one of their own.
//
// UpdateDeferred is Update (the same Writer, the same rules for fn), except
// for when its writes become durable: they are applied at once (Get, and
// every later Update or UpdateDeferred, see them), but reach the disk with
// the store's next ApplyActions of any queue, in the same journal frame and
// under the same fdatasync as that batch, or on their own within
// Config.CheckpointInterval if no batch comes, or at Close. So a crash may
// lose them, but never while keeping an ApplyActions that returned after
// UpdateDeferred did: a task that records its bookkeeping this way before
// its action's end is written cannot have its end on disk without it. The
// durable store uses the journal; without one (Config.MaxSize, no room
// for a segment at Open or since) UpdateDeferred is Update. What waits in memory is
// bounded (Config.MaxDeferredBytes): past the bound, an UpdateDeferred
// first writes and folds what waits, and its caller waits for that. The
// shared store of a cluster (store/pgstore) is not a Deferrer: another
// node takes an action over as soon as its node dies, and must find the
// records of what was delivered (a crawl's batches); it defers only
// bookkeeping (Bookkeeper).
type Deferrer interface {
	UpdateDeferred(fn func(w Writer) error) error
}

// Turns is implemented by a store that several processes share (the
// shared store of a cluster, store/pgstore): Turn runs fn while this
// process holds the lock called name, which no other process of the
// store holds meanwhile (another's Turn of the same name waits). A
// process's own goroutines are not ordered by it: its caller orders
// them. For a decision that reads what other processes write and writes
// what they read (a crawl letting go of a page another task may hold,
// connectors/httpfetch), whose readers must come one after the other.
type Turns interface {
	Turn(name string, fn func() error) error
}

// Unfenced is implemented by the datastores of a store that refuses the
// writes of a process that may no longer make them (a cluster node
// declared dead, its work taken over: store/pgstore). UpdateUnfenced is
// Update, made whether or not the process may still write: only for a
// value that its writers write in a turn of theirs (Turns), which orders
// them instead, and whose loss costs more than a late write. A rotated
// OAuth refresh token (package oauth): the provider spent the one the
// store held when it issued the new one, and whichever node got it, the
// store must keep it, or every node's next refresh is refused.
type Unfenced interface {
	UpdateUnfenced(fn func(w Writer) error) error
}

// Turn runs fn in st's turn called name when st is shared by several
// processes (Turns), else at once (a store of one process: its caller's
// own ordering is the turn), and returns fn's error or the turn's.
func Turn(st Store, name string, fn func() error) error {
	if t, ok := st.(Turns); ok {
		return t.Turn(name, fn)
	}
	return fn()
}

// Bookkeeper is implemented by datastores that defer a task's bookkeeping
// (UpdateBookkeeping) but not its other writes: the shared store of a
// cluster (store/pgstore), whose deferred writes ride the node's next
// group commit transaction, with the same promise as UpdateDeferred's.
type Bookkeeper interface {
	UpdateBookkeeping(fn func(w Writer) error) error
}

// UpdateBookkeeping records a task's bookkeeping of an action as it ends
// (what TaskList shows: calls, the last action, its times): a crash may
// lose it, and it must not cost the action a commit of its own, but the
// action's end is never on disk without it. It is ds.UpdateBookkeeping
// when ds is a Bookkeeper, else UpdateDeferred.
func UpdateBookkeeping(ds Datastore, fn func(w Writer) error) error {
	if b, ok := ds.(Bookkeeper); ok {
		return b.UpdateBookkeeping(fn)
	}
	return UpdateDeferred(ds, fn)
}

// UpdateDeferred calls ds.UpdateDeferred when ds is a Deferrer, and
// ds.Update otherwise (a store that cannot defer writes makes them
// durable at once, which keeps the promise).
func UpdateDeferred(ds Datastore, fn func(w Writer) error) error {
	if d, ok := ds.(Deferrer); ok {
		return d.UpdateDeferred(fn)
	}
	return ds.Update(fn)
}

// MultiGetter is implemented by datastores that read several keys for
// less than a Get each: one read transaction (bbolt) rather than one per
// key.
type MultiGetter interface {
	// GetMany returns the value of each of keys, in their order, as Get
	// would (nil when absent). The returned slices are the caller's.
	GetMany(keys [][]byte) ([][]byte, error)
}

// GetMany reads keys of ds: ds.GetMany when ds is a MultiGetter, else one
// Get each.
func GetMany(ds Datastore, keys [][]byte) ([][]byte, error) {
	if m, ok := ds.(MultiGetter); ok {
		return m.GetMany(keys)
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := ds.Get(k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// Writer collects the writes of one Datastore.Update.
type Writer interface {
	// Get returns the value of key as this batch has left it (nil when
	// absent). The returned slice is the caller's.
	Get(key []byte) ([]byte, error)
	// Put sets key to value. The store copies both.
	Put(key, value []byte) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(key []byte) error
}

// Info describes a store for status pages and logs.
type Info struct {
	Path      string // file of a durable store; "" in memory
	Engine    string // "bbolt" or "memory"
	SizeBytes int64  // file size on disk, or bytes of stored data in memory
	InMemory  bool   // nothing survives a restart
}

// Limits on keys and values, the same for every implementation.
const (
	// MaxKeySize is the longest datastore key, queue, task or action id.
	MaxKeySize = 32 << 10
	// MaxValueSize is the largest datastore value or encoded action.
	MaxValueSize = 1 << 30
)

// Errors. Each error returned by a store wraps one of these (or comes from a
// callback) and names the file, queue or task concerned.
var (
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt: the file is damaged (truncated, bytes changed, a page
	// the engine cannot read). Restore a backup or move the file away.
	ErrCorrupt = errors.New("store: file is corrupt")
	// ErrFormat: the file is not a connector store (another program's
	// file, or another bbolt database).
	ErrFormat = errors.New("store: not a connector store")
	// ErrVersion: the file is a connector store of a format version this
	// build does not read (written by a newer or much older connector).
	ErrVersion = errors.New("store: unsupported format version")
	// ErrLocked: another process has the store open.
	ErrLocked = errors.New("store: in use by another process")
	// ErrReadOnly: the folder or file cannot be written.
	ErrReadOnly = errors.New("store: not writable")
	// ErrNoSpace: the disk (or Config.MaxSize) is full. The write was not
	// applied; the store stays usable and later writes may succeed. (An
	// fsync that fails for lack of room is ErrFailed: its write may be
	// applied.)
	ErrNoSpace = errors.New("store: no space left")
	// ErrFailed: a commit failed in a way that leaves its outcome unknown
	// (fsync or I/O error: the batch may or may not be on disk). The store
	// refuses every later write with this error; reads still work. Close
	// and open it again to continue from what is on disk.
	ErrFailed = errors.New("store: write failed, reopen required")
	// ErrInvalid: bad input (nil record, empty id or key, both or neither
	// of Put and Delete, a Seq owned by another id, oversize key/value).
	ErrInvalid = errors.New("store: invalid input")
)

// Config says where and how to open a store. The zero value (with Dir set)
// is a durable store at Dir/connector.db.
type Config struct {
	// Driver names the engine: DriverBolt (the default: a bbolt file
	// and its journal) or DriverMemory (everything in memory, [Actions]
	// UseInMemoryDatastore=TRUE: nothing is written to disk and
	// everything is lost when the process stops or crashes). Another
	// engine (a shared SQL database for a cluster) registers a driver of
	// its own with Register.
	Driver string
	// Dir is the folder of the store file; created (0750) if absent.
	// Required by DriverBolt.
	Dir string
	// File is the file name inside Dir. Default "connector.db".
	File string
	// LockTimeout bounds the wait for the file lock held by another
	// process; then Open fails with ErrLocked. Default 500ms.
	LockTimeout time.Duration
	// MaxSize caps the file size in bytes; a write that would grow the
	// file beyond it fails with ErrNoSpace. 0: no cap. With a cap, actions
	// are committed to the file directly, without the journal (see
	// doc.go), so that the cap is enforced when a write is made.
	MaxSize int64
	// CheckpointInterval is how often journaled actions are folded into
	// the bbolt file when fewer than 4096 are waiting; default 1s.
	CheckpointInterval time.Duration
	// MaxDeferredBytes bounds the deferred datastore writes
	// (Deferrer.UpdateDeferred) held in memory until a checkpoint folds
	// them into the file: their keys and values, plus 64 bytes each.
	// An UpdateDeferred that finds this many waiting (checkpoints fell
	// behind) first writes and folds them, as Update does, then adds its
	// own: the caller waits for that, and memory holds at most the bound
	// and one update's writes. Default (0 or less) 64 MiB.
	MaxDeferredBytes int64
	// CompactFreeFraction: the bbolt file is compacted (its live data
	// copied into a new file that replaces it, see bolt_compact.go) when
	// at least this fraction of it could be reclaimed: free pages, and
	// the unused part of pages in use. Default 0.25 (the file then stays
	// within 4/3 of the bytes its pages hold); negative: never. Checked
	// at Open and, with the journal, by the checkpointer after each
	// checkpoint (free pages at no cost; the walk of every page at most
	// 2% of its time, 10% while keys are being deleted).
	CompactFreeFraction float64
	// CompactMinSize: files smaller than this are not compacted. Default
	// 64 MiB.
	CompactMinSize int64
	// CompactTimeout bounds a compaction while the store runs: writes to
	// the file (datastore updates, checkpoints) wait for it; the queue's
	// journaled ApplyActions only for the final swap. A copy that takes
	// longer is abandoned, and tried again with twice the bound after
	// three times as long as it ran; after three such copies, not before
	// the next Open. Default 30s.
	CompactTimeout time.Duration
	// CompactOpenTimeout bounds a compaction at Open, which delays the
	// start by as much. Default 1m.
	CompactOpenTimeout time.Duration
	// VerifyOnOpen reads every page and checks every record's checksum
	// before Open returns, so damage is reported at start-up instead of
	// when the damaged record is first read. Costs a full read of the file.
	VerifyOnOpen bool
	// Logger receives open/close and failure events. Default: discard.
	Logger *slog.Logger
	// Faults, when set, is consulted at each step of every write. For
	// tests only (see FaultInjector); nil in production.
	Faults FaultInjector
}

// DefaultFile is the store's file name when Config.File is empty.
const DefaultFile = "connector.db"

// FaultInjector lets tests fail a write at a chosen step, to check that
// errors surface and that nothing is half-applied. Every implementation
// calls it the same way.
type FaultInjector interface {
	// Write is called before each write inside a batch: once per
	// ActionMutation on the journal path, before each key put or deleted
	// (several per ActionMutation) when a batch goes to bbolt directly or
	// to a datastore. A non-nil error aborts the batch, which is then not
	// applied.
	Write() error
	// Commit is called once the batch is prepared, before it is
	// committed. A non-nil error aborts it as a write error would (for
	// example ENOSPC): nothing is applied and the store stays writable.
	Commit() error
	// Synced is called after the batch was committed. A non-nil error is
	// treated as a failed fsync: the outcome is unknown, the call returns
	// an error wrapping ErrFailed and the store refuses later writes.
	Synced() error
}

// The built-in drivers.
const (
	DriverBolt   = "bolt"
	DriverMemory = "memory"
)

// OpenFunc opens a store of one driver.
type OpenFunc func(Config) (Store, error)

var (
	driversMu sync.RWMutex
	drivers   = map[string]OpenFunc{
		DriverBolt:   openBolt,
		DriverMemory: func(cfg Config) (Store, error) { return newMemory(cfg), nil },
	}
)

// Register makes a store engine available under name (Config.Driver).
// Registering a name twice is an error.
func Register(name string, open OpenFunc) error {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[name]; dup || name == "" || open == nil {
		return fmt.Errorf("store: driver %q: %w (already registered, or no name or function)", name, ErrInvalid)
	}
	drivers[name] = open
	return nil
}

// Open opens the store cfg describes, with the engine cfg.Driver names
// (DriverBolt when empty).
func Open(cfg Config) (Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Driver == "" {
		cfg.Driver = DriverBolt
	}
	driversMu.RLock()
	open := drivers[cfg.Driver]
	driversMu.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("store: unknown driver %q: %w", cfg.Driver, ErrInvalid)
	}
	return open(cfg)
}

// spaceError reports whether err from a write means the disk or the file
// has no room left (ErrNoSpace: the store stays writable).
func spaceError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) ||
		errors.Is(err, syscall.EDQUOT) || errors.Is(err, ErrNoSpace)
}

func permissionError(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// checkMutation validates one mutation.
func checkMutation(queue string, i int, m ActionMutation) error {
	switch {
	case m.Put != nil && m.Delete != "":
		return fmt.Errorf("store: queue %s: mutation %d sets both Put and Delete: %w", queue, i, ErrInvalid)
	case m.Put == nil && m.Delete == "":
		return fmt.Errorf("store: queue %s: mutation %d sets neither Put nor Delete: %w", queue, i, ErrInvalid)
	case m.Put != nil && m.Put.GetId() == "":
		return fmt.Errorf("store: queue %s: mutation %d puts a record without an id: %w", queue, i, ErrInvalid)
	case len(m.Put.GetId()) > MaxKeySize || len(m.Delete) > MaxKeySize:
		return fmt.Errorf("store: queue %s: mutation %d: id longer than %d bytes: %w", queue, i, MaxKeySize, ErrInvalid)
	}
	return nil
}

func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("store: empty %s name: %w", kind, ErrInvalid)
	}
	if len(name) > MaxKeySize {
		return fmt.Errorf("store: %s name longer than %d bytes: %w", kind, MaxKeySize, ErrInvalid)
	}
	return nil
}

func checkKey(task string, key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("store: datastore %s: empty key: %w", task, ErrInvalid)
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("store: datastore %s: key of %d bytes, limit %d: %w", task, len(key), MaxKeySize, ErrInvalid)
	}
	return nil
}

func checkValue(task string, key, value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("store: datastore %s: key %q: value of %d bytes, limit %d: %w", task, key, len(value), MaxValueSize, ErrInvalid)
	}
	return nil
}
