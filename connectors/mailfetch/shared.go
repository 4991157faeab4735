package mailfetch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/store"
)

// Several tasks may read one mailbox (one indexing INBOX, another a
// label; an IMAP task and a Gmail API task of one account): they deliver
// a message under the same reference (its Gmail id, or its IMAP URL,
// which names the account, the server and the folder) to the one target.
// A task that lets a message go (it left the task's folders, the task's
// Folders changed) would remove the other task's document with its own,
// and that task, finding the message unchanged, would never deliver it
// again. So before removing a message's documents a task asks the other
// tasks of the repository on the same account (shared): the references
// another task's record still holds stay in the index, that record is
// marked (record.Again) so that the other task's next Synchronize delivers
// its own documents again (the one in the index may be this task's: its
// AUTN_IDENTIFIER names this task, its FOLDER this task's folder), and
// this task forgets its record alone. A reference no other task holds is
// removed as before.
//
// A reference is matched, not a record key: keys differ per folder (IMAP
// "<UIDVALIDITY>.<UID>" in each folder, a Gmail id with the API), while
// the reference is the document in the target, and names the account, so
// two tasks' records of one reference are of the same message of the
// same account. Only tasks with the same Username are read (a task of
// another account cannot hold the reference), and only by a batch that
// removes something: the task's restsync.Batch asks (keepBatch) once the
// batch's documents are delivered and just before its removals go to the
// target, and the other tasks' records are read then into an index of
// references (read again for a later batch only when another task of the
// process wrote records since, or always in a store other processes
// share), and each match is read again, under the turn below, before it
// is trusted. So a record another task wrote
// before that (it delivered the message for the first time in a run at
// the same time: the message moved from this task's label to its) is
// seen. One written in the moment between that task's delivery and its
// record's write, while this task looks, is not: the removal goes ahead
// and takes that document with it until the message changes.
//
// The repository's tasks take turns (sharedMu; in a store several
// processes share, the store's turn as well, store.Turns: the mutex of
// one node of a cluster does not order a task on another) at letting a
// reference go, and a task that keeps a reference because another holds
// it forgets its own record at once, within its turn: two tasks letting one message go
// at the same time would otherwise each find the other's record still
// holding it, each keep it, and leave it in the index with no task to
// remove it. Taking turns, the second finds the first's record gone and
// removes the documents. A turn of the store that cannot be had fails
// the run (keep), as it fails httpfetch's and restsync's batches: it is
// never decided without. These writes ride the store's next durable write
// (store.UpdateDeferred), as the task's records do (restsync.Batch): a
// message many tasks share costs no fsync of its own when let go.
type shared struct {
	r    *Repository
	task string
	ds   store.Datastore // the task's own
	user string
	log  *slog.Logger

	index map[string][]*held // reference → the other tasks' records of it; nil until needed
	gen   int64              // othersWrote when index was read
}

type otherTask struct {
	name string
	ds   store.Datastore
}

// held is another task's record of a reference.
type held struct {
	task *otherTask
	key  []byte
}

// shared returns the sharing of task's Synchronize; nil when no other
// task of the repository reads the same account (nothing to look for).
func (r *Repository) shared(task string, ds store.Datastore, log *slog.Logger) *shared {
	user := r.set[task].Username
	for n, s := range r.set {
		if n != task && strings.EqualFold(s.Username, user) {
			return &shared{r: r, task: task, ds: ds, user: user, log: log}
		}
	}
	return nil
}

// load reads the records of the other tasks of the same account, unless
// read already.
func (sh *shared) load() {
	if sh.index != nil {
		return
	}
	sh.index = map[string][]*held{}
	names, err := sh.r.st.DatastoreNames()
	if err != nil {
		sh.log.Warn("the other tasks' datastores cannot be listed: their messages are not looked for", "error", err)
		return
	}
	for _, n := range names {
		s := sh.r.set[strings.ToUpper(n)]
		if strings.EqualFold(n, sh.task) || s == nil || !strings.EqualFold(s.Username, sh.user) {
			continue
		}
		ds, err := sh.r.st.Datastore(n)
		if err != nil {
			continue
		}
		o := &otherTask{name: n, ds: ds}
		err = store.ForEachPrefix(ds, []byte(recordPrefix), func(k, v []byte) error {
			var rec struct {
				Ref string `json:"r"`
			}
			if json.Unmarshal(v, &rec) == nil && rec.Ref != "" {
				sh.index[rec.Ref] = append(sh.index[rec.Ref], &held{task: o, key: bytes.Clone(k)})
			}
			return nil
		})
		if err != nil {
			sh.log.Warn("another task's datastore cannot be read: its messages are not looked for", "task", n, "error", err)
		}
	}
}

// sharedKeepChecked, when set (tests only), is called by keep between
// its look at the other tasks' records and its forgetting of its own.
var sharedKeepChecked func(task string)

// keep takes out of refs (documents of the message ref that this task is
// about to remove) those another task's record still holds, and marks
// each such record to be delivered again. When every one of refs is
// kept, own (this task's record of the message) is deleted now, within
// the task's turn. It returns the references left to remove. A datastore
// that cannot be read or written counts as holding nothing: the removal
// goes ahead, as it did before. A turn of the store that cannot be had
// (another node holds it for longer than the store's Timeout, or the
// database is out of reach) is an error, and nothing is decided: deciding
// without it is the race the turn prevents (two nodes each keeping the
// message, left in the index with no task to remove it), so the run ends
// in error and the next one decides again, as httpfetch's and restsync's
// batches do.
func (sh *shared) keep(ref string, refs []string, own []byte) ([]string, error) {
	if sh == nil || len(refs) == 0 {
		return refs, nil
	}
	if err := sh.inTurn(ref, func() { refs = sh.keepTurn(ref, refs, own) }); err != nil {
		return nil, err
	}
	return refs, nil
}

// keepBatch is the Keep of the task's restsync.Batch: the delivering
// goroutine gives it, once the batch's documents are delivered and
// before its removals go to the target, the items that remove documents
// (forget, deliver: restsync.Item.Dropping, whose Dropping.Key is the
// record's key, Rec.Ref the message's reference), and it keeps those
// another task's record holds (keep). The other tasks' records are read
// again for each batch, now: read when a removal was gathered (once per
// run), they missed the record of a message another task running at the
// same time delivered for the first time meanwhile (moved from this
// task's label to that task's), and this task's removal, reaching the
// target after that task's delivery, took the new document out of the
// index while that task's record said it was delivered.
func (sh *shared) keepBatch(drops []*restsync.Dropping) error {
	if len(drops) == 0 {
		return nil
	}
	return sh.inTurn(drops[0].Rec.Ref, func() {
		// Read again when the other tasks wrote records since, or may
		// have (other processes' writes are not counted here).
		if _, clustered := sh.r.st.(store.Turns); clustered || sh.index == nil || sh.othersWrote() != sh.gen {
			sh.gen = sh.othersWrote() // before the read: a write during it reads again next time
			sh.index = nil
			sh.load()
		}
		for _, d := range drops {
			var own []byte
			if d.Forget {
				own = []byte(d.Key)
			}
			d.Refs = sh.keepTurn(d.Rec.Ref, d.Refs, own)
		}
	})
}

// othersWrote is how many batches of records the other tasks of the same
// account wrote in this process so far.
func (sh *shared) othersWrote() int64 {
	var n int64
	for name, s := range sh.r.set {
		if name != sh.task && strings.EqualFold(s.Username, sh.user) {
			n += sh.r.wrote[name].Load()
		}
	}
	return n
}

// inTurn runs fn in the repository's turn, and in the store's when
// several processes share it (store.Turns). A turn of the store that
// cannot be had (another node holds it for longer than the store's
// Timeout, or the database is out of reach) is an error, fn is not run,
// and nothing is decided (keep); ref names what is let go in the error.
func (sh *shared) inTurn(ref string, fn func()) error {
	sh.r.sharedMu.Lock()
	defer sh.r.sharedMu.Unlock()
	err := store.Turn(sh.r.st, sharedTurn, func() error {
		fn()
		return nil
	})
	if err != nil {
		return fmt.Errorf("mailfetch: letting go of message %s: %w", ref, err)
	}
	return nil
}

// sharedTurn is the name of the turn keep takes in a store that several
// processes share (store.Turns: the nodes of a cluster).
const sharedTurn = "mailfetch: letting go of a message another task may hold"

// keepTurn is keep's work, during its turn.
func (sh *shared) keepTurn(ref string, refs []string, own []byte) []string {
	sh.load()
	hs := sh.index[ref]
	if len(hs) == 0 {
		return refs
	}
	for _, h := range hs {
		var kept []string
		err := store.UpdateDeferred(h.task.ds, func(w store.Writer) error {
			v, err := w.Get(h.key)
			if err != nil || v == nil {
				return err
			}
			o := &record{}
			if err := json.Unmarshal(v, o); err != nil || o.Ref != ref {
				return nil // not (or no longer) the message
			}
			kept = append(kidRefs(o.Ref, o.Kids), o.Ref)
			if o.Again {
				return nil
			}
			o.Again = true
			return w.Put(h.key, o.encode())
		})
		if err != nil {
			sh.log.Warn("cannot mark another task's message to be delivered again; its documents are removed", "reference", ref, "task", h.task.name, "error", err)
			continue
		}
		if len(kept) == 0 {
			continue
		}
		sh.log.Info("another task indexes the message: its documents stay", "reference", ref, "task", h.task.name)
		refs = slices.DeleteFunc(refs, func(r string) bool { return slices.Contains(kept, r) })
	}
	if sharedKeepChecked != nil {
		sharedKeepChecked(sh.task)
	}
	if len(refs) == 0 && own != nil {
		if err := store.UpdateDeferred(sh.ds, func(w store.Writer) error { return w.Delete(own) }); err != nil {
			sh.log.Warn("cannot forget the record of a message another task indexes", "reference", ref, "error", err)
		}
	}
	return refs
}
