package store

// SetCompactHook sets the hook a compaction calls at its steps (see
// testCompactHook); for the child process of the kill test only.
func SetCompactHook(f func(step string)) { testCompactHook = f }

// Checkpoint folds the journal of a bbolt store into its file now (for
// the checkpoint benchmark).
func Checkpoint(s Store) error { return s.(*boltStore).checkpoint() }

// BoltMapReserve is the map reservation writable opens make on this
// platform (0 where there is none: 32-bit, Windows).
func BoltMapReserve() int { return mmapReserve }

// SetBoltMapping sets the writable opens' map reservation and file growth
// step (mmapReserve, fileAllocStep) and returns a func restoring them; for
// the tests and benchmarks comparing them with bbolt's defaults (0, 16 MiB).
func SetBoltMapping(reserve, allocStep int) (restore func()) {
	r, a := mmapReserve, fileAllocStep
	mmapReserve, fileAllocStep = reserve, allocStep
	return func() { mmapReserve, fileAllocStep = r, a }
}
