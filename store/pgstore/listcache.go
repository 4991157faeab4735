package pgstore

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/connectorhq/connector/store"
)

// The listing cache (store.PrefixLister): a cluster node keeps the
// listings its actions made (the keys of a task's datastore under a
// prefix, with their values: the HTTP connector's Identifiers lists its
// task's pages so, issue 17) and serves the next listing of the same
// task and prefix from memory, without a round trip to PostgreSQL.
//
// Versions. Every transaction that puts, deletes or clears keys of a
// task's datastore also raises the task's version (a column of
// connector_datastores), under the task row's lock, in the same
// transaction: queueBump, ahead of the entries it writes. Merges
// (MergeBookkeeping, the bookkeeping every action's end writes) do not:
// keys under a listed prefix must never be merged (the node refuses it,
// MergeBookkeeping). So two reads of a task that see the same version see
// the same keys under any listed prefix.
//
// Validation. A listing must show every write acknowledged before its
// action was submitted, whichever node made it. Every action this node
// runs is given to it by a transaction of this store (a claim: Commit,
// ClaimAt; a take-over: Adopt, Reown) that read the action after its
// submission committed; each such hand-out is numbered (done) as it
// returns, before its actions start. An entry is served only while it
// is valid for every hand-out so far (valid >= done):
//
//   - a fill (a listing read from PostgreSQL) is valid for the hand-outs
//     done before it was sent: it read the datastore after their
//     submissions;
//   - a claim carries, as its last statement, a read of the current
//     versions of the tasks the cache holds (checkSQL). An entry whose
//     task is newer is dropped; one whose version is that one, or newer
//     (it was read later still), holds the datastore as it was after that
//     statement began, so it is valid for that claim's actions and for
//     every hand-out done before the claim was sent (checked before it
//     started), whenever the entry was filled;
//   - a take-over reads no version: its actions wait for an entry that a
//     later claim checks, or a new fill.
//
// So an action finds either nothing or the datastore as it was at some
// moment after its submission (and before its listing).
//
// This process's own writes of a task drop its entries as they commit
// (settle, datastore.write), and a fill in flight meanwhile is not kept
// (writes): a listing after a write sees it. Deferred writes waiting in
// the overlay are applied over the entry as over a read (no merge may
// wait under a listed prefix).
//
// Memory. An entry holds at most listMaxKeys keys and a quarter of
// Config.ListCacheBytes, the cache at most ListCacheBytes (4 MiB by
// default) and listMaxEntries entries (the claim's read names each of
// their tasks): a listing over either bound is not kept, and room is made
// for a new one by dropping others.

const (
	// listMaxKeys is the most keys an entry holds (a larger listing is
	// read in chunks every time, as ForEach).
	listMaxKeys = 1000
	// listMaxEntries bounds the entries, so a claim's read of their
	// versions stays small.
	listMaxEntries = 1024
	// defaultListCacheBytes is Config.ListCacheBytes's default.
	defaultListCacheBytes = 4 << 20
)

// checkSQL returns the version now of each task listed (by its 1-based
// number n; -1: no such datastore).
const checkSQL = `SELECT u.n, coalesce(d.version, -1) FROM unnest($1::bytea[]) WITH ORDINALITY AS u(task, n)
	LEFT JOIN connector_datastores d ON d.task = u.task`

type listKey struct{ task, prefix string }

type listEntry struct {
	version int64
	kvs     []kv   // the keys under the prefix, in order
	valid   uint64 // valid for the hand-outs numbered up to this
	size    int
}

// listCache is a store's listing cache. Lock order: deferState.mu, then
// listCache.mu.
type listCache struct {
	mu       sync.Mutex
	max      int    // bytes; 0: the cache is off
	done     uint64 // hand-outs of actions so far
	writes   uint64 // this process's writes of datastores so far
	entries  map[listKey]*listEntry
	size     int
	prefixes map[string]bool // every prefix listed (MergeBookkeeping refuses keys under them)
	hits     uint64          // listings served from an entry
	fills    uint64          // listings read from PostgreSQL
}

func (c *listCache) on() bool { return c.max > 0 }

// listed records prefix as listed.
func (c *listCache) listed(prefix []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.prefixes[string(prefix)] {
		if c.prefixes == nil {
			c.prefixes = map[string]bool{}
		}
		c.prefixes[string(prefix)] = true
	}
}

// underListed reports whether key is under a listed prefix.
func (c *listCache) underListed(key []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.prefixes {
		if bytes.HasPrefix(key, []byte(p)) {
			return true
		}
	}
	return false
}

// get returns the entry of task and prefix if it may be served (nil:
// none), counting a hit.
func (c *listCache) get(task string, prefix []byte) *listEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[listKey{task, string(prefix)}]
	if e == nil || e.valid < c.done {
		return nil
	}
	c.hits++
	return e
}

// fillStart is what a fill records as it starts.
type fillStart struct{ done, writes uint64 }

// begin returns what a fill starts after, counting a fill.
func (c *listCache) begin() fillStart {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fills++
	return fillStart{c.done, c.writes}
}

// keep stores a listing read at version by a fill that started at f,
// valid for the hand-outs done by then, unless this process wrote a
// datastore meanwhile or it is over the bounds.
func (c *listCache) keep(f fillStart, task string, prefix []byte, version int64, kvs []kv) {
	size := len(task) + len(prefix) + 64
	for _, e := range kvs {
		size += len(e.k) + len(e.v) + 48
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.writes != c.writes || len(kvs) > listMaxKeys || size > c.max/4 {
		return
	}
	k := listKey{task, string(prefix)}
	if old := c.entries[k]; old != nil {
		c.size -= old.size
		delete(c.entries, k)
	}
	for ok := range c.entries { // make room (any entries: map order)
		if c.size+size <= c.max && len(c.entries) < listMaxEntries {
			break
		}
		c.size -= c.entries[ok].size
		delete(c.entries, ok)
	}
	if c.entries == nil {
		c.entries = map[listKey]*listEntry{}
	}
	c.entries[k] = &listEntry{version: version, kvs: kvs, valid: f.done, size: size}
	c.size += size
}

// invalidate drops the entries of tasks (this process wrote them): no
// fill in flight is kept either.
func (c *listCache) invalidate(tasks ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if slices.Contains(tasks, k.task) {
			c.size -= e.size
			delete(c.entries, k)
		}
	}
	c.writes++
}

// handedOut counts a hand-out of actions that read no version (a
// take-over), or one whose outcome is not known (a claim that failed):
// no entry is served until a claim checks it, or a new fill replaces it.
func (c *listCache) handedOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done++
}

// listCheck is a claim's read of the versions of the cached tasks.
type listCheck struct {
	after uint64 // the hand-outs done when it was made
	tasks [][]byte
	now   map[string]int64 // task → its version, as read
}

// check returns the read of the versions for a claim to carry (nil when
// the cache is empty).
func (c *listCache) check() *listCheck {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) == 0 {
		return nil
	}
	chk := &listCheck{after: c.done}
	seen := map[string]bool{}
	for k := range c.entries {
		if !seen[k.task] {
			seen[k.task] = true
			chk.tasks = append(chk.tasks, []byte(k.task))
		}
	}
	return chk
}

// queue adds the read to b (nothing when chk is nil), with its reader.
func (chk *listCheck) queue(b *pgx.Batch, read map[int]func(pgx.Rows) error) {
	if chk == nil {
		return
	}
	b.Queue(checkSQL, byteaArray(chk.tasks))
	read[b.Len()-1] = chk.read
}

func (chk *listCheck) read(rows pgx.Rows) error {
	chk.now = make(map[string]int64, len(chk.tasks))
	for rows.Next() {
		var n, v int64
		if binaryCols(rows, 0, 1) {
			raw := rows.RawValues()
			var err error
			if n, err = rawInt(raw[0]); err != nil {
				return err
			}
			if v, err = rawInt(raw[1]); err != nil {
				return err
			}
		} else if err := rows.Scan(&n, &v); err != nil {
			return err
		}
		if n < 1 || int(n) > len(chk.tasks) {
			return fmt.Errorf("store: listing check: row %d of %d", n, len(chk.tasks))
		}
		chk.now[string(chk.tasks[n-1])] = v
	}
	return rows.Err()
}

// apply applies a committed claim's read (chk nil: the cache was empty
// when the claim was sent), which gave actions when handedOut: an entry
// of a task read is dropped if the task is newer, else it is valid for
// the claim's actions and for the hand-outs done before the claim.
func (c *listCache) apply(chk *listCheck, handedOut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.done
	if handedOut {
		c.done++
	}
	if chk == nil {
		return
	}
	valid := chk.after
	if chk.after == before {
		valid = c.done // no other hand-out came meanwhile: this one's too
	}
	for k, e := range c.entries {
		v, read := chk.now[k.task]
		switch {
		case !read:
		case v < 0 || v > e.version:
			c.size -= e.size
			delete(c.entries, k)
		case valid > e.valid:
			e.valid = valid
		}
	}
}

// prefixEnd returns the least key after every key under prefix (nil:
// none, the prefix is empty or all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// ForEachPrefix implements store.PrefixLister: in a cluster (Config.Node
// set), from the node's listing cache (listcache.go) when it holds the
// listing, else with one read that fills it; outside one, as ForEach.
func (d *datastore) ForEachPrefix(prefix []byte, fn func(key, value []byte) error) error {
	what := "read datastore " + d.task
	if err := d.s.usable(what, false); err != nil {
		return err
	}
	c := &d.s.lc
	if !c.on() {
		return d.forEachUnder(prefix, fn)
	}
	c.listed(prefix)
	over, e, err := d.listView(prefix)
	if err != nil {
		return err
	}
	if e != nil {
		return emitListing(e.kvs, over, fn)
	}
	f := c.begin()
	version, kvs, complete, err := d.readPrefix(what, prefix)
	if err != nil {
		return err
	}
	if !complete {
		return d.forEachUnder(prefix, fn)
	}
	c.keep(f, d.task, prefix, version, kvs)
	return emitListing(kvs, over, fn)
}

// forEachUnder is ForEach of the keys under prefix.
func (d *datastore) forEachUnder(prefix []byte, fn func(key, value []byte) error) error {
	return d.ForEach(func(k, v []byte) error {
		if !bytes.HasPrefix(k, prefix) {
			return nil
		}
		return fn(k, v)
	})
}

// listView returns the task's deferred writes under prefix and its cache
// entry (nil: none) as one view: a transaction that commits deferred
// writes drops the entries of their tasks as it removes them from the
// overlay (settle), under the same lock.
func (d *datastore) listView(prefix []byte) ([]defEntry, *listEntry, error) {
	ds := &d.s.def
	ds.mu.Lock()
	defer ds.mu.Unlock()
	var over []defEntry
	for _, e := range ds.snapshotLocked(d.task) {
		if !bytes.HasPrefix(e.key, prefix) {
			continue
		}
		if e.val.m != nil {
			return nil, nil, fmt.Errorf("store: datastore %s: key %q under a listed prefix %q has a merge waiting: %w", d.task, e.key, prefix, store.ErrInvalid)
		}
		over = append(over, e)
	}
	return over, d.s.lc.get(d.task, prefix), nil
}

// readPrefix reads the task's version and its keys under prefix in one
// statement (one snapshot); complete is false when there are more than
// listMaxKeys of them, or no datastore row.
func (d *datastore) readPrefix(what string, prefix []byte) (version int64, kvs []kv, complete bool, err error) {
	if prefix == nil {
		prefix = []byte{} // not NULL
	}
	ctx, cancel := d.s.ctx()
	defer cancel()
	rows, err := d.s.pool.Query(ctx, `SELECT d.version, e.key, e.value FROM connector_datastores d
		LEFT JOIN LATERAL (SELECT x.key, x.value FROM connector_datastore_entries x
			WHERE x.task = d.task AND x.key >= $2 AND ($3::bytea IS NULL OR x.key < $3)
			ORDER BY x.key LIMIT $4) e ON true
		WHERE d.task = $1 ORDER BY e.key`, d.key, prefix, prefixEnd(prefix), listMaxKeys+1)
	if err != nil {
		return 0, nil, false, d.s.fail(what, err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var e kv
		if err := rows.Scan(&version, &e.k, &e.v); err != nil {
			return 0, nil, false, d.s.fail(what, err)
		}
		found = true
		if e.k == nil { // no key under prefix
			continue
		}
		if e.v == nil {
			e.v = []byte{}
		}
		kvs = append(kvs, e)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, false, d.s.fail(what, err)
	}
	return version, kvs, found && len(kvs) <= listMaxKeys, nil
}

// emitListing calls fn with the stored keys kvs, with the deferred writes
// over (no merges) applied, in key order; fn gets copies.
func emitListing(kvs []kv, over []defEntry, fn func(key, value []byte) error) error {
	for len(kvs) > 0 || len(over) > 0 {
		var k, v []byte
		switch {
		case len(over) == 0 || len(kvs) > 0 && bytes.Compare(kvs[0].k, over[0].key) < 0:
			k, v = kvs[0].k, kvs[0].v
			kvs = kvs[1:]
		default:
			k, v = over[0].key, over[0].val.v // nil: deleted
			if len(kvs) > 0 && bytes.Equal(kvs[0].k, k) {
				kvs = kvs[1:]
			}
			over = over[1:]
		}
		if v == nil {
			continue
		}
		if err := fn(bytes.Clone(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

var _ store.PrefixLister = (*datastore)(nil)
