package crawl

import "hash/maphash"

// dedup remembers which URLs a crawl has recorded, as 64-bit hashes in an
// open-addressing table: 8 bytes per slot, kept between 3/8 and 3/4 full,
// so 11 to 22 bytes per URL instead of the URL itself (see
// BenchmarkDedupMemory). The price is that two distinct URLs with the same
// hash are taken for one, and the second is never fetched: among n URLs the
// chance of any collision is about n²/2⁶⁵, 3·10⁻⁸ at a million URLs. The
// hash seed is random per crawl, so a collision does not repeat on the next
// crawl and cannot be engineered by a site.
//
// It also counts, per scheme+host+path, how many distinct queries were
// seen (the MaxQueryVariants trap rule), keyed by hash as well.
//
// dedup is not safe for concurrent use; the crawler guards it.
type dedup struct {
	seed     maphash.Seed
	seen     hashSet
	variants map[uint64]int32
	max      int
}

func newDedup(max int) *dedup {
	return &dedup{
		seed:     maphash.MakeSeed(),
		variants: make(map[uint64]int32),
		max:      max,
	}
}

// add records u. added is false when u was recorded before; full is true
// (and u not recorded) when max URLs are recorded already.
func (d *dedup) add(u string) (added, full bool) {
	h := maphash.String(d.seed, u)
	if d.seen.has(h) {
		return false, false
	}
	if d.max > 0 && d.seen.n >= d.max {
		return true, true
	}
	d.seen.add(h)
	return true, false
}

// len returns the number of URLs recorded.
func (d *dedup) len() int { return d.seen.n }

// queryVariant counts one more distinct query for origin+path and returns
// the count.
func (d *dedup) queryVariant(origin, path string) int {
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteString(origin)
	h.WriteString(path)
	k := h.Sum64()
	n := d.variants[k] + 1
	if n < 1<<30 {
		d.variants[k] = n
	}
	return int(n)
}

// hashSet is a set of 64-bit hashes with linear probing. Slot value 0
// means empty, so hash 0 is stored as 1 (one more way to collide, at
// 2⁻⁶⁴).
type hashSet struct {
	slots []uint64 // len is 0 or a power of two
	n     int
}

func (s *hashSet) has(h uint64) bool {
	if s.n == 0 {
		return false
	}
	h = max(h, 1)
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			return false
		case h:
			return true
		}
	}
}

// add inserts h; it reports false if h was present.
func (s *hashSet) add(h uint64) bool {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	h = max(h, 1)
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			s.n++
			return true
		case h:
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(1024, 2*len(old)))
	mask := uint64(len(s.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = h
	}
}
