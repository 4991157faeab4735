package restsync

import "sync"

// Turns orders, on one node, what the tasks of one repository decide from
// each other's records: every task delivers an item under one reference
// to the one target, so a task that lets an item go keeps its document
// when another task's record still holds it, and marks that record so
// that the other task delivers its own document again (RepoOptions.Shared,
// httpfetch's keepShared). Two tasks that let the same item go at once
// would each find the other's record still holding it and each keep it:
// it would stay in the index with no task left to remove it. A task takes
// its turn (Take) for the check and for writing its own records of what
// it keeps (forgotten), never across a delivery, so whichever decides
// second finds the first's record forgotten and removes the item.
//
// Tasks of one repository on two nodes of a cluster are not ordered by
// this: they would need the shared store's own locking.
type Turns struct {
	mu sync.Mutex
}

// Take waits for the turn and returns the function that gives it back.
func (t *Turns) Take() (release func()) {
	t.mu.Lock()
	return t.mu.Unlock
}
