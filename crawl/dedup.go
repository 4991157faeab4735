package crawl

import "hash/maphash"

// dedup remembers which URLs a crawl has recorded, as 64-bit hashes: about
// 10 to 20 bytes per URL in a Go map instead of the URL itself (see
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
	seen     map[uint64]struct{}
	variants map[uint64]int32
	max      int
}

func newDedup(max int) *dedup {
	return &dedup{
		seed:     maphash.MakeSeed(),
		seen:     make(map[uint64]struct{}),
		variants: make(map[uint64]int32),
		max:      max,
	}
}

// add records u. added is false when u was recorded before; full is true
// (and u not recorded) when max URLs are recorded already.
func (d *dedup) add(u string) (added, full bool) {
	h := maphash.String(d.seed, u)
	if _, ok := d.seen[h]; ok {
		return false, false
	}
	if d.max > 0 && len(d.seen) >= d.max {
		return true, true
	}
	d.seen[h] = struct{}{}
	return true, false
}

// len returns the number of URLs recorded.
func (d *dedup) len() int { return len(d.seen) }

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
