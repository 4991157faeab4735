package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func (s *boltStore) Datastore(task string) (Datastore, error) {
	if err := checkName("task", task); err != nil {
		return nil, err
	}
	d := &boltDatastore{s: s, name: []byte(task), what: "datastore " + task}
	exists := false
	if err := s.read(d.what, func(tx *bolt.Tx) error {
		exists = tx.Bucket(bucketDS).Bucket(d.name) != nil
		return nil
	}); err != nil {
		return nil, err
	}
	if exists {
		return d, nil
	}
	err := s.write("create "+d.what, func(tx *bolt.Tx) error {
		_, err := d.bucket(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (s *boltStore) DatastoreNames() ([]string, error) {
	return s.names("list datastores", bucketDS)
}

type boltDatastore struct {
	s    *boltStore
	name []byte
	what string
}

// bucket returns the task's bucket in a write transaction, creating it.
func (d *boltDatastore) bucket(tx *bolt.Tx) (*bolt.Bucket, error) {
	if b := tx.Bucket(bucketDS).Bucket(d.name); b != nil {
		return b, nil
	}
	if err := d.s.hookWrite(); err != nil {
		return nil, fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
	}
	b, err := tx.Bucket(bucketDS).CreateBucket(d.name)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
	}
	return b, d.setLen(tx, 0)
}

func (d *boltDatastore) readLen(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketDSLen).Get(d.name)
	if v == nil {
		return 0, nil
	}
	p, ok := unframe(d.name, v)
	if !ok || len(p) != 8 {
		return 0, fmt.Errorf("store: %s: %s: key count: checksum mismatch: %w", d.s.path, d.what, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(p), nil
}

func (d *boltDatastore) setLen(tx *bolt.Tx, n uint64) error {
	if err := d.s.hookWrite(); err != nil {
		return fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
	}
	v := frame(d.name, binary.BigEndian.AppendUint64(nil, n))
	if err := tx.Bucket(bucketDSLen).Put(d.name, v); err != nil {
		return fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
	}
	return nil
}

func (d *boltDatastore) getFrom(b *bolt.Bucket, key []byte) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	v := b.Get(key)
	if v == nil {
		return nil, nil
	}
	p, ok := unframe(key, v)
	if !ok {
		return nil, fmt.Errorf("store: %s: %s: key %q: checksum mismatch: %w", d.s.path, d.what, key, ErrCorrupt)
	}
	return bytes.Clone(p), nil
}

func (d *boltDatastore) Get(key []byte) ([]byte, error) {
	if err := checkKey(string(d.name), key); err != nil {
		return nil, err
	}
	d.s.mu.RLock()
	defer d.s.mu.RUnlock()
	return d.getLocked(key) // deferred writes first (bolt_deferred.go)
}

func (d *boltDatastore) Update(fn func(w Writer) error) error {
	// dsMu, held until fn has returned, keeps Close from waiting for s.mu
	// meanwhile (bolt.go): fn runs under s.mu for reading (in write) and
	// may read another datastore, which takes s.mu for reading again.
	d.s.dsMu.Lock()
	defer d.s.dsMu.Unlock()
	return d.updateLocked(fn)
}

// updateLocked is Update for a caller that holds dsMu: UpdateDeferred,
// when there is no journal to ride with, writes directly without letting
// dsMu go (so no suspension or Close comes in between).
func (d *boltDatastore) updateLocked(fn func(w Writer) error) error {
	if err := d.s.closingErr(d.what + ": update"); err != nil {
		return err
	}
	if err := d.s.settle(string(d.name)); err != nil {
		return err
	}
	var (
		panicked bool
		pv       any
		dels     int64
	)
	err := d.s.write(d.what+": update", func(tx *bolt.Tx) error {
		b, err := d.bucket(tx)
		if err != nil {
			return err
		}
		n, err := d.readLen(tx)
		if err != nil {
			return err
		}
		w := &boltWriter{d: d, b: b, n: n}
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
		if ferr != nil {
			return ferr
		}
		if w.broken != nil {
			return w.broken
		}
		dels = w.dels
		if w.n != n {
			return d.setLen(tx, w.n)
		}
		return nil
	})
	if panicked {
		panic(pv)
	}
	if err == nil {
		d.s.deleted.Add(dels) // for online compaction (maybeCompact)
	}
	return err
}

func (d *boltDatastore) ForEach(fn func(key, value []byte) error) error {
	return d.forEach(nil, fn)
}

// ForEachPrefix implements PrefixLister: a cursor from prefix to its last
// key, where ForEach would read every key of the datastore.
func (d *boltDatastore) ForEachPrefix(prefix []byte, fn func(key, value []byte) error) error {
	return d.forEach(prefix, fn)
}

// forEach is ForEach over the keys that start with prefix.
func (d *boltDatastore) forEach(prefix []byte, fn func(key, value []byte) error) error {
	// The deferred writes not yet in bbolt, as they are now, merged in
	// key order with bbolt's entries (bolt_deferred.go).
	ov := d.s.dsSnapshot(string(d.name), prefix)
	oi := 0
	// emitUpTo calls fn for the deferred puts of keys before limit (all
	// of them when limit is nil).
	emitUpTo := func(limit []byte) error {
		for ; oi < len(ov) && (limit == nil || bytes.Compare(ov[oi].key, limit) < 0); oi++ {
			if v := ov[oi].val.v; v != nil {
				if err := fn(ov[oi].key, bytes.Clone(v)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var after []byte
	for {
		var keys, vals [][]byte
		err := d.s.read(d.what+": for each", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketDS).Bucket(d.name)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			switch {
			case after != nil:
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			case prefix != nil:
				k, v = c.Seek(prefix)
			}
			size := 0
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(keys) < chunkRecords && size < chunkBytes; k, v = c.Next() {
				if after != nil && bytes.Compare(k, after) <= 0 {
					return fmt.Errorf("store: %s: %s: key %q after %q: keys out of order: %w", d.s.path, d.what, k, after, ErrCorrupt)
				}
				if v == nil {
					continue // not ours: datastores hold no sub-buckets
				}
				p, ok := unframe(k, v)
				if !ok {
					return fmt.Errorf("store: %s: %s: key %q: checksum mismatch: %w", d.s.path, d.what, k, ErrCorrupt)
				}
				keys = append(keys, bytes.Clone(k))
				vals = append(vals, bytes.Clone(p))
				size += len(k) + len(p)
				after = keys[len(keys)-1]
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range keys {
			if err := emitUpTo(keys[i]); err != nil {
				return err
			}
			if oi < len(ov) && bytes.Equal(ov[oi].key, keys[i]) {
				continue // replaced or deleted by a deferred write (emitted next)
			}
			if err := fn(keys[i], vals[i]); err != nil {
				return err
			}
		}
		if len(keys) == 0 {
			return emitUpTo(nil)
		}
	}
}

func (d *boltDatastore) Len() (int, error) {
	ov := d.s.dsSnapshot(string(d.name), nil)
	var n uint64
	err := d.s.read(d.what+": len", func(tx *bolt.Tx) error {
		var err error
		if n, err = d.readLen(tx); err != nil {
			return err
		}
		b := tx.Bucket(bucketDS).Bucket(d.name)
		for _, e := range ov {
			in := b != nil && b.Get(e.key) != nil
			switch {
			case e.val.v != nil && !in:
				n++
			case e.val.v == nil && in:
				n--
			}
		}
		return nil
	})
	return int(n), err
}

func (d *boltDatastore) Clear() error {
	d.s.dsMu.Lock()
	defer d.s.dsMu.Unlock()
	if err := d.s.closingErr(d.what + ": clear"); err != nil {
		return err
	}
	if err := d.s.settle(string(d.name)); err != nil {
		return err
	}
	var n uint64
	err := d.s.write(d.what+": clear", func(tx *bolt.Tx) error {
		if err := d.s.hookWrite(); err != nil {
			return fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
		}
		if tx.Bucket(bucketDS).Bucket(d.name) != nil {
			n, _ = d.readLen(tx) // only counts deletes for compaction
		}
		if err := tx.Bucket(bucketDS).DeleteBucket(d.name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return fmt.Errorf("store: %s: %s: %w", d.s.path, d.what, err)
		}
		_, err := d.bucket(tx)
		return err
	})
	if err == nil {
		d.s.deleted.Add(int64(n)) // for online compaction (maybeCompact)
	}
	return err
}

type boltWriter struct {
	d      *boltDatastore
	b      *bolt.Bucket
	n      uint64 // key count as this batch leaves it
	dels   int64  // keys deleted
	done   bool
	broken error // a failed write; the batch is not committed
}

func (w *boltWriter) check(key []byte) error {
	if w.done {
		return fmt.Errorf("store: %s: writer used after Update returned: %w", w.d.what, ErrInvalid)
	}
	if w.broken != nil {
		return w.broken
	}
	return checkKey(string(w.d.name), key)
}

// guarded runs f, turning a bbolt panic into an error that also breaks the
// batch.
func (w *boltWriter) guarded(what string, f func() error) (err error) {
	defer func() {
		if err != nil && w.broken == nil {
			w.broken = err
		}
	}()
	defer w.d.s.protect(&err, w.d.what+": "+what, true)()
	return f()
}

func (w *boltWriter) Get(key []byte) ([]byte, error) {
	if err := w.check(key); err != nil {
		return nil, err
	}
	var out []byte
	err := w.guarded("get", func() error {
		var err error
		out, err = w.d.getFrom(w.b, key)
		return err
	})
	return out, err
}

func (w *boltWriter) Put(key, value []byte) error {
	if err := w.check(key); err != nil {
		return err
	}
	if err := checkValue(string(w.d.name), key, value); err != nil {
		return err
	}
	return w.guarded("put", func() error {
		if err := w.d.s.hookWrite(); err != nil {
			return fmt.Errorf("store: %s: %s: put: %w", w.d.s.path, w.d.what, err)
		}
		existed := w.b.Get(key) != nil
		if err := w.b.Put(key, frame(key, value)); err != nil {
			return fmt.Errorf("store: %s: %s: put: %w", w.d.s.path, w.d.what, err)
		}
		if !existed {
			w.n++
		}
		return nil
	})
}

func (w *boltWriter) Delete(key []byte) error {
	if err := w.check(key); err != nil {
		return err
	}
	return w.guarded("delete", func() error {
		if w.b.Get(key) == nil {
			return nil
		}
		if err := w.d.s.hookWrite(); err != nil {
			return fmt.Errorf("store: %s: %s: delete: %w", w.d.s.path, w.d.what, err)
		}
		if err := w.b.Delete(key); err != nil {
			return fmt.Errorf("store: %s: %s: delete: %w", w.d.s.path, w.d.what, err)
		}
		w.n--
		w.dels++
		return nil
	})
}
