package restsync

import (
	"slices"
	"strings"
	"sync"
)

// Turns orders, on one node, what the tasks of one repository decide from
// each other's records: every task delivers an item under one reference
// to the one target, so a task that lets an item go keeps its document
// when another task's record still holds it, and marks that record so
// that the other task delivers its own document again (RepoOptions.Shared,
// httpfetch's keepShared). Two things go wrong when the tasks run at the
// same time, and Turns is what prevents them:
//
//   - Two tasks that let the same item go at once would each find the
//     other's record still holding it and each keep it: it would stay in
//     the index with no task left to remove it. A task takes its turn
//     (Take) for the check and for writing its own records of what it
//     keeps (forgotten), never across a delivery, so whichever decides
//     second finds the first's record forgotten and removes the item.
//   - A mark made on the record of a task that is running may be
//     overwritten by that run: it writes a copy of the record it read
//     before the mark (a cursor, a record of an unchanged item). Runs are
//     noted (Begin), the marks made meanwhile remembered (Marked), and
//     made again when the run ends.
//
// Tasks of one repository on two nodes of a cluster are not ordered by
// this: the turn is the shared store's too (store.Turn), and the marks
// are noted in the marked task's datastore (in every store that outlives
// the process: a run may also die before it ends), read as its runs
// start and end on whichever node (Repo.remarkNoted; httpfetch's own).
type Turns struct {
	mu sync.Mutex
	// running counts the runs of each task (upper case) under way, marked
	// the keys of its records marked during them.
	running map[string]int
	marked  map[string][]string
}

// Take waits for the turn and returns the function that gives it back.
func (t *Turns) Take() (release func()) {
	t.mu.Lock()
	return t.mu.Unlock
}

// Marked notes, within a turn, that task's record of key was marked by
// another task. When task runs, the mark is made again as its run ends.
func (t *Turns) Marked(task, key string) {
	task = strings.ToUpper(task)
	if t.running[task] == 0 || slices.Contains(t.marked[task], key) {
		return
	}
	if t.marked == nil {
		t.marked = map[string][]string{}
	}
	t.marked[task] = append(t.marked[task], key)
}

// Begin notes that a run of task began, which writes task's records from
// copies it read. Call the function it returns once, when the run has
// written all it will: it takes the turn and, when other tasks marked
// records of task meanwhile, calls remark with their keys, to make the
// marks again (on the record as it is now: one the run forgot is not
// marked; one it delivered is, which costs a delivery more).
func (t *Turns) Begin(task string) (end func(remark func(keys []string))) {
	task = strings.ToUpper(task)
	t.mu.Lock()
	if t.running == nil {
		t.running = map[string]int{}
	}
	t.running[task]++
	t.mu.Unlock()
	return func(remark func(keys []string)) {
		t.mu.Lock()
		defer t.mu.Unlock()
		keys := t.marked[task]
		if t.running[task]--; t.running[task] == 0 {
			delete(t.running, task)
			delete(t.marked, task)
		}
		if len(keys) > 0 {
			remark(keys)
		}
	}
}
