package objectivefetch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/messages"
)

// container is a folder or file being walked.
type container struct {
	it   *item
	path string
	// perms are its effective permissions (its own, else inherited), and
	// acl their hash: what children without permissions of their own get.
	perms []permission
	acl   acls
	// aclHash is acl.hash(): what the records of the children that
	// inherit its permissions say when they are up to date.
	aclHash string
	// own are its own permissions (kept in its record, for the next
	// run's children).
	own []permission
	// resecure: its effective permissions changed since the last run, so
	// its children's may have too.
	resecure bool
	// changed: its record is new or out of date.
	changed bool
	// rec is the record this run gave it (nil: none).
	rec *restsync.Record
}

// known is an object the task has a record of.
type known struct {
	rec *restsync.Record
	st  objState
}

// taskRun is one task's Synchronize.
type taskRun struct {
	*restsync.TaskSync
	r   *Repository
	s   *settings
	api *api
	b   *builder

	known     map[string]*known
	seen      map[string]bool
	completed map[string]bool // containers listed to the end
	excluded  map[string]bool // listed, and not taken (FolderCantHaveRegex)
	// vanished: containers deleted after they were listed, before they
	// were read (objectGone): forgetGone removes them without asking.
	vanished map[string]bool
	// requests holds a place for each request for a document in flight
	// (Concurrency places).
	requests chan struct{}
}

// request sends one request for a document when a place is free.
func (t *taskRun) request(fn func()) {
	t.requests <- struct{}{}
	defer func() { <-t.requests }()
	fn()
}

func (r *Repository) syncTask(ctx context.Context, job *fetch.Job, task string, progress func(float64, string), log *slog.Logger) error {
	s := r.Set[task]
	var a *api
	var b *builder
	return r.SyncTask(job, task, log, func() (*restsync.Client, error) {
		var err error
		if a, err = r.open(ctx, s); err != nil {
			return nil, err
		}
		if b, err = newBuilder(s); err != nil {
			return nil, err
		}
		return a.c, nil
	}, func(ts *restsync.TaskSync) error {
		if r.batchSize > 0 {
			ts.Batch.Size = r.batchSize
		}
		t := &taskRun{TaskSync: ts, r: r, s: s, api: a, b: b, known: map[string]*known{}, seen: map[string]bool{}, completed: map[string]bool{}, excluded: map[string]bool{}, vanished: map[string]bool{},
			requests: make(chan struct{}, s.Concurrency)}
		return t.run(ctx, progress)
	})
}

func (t *taskRun) run(ctx context.Context, progress func(float64, string)) error {
	err := restsync.EachRecord(t.DS, "o\x00", func(key string, rec *restsync.Record) error {
		k := &known{rec: rec}
		if len(rec.Extra) > 0 {
			if err := json.Unmarshal(rec.Extra, &k.st); err != nil {
				return fmt.Errorf("record %q: %w", key, err)
			}
		}
		t.known[strings.TrimPrefix(key, "o\x00")] = k
		return nil
	})
	if err != nil {
		return fmt.Errorf("objectivefetch: [%s] %w", t.Task, err)
	}
	var queue []*container
	rootsOK := true
	roots := map[string]bool{}
	for _, spec := range t.s.RootFolders {
		if err := t.Job.Checkpoint(ctx); err != nil {
			return err
		}
		c, err := t.root(ctx, spec)
		if err == nil && roots[c.it.ID] {
			continue // named twice (by id and by path, say): one root
		}
		if err == nil {
			roots[c.it.ID] = true
			err = t.deliverContainer(ctx, c)
		}
		switch {
		case err == nil:
			queue = append(queue, c)
		case fatal(ctx, err):
			return err
		case errors.Is(err, messages.ErrNotFound) && validID(spec):
			// The root is gone: what was under it goes with it.
			t.completed[spec] = true
		default:
			rootsOK = false
			t.Fail(spec, err)
		}
	}
	for done := 0; len(queue) > 0; done++ {
		c := queue[0]
		queue = queue[1:]
		if err := t.Job.Checkpoint(ctx); err != nil {
			return err
		}
		progress(float64(done)*100/float64(done+len(queue)+1), c.path)
		kids, err := t.walk(ctx, c)
		switch {
		case err == nil:
		case fatal(ctx, err):
			return err
		case t.objectGone(ctx, err, c.it.kind(), c.it.ID):
			// Deleted since it was listed: removed with what was
			// under it, as the next run would find it missing.
			t.vanished[c.it.ID] = true
			delete(t.seen, c.it.ID)
			if t.known[c.it.ID] == nil && c.rec != nil {
				t.known[c.it.ID] = &known{rec: c.rec} // recorded this run
			}
		default:
			t.Fail(objectRef(t.s.ServerURL, c.it.kind(), c.it.ID), err)
		}
		queue = append(queue, kids...)
		if err := t.Batch.MaybeFlush(ctx); err != nil {
			return err
		}
	}
	if rootsOK {
		if err := t.forgetGone(ctx); err != nil {
			return err
		}
	}
	return t.Batch.Flush(ctx)
}

// root resolves a RootFolders entry (an id, or a path of names from fA0,
// which may start with fA0's own name) to a container with its path and
// effective permissions.
func (t *taskRun) root(ctx context.Context, spec string) (*container, error) {
	var it *item
	var err error
	if strings.HasPrefix(spec, "/") {
		it, err = t.api.object(ctx, kindFolder, "fA0")
		for i, name := range strings.Split(strings.Trim(spec, "/"), "/") {
			if err != nil || name == "" || i == 0 && name == it.Name {
				continue // a path may start with fA0's own name
			}
			var next *item
			err = t.api.children(ctx, it.kind(), it.ID, func(page []item) error {
				for i := range page {
					if next == nil && page[i].Name == name && page[i].kind() != kindDocument {
						next = &page[i]
					}
				}
				return nil
			})
			if err == nil && next == nil {
				err = fmt.Errorf("objective: there is no folder %q in %q: %w", name, it.Name, messages.ErrNotFound)
			}
			it = next
		}
	} else {
		it, err = t.api.object(ctx, kindOf(spec), spec)
	}
	if err != nil {
		return nil, err
	}
	// Its path, and the permissions it inherits: up through its parents.
	names := []string{it.Name}
	var own []permission
	if t.s.MappedSecurity {
		if own, err = t.api.permissions(ctx, it.kind(), it.ID); err != nil {
			return nil, err
		}
	}
	perms := own
	err = t.api.ancestors(ctx, it, func(parent *item) (bool, error) {
		names = append(names, parent.Name)
		if len(perms) == 0 && t.s.MappedSecurity {
			var err error
			if perms, err = t.api.permissions(ctx, parent.kind(), parent.ID); err != nil {
				return true, err
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(names)
	c := &container{it: it, path: "/" + strings.Join(names, "/"), own: own, perms: perms, acl: aclsOf(perms)}
	k := t.known[it.ID]
	c.aclHash = c.acl.hash()
	c.resecure = k == nil || k.st.ACL != c.aclHash
	c.changed = k == nil || k.rec.Version != it.version() || c.resecure || k.st.Path != c.path || k.st.Shape != containerShape(t.s)
	t.seen[it.ID] = true
	return c, nil
}

// child works out a child container: its own permissions (asked for only
// when it changed), its effective ones, and whether it changed.
func (t *taskRun) child(ctx context.Context, parent *container, it *item) (*container, error) {
	k := t.known[it.ID]
	c := &container{it: it, path: parent.path + "/" + it.Name}
	versionChanged := k == nil || k.rec.Version != it.version()
	if t.s.MappedSecurity {
		// Its own permissions change with its version; a record without
		// any permissions was made without MappedSecurity (which never
		// asked for them), and its own must be asked for, or it would
		// take its parent's.
		if versionChanged || k.st.ACL == noACL {
			own, err := t.api.permissions(ctx, it.kind(), it.ID)
			if err != nil {
				return nil, err
			}
			c.own = own
		} else {
			c.own = k.st.Own
		}
	}
	c.perms = c.own
	if len(c.perms) == 0 {
		c.perms = parent.perms
	}
	c.acl = aclsOf(c.perms)
	c.aclHash = c.acl.hash()
	c.resecure = k == nil || k.st.ACL != c.aclHash
	c.changed = versionChanged || c.resecure || k.st.Path != c.path || k.st.Shape != containerShape(t.s)
	return c, nil
}

// deliverContainer delivers a folder's or file's document (when it
// changed) and records it.
func (t *taskRun) deliverContainer(ctx context.Context, c *container) error {
	t.Counts.Seen.Add(1)
	if !c.changed {
		t.Counts.Unchanged.Add(1)
		return nil
	}
	st := objState{Kind: c.it.kind(), Path: c.path, Own: c.own, ACL: c.aclHash, Shape: containerShape(t.s)}
	extra, _ := json.Marshal(st)
	rec := &restsync.Record{Version: c.it.version(), Ref: objectRef(t.s.ServerURL, c.it.kind(), c.it.ID), Title: c.it.Name,
		Parent: c.it.ParentID, Extra: extra}
	k := t.known[c.it.ID]
	c.rec = rec
	if !t.s.IndexFolders {
		if k != nil && hasDocument(k.st) {
			// Indexed while IndexFolders was on: its document goes (not
			// while another task indexes it), its record stays.
			refs := append([]string{k.rec.Ref}, k.rec.Kids...)
			v, _ := json.Marshal(rec)
			t.Batch.Add(restsync.Item{Removes: refs, Key: restsync.RecordKey(objectKey(c.it.ID)), Value: v,
				Deleted: uint64(len(refs))}.Dropping(objectKey(c.it.ID), k.rec))
			return nil
		}
		t.Batch.Record(objectKey(c.it.ID), rec)
		return nil
	}
	var cat []catalogueField
	var parts []filePart
	var err error
	if t.s.IndexFields {
		if cat, err = t.api.fields(ctx, c.it.kind(), c.it.ID); err != nil {
			return err
		}
	}
	if c.it.kind() == kindFile {
		if parts, err = t.api.fileParts(ctx, c.it.ID); err != nil {
			return err
		}
	}
	var old *restsync.Record
	if k != nil {
		old = k.rec
	}
	t.Batch.Deliver(objectKey(c.it.ID), rec, []*ingest.Document{t.b.containerDoc(t.Task, c.it, c.path, cat, c.acl, parts)}, old)
	return nil
}

// walk lists a container's children: containers are returned to be
// walked, documents that changed are read (Concurrency at a time) and
// delivered.
func (t *taskRun) walk(ctx context.Context, c *container) ([]*container, error) {
	var kids []*container
	err := t.api.children(ctx, c.it.kind(), c.it.ID, func(page []item) error {
		if err := t.Job.Checkpoint(ctx); err != nil {
			return err
		}
		var work []*docWork
		for i := range page {
			it := &page[i]
			if t.seen[it.ID] {
				continue // listed twice (the list moved while it was read)
			}
			switch it.kind() {
			case kindFolder, kindFile:
				if t.s.FolderCantHave != nil && t.s.FolderCantHave.MatchString(it.Name) {
					t.excluded[it.ID] = true
					continue
				}
				t.seen[it.ID] = true
				kc, err := t.child(ctx, c, it)
				if err == nil {
					err = t.deliverContainer(ctx, kc)
				}
				if err != nil {
					if fatal(ctx, err) {
						return err
					}
					if t.objectGone(ctx, err, it.kind(), it.ID) {
						// Deleted since the page was listed.
						t.vanished[it.ID] = true
						delete(t.seen, it.ID)
						continue
					}
					t.Fail(objectRef(t.s.ServerURL, it.kind(), it.ID), err)
					t.seen[it.ID] = true
					continue
				}
				kids = append(kids, kc)
			default:
				t.seen[it.ID] = true
				t.Counts.Seen.Add(1)
				w := &docWork{it: it, parent: c, k: t.known[it.ID]}
				if !t.docChanged(w) {
					t.Counts.Unchanged.Add(1)
					continue
				}
				work = append(work, w)
			}
		}
		return t.readDocuments(ctx, work)
	})
	if err == nil {
		t.completed[c.it.ID] = true
	}
	return kids, err
}

// docWork is one changed document being read.
type docWork struct {
	it     *item
	parent *container
	k      *known
	own    []permission
	acl    acls
	docs   []*ingest.Document
	// kids are the references of the documents of its other versions,
	// handed to the batch as they were read, in group (nil when none
	// was).
	kids  []string
	group *restsync.Group
	err   error
	// gone: it could not be read because it was deleted after its
	// folder was listed (objectGone).
	gone bool
}

// noACL is the ACL hash of an object without permissions: what every
// record holds when MappedSecurity is off.
var noACL = aclsOf(nil).hash()

// docChanged reports whether a document must be read again: it is new,
// its version changed, or the ACL of its permissions (its own, or those
// it inherits) is not the one its record has (with MappedSecurity off:
// it was delivered with some). The latter is checked whether or not its
// container's changed this run: a document that could not be read in the
// run that recorded its container's new permissions still has the old
// ones, and one recorded by a server that wrote ACLs otherwise has an
// ACL its permissions no longer give.
func (t *taskRun) docChanged(w *docWork) bool {
	if w.k == nil || w.k.rec.Version != w.it.version() || w.k.st.Path != w.parent.path+"/"+docName(w.it) {
		return true
	}
	if w.k.st.Shape != docShape(t.s) {
		return true // delivered with other settings
	}
	if !t.s.MappedSecurity {
		// Delivered with its ACLs, which MappedSecurity turned off
		// drops (a record without any was made without it).
		return w.k.st.ACL != noACL
	}
	if own := w.k.st.Own; len(own) > 0 {
		// Its own permissions change with its version; the ACL they
		// give is compared with its record all the same (whether or not
		// its container's changed), so that a change of how the server
		// writes ACLs reaches it too.
		return aclsOf(own).hash() != w.k.st.ACL
	}
	return w.parent.aclHash != w.k.st.ACL
}

// readDocuments reads the changed documents of a page, Concurrency at a
// time, and delivers them in the page's order, each as soon as it and
// those before it are read: at most twice Concurrency documents are held
// read and not yet handed to the batch (a document is read only once
// there is room), so that a page of big documents (PageSize of them, up
// to MaxFileBytes each) is never all held at once; a document's versions
// after its first go to the batch as they are read (readDocument). A document that cannot be read is counted and left for the next
// run. Each is read on a goroutine of its own, outside the worker's
// recovery: a panic there (in the reading of the server's answers) is the
// document's error, which ends the task (fatal), instead of the process.
func (t *taskRun) readDocuments(ctx context.Context, work []*docWork) error {
	if len(work) == 0 {
		return nil
	}
	reading := make(chan struct{}, t.s.Concurrency) // documents being read
	held := make(chan struct{}, 2*t.s.Concurrency)  // read or being read, not yet delivered
	done := make([]chan struct{}, len(work))
	for i := range done {
		done[i] = make(chan struct{})
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, w := range work {
			select {
			case held <- struct{}{}:
			case <-quit:
				return
			}
			select {
			case reading <- struct{}{}:
			case <-quit:
				return
			}
			wg.Go(func() {
				defer close(done[i])
				defer func() { <-reading }()
				defer panics.Catch(t.Log, "objectivefetch: reading a document", &w.err)
				w.err = t.readDocument(ctx, w, len(work) < int(t.s.Concurrency))
				w.gone = t.objectGone(ctx, w.err, kindDocument, w.it.ID)
			})
		}
	})
	// An early return lets no more documents be read, and waits for
	// those being read.
	defer wg.Wait()
	defer close(quit)
	for i, w := range work {
		<-done[i]
		err := t.deliverDocument(ctx, w)
		w.docs = nil // the batch has them
		<-held
		if err != nil {
			return err
		}
	}
	return nil
}

// deliverDocument hands a document that was read to the batch, or counts
// the failure to read it; it returns an error that ends the action.
func (t *taskRun) deliverDocument(ctx context.Context, w *docWork) error {
	if w.err != nil {
		if fatal(ctx, w.err) {
			return w.err
		}
		if w.gone {
			// Deleted since its folder was listed: removed (with the
			// versions this run delivered of it), as the next run would
			// find it missing; not a failure.
			w.docs = nil
			rec := &restsync.Record{Ref: objectRef(t.b.base, kindDocument, w.it.ID)}
			if w.k != nil {
				rec = w.k.rec
			}
			if len(w.kids) > 0 {
				rec = &restsync.Record{Ref: rec.Ref, Kids: slices.Clone(rec.Kids), Title: rec.Title, Parent: rec.Parent, Extra: rec.Extra}
				for _, ref := range w.kids {
					if !slices.Contains(rec.Kids, ref) {
						rec.Kids = append(rec.Kids, ref)
					}
				}
			} else if w.k == nil {
				return nil // nothing of it was delivered
			}
			t.Batch.Forget(objectKey(w.it.ID), rec)
			return t.Batch.MaybeFlush(ctx)
		}
		t.Fail(objectRef(t.s.ServerURL, kindDocument, w.it.ID), w.err)
		return nil
	}
	path := w.parent.path + "/" + docName(w.it)
	extra, _ := json.Marshal(objState{Kind: kindDocument, Path: path, Own: w.own, ACL: w.acl.hash(), Shape: docShape(t.s)})
	rec := &restsync.Record{Version: w.it.version(), Ref: w.docs[0].Reference, Title: docName(w.it), Parent: w.parent.it.ID, Extra: extra}
	for _, d := range w.docs[1:] {
		rec.Kids = append(rec.Kids, d.Reference)
	}
	rec.Kids = append(rec.Kids, w.kids...)
	var old *restsync.Record
	if w.k != nil {
		old = w.k.rec
	}
	if w.group != nil {
		// Written only when none of its other versions' documents was
		// refused.
		t.Batch.DeliverIn(w.group, objectKey(w.it.ID), rec, w.docs, old)
	} else {
		t.Batch.Deliver(objectKey(w.it.ID), rec, w.docs, old)
	}
	return t.Batch.MaybeFlush(ctx)
}

// readDocument fetches what a changed document's documents need: its
// catalogue fields, permissions, versions and contents. The task's
// requests for documents in flight stay within Concurrency. With at least
// Concurrency documents to read, each document's requests go one after
// the other (Concurrency documents keep Concurrency requests in flight,
// and more goroutines would only cost CPU); with fewer (an incremental
// run's few changes), a document's catalogue fields, permissions and
// content (or list of versions), which do not depend on each other, are
// asked for at once so that their latencies overlap.
func (t *taskRun) readDocument(ctx context.Context, w *docWork, overlap bool) error {
	it := w.it
	var cat []catalogueField
	var fieldsErr, permsErr error
	var wg sync.WaitGroup
	// run runs fn, which sets *err; on a goroutine of its own when the
	// requests overlap, where a panic is *err (a panic on the document's
	// goroutine is the document's error: readDocuments).
	run := func(err *error, fn func()) {
		if !overlap {
			t.request(fn)
			return
		}
		wg.Go(func() {
			defer panics.Catch(t.Log, "objectivefetch: reading a document", err)
			t.request(fn)
		})
	}
	if t.s.IndexFields {
		run(&fieldsErr, func() { cat, fieldsErr = t.api.fields(ctx, kindDocument, it.ID) })
	}
	if t.s.MappedSecurity {
		run(&permsErr, func() { w.own, permsErr = t.api.permissions(ctx, kindDocument, it.ID) })
	}
	path := w.parent.path + "/" + docName(it)
	// acl waits for the fields and permissions and returns the
	// document's ACL, or their error.
	acl := func() (acls, error) {
		wg.Wait()
		if err := firstError(ctx, fieldsErr, permsErr); err != nil {
			return acls{}, err
		}
		perms := w.own
		if len(perms) == 0 {
			perms = w.parent.perms
		}
		return aclsOf(perms), nil
	}
	// other hands the document of a version after the first to the
	// batch as soon as it is read: a document's versions (up to
	// MaxFileBytes each) are never all held at once. The document's own
	// record follows them in their group (deliverDocument).
	other := func(c content) error {
		a, err := acl()
		if err != nil {
			return err
		}
		if w.group == nil {
			w.group = &restsync.Group{}
		}
		d := t.b.documentDoc(ctx, t.Task, it, path, cat, a, c)
		item := restsync.Item{Docs: []*ingest.Document{d}, Group: w.group}
		if w.k == nil {
			item.Added = 1
		} else {
			item.Updated = 1
		}
		w.kids = append(w.kids, d.Reference)
		t.nameVersions(w, path, a)
		t.Batch.Add(item)
		return t.Batch.MaybeFlush(ctx)
	}
	var contents []content
	var err error
	if overlap || fieldsErr == nil && permsErr == nil { // one after the other: not after a failure
		contents, err = t.readContents(ctx, it, other)
	}
	a, aerr := acl()
	if err := firstError(ctx, aerr, err); err != nil {
		return err
	}
	w.acl = a
	for _, c := range contents {
		w.docs = append(w.docs, t.b.documentDoc(ctx, t.Task, it, path, cat, w.acl, c))
	}
	return nil
}

// objectGone reports whether the object of kind and id, whose reading
// failed with err, was deleted since its container was listed: err is a
// 404, and the server answers for the object no more (404, or 403 as
// stillGone takes it). One it still has (a version gone between the list
// of versions and its content, say) is a failure of the run, read again by
// the next one.
func (t *taskRun) objectGone(ctx context.Context, err error, kind, id string) bool {
	if err == nil || id == "" || fatal(ctx, err) || !errors.Is(err, messages.ErrNotFound) {
		return false // an object without an id cannot be asked for
	}
	t.request(func() { _, err = t.api.object(ctx, kind, id) })
	var se *restsync.StatusError
	return errors.Is(err, messages.ErrNotFound) || errors.As(err, &se) && se.Status == http.StatusForbidden
}

// firstError returns the first of errs that ends the action, else the
// first that is not nil.
func firstError(ctx context.Context, errs ...error) error {
	for _, err := range errs {
		if err != nil && fatal(ctx, err) {
			return err
		}
	}
	return cmp.Or(errs...)
}

// nameVersions writes, ahead of each version of document w that goes to
// the batch before the document itself, a provisional record of w that
// names them (w.kids, with what its old record named) and has no version:
// if the run ends, or w cannot be read, before its own record is written,
// the versions already delivered are still named, so that w's removal
// removes them, and the next run reads w again (its version differs) and
// removes what its new record no longer names. w's own record replaces it
// (deliverDocument). a is w's ACL.
func (t *taskRun) nameVersions(w *docWork, path string, a acls) {
	extra, _ := json.Marshal(objState{Kind: kindDocument, Path: path, Own: w.own, ACL: a.hash(), Shape: docShape(t.s)})
	rec := &restsync.Record{Ref: objectRef(t.b.base, kindDocument, w.it.ID), Title: docName(w.it), Parent: w.parent.it.ID, Extra: extra}
	if w.k != nil {
		rec.Kids = slices.Clone(w.k.rec.Kids)
	}
	for _, ref := range w.kids {
		if !slices.Contains(rec.Kids, ref) {
			rec.Kids = append(rec.Kids, ref)
		}
	}
	t.Batch.Record(objectKey(w.it.ID), rec)
}

// readContents downloads the versions of a document that Versions asks
// for, the current one first: it returns the first one's content, and
// gives each other one to other as soon as it is read.
func (t *taskRun) readContents(ctx context.Context, it *item, other func(content) error) ([]content, error) {
	download := func(vID string) (f *restsync.File, err error) {
		t.request(func() { f, err = t.api.content(ctx, it.ID, vID, t.s.MaxFileBytes) })
		return f, err
	}
	if t.s.Versions == VersionsCurrent {
		f, err := download("")
		if err != nil {
			return nil, err
		}
		return []content{{file: f}}, nil
	}
	var vs []version
	var err error
	t.request(func() { vs, err = t.api.versions(ctx, it.ID) })
	if err != nil {
		return nil, err
	}
	// The current version first: its document is the document's own.
	slices.SortStableFunc(vs, func(a, b version) int {
		return boolInt(b.ID == it.CurrentVersionID || b.VersionNumber == it.CurrentVersionNumber) - boolInt(a.ID == it.CurrentVersionID || a.VersionNumber == it.CurrentVersionNumber)
	})
	var contents []content
	for i := range vs {
		v := &vs[i]
		current := i == 0 && (v.ID == it.CurrentVersionID || v.VersionNumber == it.CurrentVersionNumber)
		if !current && t.s.Versions == VersionsCorporate && !v.CorporateValue {
			continue
		}
		if current {
			it.CurrentVersionID = v.ID
		}
		f, err := download(v.ID)
		if err != nil {
			return nil, err
		}
		if len(contents) == 0 {
			contents = append(contents, content{file: f, v: v})
		} else if err := other(content{file: f, v: v}); err != nil {
			return nil, err
		}
	}
	if len(contents) == 0 {
		f, err := download("")
		if err != nil {
			return nil, err
		}
		contents = append(contents, content{file: f})
	}
	return contents, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// forgetGone removes what complete listings no longer show: every object
// not seen whose container was listed to the end, and everything under
// it; and what is no longer under any root (a root taken out of
// RootFolders: its container was neither walked nor indexed), with
// everything under it; and a container excluded by FolderCantHaveRegex,
// with everything under it. It is called only when every root was
// resolved.
//
// A listing is read page by page (offset and limit), so an object
// deleted from a page already read shifts the next pages: the object
// that moved up to the page read is in neither. An object missing from
// its container's listing is therefore asked for first, and removed
// only when it is gone (404, 403) or no longer in a container walked;
// one the server cannot answer for is kept until the next run. Objects
// under a removed one are not asked for.
func (t *taskRun) forgetGone(ctx context.Context) error {
	missing := map[string]bool{} // missing from a complete listing: to ask for
	for id, k := range t.known {
		if !t.seen[id] && t.completed[k.rec.Parent] && !t.completed[id] && !t.excluded[id] && !t.vanished[id] {
			missing[id] = true
		}
	}
	confirmed, err := t.stillGone(ctx, missing)
	if err != nil {
		return err
	}
	maps.Copy(confirmed, t.vanished)
	gone := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for id, k := range t.known {
			if gone[id] || t.seen[id] {
				continue
			}
			p := k.rec.Parent
			outside := !t.seen[p] && t.known[p] == nil
			if confirmed[id] || gone[p] || t.completed[id] || t.excluded[id] || outside {
				gone[id] = true
				changed = true
			}
		}
	}
	for id := range gone {
		t.Batch.Forget(objectKey(id), t.known[id].rec)
		// In batches of the Batch's size, as deliveries: one removal of
		// a whole tree is one call of as many requests as it has
		// objects over IngestBatchSize, all sent again when one fails.
		if err := t.Batch.MaybeFlush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stillGone asks for each object of ids and returns those that are gone:
// not found (or forbidden), or now in a container that was not walked.
// An error that ends the action is returned; another one keeps the
// object (a failure of the task). The objects are asked for one after
// the other: a run finds few deletions, and a folder deleted with all
// under it costs one request.
func (t *taskRun) stillGone(ctx context.Context, ids map[string]bool) (map[string]bool, error) {
	gone := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if err := t.Job.Checkpoint(ctx); err != nil {
			return nil, err
		}
		k := t.known[id]
		kind := cmp.Or(k.st.Kind, kindOf(id))
		it, err := t.api.object(ctx, kind, id)
		var se *restsync.StatusError
		switch {
		case err == nil:
			if it.ParentID != k.rec.Parent && !t.seen[it.ParentID] {
				gone[id] = true // moved out of what is indexed
			}
		case errors.Is(err, messages.ErrNotFound) || errors.As(err, &se) && se.Status == http.StatusForbidden:
			gone[id] = true
		case fatal(ctx, err):
			return nil, err
		default:
			t.Fail(objectRef(t.s.ServerURL, kind, id), err)
		}
	}
	return gone, nil
}
