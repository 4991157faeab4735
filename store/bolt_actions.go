package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/connectorhq/connector/messages"
)

// read runs fn in a read transaction, guarded.
func (s *boltStore) read(what string, fn func(tx *bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.readLocked(what, fn)
}

// readLocked is read for a caller that holds s.mu for reading (a second
// RLock would wait behind a compaction's pending Lock: a deadlock).
func (s *boltStore) readLocked(what string, fn func(tx *bolt.Tx) error) (err error) {
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	defer s.protect(&err, what, false)()
	return s.db.View(fn)
}

// write runs fn in a write transaction and commits it, applying the failure
// policy: errors before the commit, permission errors from it, and
// out-of-space errors from it that left the commit unseen (commitUncertain)
// leave nothing applied and the store writable; any other commit error, or
// a failed sync (even for lack of room), leaves the outcome unknown and
// stops later writes (ErrFailed).
func (s *boltStore) write(what string, fn func(tx *bolt.Tx) error) (err error) {
	s.gate.RLock() // before s.mu: a compaction holds the gate, then takes s.mu
	defer s.gate.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("store: %s: %s: %w (after: %w)", s.path, what, ErrFailed, *f)
	}
	defer s.protect(&err, what, true)()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
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
	id := tx.ID()
	if err := tx.Commit(); err != nil {
		return s.commitErr(what, err, s.commitUncertain(err, id))
	}
	if f := s.cfg.Faults; f != nil {
		if err := f.Synced(); err != nil {
			return s.commitErr(what, err, true)
		}
	}
	return nil
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
	for i, m := range batch {
		if err := checkMutation(queue, i, m); err != nil {
			return err
		}
	}
	framed, err := encodeActions(queue, batch)
	if err != nil {
		return err
	}
	muts := make([]journalMutation, len(batch))
	for i, m := range batch {
		if m.Put != nil {
			muts[i] = journalMutation{kind: kindPut, put: framed[i][frameHeader:], framed: framed[i], id: m.Put.Id, seq: m.Put.GetStatus().GetSeq()}
		} else {
			muts[i] = journalMutation{kind: kindDelete, id: m.Delete}
		}
	}
	s.mu.RLock()
	closed := s.db == nil
	s.mu.RUnlock()
	if closed {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	for {
		if !s.journaling() {
			if done, err := s.commitDirect(what, queue, batch, muts); done {
				return err
			}
		}
		err = s.applyJournaled(what, queue, muts)
		if errors.Is(err, errSuspended) {
			// Suspended by another caller since journaling() looked
			// (nothing was written): go round again, and commitDirect
			// sees the state now. Suspending here would be wrong: the
			// journal may already be back (resumeJournal).
			continue
		}
		if noRoom(err) {
			// The journal found no room: go on without the journal
			// (nothing of this batch was written), as with a disk too
			// small for one at Open.
			if serr := s.suspendJournal(err); serr != nil {
				return fmt.Errorf("%w; and folding the journal to go on without it: %w", err, serr)
			}
			if done, err := s.commitDirect(what, queue, batch, muts); done {
				return err
			}
			continue // the journal is back already
		}
		return err
	}
}

// commitDirect commits a batch to bbolt directly, since the journal is
// off, and returns true; or, when the journal was suspended and is back
// (resumeJournal), nothing, and false: the batch goes to the journal.
func (s *boltStore) commitDirect(what, queue string, batch []ActionMutation, muts []journalMutation) (bool, error) {
	if s.j == nil {
		return true, s.applyDirect(what, queue, batch, muts)
	}
	if s.directHook != nil {
		s.directHook("before")
	}
	s.resumeMu.RLock()
	defer s.resumeMu.RUnlock()
	if !s.direct.Load() {
		return false, nil
	}
	if s.directHook != nil {
		s.directHook("checked")
	}
	return true, s.applyDirect(what, queue, batch, muts)
}

// applyJournaled is ApplyActions' journal path. It returns errSuspended,
// writing nothing, when the journal was suspended since ApplyActions
// looked.
func (s *boltStore) applyJournaled(what, queue string, muts []journalMutation) error {
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
	// The journal path does not wait for a compaction's copy (it holds
	// the gate, not s.mu) except for the one write to the file of a run,
	// recordJournal's, which is a writer like any other.
	if !s.recorded.Load() {
		s.gate.RLock()
		defer s.gate.RUnlock()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.direct.Load() {
		return errSuspended
	}
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
	// Deferred datastore writes ride along, ahead of the batch (they were
	// made before it): the same fdatasync makes both durable.
	dsMuts, taken := s.takeDeferred()
	all := muts
	if len(dsMuts) > 0 {
		all = append(dsMuts, muts...)
	}
	if err := s.appendFrames(what, queue, all); err != nil {
		return err
	}
	s.ovMu.Lock()
	o := s.active[queue]
	if o == nil {
		if o = s.spare[queue]; o != nil {
			delete(s.spare, queue)
		} else {
			o = newOverlay(min(s.ovSize[queue], checkpointEvery))
		}
		s.active[queue] = o
	}
	for _, m := range muts {
		if m.kind == kindPut {
			o.add(ovEntry{id: m.id, seq: m.seq, put: m.put, framed: m.framed})
		} else {
			o.add(ovEntry{id: m.id})
		}
	}
	s.promoteDeferred(taken)
	s.ovMu.Unlock()
	if s.pending.Add(int64(len(all))) >= checkpointEvery {
		select {
		case s.ckptWake <- struct{}{}:
		default:
		}
	}
	return nil
}

// maxFrameBuf bounds the frame memory a store keeps between appends.
const maxFrameBuf = 1 << 20

// frameInto encodes a batch frame in the store's frame buffer: a frame is
// garbage once appended, so the next one reuses its memory (a group commit
// of a few hundred actions is tens of KiB). Callers hold applyMu until the
// frame is appended.
func (s *boltStore) frameInto(queue string, muts []journalMutation) []byte {
	b := encodeFrameInto(s.frameBuf, queue, muts)
	if cap(b) <= maxFrameBuf {
		s.frameBuf = b
	} else {
		s.frameBuf = nil
	}
	return b
}

// appendFrames appends the batch muts of queue to the journal: one frame,
// unless its payload would be over maxFramePayload (4 GiB), and then as
// many as it takes, in order (frameChunks), each synced before the next is
// written. A crash between two of them keeps the first part of the batch
// and not the rest: every such part is a state the records went through
// (the batch is valid applied in order), none of it acknowledged. A
// failure after a part was written leaves the outcome unknown (ErrFailed).
// Callers hold applyMu and s.mu for reading.
func (s *boltStore) appendFrames(what, queue string, muts []journalMutation) error {
	chunks, err := frameChunks(queue, muts)
	if err != nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
	}
	for i, c := range chunks {
		q := queue
		if !slices.ContainsFunc(c, func(m journalMutation) bool { return m.kind == kindPut || m.kind == kindDelete }) {
			q = "" // datastore mutations alone (see the journal's format)
		}
		err := s.appendFrame(what, s.frameInto(q, c))
		switch {
		case err == nil:
		case i == 0:
			return err
		case errors.Is(err, ErrFailed):
			return err
		default:
			wrapped := &classifiedError{fmt.Errorf("store: %s: %s: frame %d of %d of the batch failed after the first were written: %w: %w", s.path, what, i+1, len(chunks), ErrFailed, err)}
			s.fail(wrapped)
			return wrapped
		}
	}
	return nil
}

// appendFrame appends frame to the journal with one fdatasync, consulting
// the fault injector, and classifies a failure. Callers hold applyMu and
// s.mu for reading.
func (s *boltStore) appendFrame(what string, frame []byte) error {
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
	if err == nil {
		return nil
	}
	var se *syncError
	var nw *notWritten
	switch {
	case errors.Is(err, errJournalClosed):
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed) // Close has begun: nothing was written
	case errors.Is(err, ErrFailed) || errors.Is(err, ErrNoSpace) || errors.Is(err, ErrReadOnly) || errors.As(err, new(*classifiedError)):
		return err // already classified by commitErr
	case errors.As(err, &nw):
		if spaceError(nw.err) {
			return &noRoomError{s.commitErr(what, err, false)}
		}
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

// noRoomError marks an append refused because the journal's next segment
// could not be made for lack of room (ErrNoSpace): nothing of it was
// written, and the journal is whole. The store then goes on without the
// journal (suspendJournal).
type noRoomError struct{ err error }

func (e *noRoomError) Error() string { return e.err.Error() }
func (e *noRoomError) Unwrap() error { return e.err }

func noRoom(err error) bool {
	var nr *noRoomError
	return errors.As(err, &nr)
}

// errSuspended: the journal was suspended (suspendJournal) after the
// caller looked; nothing was written.
var errSuspended = errors.New("store: the journal is suspended")

// journaling reports whether actions go through the journal: the store has
// one (no Config.MaxSize, room for a segment at Open) and it has not been
// suspended for lack of room.
func (s *boltStore) journaling() bool { return s.j != nil && !s.direct.Load() }

// recordJournal makes sure, before the first frame of this run is
// appended, that the store file says the journal goes on in the current
// segment: a replay then knows that segment must be there. Callers hold
// applyMu and s.mu for reading.
func (s *boltStore) recordJournal(what string) error {
	if s.recorded.Load() {
		return nil
	}
	m, seq := s.j.position()
	err := s.writeRawLocked(what+": record the journal", func(tx *bolt.Tx) error {
		return putJournalRecord(tx, journalRecord{M: m, S: seq, Exists: true})
	})
	if err != nil {
		return err
	}
	s.recorded.Store(true)
	return nil
}

// applyDirect commits a batch to bbolt at once (no journal: Config.MaxSize,
// or too little room for its segments).
func (s *boltStore) applyDirect(what, queue string, batch []ActionMutation, muts []journalMutation) error {
	return s.write(what, func(tx *bolt.Tx) error {
		seqs, ids, err := queueBuckets(tx, queue)
		if err != nil {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
		}
		for _, m := range muts {
			id, record := m.id, m.put // record nil: a delete
			if err := s.applyRaw(what, seqs, ids, id, m.seq, record, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// validate checks a batch as if it were applied in order: a Put may not
// take a seq that another action holds. State is read from the overlays,
// then bbolt; on success the queue's bounds (queueHigh) are raised to
// cover the batch, so they stay bounds whatever becomes of it. An id or a
// seq above the bounds is nobody's, without a lookup: a batch of
// submissions (the next seqs, time-ordered ids) opens no read transaction.
// Callers hold applyMu and s.mu for reading.
func (s *boltStore) validate(what, queue string, muts []journalMutation) (err error) {
	s.ovMu.RLock()
	defer s.ovMu.RUnlock()
	act, frz := s.active[queue], s.frozen[queue]
	// bbolt is read, in one read transaction opened on first need, only
	// for what the bounds and the overlays do not answer.
	var (
		tx              *bolt.Tx
		seqs, ids       *bolt.Bucket
		lastSeq, lastID []byte
	)
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	defer s.protect(&err, what, false)()
	open := func() error {
		if tx != nil {
			return nil
		}
		t, err := s.db.Begin(false)
		if err != nil {
			return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
		}
		tx = t
		if q := tx.Bucket(bucketQueues).Bucket([]byte(queue)); q != nil {
			seqs, ids = q.Bucket(bucketSeq), q.Bucket(bucketIDs)
		}
		// The last keys of the buckets: a key after them is not there,
		// without a lookup.
		if seqs != nil {
			lastSeq, _ = seqs.Cursor().Last()
		}
		if ids != nil {
			lastID, _ = ids.Cursor().Last()
		}
		return nil
	}
	hi := s.high[queue]
	if hi == nil {
		// The queue's first batch since Open: its bounds are bbolt's
		// last keys and what the overlays hold.
		if err := open(); err != nil {
			return err
		}
		hi = &queueHigh{id: string(lastID)}
		if len(lastSeq) == 8 {
			hi.seq = binary.BigEndian.Uint64(lastSeq)
		} else if lastSeq != nil {
			hi.seq = math.MaxUint64 // not a seq key: no bound (LoadActions reports the damage)
		}
		for _, o := range [...]*overlay{act, frz} {
			if o == nil {
				continue
			}
			for _, e := range o.order {
				if e.put != nil {
					hi.raiseTo(e.id, e.seq)
				}
			}
		}
		if s.high == nil {
			s.high = map[string]*queueHigh{}
		}
		s.high[queue] = hi
	}
	if hi.fresh(muts) {
		hi.raise(muts)
		return nil
	}
	// seqOf returns the seq id holds now (0, false: none).
	seqOf := func(id string) (uint64, bool, error) {
		if id > hi.id {
			return 0, false, nil
		}
		for _, o := range [...]*overlay{act, frz} {
			if e, ok := o.get(id); ok {
				return e.seq, e.put != nil, nil
			}
		}
		if err := open(); err != nil {
			return 0, false, err
		}
		if ids == nil || lastID == nil || id > string(lastID) {
			return 0, false, nil
		}
		v := ids.Get([]byte(id))
		if v == nil {
			return 0, false, nil
		}
		p, ok := unframe([]byte(id), v)
		if !ok || len(p) != 8 {
			return 0, false, nil
		}
		return binary.BigEndian.Uint64(p), true, nil
	}
	// ownerOf returns the action holding seq now ("" if none).
	ownerOf := func(seq uint64) (string, error) {
		if seq > hi.seq {
			return "", nil
		}
		for _, o := range [...]*overlay{act, frz} {
			if id, ok := o.owner(seq); ok {
				return id, nil
			}
		}
		if err := open(); err != nil {
			return "", err
		}
		if seqs == nil || lastSeq == nil || bytes.Compare(seqKey(seq), lastSeq) > 0 {
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
		cur, held, err := seqOf(a.GetId())
		if err != nil {
			return "", err
		}
		if !held || cur != seq {
			return "", nil
		}
		return a.GetId(), nil
	}
	// The batch's own effects, in order.
	bSeq := make(map[string]uint64, len(muts))   // id → seq after the batch so far (0 with bDel)
	bDel := map[string]bool{}                    // ids deleted by the batch so far
	bOwner := make(map[uint64]string, len(muts)) // seq → id per the batch ("" freed)
	for _, m := range muts {
		if m.kind == kindDelete {
			if old, ok := bSeq[m.id]; ok {
				bOwner[old] = ""
			} else if old, held, err := seqOf(m.id); err != nil {
				return err
			} else if held {
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
			if owner != "" && owner != m.id {
				if bDel[owner] {
					owner = ""
				} else if cur, moved := bSeq[owner]; moved && cur != m.seq {
					owner = ""
				}
			}
		}
		if owner != "" && owner != m.id {
			return fmt.Errorf("store: %s: %s: action %s: seq %d belongs to another action: %w", s.path, what, m.id, m.seq, ErrInvalid)
		}
		if old, ok := bSeq[m.id]; ok && old != m.seq {
			bOwner[old] = ""
		} else if !ok && !bDel[m.id] {
			old, held, err := seqOf(m.id)
			if err != nil {
				return err
			}
			if held && old != m.seq {
				bOwner[old] = ""
			}
		}
		bSeq[m.id] = m.seq
		delete(bDel, m.id)
		bOwner[m.seq] = m.id
	}
	hi.raise(muts)
	return nil
}

// queueHigh bounds the actions of a queue (boltStore.high): no id in bbolt
// or in an overlay is above id, no seq above seq. Deletes do not lower the
// bounds, so they may be above what is left, never below it: an id or seq
// above them is held by no action.
type queueHigh struct {
	id  string
	seq uint64
}

// fresh reports whether muts are all puts of ids and seqs above the
// bounds, each above the one before (a batch of submissions): no action
// holds any of them, and none is taken twice in the batch.
func (h *queueHigh) fresh(muts []journalMutation) bool {
	id, seq := h.id, h.seq
	for _, m := range muts {
		if m.kind != kindPut || m.id <= id || m.seq <= seq {
			return false
		}
		id, seq = m.id, m.seq
	}
	return true
}

// raise makes the bounds cover the puts of muts.
func (h *queueHigh) raise(muts []journalMutation) {
	for _, m := range muts {
		if m.kind == kindPut {
			h.raiseTo(m.id, m.seq)
		}
	}
}

// raiseTo makes the bounds cover a put of id at seq.
func (h *queueHigh) raiseTo(id string, seq uint64) {
	if id > h.id {
		h.id = id
	}
	h.seq = max(h.seq, seq)
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
