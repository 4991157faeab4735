package pgstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectorhq/connector/store"
)

// Deferred datastore writes (store.Bookkeeper). UpdateBookkeeping applies
// its writes to an overlay in this process (defPending), where every read
// of this store sees them at once; they reach PostgreSQL in the
// transaction of the store's next group commit: ApplyActions, Submit,
// WriteOwned or Commit (the cluster node's group commit), or, if none
// comes, on their own within Config.DeferInterval, or at Close (which
// refuses those made once it has begun, ErrClosed: Store.deferMu). They are
// statements of that transaction, so a crash either loses them with the
// rest of the transaction or keeps them with it: an action's end, written
// after its task recorded its bookkeeping this way, is never committed
// without it.
//
// Only bookkeeping is deferred: the datastore is not a store.Deferrer, so
// UpdateDeferred (a crawl's records of what it delivered) is a commit of
// its own, as Update. Another node takes an action over as soon as its
// node's lease lapses and must find those records, or it delivers again
// what was delivered in the last DeferInterval (the zombie test,
// cmd/connector, found exactly that).
//
// Fencing: the transaction that carries them starts, as every write of a
// cluster node does, with connector_fence (the node must be a live
// member; FOR SHARE holds that until COMMIT). A node declared dead has
// the whole transaction refused (ErrFenced), its deferred writes with it,
// and they are dropped. A row of WriteOwned fenced by its epoch (another
// node claimed that action) leaves only that row unwritten: the rest of
// the group, deferred writes included, commits. Such a row is an action
// that was queued, not running, when the other node claimed it (a running
// action of a live member is never claimed or adopted), so no worker of it
// made datastore writes here.
//
// Ordering: every transaction that carries deferred writes holds flushMu
// from taking them until it has settled, so they reach PostgreSQL in the
// order they were made. A direct write (Update, Clear) of a task with
// deferred writes not yet committed carries them in its own transaction,
// before its own statements, under flushMu: a later value is never
// overwritten by an older deferred one. d.mu serialises UpdateDeferred
// with the task's Update and Clear.

// defVal is one deferred write: a merge (m, MergeBookkeeping), else the
// value, or nil for a delete.
type defVal struct {
	v []byte
	m *store.Merge
}

// then returns the deferred write that has the effect of d followed by
// next.
func (d *defVal) then(next *defVal) *defVal {
	switch {
	case next.m == nil: // a put or delete replaces whatever came before
		return next
	case d.m == nil: // a merge over a known value (nil: deleted) is a put
		return &defVal{v: next.m.Apply(d.v)}
	default:
		m := d.m.Then(*next.m)
		return &defVal{m: &m}
	}
}

// over returns the value that d leaves over base, the stored value (nil:
// absent); nil when d deletes it.
func (d *defVal) over(base []byte) []byte {
	if d.m != nil {
		return d.m.Apply(base)
	}
	return d.v
}

// defOverlay holds the latest deferred write of each key, per task.
type defOverlay map[string]map[string]*defVal

func (o defOverlay) set(task, key string, v *defVal) {
	m := o[task]
	if m == nil {
		m = map[string]*defVal{}
		o[task] = m
	}
	m[key] = v
}

// deferState is the store's deferred writes.
type deferState struct {
	mu      sync.Mutex
	pending defOverlay  // made, not yet taken by a transaction
	active  defOverlay  // taken by the transaction in flight
	timer   *time.Timer // armed: a flush is due within DeferInterval
	armed   bool
	flushMu sync.Mutex // held by a transaction carrying deferred writes
	lc      *listCache // the store's listing cache (settle drops entries)
}

// lookup returns the deferred writes of task's key, in flight and
// pending, as one (ok false: none).
func (ds *deferState) lookup(task string, key []byte) (*defVal, bool) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	p, pok := ds.pending[task][string(key)]
	a, aok := ds.active[task][string(key)]
	switch {
	case pok && aok:
		return a.then(p), true
	case pok:
		return p, true
	}
	return a, aok
}

// dirty reports whether task has deferred writes not yet committed.
func (ds *deferState) dirty(task string) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return len(ds.pending[task]) > 0 || len(ds.active[task]) > 0
}

// defEntry is one key of a task's deferred writes.
type defEntry struct {
	key []byte
	val *defVal
}

// snapshot returns task's deferred writes, in flight and pending, as one
// per key, in key order.
func (ds *deferState) snapshot(task string) []defEntry {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.snapshotLocked(task)
}

// snapshotLocked is snapshot for callers that hold ds.mu.
func (ds *deferState) snapshotLocked(task string) []defEntry {
	var out []defEntry
	for k, v := range ds.active[task] {
		if p, newer := ds.pending[task][k]; newer {
			v = v.then(p)
		}
		out = append(out, defEntry{key: []byte(k), val: v})
	}
	for k, v := range ds.pending[task] {
		if _, older := ds.active[task][k]; !older {
			out = append(out, defEntry{key: []byte(k), val: v})
		}
	}
	slices.SortFunc(out, func(a, b defEntry) int { return bytes.Compare(a.key, b.key) })
	return out
}

// snapshotAfter is snapshot's entries of keys after last (nil: all).
func (ds *deferState) snapshotAfter(task string, last []byte) []defEntry {
	out := ds.snapshot(task)
	if last == nil {
		return out
	}
	i, _ := slices.BinarySearchFunc(out, last, func(e defEntry, k []byte) int { return bytes.Compare(e.key, k) })
	for i < len(out) && bytes.Equal(out[i].key, last) {
		i++
	}
	return out[i:]
}

// hasMerge reports whether one of es is a deferred merge.
func hasMerge(es []defEntry) bool {
	for _, e := range es {
		if e.val.m != nil {
			return true
		}
	}
	return false
}

// deferredWrites is what one transaction carries.
type deferredWrites struct {
	delT, delK       [][]byte
	putT, putK, putV [][]byte
	// merges: the task, key, Set and Add (JSON objects) of each
	mrgT, mrgK     [][]byte
	mrgSet, mrgAdd []string
	// bumpT: the tasks whose keys it puts or deletes (their versions
	// rise: listcache.go)
	bumpT [][]byte
	taken defOverlay
}

func (w *deferredWrites) empty() bool { return w == nil || len(w.taken) == 0 }

// take moves the pending writes to active and returns them as columns.
// Callers hold flushMu (so active is empty: the previous carrier settled).
func (ds *deferState) take() *deferredWrites {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if len(ds.pending) == 0 {
		return nil
	}
	w := &deferredWrites{taken: ds.pending}
	ds.active, ds.pending = ds.pending, nil
	tasks := make([]string, 0, len(w.taken))
	for t := range w.taken {
		tasks = append(tasks, t)
	}
	slices.Sort(tasks) // a stable lock order between nodes' transactions
	for _, t := range tasks {
		m := w.taken[t]
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		bump := false
		for _, k := range keys {
			if v := m[k]; v.m != nil {
				w.mrgT, w.mrgK = append(w.mrgT, []byte(t)), append(w.mrgK, []byte(k))
				w.mrgSet, w.mrgAdd = append(w.mrgSet, jsonObject(v.m.Set)), append(w.mrgAdd, jsonObject(v.m.Add))
			} else if v.v == nil {
				w.delT, w.delK = append(w.delT, []byte(t)), append(w.delK, []byte(k))
				bump = true
			} else {
				w.putT, w.putK, w.putV = append(w.putT, []byte(t)), append(w.putK, []byte(k)), append(w.putV, v.v)
				bump = true
			}
		}
		if bump {
			w.bumpT = append(w.bumpT, []byte(t))
		}
	}
	return w
}

// settle ends the transaction that carried w: committed (err nil) or
// refused because the node is fenced out, its writes leave the overlay
// (PostgreSQL has them, or must never have them); any other failure (the
// outcome is unknown, or the transaction was not sent) puts them back
// under the writes made since, for the next transaction to carry again.
// (A merge carried again after a COMMIT whose answer was lost is applied
// twice: its counters count that action twice. They are statistics; the
// alternative, dropping it, would lose the action for certain whenever
// the transaction was not sent at all.) Callers hold flushMu.
func (ds *deferState) settle(w *deferredWrites, err error) {
	if w.empty() {
		return
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if len(w.bumpT) > 0 {
		// Their listings are dropped as the writes leave the overlay
		// (listView reads both under ds.mu), whatever the outcome.
		tasks := make([]string, len(w.bumpT))
		for i, t := range w.bumpT {
			tasks[i] = string(t)
		}
		ds.lc.invalidate(tasks...)
	}
	ds.active = nil
	if err == nil || errors.Is(err, ErrFenced) {
		return
	}
	if ds.pending == nil {
		ds.pending = defOverlay{}
	}
	for t, m := range w.taken {
		for k, v := range m {
			if p, newer := ds.pending[t][k]; newer {
				v = v.then(p)
			}
			ds.pending.set(t, k, v)
		}
	}
}

// queue adds the statements that apply w to b (nothing when w is empty),
// first raising the versions of the tasks whose keys it puts or deletes
// and of also (the task of a direct write that follows them in b).
func (w *deferredWrites) queue(b *pgx.Batch, also ...[]byte) {
	var bump [][]byte
	if !w.empty() {
		bump = append(bump, w.bumpT...)
	}
	queueBump(b, append(bump, also...))
	if w.empty() {
		return
	}
	if len(w.delK) > 0 {
		b.Queue(`DELETE FROM connector_datastore_entries e
			USING unnest($1::bytea[], $2::bytea[]) AS u(task, key)
			WHERE e.task = u.task AND e.key = u.key`, byteaArray(w.delT), byteaArray(w.delK))
	}
	if len(w.putK) > 0 {
		b.Queue(`INSERT INTO connector_datastore_entries (task, key, value)
			SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[])
			ON CONFLICT (task, key) DO UPDATE SET value = excluded.value`, byteaArray(w.putT), byteaArray(w.putK), byteaArray(w.putV))
	}
	if len(w.mrgK) > 0 {
		// Each merge applied to the row as it is at this commit (under its
		// row lock), in the rows' sorted order, as the puts (no deadlock
		// between nodes' transactions).
		b.Queue(`WITH u AS (SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::jsonb[], $4::jsonb[])
				WITH ORDINALITY AS u(task, key, sets, adds, n))
			INSERT INTO connector_datastore_entries AS e (task, key, value)
			SELECT task, key, connector_merge_json(NULL, sets, adds) FROM u ORDER BY n
			ON CONFLICT (task, key) DO UPDATE SET value = connector_merge_json(e.value,
				(SELECT u.sets FROM u WHERE u.task = excluded.task AND u.key = excluded.key),
				(SELECT u.adds FROM u WHERE u.task = excluded.task AND u.key = excluded.key))`,
			byteaArray(w.mrgT), byteaArray(w.mrgK), textArray(oidJSONB, w.mrgSet), textArray(oidJSONB, w.mrgAdd))
	}
}

// queueBump adds the statement that raises the versions of tasks (none:
// nothing) to b, locking their rows in task order: every transaction
// takes them before the entries it writes, so that two nodes'
// transactions cannot wait for each other in a cycle.
func queueBump(b *pgx.Batch, tasks [][]byte) {
	if len(tasks) == 0 {
		return
	}
	b.Queue(`UPDATE connector_datastores d SET version = d.version + 1
		FROM (SELECT task FROM connector_datastores WHERE task = ANY($1) ORDER BY task FOR UPDATE) l
		WHERE d.task = l.task`, byteaArray(tasks))
}

// jsonObject encodes a merge's Set or Add as a JSON object, its members
// in name order. It is written here rather than by encoding/json, whose
// reflection over the maps cost more than the rest of taking the
// deferred writes (issue 17: every group commit of a cluster node
// carries its actions' bookkeeping merges); the output is the same
// object.
func jsonObject[V int64 | json.RawMessage](m map[string]V) string {
	if len(m) == 0 {
		return "{}"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	b := make([]byte, 0, 64)
	b = append(b, '{')
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONName(b, k)
		b = append(b, ':')
		switch v := any(m[k]).(type) {
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case json.RawMessage: // checked by json.Valid (store.Merge.Valid)
			b = append(b, v...)
		}
	}
	return string(append(b, '}'))
}

// appendJSONName appends k as a JSON string: as it is when it is
// printable ASCII without quotes or backslashes (every name the
// connectors use), else as encoding/json writes it.
func appendJSONName(b []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			q, err := json.Marshal(k)
			if err != nil { // a string: cannot fail
				panic("pgstore: merge: " + err.Error())
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"')
}

// UpdateBookkeeping implements store.Bookkeeper (see the top of this
// file).
func (d *datastore) UpdateBookkeeping(fn func(w store.Writer) error) error {
	what := "update datastore " + d.task + " (deferred)"
	return d.s.deferring(what, func() error { return d.update(what, fn, d.deferWrites) })
}

// deferring runs fn, a deferred write, unless Close has begun (ErrClosed):
// see Store.deferMu.
func (s *Store) deferring(what string, fn func() error) error {
	s.deferMu.RLock()
	defer s.deferMu.RUnlock()
	if s.closing {
		return fmt.Errorf("store: postgresql %s: %s: %w", s.display, what, store.ErrClosed)
	}
	return fn()
}

// MergeBookkeeping implements store.MergeBookkeeper: m waits in the
// overlay as UpdateBookkeeping's writes do (reads of this store see it
// applied at once) and is applied by PostgreSQL to the record as it is
// when the transaction that carries it commits (connector_merge_json),
// so recording an action costs no read.
func (d *datastore) MergeBookkeeping(key []byte, m store.Merge) error {
	what := "update datastore " + d.task + " (deferred merge)"
	if err := checkKey(d.task, key); err != nil {
		return err
	}
	if !m.Valid() {
		return fmt.Errorf("store: datastore %s: key %q: a merge sets a member to invalid JSON: %w", d.task, key, store.ErrInvalid)
	}
	if d.s.lc.underListed(key) {
		// Merges do not raise the task's version: another node's cache
		// of the listing would not see it (listcache.go).
		return fmt.Errorf("store: datastore %s: key %q is under a listed prefix (store.ForEachPrefix): it cannot be merged: %w", d.task, key, store.ErrInvalid)
	}
	return d.s.deferring(what, func() error { return d.mergeDeferred(what, key, m) })
}

// mergeDeferred is MergeBookkeeping's write, once checked.
func (d *datastore) mergeDeferred(what string, key []byte, m store.Merge) error {
	return d.writing(what, func() error {
		// m's maps are the store's from here on (store.MergeBookkeeper):
		// not cloned, two maps fewer per action's end.
		v := &defVal{m: &m}
		ds := &d.s.def
		ds.mu.Lock()
		defer ds.mu.Unlock()
		if ds.pending == nil {
			ds.pending = defOverlay{}
		}
		if cur, ok := ds.pending[d.task][string(key)]; ok {
			v = cur.then(v)
		}
		ds.pending.set(d.task, string(key), v)
		d.s.armLocked()
		return nil
	})
}

// deferWrites puts staged, the writes of one UpdateBookkeeping, in the
// overlay for the next transaction to carry. Callers hold d.mu.
func (d *datastore) deferWrites(_ string, staged map[string][]byte) error {
	ds := &d.s.def
	ds.mu.Lock()
	if ds.pending == nil {
		ds.pending = defOverlay{}
	}
	for k, v := range staged {
		ds.pending.set(d.task, k, &defVal{v: v})
	}
	d.s.armLocked()
	ds.mu.Unlock()
	return nil
}

// armLocked makes sure a flush comes within DeferInterval (counted from
// the oldest deferred write waiting, not pushed back by later ones).
// Callers hold s.def.mu.
func (s *Store) armLocked() {
	ds := &s.def
	if ds.armed {
		return
	}
	ds.armed = true
	if ds.timer == nil {
		ds.timer = time.AfterFunc(s.cfg.DeferInterval, s.flushTimer)
	} else {
		ds.timer.Reset(s.cfg.DeferInterval)
	}
}

// flushTimer writes deferred writes that no group commit carried.
func (s *Store) flushTimer() {
	s.def.mu.Lock()
	s.def.armed = false
	s.def.mu.Unlock()
	err := s.flushDeferred()
	if err != nil {
		s.log.Warn("deferred datastore writes could not be written; trying again", "err", err)
	}
	s.def.mu.Lock()
	if len(s.def.pending) > 0 && !errors.Is(err, store.ErrClosed) {
		s.armLocked() // written meanwhile, or failed: again
	}
	s.def.mu.Unlock()
}

// flushDeferred writes the pending deferred writes in a transaction of
// their own.
func (s *Store) flushDeferred() error {
	what := "write deferred datastore changes"
	if s.deferredLen() == 0 {
		return nil
	}
	if err := s.usable(what, true); err != nil {
		if errors.Is(err, store.ErrClosed) {
			return nil
		}
		return err
	}
	s.def.flushMu.Lock()
	defer s.def.flushMu.Unlock()
	w := s.def.take()
	if w.empty() {
		return nil
	}
	b := &pgx.Batch{}
	s.fence(b)
	w.queue(b)
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.writeBatch(ctx, what, b)
	s.def.settle(w, err)
	return err
}

// fence adds the statement that makes a write fail (ErrFenced) when this
// node is no longer a live member of the cluster; nothing outside one.
func (s *Store) fence(b *pgx.Batch) {
	if s.cfg.Node != "" {
		b.Queue(`SELECT connector_fence($1)`, s.cfg.Node)
	}
}

// withDeferred runs send, a transaction that carries the pending deferred
// writes (send queues them into its batch, w.queue), under flushMu, and
// settles them with its outcome.
func (s *Store) withDeferred(send func(w *deferredWrites) error) error {
	s.def.flushMu.Lock()
	defer s.def.flushMu.Unlock()
	w := s.def.take()
	err := send(w)
	s.def.settle(w, err)
	return err
}

// deferredLen is the number of deferred writes not yet committed.
func (s *Store) deferredLen() int {
	s.def.mu.Lock()
	defer s.def.mu.Unlock()
	n := 0
	for _, m := range s.def.pending {
		n += len(m)
	}
	for _, m := range s.def.active {
		n += len(m)
	}
	return n
}

var (
	_ store.Bookkeeper      = (*datastore)(nil)
	_ store.MergeBookkeeper = (*datastore)(nil)
)
