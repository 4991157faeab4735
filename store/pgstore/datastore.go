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

// fence adds the statement that makes a write fail (ErrFenced) when this
// node is no longer a live member of the cluster; nothing outside one.
func (d *datastore) fence(b *pgx.Batch) {
	if d.s.cfg.Node != "" {
		b.Queue(`SELECT connector_fence($1)`, d.s.cfg.Node)
	}
}

func (d *datastore) Get(key []byte) ([]byte, error) {
	what := "datastore " + d.task
	if err := checkKey(d.task, key); err != nil {
		return nil, err
	}
	if err := d.s.usable(what, false); err != nil {
		return nil, err
	}
	ctx, cancel := d.s.ctx()
	defer cancel()
	var v []byte
	err := d.s.pool.QueryRow(ctx, `SELECT value FROM connector_datastore_entries WHERE task = $1 AND key = $2`, d.key, key).Scan(&v)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, d.s.fail("get from "+what, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (d *datastore) Update(fn func(w store.Writer) error) error {
	what := "update datastore " + d.task
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
	keys := make([]string, 0, len(w.staged))
	for k := range w.staged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var putK, putV, delK [][]byte
	for _, k := range keys {
		if err := d.s.hookWrite(what); err != nil {
			return err
		}
		v := w.staged[k]
		if v == nil {
			delK = append(delK, []byte(k))
		} else {
			putK, putV = append(putK, []byte(k)), append(putV, v)
		}
	}
	b := &pgx.Batch{}
	d.fence(b)
	if len(delK) > 0 {
		b.Queue(`DELETE FROM connector_datastore_entries WHERE task = $1 AND key = ANY($2)`, d.key, delK)
	}
	if len(putK) > 0 {
		b.Queue(`INSERT INTO connector_datastore_entries (task, key, value)
			SELECT $1, * FROM unnest($2::bytea[], $3::bytea[])
			ON CONFLICT (task, key) DO UPDATE SET value = excluded.value`, d.key, putK, putV)
	}
	ctx, cancel := d.s.ctx()
	defer cancel()
	_, err = d.s.writeBatch(ctx, what, b)
	return err
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
		ctx, cancel := d.s.ctx()
		rows, err := d.s.pool.Query(ctx, `SELECT key, value FROM connector_datastore_entries
			WHERE task = $1 AND ($2::bytea IS NULL OR key > $2) ORDER BY key LIMIT $3`, d.key, last, forEachChunk)
		if err != nil {
			cancel()
			return d.s.fail(what, err)
		}
		type kv struct{ k, v []byte }
		var got []kv
		for rows.Next() {
			var e kv
			if err := rows.Scan(&e.k, &e.v); err != nil {
				rows.Close()
				cancel()
				return d.s.fail(what, err)
			}
			got = append(got, e)
		}
		err = rows.Err()
		cancel()
		if err != nil {
			return d.s.fail(what, err)
		}
		for _, e := range got {
			if e.v == nil {
				e.v = []byte{}
			}
			if err := fn(e.k, e.v); err != nil {
				return err
			}
		}
		if len(got) < forEachChunk {
			return nil
		}
		last = got[len(got)-1].k
	}
}

func (d *datastore) Len() (int, error) {
	what := "count datastore " + d.task
	if err := d.s.usable(what, false); err != nil {
		return 0, err
	}
	ctx, cancel := d.s.ctx()
	defer cancel()
	var n int
	if err := d.s.pool.QueryRow(ctx, `SELECT count(*) FROM connector_datastore_entries WHERE task = $1`, d.key).Scan(&n); err != nil {
		return 0, d.s.fail(what, err)
	}
	return n, nil
}

func (d *datastore) Clear() error {
	what := "clear datastore " + d.task
	if err := d.s.usable(what, true); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.s.hookWrite(what); err != nil {
		return err
	}
	b := &pgx.Batch{}
	d.fence(b)
	b.Queue(`DELETE FROM connector_datastore_entries WHERE task = $1`, d.key)
	ctx, cancel := d.s.ctx()
	defer cancel()
	_, err := d.s.writeBatch(ctx, what, b)
	return err
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
