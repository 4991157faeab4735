package store

// SetCompactHook sets the hook a compaction calls at its steps (see
// testCompactHook); for the child process of the kill test only.
func SetCompactHook(f func(step string)) { testCompactHook = f }

// Checkpoint folds the journal of a bbolt store into its file now (for
// the checkpoint benchmark).
func Checkpoint(s Store) error { return s.(*boltStore).checkpoint() }
