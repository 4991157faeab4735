package store

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/connectorhq/connector/messages"
)

const engineMemory = "memory"

// memStore keeps everything in maps behind one lock. Records are kept
// encoded, so the store never shares messages with its callers, exactly as
// the durable store behaves.
type memStore struct {
	faults FaultInjector

	mu     sync.RWMutex
	closed bool
	failed error
	queues map[string]*memQueue
	ds     map[string]*memDS
	bytes  int64
}

type memQueue struct {
	byID  map[string]uint64
	bySeq map[uint64][]byte // encoded record
}

type memDS struct {
	mu sync.Mutex // serialises Updates of this datastore
	kv map[string][]byte
}

func newMemory(cfg Config) *memStore {
	cfg.Logger.Info("store opened", "component", "store", "engine", engineMemory)
	return &memStore{faults: cfg.Faults, queues: map[string]*memQueue{}, ds: map[string]*memDS{}}
}

func (s *memStore) usable(what string, write bool) error {
	if s.closed {
		return fmt.Errorf("store: memory: %s: %w", what, ErrClosed)
	}
	if write && s.failed != nil {
		return fmt.Errorf("store: memory: %s: %w (after: %w)", what, ErrFailed, s.failed)
	}
	return nil
}

// commit runs the fault hooks around apply, undoing the batch when a hook
// before the commit fails. undo reverts everything the batch changed so far.
func (s *memStore) commit(what string, undo func(), apply func()) error {
	if s.faults != nil {
		if err := s.faults.Commit(); err != nil {
			undo()
			if spaceError(err) {
				return fmt.Errorf("store: memory: %s: %w: %w", what, ErrNoSpace, err)
			}
			return fmt.Errorf("store: memory: %s: %w", what, err)
		}
	}
	apply()
	if s.faults != nil {
		if err := s.faults.Synced(); err != nil {
			s.failed = fmt.Errorf("store: memory: %s: %w: %w", what, ErrFailed, err)
			return s.failed
		}
	}
	return nil
}

func (s *memStore) hookWrite(what string) error {
	if s.faults == nil {
		return nil
	}
	if err := s.faults.Write(); err != nil {
		return fmt.Errorf("store: memory: %s: %w", what, err)
	}
	return nil
}

func (s *memStore) ApplyActions(queue string, batch []ActionMutation) error {
	if err := checkName("queue", queue); err != nil {
		return err
	}
	encoded := make([][]byte, len(batch))
	for i, m := range batch {
		if err := checkMutation(queue, i, m); err != nil {
			return err
		}
		if m.Put != nil {
			b, err := encodeAction(queue, m.Put)
			if err != nil {
				return err
			}
			encoded[i] = b
		}
	}
	what := "apply actions to queue " + queue
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(what, len(batch) > 0); err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}
	q := s.queues[queue]
	created := q == nil
	if created {
		q = &memQueue{byID: map[string]uint64{}, bySeq: map[uint64][]byte{}}
		s.queues[queue] = q
	}
	// Changes go straight into the maps; undo records how to revert them.
	var undos []func()
	bytesBefore := s.bytes
	undo := func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
		s.bytes = bytesBefore
		if created {
			delete(s.queues, queue)
		}
	}
	setSeq := func(seq uint64, v []byte) {
		old, had := q.bySeq[seq]
		undos = append(undos, func() {
			if had {
				q.bySeq[seq] = old
			} else {
				delete(q.bySeq, seq)
			}
		})
		s.bytes += int64(len(v) - len(old))
		if v == nil {
			delete(q.bySeq, seq)
		} else {
			q.bySeq[seq] = v
		}
	}
	setID := func(id string, seq uint64, del bool) {
		old, had := q.byID[id]
		undos = append(undos, func() {
			if had {
				q.byID[id] = old
			} else {
				delete(q.byID, id)
			}
		})
		if del {
			delete(q.byID, id)
		} else {
			q.byID[id] = seq
		}
	}
	for i, m := range batch {
		if m.Put == nil {
			seq, ok := q.byID[m.Delete]
			if !ok {
				continue
			}
			for range 2 {
				if err := s.hookWrite(what); err != nil {
					undo()
					return err
				}
			}
			setSeq(seq, nil)
			setID(m.Delete, 0, true)
			continue
		}
		id, seq := m.Put.Id, m.Put.GetStatus().GetSeq()
		old, had := q.byID[id]
		if _, taken := q.bySeq[seq]; taken && (!had || old != seq) {
			undo()
			return fmt.Errorf("store: memory: %s: action %s: seq %d belongs to another action: %w", what, id, seq, ErrInvalid)
		}
		if had && old != seq {
			if err := s.hookWrite(what); err != nil {
				undo()
				return err
			}
			setSeq(old, nil)
		}
		if err := s.hookWrite(what); err != nil {
			undo()
			return err
		}
		setSeq(seq, encoded[i])
		if !had || old != seq {
			if err := s.hookWrite(what); err != nil {
				undo()
				return err
			}
			setID(id, seq, false)
		}
	}
	return s.commit(what, undo, func() {})
}

func (s *memStore) LoadActions(queue string, fn func(*messages.StoredAction) error) error {
	if err := checkName("queue", queue); err != nil {
		return err
	}
	what := "load actions of queue " + queue
	s.mu.RLock()
	if err := s.usable(what, false); err != nil {
		s.mu.RUnlock()
		return err
	}
	var recs [][]byte
	if q := s.queues[queue]; q != nil {
		seqs := make([]uint64, 0, len(q.bySeq))
		for seq := range q.bySeq {
			seqs = append(seqs, seq)
		}
		slices.Sort(seqs)
		recs = make([][]byte, len(seqs))
		for i, seq := range seqs {
			recs[i] = q.bySeq[seq] // never mutated once stored
		}
	}
	s.mu.RUnlock()
	for _, b := range recs {
		a, err := decodeAction(b)
		if err != nil {
			return fmt.Errorf("store: memory: %s: %w: %w", what, ErrCorrupt, err)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) QueueNames() ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable("list queues", false); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(s.queues))
	for q := range s.queues {
		out = append(out, q)
	}
	sort.Strings(out)
	return out, nil
}

func (s *memStore) Datastore(task string) (Datastore, error) {
	if err := checkName("task", task); err != nil {
		return nil, err
	}
	what := "datastore " + task
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(what, false); err != nil {
		return nil, err
	}
	if _, ok := s.ds[task]; !ok {
		if err := s.usable(what, true); err != nil {
			return nil, err
		}
		if err := s.hookWrite(what); err != nil {
			return nil, err
		}
		d := &memDS{kv: map[string][]byte{}}
		s.ds[task] = d
		if err := s.commit(what, func() { delete(s.ds, task) }, func() {}); err != nil {
			return nil, err
		}
	}
	return &memDatastore{s: s, name: task, what: what}, nil
}

func (s *memStore) DatastoreNames() ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable("list datastores", false); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(s.ds))
	for t := range s.ds {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

func (s *memStore) Info() Info {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Info{Engine: engineMemory, SizeBytes: s.bytes, InMemory: true}
}

func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.queues, s.ds = nil, nil
	return nil
}

type memDatastore struct {
	s    *memStore
	name string
	what string
}

// get returns the task's map under s.mu (read or write held).
func (d *memDatastore) get(write bool) (*memDS, error) {
	if err := d.s.usable(d.what, write); err != nil {
		return nil, err
	}
	m := d.s.ds[d.name]
	if m == nil { // cannot happen: datastores are never removed
		return nil, fmt.Errorf("store: memory: %s: missing: %w", d.what, ErrCorrupt)
	}
	return m, nil
}

func (d *memDatastore) Get(key []byte) ([]byte, error) {
	if err := checkKey(d.name, key); err != nil {
		return nil, err
	}
	d.s.mu.RLock()
	defer d.s.mu.RUnlock()
	m, err := d.get(false)
	if err != nil {
		return nil, err
	}
	v, ok := m.kv[string(key)]
	if !ok {
		return nil, nil
	}
	return bytes.Clone(v), nil
}

func (d *memDatastore) Update(fn func(w Writer) error) error {
	// fn runs without the store lock (it may call Get of this or another
	// datastore); the datastore's own lock serialises Updates, and the
	// batch is staged in w and merged under the store lock.
	d.s.mu.RLock()
	m, err := d.get(true)
	d.s.mu.RUnlock()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &memWriter{d: d, m: m, staged: map[string][]byte{}}
	ferr := fn(w)
	w.done = true
	if ferr != nil {
		return ferr
	}
	if w.broken != nil {
		return w.broken
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if _, err := d.get(true); err != nil {
		return err
	}
	if len(w.order) == 0 {
		return nil
	}
	return d.s.commit(d.what+": update", func() {}, func() {
		for _, k := range w.order {
			v := w.staged[k]
			old := m.kv[k]
			d.s.bytes -= int64(len(old))
			if _, had := m.kv[k]; had {
				d.s.bytes -= int64(len(k))
			}
			if v == nil {
				delete(m.kv, k)
				continue
			}
			m.kv[k] = v
			d.s.bytes += int64(len(k) + len(v))
		}
	})
}

func (d *memDatastore) ForEach(fn func(key, value []byte) error) error {
	d.s.mu.RLock()
	m, err := d.get(false)
	if err != nil {
		d.s.mu.RUnlock()
		return err
	}
	keys := make([]string, 0, len(m.kv))
	for k := range m.kv {
		keys = append(keys, k)
	}
	vals := make([][]byte, len(keys))
	sort.Strings(keys)
	for i, k := range keys {
		vals[i] = m.kv[k] // never mutated once stored
	}
	d.s.mu.RUnlock()
	for i, k := range keys {
		if err := fn([]byte(k), bytes.Clone(vals[i])); err != nil {
			return err
		}
	}
	return nil
}

func (d *memDatastore) Len() (int, error) {
	d.s.mu.RLock()
	defer d.s.mu.RUnlock()
	m, err := d.get(false)
	if err != nil {
		return 0, err
	}
	return len(m.kv), nil
}

func (d *memDatastore) Clear() error {
	d.s.mu.RLock()
	m, err := d.get(true)
	d.s.mu.RUnlock()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if _, err := d.get(true); err != nil {
		return err
	}
	if err := d.s.hookWrite(d.what + ": clear"); err != nil {
		return err
	}
	return d.s.commit(d.what+": clear", func() {}, func() {
		for k, v := range m.kv {
			d.s.bytes -= int64(len(k) + len(v))
		}
		m.kv = map[string][]byte{}
	})
}

// memWriter stages a batch; nothing reaches the datastore before commit.
type memWriter struct {
	d      *memDatastore
	m      *memDS
	staged map[string][]byte // nil value: deleted
	order  []string
	done   bool
	broken error
}

func (w *memWriter) check(key []byte) error {
	if w.done {
		return fmt.Errorf("store: memory: %s: writer used after Update returned: %w", w.d.what, ErrInvalid)
	}
	if w.broken != nil {
		return w.broken
	}
	return checkKey(w.d.name, key)
}

func (w *memWriter) current(k string) ([]byte, bool) {
	if v, ok := w.staged[k]; ok {
		return v, v != nil
	}
	w.d.s.mu.RLock()
	defer w.d.s.mu.RUnlock()
	v, ok := w.m.kv[k]
	return v, ok
}

func (w *memWriter) stage(k string, v []byte) error {
	w.d.s.mu.RLock()
	err := w.d.s.hookWrite(w.d.what + ": update")
	w.d.s.mu.RUnlock()
	if err != nil {
		w.broken = err
		return err
	}
	if _, ok := w.staged[k]; !ok {
		w.order = append(w.order, k)
	}
	w.staged[k] = v
	return nil
}

func (w *memWriter) Get(key []byte) ([]byte, error) {
	if err := w.check(key); err != nil {
		return nil, err
	}
	v, ok := w.current(string(key))
	if !ok {
		return nil, nil
	}
	return bytes.Clone(v), nil
}

func (w *memWriter) Put(key, value []byte) error {
	if err := w.check(key); err != nil {
		return err
	}
	if err := checkValue(w.d.name, key, value); err != nil {
		return err
	}
	v := make([]byte, len(value)) // non-nil even when empty: nil means deleted
	copy(v, value)
	return w.stage(string(key), v)
}

func (w *memWriter) Delete(key []byte) error {
	if err := w.check(key); err != nil {
		return err
	}
	if _, ok := w.current(string(key)); !ok {
		return nil
	}
	return w.stage(string(key), nil)
}
