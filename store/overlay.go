package store

// An overlay holds a queue's action mutations that are in the journal but
// not yet in bbolt: every mutation in order (a checkpoint applies them in
// that order) and, per id, its latest one (reads and validation look there
// before bbolt). Overlays are guarded by boltStore.ovMu.
type overlay struct {
	order  []ovEntry
	latest map[string]int    // id → index in order
	seqs   map[uint64]string // seq → id of a put (check latest before trusting)
}

type ovEntry struct {
	id  string
	seq uint64
	put []byte // encoded record; nil: deleted
	// framed is put as the seqs bucket stores it (its checksum, then put),
	// when ApplyActions made it (see encodeActions); nil: the checkpoint
	// frames put itself.
	framed []byte
}

// newOverlay returns an empty overlay with room for n mutations (a
// queue's active overlay is sized after its last one, so that it does not
// grow its slice and maps step by step through every checkpoint window).
func newOverlay(n int) *overlay {
	return &overlay{order: make([]ovEntry, 0, n), latest: make(map[string]int, n), seqs: make(map[uint64]string, n)}
}

// reset empties o, keeping the memory of its slice and maps.
func (o *overlay) reset() {
	clear(o.order) // the records it refers to are garbage
	o.order = o.order[:0]
	clear(o.latest)
	clear(o.seqs)
}

func (o *overlay) add(e ovEntry) {
	o.order = append(o.order, e)
	o.latest[e.id] = len(o.order) - 1
	if e.put != nil {
		o.seqs[e.seq] = e.id
	}
}

// get returns the latest mutation of id.
func (o *overlay) get(id string) (ovEntry, bool) {
	if o == nil {
		return ovEntry{}, false
	}
	i, ok := o.latest[id]
	if !ok {
		return ovEntry{}, false
	}
	return o.order[i], true
}

// owner returns the id whose latest put has seq.
func (o *overlay) owner(seq uint64) (string, bool) {
	if o == nil {
		return "", false
	}
	id, ok := o.seqs[seq]
	if !ok {
		return "", false
	}
	if e, _ := o.get(id); e.put == nil || e.seq != seq {
		return "", false
	}
	return id, true
}
