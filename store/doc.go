// Package store keeps the connector's durable state: the actions of every
// queue (messages.StoredAction records, written only by the QueueManager)
// and each fetch task's incremental "datastore" (per-URL validators, content
// hashes, out-links, ...), in one file.
//
// # Engines
//
// Open opens the engine Config.Driver names: DriverBolt (the default), the
// durable store, a single bbolt file (Config.Dir/connector.db), or
// DriverMemory ([Actions] UseInMemoryDatastore=TRUE), in which case
// everything lives in memory and is lost when the process stops or
// crashes: nothing is ever written to disk, not even on a clean stop.
// Another engine registers a driver of its own (Register): the interface
// (store.go) makes no assumption that one process owns the data, beyond
// what each method's contract says; both engines pass storetest.
//
// Files of the bbolt engine, by concern: bolt.go (the type, open, close),
// bolt_verify.go (creating, sniffing and verifying the file),
// bolt_checkpoint.go (the journal's checkpoints into bbolt),
// bolt_actions.go (action records), bolt_datastore.go (task datastores),
// bolt_errors.go (how errors are classified: the failure policy),
// journal.go and frame.go (the journal), overlay.go (journaled records not
// yet folded), bolt_compact.go (compaction). bbolt was chosen over pebble by measuring
// both on the target machine (bench/RESULTS.md, "Store engine choice").
//
// # Durability and group commit
//
// ApplyActions is atomic and durable for its whole batch. The QueueManager
// batches the mutations of many concurrent submissions into one call and
// answers the clients only after it returns, so its cost is paid once per
// batch, not per action.
//
// The durable store journals actions (journal.go): ApplyActions validates
// the batch against the current state (new actions, whose ids and seqs
// are above the highest of the queue, which the store remembers, are
// checked without reading bbolt), writes it as one checksummed, numbered
// frame to the journal with one fdatasync (into a segment whose
// space was allocated whole beforehand, zero-filled for all but the first
// of a run, so the sync overwrites written blocks: the cheapest kind; a
// bbolt commit syncs twice and grows the file), and keeps it in memory
// (overlay.go) until a checkpoint folds it into bbolt, every 4096
// mutations or every second, in two transactions (removals, then records
// with the journal record: how far the journal is folded and where it goes
// on). Reads merge the overlays over bbolt. Open replays what the
// checkpoints had not folded: a frame torn by the crash at the end of the
// data is dropped with a warning; data that is missing (a segment cut
// short, truncated or deleted, frames missing by sequence number) or
// damaged before valid frames is ErrCorrupt, naming the segment. A clean
// Close checkpoints and deletes the segments, so the journal is empty
// between runs. When a checkpoint finds the disk full, acknowledged
// mutations stay journaled, new Puts are refused with ErrNoSpace (each
// first retries the checkpoint) and deletes, which make room, are taken.
// With Config.MaxSize, or when the folder has no room for a journal
// segment, actions are committed to bbolt directly instead. When the
// journal cannot make its next segment, or write a frame, for lack of room
// (a checkpoint would not make that room: the segment in use stays), it is
// folded into bbolt, with a record that no segment is expected, and the
// store commits directly (suspendJournal) until the checkpointer finds
// room for three segments again (two, and one's worth for bbolt to grow
// when it folds the journal: resumeJournal, tried every 30 s) or the next
// Open. A folder in
// which no file can be created is refused at Open (ErrReadOnly).
//
// Datastore.Update is durable too. Skipping the fsync would be cheaper, and
// losing the last updates after a crash would only make pages be fetched
// again, but bbolt without fsync is not crash-safe at all (the meta page can
// reach the disk before the pages it points to), and the queue shares the
// file. A task should therefore batch its writes (one Update per fetched
// page or per few pages, not per key).
//
// Writes whose durability can wait for the queue's next group commit go
// through UpdateDeferred (Deferrer, bolt_deferred.go): applied at once in
// memory, they are written in the next journal frame, ahead of that
// ApplyActions batch and under its fdatasync (or by the checkpointer
// within CheckpointInterval, or at Close), and folded into the
// datastore's bucket by the next checkpoint. Config.MaxDeferredBytes
// (default 64 MiB) bounds what they hold in memory meanwhile: an
// UpdateDeferred that finds it reached (checkpoints fell behind) journals
// and folds them first, as Update does (and if that fold is what
// suspends the journal, it then writes its own directly, as every write
// after a suspension). The HTTP connector records
// the end of each action in its task's meta record this way, so an
// action that ends costs no commit of its own while it holds a thread,
// and the queue's record of an end written after the work returned
// (Finished, Error) cannot reach the disk without the meta record. (A
// Stop is recorded at once, before the work has unwound: its meta record
// follows in a later frame, as it did when it was a commit of its own.) Update and Clear of a datastore with such writes first journal
// and fold them, so a replay never writes an older value over a newer.
// The shared store of a cluster (store/pgstore) defers only bookkeeping
// (UpdateBookkeeping: the HTTP connector's and restsync's records of an
// action's end), with the same promise: its deferred writes are
// statements of the node's next group commit transaction
// (store/pgstore/deferred.go). A crawl's records are committed at once
// there, since another node takes an action over as soon as its node dies.
//
// # Compaction
//
// bbolt never shrinks its file. When at least Config.CompactFreeFraction
// of a file of Config.CompactMinSize or more is free, the store copies its
// live data into a new file and renames it over the old one: at Open
// (bounded by CompactOpenTimeout) and, with the journal, from the
// checkpointer (bounded by CompactTimeout). Writes to the file wait for
// the copy; reads and journaled ApplyActions only for the swap. A crash at
// any point leaves one complete file (bolt_compact.go).
//
// # Failures
//
// Every error names the file (or "memory") and wraps one of the sentinels
// below. Damage is detected rather than trusted: a file that is empty, cut
// short, not a bbolt file, a bbolt file of another program, or of another
// FormatVersion is refused at Open (ErrCorrupt, ErrFormat, ErrVersion);
// every stored value carries a CRC-32C, checked on each read; panics of
// bbolt on damaged pages and memory faults in the mapped file are recovered
// into ErrCorrupt. A second process opening the same file gets ErrLocked
// after Config.LockTimeout. A write that runs out of space (ENOSPC, EFBIG,
// EDQUOT, Config.MaxSize) fails with ErrNoSpace, leaves nothing applied and
// the store usable. A commit whose outcome is unknown (fsync or other I/O
// error, an fsync that fails for lack of space included) fails with
// ErrFailed and the store then refuses all writes until it is reopened,
// since after a failed fsync the only trustworthy state is the one read
// back from disk.
//
// # Testing
//
// Package store/storetest is the conformance suite every implementation
// passes, including under injected faults (Config.Faults).
package store
