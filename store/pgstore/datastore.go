package pgstore

import (
	"bytes"
	"fmt"
	"sort"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/connectorhq/connector/store"
)

// Datastore implements store.Store: the datastore of task, created on
// first use.
func (s *Store) Datastore(task string) (store.Datastore, error) {
	what := "datastore " + task
	if err := checkName("task", task); err != nil {
		return nil, err
	}
	if err := s.usable(what, false); err != nil {
		return nil, err
	}
	d := s.datastore(task)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.created {
		if err := s.usable(what, true); err != nil {
			return nil, err
		}
		if err := s.hookWrite(what); err != nil {
			return nil, err
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO connector_datastores (task) VALUES ($1) ON CONFLICT DO NOTHING`, []byte(task))
		ctx, cancel := s.ctx()
		defer cancel()
		if _, err := s.writeBatch(ctx, "create "+what, b); err != nil {
			return nil, err
		}
		d.created = true
	}
	return d, nil
}

// datastore returns the handle of task, one per task and store, whose
// lock serialises the task's writes within this process.
func (s *Store) datastore(task string) *datastore {
	s.dsMu.Lock()
	defer s.dsMu.Unlock()
	if s.ds == nil {
		s.ds = map[string]*datastore{}
	}
	d := s.ds[task]
	if d == nil {
		d = &datastore{s: s, task: task, key: []byte(task)}
		s.ds[task] = d
	}
	return d
}

type datastore struct {
	s       *Store
	task    string
	key     []byte
	mu      sync.Mutex // serialises Update and Clear; guards created
	created bool
}

func (d *datastore) Get(key []byte) ([]byte, error) {
	what := "datastore " + d.task
	if err := checkKey(d.task, key); err != nil {
		return nil, err
	}
	if err := d.s.usable(what, false); err != nil {
		return nil, err
	}
	dv, deferred := d.s.def.lookup(d.task, key)
	if deferred && dv.m != nil {
		// A deferred merge applies over the stored value, which must be
		// read with no transaction carrying that merge in flight: one
		// that commits between the lookup and the read would have the
		// value read count the merge twice (and an Update that writes
		// it back, beginRun, would keep it so). flushMu is held by such
		// a transaction until it has settled.
		d.s.def.flushMu.Lock()
		defer d.s.def.flushMu.Unlock()
		dv, deferred = d.s.def.lookup(d.task, key)
	}
	if deferred && dv.m == nil { // a deferred put or delete
		if dv.v == nil {
			return nil, nil
		}
		return bytes.Clone(dv.v), nil
	}
	ctx, cancel := d.s.ctx()
	defer cancel()
	var v []byte
	err := d.s.pool.QueryRow(ctx, `SELECT value FROM connector_datastore_entries WHERE task = $1 AND key = $2`, d.key, key).Scan(&v)
	switch {
	case err == pgx.ErrNoRows:
		v = nil
	case err != nil:
		return nil, d.s.fail("get from "+what, err)
	case v == nil:
		v = []byte{}
	}
	if deferred { // a deferred merge, over the stored value
		return dv.m.Apply(v), nil
	}
	return v, nil
}

// GetMany implements store.MultiGetter: the keys the node's deferred
// writes do not hold are read in one query, not one round trip each. A
// key with a deferred merge is read as Get reads it.
func (d *datastore) GetMany(keys [][]byte) ([][]byte, error) {
	what := "datastore " + d.task
	for _, k := range keys {
		if err := checkKey(d.task, k); err != nil {
			return nil, err
		}
	}
	if err := d.s.usable(what, false); err != nil {
		return nil, err
	}
	out := make([][]byte, len(keys))
	var rest [][]byte
	at := map[string][]int{} // key → its places in keys, for those read
	for i, k := range keys {
		dv, deferred := d.s.def.lookup(d.task, k)
		switch {
		case deferred && dv.m != nil:
			v, err := d.Get(k)
			if err != nil {
				return nil, err
			}
			out[i] = v
		case deferred:
			out[i] = bytes.Clone(dv.v)
		default:
			if at[string(k)] == nil {
				rest = append(rest, k)
			}
			at[string(k)] = append(at[string(k)], i)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	ctx, cancel := d.s.ctx()
	defer cancel()
	rows, err := d.s.pool.Query(ctx, `SELECT key, value FROM connector_datastore_entries WHERE task = $1 AND key = ANY($2)`, d.key, rest)
	if err != nil {
		return nil, d.s.fail("get from "+what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, d.s.fail("get from "+what, err)
		}
		if v == nil {
			v = []byte{}
		}
		for j, i := range at[string(k)] {
			if j == 0 {
				out[i] = v
			} else {
				out[i] = bytes.Clone(v)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, d.s.fail("get from "+what, err)
	}
	return out, nil
}

func (d *datastore) Update(fn func(w store.Writer) error) error {
	return d.update("update datastore "+d.task, fn, d.send)
}

// UpdateUnfenced implements store.Unfenced: Update without the fence
// (connector_fence), so a node declared dead writes it too. Only a task
// without deferred writes waiting (a dead node's are refused with their
// transaction: deferred.go): with them, it is Update.
func (d *datastore) UpdateUnfenced(fn func(w store.Writer) error) error {
	return d.update("update datastore "+d.task, fn, func(what string, staged map[string][]byte) error {
		return d.sendFenced(what, staged, d.s.def.dirty(d.task))
	})
}

var _ store.Unfenced = (*datastore)(nil)

// send writes staged, the writes of one Update, in a transaction (with
// the task's deferred writes before them, if it has any). Callers hold
// d.mu.
func (d *datastore) send(what string, staged map[string][]byte) error {
	return d.sendFenced(what, staged, true)
}

// sendFenced is send, fenced (the transaction refused when this node is
// declared dead) or not.
func (d *datastore) sendFenced(what string, staged map[string][]byte, fenced bool) error {
	keys := make([]string, 0, len(staged))
	for k := range staged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var putK, putV, delK [][]byte
	for _, k := range keys {
		v := staged[k]
		if v == nil {
			delK = append(delK, []byte(k))
		} else {
			putK, putV = append(putK, []byte(k)), append(putV, v)
		}
	}
	ctx, cancel := d.s.ctx()
	defer cancel()
	return d.write(fenced, func(b *pgx.Batch) {
		if len(delK) > 0 {
			b.Queue(`DELETE FROM connector_datastore_entries WHERE task = $1 AND key = ANY($2)`, d.key, byteaArray(delK))
		}
		if len(putK) > 0 {
			b.Queue(`INSERT INTO connector_datastore_entries (task, key, value)
			SELECT $1, * FROM unnest($2::bytea[], $3::bytea[])
			ON CONFLICT (task, key) DO UPDATE SET value = excluded.value`, d.key, byteaArray(putK), byteaArray(putV))
		}
	}, func(b *pgx.Batch) error {
		_, err := d.s.writeBatch(ctx, what, b)
		return err
	})
}

// update is the part Update and UpdateBookkeeping share: it runs fn, the
// caller's body, on a writer of d under d.mu and hands the writes it
// staged (nil value: a delete) to apply, still under d.mu, once the fault
// hook (Config.Faults) has passed each of them. Nothing is applied when
// the store is not usable, fn or one of its writes failed, or fn staged
// nothing.
func (d *datastore) update(what string, fn func(w store.Writer) error, apply func(what string, staged map[string][]byte) error) error {
	if err := d.s.usable(what, true); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	w := &writer{d: d, staged: map[string][]byte{}}
	err := func() error {
		defer func() { w.done = true }()
		return fn(w)
	}()
	if err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	if len(w.staged) == 0 {
		return nil
	}
	for range w.staged {
		if err := d.s.hookWrite(what); err != nil {
			return err
		}
	}
	return apply(what, w.staged)
}

// write sends a direct write of the task (its statements, from add): on
// its own when the task has no deferred writes waiting, else in the
// transaction that carries them, after them (deferred.go). Either way the
// task's version rises in the same transaction, and its listings cached
// here are dropped once it is sent, whatever the outcome (listcache.go).
// Callers hold d.mu, so no deferred write of the task can come meanwhile.
// Unless fenced (UpdateUnfenced, for a task without deferred writes), the
// transaction is not refused when this node is declared dead.
func (d *datastore) write(fenced bool, add func(b *pgx.Batch), send func(b *pgx.Batch) error) error {
	defer d.s.lc.invalidate(d.task)
	if !d.s.def.dirty(d.task) {
		b := &pgx.Batch{}
		if fenced {
			d.s.fence(b)
		}
		queueBump(b, [][]byte{d.key})
		add(b)
		return send(b)
	}
	return d.s.withDeferred(func(w *deferredWrites) error {
		b := &pgx.Batch{}
		d.s.fence(b)
		w.queue(b, d.key)
		add(b)
		return send(b)
	})
}

// forEachChunk is how many entries ForEach reads per query.
const forEachChunk = 1000

func (d *datastore) ForEach(fn func(key, value []byte) error) error {
	what := "read datastore " + d.task
	var last []byte
	for {
		if err := d.s.usable(what, false); err != nil {
			return err
		}
		over, got, err := d.chunk(what, last)
		if err != nil {
			return err
		}
		for _, e := range got {
			// deferred writes of keys before this one, then this one's
			for len(over) > 0 && bytes.Compare(over[0].key, e.k) < 0 {
				if v := over[0].val.over(nil); v != nil {
					if err := fn(over[0].key, bytes.Clone(v)); err != nil {
						return err
					}
				}
				over = over[1:]
			}
			if len(over) > 0 && bytes.Equal(over[0].key, e.k) {
				if e.v == nil {
					e.v = []byte{}
				}
				e.v = bytes.Clone(over[0].val.over(e.v))
				over = over[1:]
				if e.v == nil { // deleted
					continue
				}
			}
			if e.v == nil {
				e.v = []byte{}
			}
			if err := fn(e.k, e.v); err != nil {
				return err
			}
		}
		if len(got) < forEachChunk {
			for _, o := range over {
				if v := o.val.over(nil); v != nil {
					if err := fn(o.key, bytes.Clone(v)); err != nil {
						return err
					}
				}
			}
			return nil
		}
		// Deferred writes of keys after this chunk come with the next
		// one's snapshot.
		last = got[len(got)-1].k
	}
}

// kv is a stored entry.
type kv struct{ k, v []byte }

// chunk reads the next forEachChunk stored entries after last (nil: from
// the first), and the task's deferred writes of keys after last, in key
// order, as one view: when a deferred merge is among them, both are read
// under flushMu, which a transaction carrying deferred writes holds until
// it has settled. Without it, a transaction that committed the merge
// between the snapshot and the read (or had committed it and not yet
// settled) had its merge counted twice, as Get did before d4491a5. The
// lock is not held while ForEach's callback runs (it may write, which
// takes flushMu).
func (d *datastore) chunk(what string, last []byte) ([]defEntry, []kv, error) {
	over := d.s.def.snapshotAfter(d.task, last)
	if hasMerge(over) {
		d.s.def.flushMu.Lock()
		defer d.s.def.flushMu.Unlock()
		over = d.s.def.snapshotAfter(d.task, last)
	}
	ctx, cancel := d.s.ctx()
	defer cancel()
	rows, err := d.s.pool.Query(ctx, `SELECT key, value FROM connector_datastore_entries
		WHERE task = $1 AND ($2::bytea IS NULL OR key > $2) ORDER BY key LIMIT $3`, d.key, last, forEachChunk)
	if err != nil {
		return nil, nil, d.s.fail(what, err)
	}
	defer rows.Close()
	var got []kv
	for rows.Next() {
		var e kv
		if err := rows.Scan(&e.k, &e.v); err != nil {
			return nil, nil, d.s.fail(what, err)
		}
		got = append(got, e)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, d.s.fail(what, err)
	}
	return over, got, nil
}

func (d *datastore) Len() (int, error) {
	what := "count datastore " + d.task
	if err := d.s.usable(what, false); err != nil {
		return 0, err
	}
	ctx, cancel := d.s.ctx()
	defer cancel()
	over := d.s.def.snapshot(d.task)
	if len(over) == 0 {
		var n int
		if err := d.s.pool.QueryRow(ctx, `SELECT count(*) FROM connector_datastore_entries WHERE task = $1`, d.key).Scan(&n); err != nil {
			return 0, d.s.fail(what, err)
		}
		return n, nil
	}
	// The stored keys without a deferred write, and the deferred puts.
	keys := make([][]byte, len(over))
	puts := 0
	for i, e := range over {
		keys[i] = e.key
		if e.val.v != nil || e.val.m != nil {
			puts++
		}
	}
	var n int
	if err := d.s.pool.QueryRow(ctx, `SELECT count(*) FROM connector_datastore_entries WHERE task = $1 AND NOT (key = ANY($2))`, d.key, keys).Scan(&n); err != nil {
		return 0, d.s.fail(what, err)
	}
	return n + puts, nil
}

func (d *datastore) Clear() error {
	what := "clear datastore " + d.task
	return d.writing(what, func() error {
		ctx, cancel := d.s.ctx()
		defer cancel()
		return d.write(true, func(b *pgx.Batch) {
			b.Queue(`DELETE FROM connector_datastore_entries WHERE task = $1`, d.key)
		}, func(b *pgx.Batch) error {
			_, err := d.s.writeBatch(ctx, what, b)
			return err
		})
	})
}

// writing runs fn, one write of the task that is not an Update, under
// d.mu once the store is usable for writes and the fault hook has passed
// it.
func (d *datastore) writing(what string, fn func() error) error {
	if err := d.s.usable(what, true); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.s.hookWrite(what); err != nil {
		return err
	}
	return fn()
}

// writer stages the writes of one Update; they are sent when fn returns.
type writer struct {
	d      *datastore
	staged map[string][]byte // nil value: deleted
	done   bool
	err    error // the first invalid write: the Update fails with it
}

func (w *writer) check(key []byte) error {
	if w.done {
		return fmt.Errorf("store: datastore %s: writer used after its Update returned: %w", w.d.task, store.ErrInvalid)
	}
	return checkKey(w.d.task, key)
}

func (w *writer) Get(key []byte) ([]byte, error) {
	if err := w.check(key); err != nil {
		return nil, err
	}
	if v, ok := w.staged[string(key)]; ok {
		if v == nil {
			return nil, nil
		}
		return bytes.Clone(v), nil
	}
	return w.d.Get(key)
}

func (w *writer) Put(key, value []byte) error {
	if err := w.check(key); err != nil {
		w.fail(err)
		return err
	}
	if len(value) > store.MaxValueSize {
		err := fmt.Errorf("store: datastore %s: key %q: value of %d bytes, limit %d: %w", w.d.task, key, len(value), store.MaxValueSize, store.ErrInvalid)
		w.fail(err)
		return err
	}
	v := make([]byte, len(value)) // never nil: nil marks a delete
	copy(v, value)
	w.staged[string(key)] = v
	return nil
}

func (w *writer) Delete(key []byte) error {
	if err := w.check(key); err != nil {
		w.fail(err)
		return err
	}
	w.staged[string(key)] = nil
	return nil
}

func (w *writer) fail(err error) {
	if w.err == nil && !w.done {
		w.err = err
	}
}

// Turn implements store.Turns: fn runs while this store holds the
// transaction-level advisory lock of name (lockTurns and the hash of
// name), in a transaction of its own that writes nothing and ends when fn
// returns (so it holds one connection of the pool meanwhile; its caller
// gives one of its goroutines the turn at a time). A transaction, not a
// session's lock: behind PgBouncer in transaction pooling a session
// lock would stay on a server connection that goes to other clients.
// Waiting for the lock is bounded by the store's Timeout; an error then
// (or the database out of reach) is returned without running fn. The
// lock is tried first: when another process held it, a wait that outlives
// the deadline says so, not that the database is unavailable (it
// answered the try); an uncontended turn costs no round trip more.
func (s *Store) Turn(name string, fn func() error) error {
	what := "take the turn of " + name
	if err := s.usable(what, false); err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fail(what, err)
	}
	defer func() {
		// A fresh deadline: fn's time is not the wait's.
		rctx, rcancel := s.ctx()
		defer rcancel()
		_ = tx.Rollback(rctx)
	}()
	var got bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`, lockTurns, name).Scan(&got); err != nil {
		return s.fail(what, err)
	}
	if !got {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockTurns, name); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("store: postgresql %s: %s: another node held it for longer than a store call's deadline (%s), the database answering: %w",
					s.display, what, s.cfg.Timeout, err)
			}
			return s.fail(what, err)
		}
	}
	return fn()
}

var _ store.Turns = (*Store)(nil)
