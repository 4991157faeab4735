package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

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
			if sd.data, err = readSegmentFile(sd.path, rec == nil); err != nil {
				if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrVersion) {
					return fmt.Errorf("store: %s: replay journal: %w", s.path, err)
				}
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
		s.recorded.Store(s.j != nil)
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
	s.ovSize = map[string]int{}
	s.ckptWake = make(chan struct{}, 1)
	s.startCheckpointer()
	return nil
}

// startCheckpointer starts the checkpointer goroutine (stopCheckpointer
// stops it).
func (s *boltStore) startCheckpointer() {
	s.ckptStop = make(chan struct{})
	s.ckptDone = make(chan struct{})
	go s.checkpointer()
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
// mutations) or every Config.CheckpointInterval, until stopped.
func (s *boltStore) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTicker(s.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ckptStop:
			return
		case <-s.ckptWake:
		case <-t.C:
			s.maybeResumeJournal(time.Now())
		}
		if s.hasDeferred() {
			// Deferred datastore writes no batch carried since.
			err := s.flushDeferred()
			if noRoom(err) {
				err = s.suspendJournal(err)
			}
			if err != nil {
				s.log.Error("writing deferred datastore changes failed", "err", err)
			}
		}
		if err := s.checkpoint(); err != nil {
			s.log.Error("checkpoint failed", "err", err)
		}
		s.maybeCompact()
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
	if !s.journaling() {
		return nil
	}
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.ovMu.RLock()
	retry := s.frozen != nil || s.dsFrozen != nil
	s.ovMu.RUnlock()
	if s.pending.Load() == 0 && !retry || s.failed.Load() != nil {
		return nil
	}
	if s.direct.Load() {
		return nil // suspended meanwhile: everything is folded
	}
	s.applyMu.Lock()
	m, seq := s.j.position()
	s.ovMu.Lock()
	s.freezeLocked()
	frozen, dsFrozen := s.frozen, s.dsFrozen
	s.ovMu.Unlock()
	s.applyMu.Unlock()

	if err := s.applyFrozen(s.writeRaw, frozen, dsFrozen, journalRecord{M: m, S: seq, Exists: true}); err != nil {
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
	s.frozen, s.dsFrozen = nil, nil
	s.dsBytes.Store(s.dsPending.size() + s.dsActive.size()) // what came since, exactly
	s.ovMu.Unlock()
	// Nothing refers to the folded overlays any more (readers copy what
	// they take from them under ovMu): each becomes its queue's next active
	// one, emptied, instead of garbage, so that a checkpoint window does
	// not allocate its slice and maps again (about a third of what the
	// store allocates per submission). One that grew far beyond a window
	// (a checkpoint fell behind) is let go.
	spares := make(map[string]*overlay, len(frozen))
	for q, o := range frozen {
		if cap(o.order) <= 2*checkpointEvery {
			o.reset()
			spares[q] = o
		}
	}
	s.ovMu.Lock()
	if s.spare == nil {
		s.spare = map[string]*overlay{}
	}
	maps.Copy(s.spare, spares)
	s.ovMu.Unlock()
	return s.j.drop(m)
}

// freezeLocked moves the active overlays (mutations and deferred
// datastore writes journaled since the last checkpoint) into the frozen
// ones, for a checkpoint to fold. Callers hold applyMu and ovMu.
func (s *boltStore) freezeLocked() {
	if s.frozen == nil {
		s.frozen = s.active
	} else {
		for q, o := range s.active {
			f := s.frozen[q]
			if f == nil {
				f = newOverlay(len(o.order))
				s.frozen[q] = f
			}
			for _, e := range o.order {
				f.add(e)
			}
		}
	}
	for q, o := range s.active {
		s.ovSize[q] = len(o.order)
	}
	s.active = map[string]*overlay{}
	if s.dsFrozen == nil {
		s.dsFrozen = s.dsActive
	} else {
		s.dsFrozen.merge(s.dsActive)
	}
	s.dsActive = nil
	s.pending.Store(0)
}

// suspendJournal goes on without the journal until there is room again
// (resumeJournal, tried by the checkpointer) or the next Open, once
// its next segment could not be made for lack of room (cause): a full disk,
// or one with room for the run's first segment (1 MiB) but not for the
// next (4 MiB). A checkpoint would not make that room (the segment in use
// stays), so without this every later write would be refused. The same
// goes for a frame whose write failed for lack of room (a file system
// without fallocate, where a segment made on demand is sparse, or one that
// copies on write): its bytes are undone or are the journal's torn end
// (journal.append), and the journal is folded from memory. It folds
// everything journaled, and the deferred datastore writes not journaled
// yet, into bbolt, with a journal record that expects no segment (as a
// clean Close does: a crash after it replays nothing), deletes the
// segments, and from then on actions and datastore writes are committed
// to bbolt directly (two fsyncs each instead of one), as when Open found
// no room for a segment, until resumeJournal finds room again or the next
// Open decides again. If the fold itself
// finds no room it fails with ErrNoSpace and nothing changes: the journal
// keeps everything, and the next write tries again.
//
// It holds dsMu (no UpdateDeferred adds to dsPending meanwhile, and each
// looks at the journal again holding it), ckptMu (no checkpoint or
// compaction), the gate and s.mu for reading, and applyMu (no append), so
// the fold sees everything and nothing is journaled after it. Taking dsMu
// waits for the datastore update under way (Update, Clear, UpdateDeferred
// hold it through their callback): an ApplyActions that suspends the
// journal may wait that long.
func (s *boltStore) suspendJournal(cause error) error {
	s.dsMu.Lock()
	defer s.dsMu.Unlock()
	return s.suspendJournalLocked(cause)
}

// suspendJournalLocked is suspendJournal for a caller that holds dsMu.
func (s *boltStore) suspendJournalLocked(cause error) error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	if s.direct.Load() {
		return nil
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	const what = "fold the journal (no room for it)"
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("store: %s: %s: %w (after: %w)", s.path, what, ErrFailed, *f)
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	m, seq := s.j.position()
	s.ovMu.Lock()
	s.freezeLocked()
	frozen := s.frozen
	ds := dsOverlay{}
	ds.merge(s.dsFrozen)
	ds.merge(s.dsPending) // later than the journaled ones
	s.ovMu.Unlock()
	if err := s.applyFrozen(s.writeRawLocked, frozen, ds, journalRecord{M: m + 1, S: seq}); err != nil {
		if errors.Is(err, ErrNoSpace) {
			s.full.Store(&err)
			return err
		}
		s.fail(err)
		return err
	}
	s.ovMu.Lock()
	s.frozen, s.dsFrozen, s.dsPending, s.spare = nil, nil, nil, nil
	s.dsBytes.Store(0)
	s.direct.Store(true)
	s.ovMu.Unlock()
	s.full.Store(nil)
	s.j.close()
	s.log.Warn("no room for the journal: it is folded into the store file, "+
		"and actions are committed to it directly until there is room again", "err", cause)
	if err := s.removeSegments(); err != nil {
		// Folded, and the file says so: the next Open deletes them.
		s.log.Warn("removing the folded journal failed", "err", err)
	}
	return nil
}

// applyFrozen writes the latest mutation of every id in frozen to bbolt in
// two transactions: first the removals (deleted ids, and ids whose record
// moves to another seq), so that the second, which writes the records, the
// deferred datastore writes (dsFrozen) and the journal record rec, finds no
// stale seq in its way and can reuse the pages the first freed. A crash in
// between is harmless: the journal record still says the frames are not
// folded, and replaying them gives the same state.
//
// Keys are written in key order, per bucket: ids in id order, records in
// seq order. bbolt splits a node only when the transaction commits, so the
// keys one transaction adds after the last one of a bucket (every new
// action: seqs grow, ids are time-ordered) all go into one node, and in
// the overlay's map order each of them was inserted into the middle of
// that growing node: quadratic in the keys folded (a checkpoint of 4096
// submissions spent ~5 % of the server's CPU moving node entries; a
// checkpoint of 250k fell minutes behind the journal). In key order each
// is appended. write is writeRaw, or writeRawLocked for a caller that
// holds the gate and s.mu for reading.
func (s *boltStore) applyFrozen(write func(what string, fn func(*bolt.Tx) error) error, frozen map[string]*overlay, dsFrozen dsOverlay, rec journalRecord) error {
	type fold struct {
		queue string
		ents  []foldEntry // the latest mutation of each id, in id order
	}
	folds := make([]fold, 0, len(frozen))
	for q, o := range frozen {
		// In the order of the journal, which for submissions (time-ordered
		// ids) is id order already: then no sort is needed.
		ents := make([]foldEntry, 0, len(o.latest))
		for i, e := range o.order {
			if o.latest[e.id] == i {
				ents = append(ents, foldEntry{ovEntry: e})
			}
		}
		byID := func(a, b foldEntry) int { return strings.Compare(a.id, b.id) }
		if !slices.IsSortedFunc(ents, byID) {
			slices.SortFunc(ents, byID)
		}
		folds = append(folds, fold{queue: q, ents: ents})
	}
	slices.SortFunc(folds, func(a, b fold) int { return strings.Compare(a.queue, b.queue) })
	removals, removed := false, 0
	var key []byte // bbolt copies keys: one buffer serves them all
	err := write("checkpoint journal: removals", func(tx *bolt.Tx) error {
		removals, removed = false, 0
		for _, f := range folds {
			seqs, ids, err := queueBuckets(tx, f.queue)
			if err != nil {
				return err
			}
			// One cursor for the lookups (a Get makes a new one each
			// time); it is positioned afresh after each delete. Ids after
			// the bucket's last (new actions) are not looked up.
			c := ids.Cursor()
			k, _ := c.Last()
			last, empty := string(k), k == nil
			for i := range f.ents {
				e := &f.ents[i]
				e.held = heldNot
				if empty || e.id > last {
					continue // a new action: nothing to look up
				}
				key = append(key[:0], e.id...)
				k, v := c.Seek(key)
				if v == nil || string(k) != e.id {
					continue
				}
				p, ok := unframe(key, v)
				if !ok || len(p) != 8 {
					return fmt.Errorf("store: %s: checkpoint: index entry of action %s: checksum mismatch: %w", s.path, e.id, ErrCorrupt)
				}
				if e.put != nil && binary.BigEndian.Uint64(p) == e.seq {
					e.held = heldInPlace // rewritten in place
					continue
				}
				removals = true
				removed++
				if err := seqs.Delete(p); err != nil {
					return err
				}
				if err := ids.Delete(key); err != nil {
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
	if removals {
		s.deleted.Add(int64(2 * removed)) // its seq key and its id key
	}
	// Nothing else writes the queues' buckets until this checkpoint ends
	// (ckptMu), so what the first transaction found still holds: a put
	// is either in place or of an id bbolt no longer (or never) had.
	return write("checkpoint journal: records", func(tx *bolt.Tx) error {
		var puts []*foldEntry
		var key []byte // bbolt copies keys: one buffer serves them all
		for _, f := range folds {
			seqs, ids, err := queueBuckets(tx, f.queue)
			if err != nil {
				return err
			}
			// The framed values of this queue that ApplyActions did not
			// frame already, in one allocation instead of two per
			// record: bbolt keeps each value until the transaction
			// ends, so none of it is reused.
			puts = puts[:0]
			size := 0
			for i := range f.ents {
				if e := &f.ents[i]; e.put != nil {
					puts = append(puts, e)
					size += frameHeader + 8
					if e.framed == nil {
						size += frameHeader + len(e.put)
					}
				}
			}
			vals := make([]byte, 0, size)
			for _, e := range puts { // in id order
				if e.held == heldInPlace {
					continue
				}
				key = append(key[:0], e.id...)
				var sk [8]byte
				binary.BigEndian.PutUint64(sk[:], e.seq)
				vals = appendFrame(vals, key, sk[:])
				if err := ids.Put(key, vals[len(vals)-frameHeader-8:]); err != nil {
					return fmt.Errorf("store: %s: checkpoint journal: %w", s.path, err)
				}
			}
			bySeq := func(a, b *foldEntry) int { return cmp.Compare(a.seq, b.seq) }
			if !slices.IsSortedFunc(puts, bySeq) {
				slices.SortFunc(puts, bySeq)
			}
			// A seq after the bucket's last key (as it was before these
			// puts: each is another seq) is free without a lookup.
			c := seqs.Cursor() // positioned afresh after each put
			k, _ := c.Last()
			lastSeq, empty := uint64(0), k == nil
			if len(k) == 8 {
				lastSeq = binary.BigEndian.Uint64(k)
			} else if !empty {
				lastSeq = math.MaxUint64 // not a seq key: look every seq up
			}
			for _, e := range puts { // in seq order
				key = binary.BigEndian.AppendUint64(key[:0], e.seq)
				if e.held != heldInPlace && !empty && e.seq <= lastSeq {
					if k, _ := c.Seek(key); bytes.Equal(k, key) {
						return fmt.Errorf("store: %s: checkpoint journal: action %s: seq %d belongs to another action: %w", s.path, e.id, e.seq, ErrInvalid)
					}
				}
				v := e.framed
				if v == nil {
					vals = appendFrame(vals, key, e.put)
					v = vals[len(vals)-frameHeader-len(e.put):]
				}
				if err := seqs.Put(key, v); err != nil {
					return fmt.Errorf("store: %s: checkpoint journal: %w", s.path, err)
				}
			}
		}
		for _, t := range slices.Sorted(maps.Keys(dsFrozen)) {
			if err := s.foldDS(tx, t, dsFrozen[t]); err != nil {
				return err
			}
		}
		return putJournalRecord(tx, rec)
	})
}

// foldEntry is an overlay entry being folded, with what bbolt held of its
// id when the checkpoint began.
type foldEntry struct {
	ovEntry
	held byte
}

const (
	heldNot     = iota // bbolt has no record of the id (or it was removed)
	heldInPlace        // bbolt holds the id's record at the same seq
)

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
	s.gate.RLock() // before s.mu, as in write
	defer s.gate.RUnlock()
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
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	tx, err := s.db.Begin(true)
	if err != nil {
		return s.commitErr(what, err, true)
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		if errors.Is(err, errNothing) {
			return err
		}
		return s.commitErr(what, err, true)
	}
	done = true // Commit rolls back itself when it fails
	id := tx.ID()
	if err := tx.Commit(); err != nil {
		return s.commitErr(what, err, s.commitUncertain(err, id))
	}
	return nil
}

// queueBuckets returns a queue's seq and id buckets, creating them (and
// the queue's bucket) when missing, filled for appends.
func queueBuckets(tx *bolt.Tx, queue string) (seqs, ids *bolt.Bucket, err error) {
	q, err := tx.Bucket(bucketQueues).CreateBucketIfNotExists([]byte(queue))
	if err != nil {
		return nil, nil, err
	}
	if seqs, err = q.CreateBucketIfNotExists(bucketSeq); err != nil {
		return nil, nil, err
	}
	if ids, err = q.CreateBucketIfNotExists(bucketIDs); err != nil {
		return nil, nil, err
	}
	seqs.FillPercent, ids.FillPercent = appendFill, appendFill
	return seqs, ids, nil
}

// applyJournal applies one journaled mutation to bbolt.
func (s *boltStore) applyJournal(tx *bolt.Tx, queue string, m journalMutation) error {
	switch m.kind {
	case kindDSPut:
		return s.foldDS(tx, m.task, map[string]*dsVal{string(m.key): {v: m.put}})
	case kindDSDelete:
		return s.foldDS(tx, m.task, map[string]*dsVal{string(m.key): {}})
	}
	what := "apply journal to queue " + queue
	seqs, ids, err := queueBuckets(tx, queue)
	if err != nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
	}
	return s.applyRaw(what, seqs, ids, m.id, m.seq, m.put, false) // put nil, seq 0: a delete
}

// dropJournal, once everything is folded, records that no journal segment
// is expected any more and deletes them all.
func (s *boltStore) dropJournal() error {
	if s.recorded.Load() { // otherwise the file already expects no segment
		m, seq := s.j.position()
		if err := s.writeRaw("close journal", func(tx *bolt.Tx) error {
			return putJournalRecord(tx, journalRecord{M: m + 1, S: seq})
		}); err != nil {
			return err
		}
	}
	return s.removeSegments()
}

// removeSegments deletes every journal segment, once the file records that
// none is expected.
func (s *boltStore) removeSegments() error {
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
