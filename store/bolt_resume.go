package store

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// defaultResumeEvery is how often the checkpointer tries to turn a
// suspended journal back on (resumeJournal), and how long after it sees
// the suspension it tries first: a disk that keeps filling up switches
// the store at most that often.
const defaultResumeEvery = 30 * time.Second

// maybeResumeJournal is the checkpointer's turn at resumeJournal, at
// most once every resumeEvery while the journal is suspended.
func (s *boltStore) maybeResumeJournal(now time.Time) {
	if !s.direct.Load() {
		s.resumeTry = time.Time{}
		return
	}
	every := time.Duration(s.resumeEvery.Load())
	if every == 0 {
		every = defaultResumeEvery
	}
	if s.resumeTry.IsZero() {
		s.resumeTry = now // the suspension is new: wait a full interval
		return
	}
	if now.Sub(s.resumeTry) < every {
		return
	}
	s.resumeTry = now
	if _, err := s.resumeJournal(); err != nil {
		s.log.Warn("the journal could not be turned back on; actions are still committed to the store file directly", "err", err)
	}
}

// resumeRoom is the free space resumeJournal wants: three segments (12
// MiB), the one it makes among them.
const resumeRoom = 3 * segmentSize

// resumeJournal turns the journal back on after suspendJournal, once
// there is room again (resumeRoom): for its next segment (made here,
// prepared, of the full size), for the one after it, so that a disk that
// is still nearly full does not suspend it again at the next rotation,
// and a segment's worth for connector.db to grow when checkpoints fold
// the journal into it: without that margin, a journal turned back on with
// just two segments' room left the checkpoint's fold none, and puts were
// refused (s.full) that direct commits would have taken. It returns
// false, changing nothing, while there is not.
//
// The journal goes on in the segment after the one it was suspended in,
// from the seq of the last frame written. The file's journal record,
// which says since the suspension's fold that no segment is expected, is
// written here to name the new one (a crash right after finds it empty:
// nothing to replay), rather than left to the first append
// (recordJournal): an ApplyActions that looked at recorded before the
// suspension must not find it cleared once it holds applyMu, since it
// took the gate only if it was.
//
// It takes resumeMu (no direct commit is under way, and none starts
// before it is done), then what suspendJournal takes, so nothing is
// written meanwhile.
func (s *boltStore) resumeJournal() (bool, error) {
	if s.j == nil || !s.direct.Load() {
		return false, nil
	}
	if !roomFor(s.cfg.Dir, resumeRoom) {
		return false, nil // no 4 MiB of zeros written (and removed) at every try
	}
	s.j.mu.Lock()
	n := s.j.curN + 1 // the journal, closed, changes no more
	s.j.mu.Unlock()
	p := s.j.prepare(n, segmentSize)
	if p.err != nil {
		if spaceError(p.err) {
			return false, nil
		}
		return false, fmt.Errorf("store: %s: turn the journal back on: %w", s.path, p.err)
	}
	drop := func() {
		_ = p.f.Close()
		_ = os.Remove(p.path) // empty: harmless if left (see above)
	}
	if s.resumeHook != nil {
		s.resumeHook()
	}
	if !roomFor(s.cfg.Dir, resumeRoom-segmentSize) {
		drop()
		return false, nil
	}
	if !s.resumeMu.TryLock() {
		if s.resumeWaitHook != nil {
			s.resumeWaitHook()
		}
		s.resumeMu.Lock()
	}
	defer s.resumeMu.Unlock()
	s.dsMu.Lock()
	defer s.dsMu.Unlock()
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.gate.RLock()
	defer s.gate.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil || s.closing || s.failed.Load() != nil || !s.direct.Load() {
		drop()
		return false, nil
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.j.mu.Lock()
	seq := s.j.seq
	s.j.mu.Unlock()
	const what = "turn the journal back on"
	if err := s.writeRawLocked(what, func(tx *bolt.Tx) error {
		return putJournalRecord(tx, journalRecord{M: n, S: seq, Exists: true})
	}); err != nil {
		if errors.Is(err, ErrNoSpace) {
			// Nothing was applied (commitErr): no record names the
			// segment, and its 4 MiB go back to a disk that has just
			// shown it has no room.
			drop()
			return false, nil
		}
		// The record may have reached the file (ErrFailed: the store
		// is failed): the segment it names stays (empty, it is
		// harmless either way; Open replaces or deletes it).
		_ = p.f.Close()
		return false, err
	}
	s.j.resume(n, p)
	// The bounds validate keeps are stale: the direct commits did not
	// raise them. The next batch of each queue reads them from bbolt.
	s.high = nil
	s.recorded.Store(true)
	s.direct.Store(false)
	s.log.Warn("there is room for the journal again: actions are journaled again", "segment", p.path)
	return true, nil
}

// resume starts the journal again in segment n (p, made), after close:
// frames go on from the seq of the last one written.
func (j *journal) resume(n uint64, p preparedSeg) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cur, j.curPath, j.curN, j.off, j.size = p.f, p.path, n, segHeaderBytes, p.size
	j.segs = []uint64{n}
	j.spare, j.preparing, j.broken, j.closed = nil, false, nil, false
}
