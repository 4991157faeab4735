package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Deferred datastore writes (Deferrer) ride the journal: UpdateDeferred
// puts its writes in dsPending, where reads see them at once; the next
// journal append (the next ApplyActions of any queue, or the
// checkpointer's next tick, or Close) writes them in its frame, ahead of
// its action mutations, with the same fdatasync, and moves them to
// dsActive; a checkpoint folds them into the datastores' buckets in the
// same bbolt transaction as the action records and the journal record
// (dsFrozen while it does). Reads consult dsPending, dsActive, dsFrozen,
// then bbolt. Every map is guarded by ovMu.
//
// ForEach and Len merge them with bbolt. Direct writes of a datastore
// (Update, Clear) first settle it: journal its pending writes and fold
// everything journaled into bbolt, so that bbolt holds every write
// made before and a replay never writes an older value over a newer one.
// dsMu serialises UpdateDeferred with Update and Clear, so that no
// deferred write slips in between a settle and the direct write after it,
// and with suspendJournal, so that none is added to dsPending once the
// journal is suspended (nothing would write it): UpdateDeferred looks at
// the journal holding dsMu, and again after a fold of its own. Each holds
// it for its whole call, callback included, so an ApplyActions that
// suspends the journal (once per suspension, or once per retry while the
// fold finds no room) waits for the update under way, and so does a
// resumption of the journal (resumeJournal, which holds dsMu).

// defaultMaxDeferredBytes is Config.MaxDeferredBytes by default: far
// above what a crawl defers between two checkpoints (a second, or 4096
// journaled writes), so only a checkpointer that has fallen behind meets
// it.
const defaultMaxDeferredBytes = 64 << 20

// dsSize is what one deferred write of key with value v counts towards
// Config.MaxDeferredBytes: its bytes, and the map entry, string and dsVal
// that hold them.
func dsSize(key string, v *dsVal) int64 { return int64(len(key)+len(v.v)) + 64 }

// size is what o holds, in dsSize.
func (o dsOverlay) size() int64 {
	var n int64
	for _, m := range o {
		for k, v := range m {
			n += dsSize(k, v)
		}
	}
	return n
}

// dsVal is one deferred write: the value, or nil for a delete. Its address
// tells one write from a later one of the same key.
type dsVal struct{ v []byte }

// dsOverlay holds the latest deferred write of each key, per task.
type dsOverlay map[string]map[string]*dsVal

func (o dsOverlay) set(task, key string, v *dsVal) {
	m := o[task]
	if m == nil {
		m = map[string]*dsVal{}
		o[task] = m
	}
	m[key] = v
}

// merge writes every entry of newer over o.
func (o dsOverlay) merge(newer dsOverlay) {
	for t, m := range newer {
		for k, v := range m {
			o.set(t, k, v)
		}
	}
}

// dsLookup returns the latest deferred write of task's key not yet folded
// into bbolt (ok false: none). Callers hold ovMu for reading.
func (s *boltStore) dsLookup(task string, key []byte) (v *dsVal, ok bool) {
	for _, o := range []dsOverlay{s.dsPending, s.dsActive, s.dsFrozen} {
		if v, ok := o[task][string(key)]; ok {
			return v, true
		}
	}
	return nil, false
}

// dsEntry is one key of a snapshot of deferred writes.
type dsEntry struct {
	key []byte
	val *dsVal
}

// dsSnapshot returns task's deferred writes not yet folded into bbolt,
// the latest of each key under prefix (nil: every key), in key order.
func (s *boltStore) dsSnapshot(task string, prefix []byte) []dsEntry {
	s.ovMu.RLock()
	defer s.ovMu.RUnlock()
	var out []dsEntry
	seen := map[string]bool{}
	for _, o := range []dsOverlay{s.dsPending, s.dsActive, s.dsFrozen} {
		for k, v := range o[task] {
			if !strings.HasPrefix(k, string(prefix)) {
				continue
			}
			if !seen[k] {
				seen[k] = true
				out = append(out, dsEntry{key: []byte(k), val: v})
			}
		}
	}
	slices.SortFunc(out, func(a, b dsEntry) int { return bytes.Compare(a.key, b.key) })
	return out
}

// dsDirty reports whether task has writes not yet folded into bbolt.
func (s *boltStore) dsDirty(task string) bool {
	s.ovMu.RLock()
	defer s.ovMu.RUnlock()
	return len(s.dsPending[task]) > 0 || len(s.dsActive[task]) > 0 || len(s.dsFrozen[task]) > 0
}

// UpdateDeferred implements Deferrer.
func (d *boltDatastore) UpdateDeferred(fn func(w Writer) error) error {
	s := d.s
	// dsMu is taken before looking, and held to the end: the journal is
	// suspended holding it, so it stays as this call finds it, but for
	// the suspension that this call's own fold may make (below).
	s.dsMu.Lock()
	defer s.dsMu.Unlock()
	s.mu.RLock()
	direct := s.db != nil && !s.journaling()
	s.mu.RUnlock()
	if direct { // no journal (MaxSize, no room): nothing to ride with
		return d.updateLocked(fn)
	}
	what := d.what + ": deferred update"
	if err := s.closingErr(what); err != nil {
		return err
	}
	if err := s.deferUsable(what); err != nil {
		return err
	}
	if s.deferredOver() {
		// Checkpoints have fallen behind: write and fold what waits (the
		// caller waits for it, as for an Update) before adding more.
		if err := s.foldDeferred(string(d.name)); err != nil {
			return err
		}
		if !s.journaling() {
			// The fold suspended the journal (its next segment found no
			// room): nothing would write dsPending from now on, so the
			// write would be lost at Close, and Get would go on reading
			// it over later direct writes. Write directly instead.
			return d.updateLocked(fn)
		}
	}
	// fn runs holding no lock of the file (s.mu): it may read (w.Get, Get
	// of another datastore), and a read waits behind a compaction's
	// pending Lock, which would wait for fn. Only dsMu is held, which
	// Update, Clear and UpdateDeferred take for their whole call, and
	// suspendJournal (from ApplyActions, the checkpointer, Close) for its
	// fold: when the journal's next segment finds no room (once per
	// suspension), an ApplyActions (a queue's group commit) may wait for fn. fn must
	// not call ApplyActions, nor wait for something that does.
	w := &deferWriter{d: d, vals: map[string]*dsVal{}}
	var (
		panicked bool
		pv       any
	)
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
	if panicked {
		panic(pv)
	}
	if ferr != nil {
		return ferr
	}
	if w.broken != nil {
		return w.broken
	}
	if len(w.vals) == 0 {
		return nil
	}
	// Failed meanwhile: refused. (Close waits for this call to return
	// before its final flush: it holds dsMu.)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.deferUsableLocked(what); err != nil {
		return err
	}
	task := string(d.name)
	s.ovMu.Lock()
	if s.dsPending == nil {
		s.dsPending = dsOverlay{}
	}
	p := s.dsPending[task]
	for k, v := range w.vals {
		if old, ok := p[k]; ok {
			s.dsBytes.Add(-dsSize(k, old)) // replaced: only an in-flight frame may still hold it
		}
		s.dsBytes.Add(dsSize(k, v))
		s.dsPending.set(task, k, v)
	}
	s.ovMu.Unlock()
	return nil
}

// deferredOver reports whether the deferred writes held in memory have
// reached Config.MaxDeferredBytes.
func (s *boltStore) deferredOver() bool {
	return s.dsBytes.Load() >= s.cfg.MaxDeferredBytes
}

// closingErr refuses a datastore update once Close has begun (ErrClosed).
// Callers hold dsMu.
func (s *boltStore) closingErr(what string) error {
	if s.closing {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	return nil
}

// deferUsable reports whether the store takes a deferred update (open,
// not failed).
func (s *boltStore) deferUsable(what string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.deferUsableLocked(what)
}

// deferUsableLocked is deferUsable for a caller that holds s.mu for
// reading.
func (s *boltStore) deferUsableLocked(what string) error {
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("store: %s: %s: %w (after: %w)", s.path, what, ErrFailed, *f)
	}
	return nil
}

// deferWriter collects the writes of one UpdateDeferred; reads see them,
// then the store's deferred writes, then bbolt.
type deferWriter struct {
	d      *boltDatastore
	vals   map[string]*dsVal
	done   bool
	broken error
}

func (w *deferWriter) check(key []byte) error {
	if w.done {
		return fmt.Errorf("store: %s: writer used after Update returned: %w", w.d.what, ErrInvalid)
	}
	if w.broken != nil {
		return w.broken
	}
	return checkKey(string(w.d.name), key)
}

func (w *deferWriter) Get(key []byte) ([]byte, error) {
	if err := w.check(key); err != nil {
		return nil, err
	}
	if v, ok := w.vals[string(key)]; ok {
		return bytes.Clone(v.v), nil
	}
	out, err := w.d.Get(key)
	if err != nil && w.broken == nil {
		w.broken = err
	}
	return out, err
}

func (w *deferWriter) Put(key, value []byte) error {
	if err := w.check(key); err != nil {
		return err
	}
	if err := checkValue(string(w.d.name), key, value); err != nil {
		return err
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	w.vals[string(key)] = &dsVal{v: v}
	return nil
}

func (w *deferWriter) Delete(key []byte) error {
	if err := w.check(key); err != nil {
		return err
	}
	w.vals[string(key)] = &dsVal{}
	return nil
}

// getLocked is Get for a caller that holds s.mu for reading: the deferred
// writes, then bbolt.
func (d *boltDatastore) getLocked(key []byte) (out []byte, err error) {
	s := d.s
	s.ovMu.RLock()
	v, ok := s.dsLookup(string(d.name), key)
	s.ovMu.RUnlock()
	if ok {
		return bytes.Clone(v.v), nil
	}
	if s.db == nil {
		return nil, fmt.Errorf("store: %s: %s: get: %w", s.path, d.what, ErrClosed)
	}
	defer s.protect(&err, d.what+": get", false)()
	err = s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = d.getFrom(tx.Bucket(bucketDS).Bucket(d.name), key)
		return err
	})
	return out, err
}

// GetMany implements MultiGetter: the deferred writes first, as Get,
// then one bbolt read transaction for the keys they do not hold.
func (d *boltDatastore) GetMany(keys [][]byte) (out [][]byte, err error) {
	for _, k := range keys {
		if err := checkKey(string(d.name), k); err != nil {
			return nil, err
		}
	}
	s := d.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	out = make([][]byte, len(keys))
	var rest []int
	s.ovMu.RLock()
	for i, k := range keys {
		if v, ok := s.dsLookup(string(d.name), k); ok {
			out[i] = bytes.Clone(v.v)
		} else {
			rest = append(rest, i)
		}
	}
	s.ovMu.RUnlock()
	if len(rest) == 0 {
		return out, nil
	}
	if s.db == nil {
		return nil, fmt.Errorf("store: %s: %s: get: %w", s.path, d.what, ErrClosed)
	}
	defer s.protect(&err, d.what+": get", false)()
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDS).Bucket(d.name)
		for _, i := range rest {
			v, err := d.getFrom(b, keys[i])
			if err != nil {
				return err
			}
			out[i] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// takeDeferred returns the pending deferred writes as journal mutations,
// and what they are (for promoteDeferred). Callers hold applyMu.
func (s *boltStore) takeDeferred() ([]journalMutation, dsOverlay) {
	s.ovMu.RLock()
	defer s.ovMu.RUnlock()
	if len(s.dsPending) == 0 {
		return nil, nil
	}
	// Sized once: a Synchronize's records (10 000 and more) grew the list
	// and the maps through every doubling (3 % of the CPU of a mail
	// Synchronize and its store's close). The maps become dsActive's
	// (promoteDeferred).
	n := 0
	for _, m := range s.dsPending {
		n += len(m)
	}
	muts := make([]journalMutation, 0, n)
	taken := make(dsOverlay, len(s.dsPending))
	for t, m := range s.dsPending {
		tm := make(map[string]*dsVal, len(m))
		taken[t] = tm
		for k, v := range m {
			jm := journalMutation{kind: kindDSPut, task: t, key: []byte(k), put: v.v}
			if v.v == nil {
				jm.kind = kindDSDelete
			}
			muts = append(muts, jm)
			tm[k] = v
		}
	}
	return muts, taken
}

// promoteDeferred moves deferred writes that are now in the journal from
// dsPending (unless a later write of the key replaced them there) to
// dsActive. Callers hold applyMu and ovMu.
func (s *boltStore) promoteDeferred(taken dsOverlay) {
	if len(taken) == 0 {
		return
	}
	if s.dsActive == nil {
		s.dsActive = dsOverlay{}
	}
	for t, m := range taken {
		if s.dsActive[t] == nil {
			s.dsActive[t] = m // takeDeferred's own map, kept by nobody else
			continue
		}
		for k, v := range m {
			s.dsActive[t][k] = v
		}
	}
	for t, m := range taken {
		p := s.dsPending[t]
		for k, v := range m {
			if p[k] == v {
				delete(p, k)
			}
		}
		if len(p) == 0 {
			delete(s.dsPending, t)
		}
	}
}

// flushDeferred appends the pending deferred writes to the journal as a
// frame of their own (when no ApplyActions came to carry them).
func (s *boltStore) flushDeferred() error {
	if !s.hasDeferred() {
		return nil
	}
	if !s.recorded.Load() { // recordJournal writes the file: as in ApplyActions
		s.gate.RLock()
		defer s.gate.RUnlock()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	what := "write deferred datastore changes"
	if s.db == nil {
		return fmt.Errorf("store: %s: %s: %w", s.path, what, ErrClosed)
	}
	if !s.journaling() {
		return nil
	}
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("store: %s: %s: %w (after: %w)", s.path, what, ErrFailed, *f)
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.direct.Load() {
		return nil // suspended meanwhile: suspendJournal folded dsPending
	}
	muts, taken := s.takeDeferred()
	if len(muts) == 0 {
		return nil
	}
	if err := s.recordJournal(what); err != nil {
		return err
	}
	if err := s.appendFrames(what, "", muts); err != nil {
		return err
	}
	s.ovMu.Lock()
	s.promoteDeferred(taken)
	s.ovMu.Unlock()
	s.pending.Add(int64(len(muts)))
	return nil
}

// hasDeferred reports whether deferred writes wait for the journal.
func (s *boltStore) hasDeferred() bool {
	s.ovMu.RLock()
	defer s.ovMu.RUnlock()
	return len(s.dsPending) > 0
}

// settle makes bbolt hold every write of task: its deferred writes are
// journaled, and the journal folded. Callers hold dsMu.
func (s *boltStore) settle(task string) error {
	if !s.dsDirty(task) {
		return nil
	}
	return s.foldDeferred(task)
}

// foldDeferred journals every deferred write and folds the journal into
// bbolt (for task's sake: the error names it). Callers hold dsMu.
func (s *boltStore) foldDeferred(task string) error {
	if err := s.flushDeferred(); err != nil {
		if !noRoom(err) {
			return err
		}
		// The journal cannot go on: fold everything and go on without
		// it (then there is nothing left to checkpoint).
		if err := s.suspendJournalLocked(err); err != nil {
			return err
		}
	}
	if err := s.checkpoint(); err != nil {
		return err
	}
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("store: %s: datastore %s: %w (after: %w)", s.path, task, ErrFailed, *f)
	}
	return nil
}

// foldDS writes a task's deferred writes into its bucket (creating it),
// keeping its key count.
func (s *boltStore) foldDS(tx *bolt.Tx, task string, vals map[string]*dsVal) error {
	name := []byte(task)
	root := tx.Bucket(bucketDS)
	b := root.Bucket(name)
	created := false
	if b == nil {
		var err error
		if b, err = root.CreateBucket(name); err != nil {
			return fmt.Errorf("store: %s: datastore %s: %w", s.path, task, err)
		}
		created = true
	}
	var n uint64
	if !created {
		if v := tx.Bucket(bucketDSLen).Get(name); v != nil {
			p, ok := unframe(name, v)
			if !ok || len(p) != 8 {
				return fmt.Errorf("store: %s: datastore %s: key count: checksum mismatch: %w", s.path, task, ErrCorrupt)
			}
			n = binary.BigEndian.Uint64(p)
		}
	}
	n0 := n
	// In key order: keys new to a bucket all go into one node until the
	// commit splits it (see applyFrozen).
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		v, key := vals[k], []byte(k)
		existed := b.Get(key) != nil
		switch {
		case v.v == nil && existed:
			if err := b.Delete(key); err != nil {
				return fmt.Errorf("store: %s: datastore %s: %w", s.path, task, err)
			}
			n--
			s.deleted.Add(1)
		case v.v != nil:
			if err := b.Put(key, frame(key, v.v)); err != nil {
				return fmt.Errorf("store: %s: datastore %s: %w", s.path, task, err)
			}
			if !existed {
				n++
			}
		}
	}
	if n != n0 || created {
		if err := tx.Bucket(bucketDSLen).Put(name, frame(name, binary.BigEndian.AppendUint64(nil, n))); err != nil {
			return fmt.Errorf("store: %s: datastore %s: %w", s.path, task, err)
		}
	}
	return nil
}
