package queue

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/google/uuid"
)

// idSource makes action ids as uuid.NewV7 does (RFC 9562 version 7: 48
// bits of Unix milliseconds, 12 bits of the millisecond's fraction that
// keep ids made in the same millisecond increasing, 62 random bits), with
// the random bits read from crypto/rand 64 ids at a time instead of once
// per id: uuid.NewV7's read and clock took about half a microsecond of
// the QueueManager's goroutine per submitted action. It is safe for
// concurrent use (a QueueManager calls it from its own goroutine; the lock
// is uncontended). The randomness is the same crypto/rand, so ids stay as
// hard to guess as uuid.NewV7's.
type idSource struct {
	mu   sync.Mutex
	now  func() time.Time
	rnd  [64 * 16]byte
	off  int   // next unused byte of rnd; len(rnd): refill first
	last int64 // milliseconds<<12 | fraction of the last id made
}

func newIDSource(now func() time.Time) *idSource {
	s := &idSource{now: now}
	s.off = len(s.rnd)
	return s
}

// NewID returns a new UUIDv7.
func (s *idSource) NewID() (uuid.UUID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.off == len(s.rnd) {
		if _, err := rand.Read(s.rnd[:]); err != nil {
			return uuid.Nil, err
		}
		s.off = 0
	}
	var id uuid.UUID
	copy(id[:], s.rnd[s.off:s.off+16])
	clear(s.rnd[s.off : s.off+16]) // each random byte is used once
	s.off += 16

	// Milliseconds and the millisecond's fraction in 12 bits (as
	// uuid.NewV7: nanoseconds of the millisecond >> 8), kept increasing
	// even when the clock stands still or steps back.
	t := s.now()
	v := t.UnixMilli()<<12 | int64(t.Nanosecond()%int(time.Millisecond))>>8
	if v <= s.last {
		v = s.last + 1
	}
	s.last = v
	ms := v >> 12
	id[0], id[1], id[2], id[3], id[4], id[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	id[6] = 0x70 | byte(v>>8)&0x0f // version 7
	id[7] = byte(v)
	id[8] = id[8]&0x3f | 0x80 // variant 10
	return id, nil
}
