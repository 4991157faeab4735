package httpfetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// byTask returns the entries of task, the first of each reference only.
func byTask(ids []idEntry, task string) []idEntry {
	var out []idEntry
	seen := map[string]bool{}
	for _, e := range ids {
		if e.id.Task == task && !seen[e.id.Reference] {
			seen[e.id.Reference] = true
			out = append(out, e)
		}
	}
	return out
}

// knownEntries splits entries into those whose reference has a record in
// ds (returned with their records) and the others (reported as failed).
func knownEntries(ds store.Datastore, entries []idEntry, task string, cnt *fetch.Counts, o *restsync.Outcome) ([]idEntry, map[string]*record, error) {
	var known []idEntry
	recs := map[string]*record{}
	for _, e := range entries {
		rec, err := getRecord(ds, e.id.Reference)
		if err != nil {
			return nil, nil, err
		}
		if rec == nil {
			cnt.Errors.Add(1)
			o.Failure(e.raw, fmt.Sprintf("%s is not a page known to task %s (run a Synchronize first)", e.id.Reference, task))
			continue
		}
		known = append(known, e)
		recs[e.id.Reference] = rec
	}
	return known, recs, nil
}

func refsOf(entries []idEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.id.Reference
	}
	return out
}

// collect fetches each identifier's page now and writes its bytes and an
// IDX sidecar (AUTN_IDENTIFIER, AUTN_COLLECTTIME, and IdentifiersXML
// metadata) to the destination folder.
func (r *Repository) collect(ctx context.Context, job *fetch.Job, p *plan) ([]*messages.Element, error) {
	o := &restsync.Outcome{}
	for _, task := range p.tasks {
		if err := r.collectTask(ctx, job, p, task, o); err != nil {
			return o.Elements(), err
		}
	}
	return o.Elements(), nil
}

func (r *Repository) collectTask(ctx context.Context, job *fetch.Job, p *plan, task string, o *restsync.Outcome) error {
	ds, err := r.datastore(task)
	if err != nil {
		return err
	}
	_, end, err := r.begin(ds, fetch.ActionCollect, false)
	if err != nil {
		return err
	}
	defer end()
	cnt := counts(job, task)
	entries, _, err := knownEntries(ds, byTask(p.ids, task), task, cnt, o)
	if err != nil {
		return err
	}
	if err := job.Checkpoint(ctx); err != nil {
		return err
	}
	tr, err := r.startTask(ctx, p.settings(task), PurposeCollect, r.log.With("task", task))
	if err != nil {
		return fmt.Errorf("task %s: %w", task, err)
	}
	defer tr.end()
	got, err := r.fetchNow(ctx, p.settings(task), tr, refsOf(entries))
	if err != nil {
		return err
	}
	for _, e := range entries {
		f := got[e.id.Reference]
		if f.err != nil {
			cnt.Errors.Add(1)
			o.Failure(e.raw, f.err.Error())
			continue
		}
		dest := e.destination
		if dest == "" {
			dest = p.destination
		}
		name := e.filename
		if name == "" {
			sum := sha256.Sum256([]byte(e.id.Reference))
			name = hex.EncodeToString(sum[:6]) + "_" + fileName(f.page.FinalURL, f.page.MediaType)
		}
		side := &ingest.Document{Reference: e.id.Reference, Fields: append([]ingest.Field{
			{Name: FieldIdentifier, Value: EncodeIdentifier(task, e.id.Reference)},
			{Name: FieldCollectTime, Value: unixString(r.now())},
		}, e.metadata...)}
		var idx bytes.Buffer
		if err := ingest.WriteIDX(&idx, side); err != nil {
			cnt.Errors.Add(1)
			o.Failure(e.raw, fmt.Sprintf("httpfetch: collect: sidecar: %v", err))
			continue
		}
		if err := r.writeCollected(dest, name, f.page.Body, idx.Bytes()); err != nil {
			cnt.Errors.Add(1)
			o.Failure(e.raw, err.Error())
			continue
		}
		cnt.Collected.Add(1)
		o.Success(e.raw)
	}
	return nil
}

// identifiers lists the task's documents from its datastore. Web pages
// form a flat list: every page is a document directly under ROOT (a page
// has no children, so MaxDepth changes nothing and ContainersOnly lists
// nothing).
func (r *Repository) identifiers(ctx context.Context, job *fetch.Job, p *plan) ([]*messages.Element, error) {
	task := p.tasks[0]
	ds, err := r.datastore(task)
	if err != nil {
		return nil, err
	}
	_, end, err := r.begin(ds, fetch.ActionIdentifiers, false)
	if err != nil {
		return nil, err
	}
	defer end()
	cnt := counts(job, task)
	opt := p.list
	typeOK := len(opt.filterTypes) == 0 || containsFold(opt.filterTypes, identifierType)
	var out []*messages.Element
	for _, parent := range opt.parents {
		g := &messages.Element{Name: "identifiers", List: true, Attrs: []*messages.Param{{Name: "parent_identifier", Value: parent}}}
		out = append(out, g)
		if parent != "ROOT" || opt.containersOnly || !typeOK {
			continue
		}
		n := 0
		err := forEachRecord(ds, func(u string, rec *record) error {
			if n++; n%256 == 0 {
				if err := job.Checkpoint(ctx); err != nil {
					return err
				}
			}
			if rec.Excluded && !opt.showExcluded {
				return nil
			}
			el := &messages.Element{Name: "identifier", List: true, Text: EncodeIdentifier(task, u)}
			if opt.showTypes {
				el.Attrs = append(el.Attrs, &messages.Param{Name: "type", Value: identifierType})
			}
			if opt.showAttributes {
				attrs := "document"
				if rec.Excluded {
					attrs = "document,excluded"
				}
				el.Attrs = append(el.Attrs, &messages.Param{Name: "attributes", Value: attrs})
			}
			if opt.showNames {
				name := rec.Title
				if name == "" {
					name = u
				}
				el.Attrs = append(el.Attrs, &messages.Param{Name: "name", Value: name})
			}
			g.Children = append(g.Children, el)
			cnt.Seen.Add(1)
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// identifierType is the type of every item the HTTP connector lists.
const identifierType = "Web Page"

// delete removes documents from the target and forgets them in the
// datastore. A page still on the site comes back with the next
// Synchronize.
func (r *Repository) delete(ctx context.Context, job *fetch.Job, p *plan) ([]*messages.Element, error) {
	o := &restsync.Outcome{}
	for _, task := range p.tasks {
		if err := r.deleteTask(ctx, job, p, task, o); err != nil {
			return o.Elements(), err
		}
	}
	return o.Elements(), nil
}

func (r *Repository) deleteTask(ctx context.Context, job *fetch.Job, p *plan, task string, o *restsync.Outcome) error {
	unlock, err := r.lock(ctx, task)
	if err != nil {
		return err
	}
	defer unlock()
	ds, err := r.datastore(task)
	if err != nil {
		return err
	}
	_, end, err := r.begin(ds, fetch.ActionDelete, false)
	if err != nil {
		return err
	}
	defer end()
	cnt := counts(job, task)
	entries := byTask(p.ids, task)
	for lo := 0; lo < len(entries); lo += r.batchSize {
		if err := job.Checkpoint(ctx); err != nil {
			return err
		}
		batch := entries[lo:min(lo+r.batchSize, len(entries))]
		if r.target != nil {
			dctx, cancel := restsync.DeliveryContext(ctx, deliveryTimeout)
			errs := restsync.RemoveRefs(dctx, r.target, refsOf(batch))
			cancel()
			if errs != nil {
				// Only the references the target refused fail; the
				// others were removed and are forgotten below.
				removed := batch[:0:0]
				for i, e := range batch {
					if errs[i] != nil {
						o.Failure(e.raw, errs[i].Error())
					} else {
						removed = append(removed, e)
					}
				}
				failed := uint64(len(batch) - len(removed))
				cnt.IngestFailed.Add(failed)
				cnt.Errors.Add(failed)
				batch = removed
			}
			cnt.IngestDeleted.Add(uint64(len(batch)))
			// Another task that indexes a page removed here delivers it
			// again with its next Synchronize, as this task does (its
			// record said the target holds it).
			r.unheldElsewhere(task, refsOf(batch))
		}
		refs := refsOf(batch)
		err := ds.Update(func(w store.Writer) error {
			for _, ref := range refs {
				if err := w.Delete(urlKey(ref)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("httpfetch: datastore %s: %w", task, err)
		}
		cnt.Deleted.Add(uint64(len(refs)))
		for _, e := range batch {
			o.Success(e.raw)
		}
	}
	return nil
}

// insert delivers the documents of InsertXML to the target. They do not
// enter the datastore: a Synchronize neither lists nor deletes them.
func (r *Repository) insert(ctx context.Context, job *fetch.Job, p *plan) ([]*messages.Element, error) {
	task := p.tasks[0]
	ds, err := r.datastore(task)
	if err != nil {
		return nil, err
	}
	_, end, err := r.begin(ds, fetch.ActionInsert, false)
	if err != nil {
		return nil, err
	}
	defer end()
	cnt := counts(job, task)
	o := &restsync.Outcome{}
	x := p.settings(task).extractor()
	if x == nil {
		x = htmlAndText // extraction off: HTML and text as before
	}
	type ready struct {
		d   insertDoc
		doc *ingest.Document
	}
	var batch []ready
	size := 0
	deliver := func() {
		size = 0
		if len(batch) == 0 {
			return
		}
		docs := make([]*ingest.Document, len(batch))
		for i, b := range batch {
			docs[i] = b.doc
		}
		dctx, cancel := restsync.DeliveryContext(ctx, deliveryTimeout)
		err := r.target.Add(dctx, docs)
		cancel()
		// A document the target refused on its own (CFS: too large for
		// a request of its own) fails alone: the others were delivered.
		var pe *ingest.PartialError
		if errors.As(err, &pe) {
			err = nil
		}
		var failed uint64
		for i, b := range batch {
			id := EncodeIdentifier(task, b.d.reference)
			if b.d.insertID != "" {
				o.Inserted = append(o.Inserted, restsync.Inserted{ID: id, InsertID: b.d.insertID})
			}
			derr := err
			if pe != nil {
				derr = pe.Refused[i]
			}
			if derr != nil {
				o.Failure(id, derr.Error())
				failed++
				continue
			}
			o.Success(id)
			if b.d.fileType == "tempfile" {
				if rerr := r.removeInsertFile(b.d.path); rerr != nil {
					r.log.Warn("cannot remove an inserted temporary file", "path", b.d.path, "error", rerr)
				}
			}
		}
		cnt.IngestFailed.Add(failed)
		cnt.Errors.Add(failed)
		// Delivered to the target: an ingestion add like a crawled
		// page's, so ingestadded and ingestfailed account for every
		// inserted document.
		cnt.Inserted.Add(uint64(len(batch)) - failed)
		cnt.IngestAdded.Add(uint64(len(batch)) - failed)
		batch = batch[:0]
	}
	for _, d := range p.inserts {
		if err := job.Checkpoint(ctx); err != nil {
			return o.Elements(), err // stopped: what is not delivered yet is dropped
		}
		doc, xerr, err := r.insertDocument(ctx, &d, task, p.settings(task).MaxPageBytes, x)
		if xerr != nil && ctx.Err() == nil {
			cnt.Errors.Add(1)
			r.log.Warn("text extraction failed; the document is inserted without text", "reference", secret.LogURL(d.reference), "error", xerr)
		}
		if err != nil {
			cnt.Errors.Add(1)
			id := EncodeIdentifier(task, d.reference)
			if d.insertID != "" {
				o.Inserted = append(o.Inserted, restsync.Inserted{ID: id, InsertID: d.insertID})
			}
			o.Failure(id, err.Error())
			continue
		}
		batch = append(batch, ready{d, doc})
		if size += docBytes(doc); len(batch) >= r.batchSize || size >= r.batchBytes() {
			deliver()
		}
	}
	deliver()
	return o.Elements(), nil
}

// insertDocument builds the document to insert, reading a file (at most
// limit bytes, the task's MaxPageBytes) when <type> is file or tempfile,
// and extracts its text with x. An extraction failure (xerr) leaves the
// document without text, with its bytes as Source and an EXTRACT_ERROR
// field.
func (r *Repository) insertDocument(ctx context.Context, d *insertDoc, task string, limit int64, x *extract.Extractor) (doc *ingest.Document, xerr, err error) {
	doc = &ingest.Document{Reference: d.reference, Fields: []ingest.Field{{Name: FieldIdentifier, Value: EncodeIdentifier(task, d.reference)}}}
	if d.displayName != "" {
		doc.Fields = append(doc.Fields, ingest.Field{Name: FieldFileName, Value: d.displayName})
	}
	doc.Fields = append(doc.Fields, d.metadata...)
	var data []byte
	switch d.fileType {
	case "drecontent":
		doc.Content = string(d.content)
		return doc, nil, nil
	case "content":
		data = d.content
	case "file", "tempfile":
		b, err := r.readInsertFile(d.path, limit)
		if err != nil {
			return nil, nil, err
		}
		data = b
	default:
		return doc, nil, nil
	}
	mt := ""
	if ext := filepath.Ext(d.displayName); ext != "" {
		mt = mime.TypeByExtension(ext)
	}
	if mt == "" && d.path != "" {
		mt = mime.TypeByExtension(filepath.Ext(d.path))
	}
	if mt == "" {
		mt = http.DetectContentType(data)
	}
	// The type without its parameters: the charset=utf-8 that
	// TypeByExtension and DetectContentType give every text type is
	// their default, not the file's, which the extractor finds itself (a
	// BOM, <meta charset>, else UTF-8 or Windows-1252).
	essence, _, _ := mime.ParseMediaType(mt)
	name := d.displayName
	if name == "" {
		name = d.path
	}
	in := extract.Input{Data: data, ContentType: essence, Name: name}
	f := extract.Detect(in)
	if f != extract.Text && f != extract.HTML {
		doc.Source, doc.SourceType = data, essence
	}
	if (f == extract.Text || f == extract.HTML) && !x.Handles(f) {
		x = htmlAndText // HTML and text always have their text
	}
	if !x.Handles(f) {
		return doc, nil, nil
	}
	xd, xerr := x.Extract(ctx, in)
	if xerr != nil {
		if ctx.Err() == nil {
			doc.Fields = append(doc.Fields, ingest.Field{Name: FieldExtractError, Value: xerr.Error()})
		}
		return doc, xerr, nil
	}
	doc.Content = xd.Text
	addExtracted(doc, xd, true)
	return doc, nil, nil
}

// update fetches the identifiers' pages now and delivers them again: with
// the IdentifiersXML metadata added (FetchAction=Update: counted as
// updated), or as they are (Synchronize with Identifiers: counted as seen
// and added or updated). The datastore records the new content; Update's
// metadata is kept in the record and sent with every later version.
func (r *Repository) update(ctx context.Context, job *fetch.Job, p *plan, sync bool) ([]*messages.Element, error) {
	o := &restsync.Outcome{}
	for _, task := range p.tasks {
		if err := r.updateTask(ctx, job, p, task, sync, o); err != nil {
			return o.Elements(), err
		}
	}
	return o.Elements(), nil
}

func (r *Repository) updateTask(ctx context.Context, job *fetch.Job, p *plan, task string, sync bool, o *restsync.Outcome) error {
	unlock, err := r.lock(ctx, task)
	if err != nil {
		return err
	}
	defer unlock()
	ds, err := r.datastore(task)
	if err != nil {
		return err
	}
	action := fetch.ActionUpdate
	if sync {
		action = fetch.ActionSynchronize
	}
	_, end, err := r.begin(ds, action, false)
	if err != nil {
		return err
	}
	defer end()
	cnt := counts(job, task)
	s := p.settings(task)
	entries, recs, err := knownEntries(ds, byTask(p.ids, task), task, cnt, o)
	if err != nil {
		return err
	}
	if err := job.Checkpoint(ctx); err != nil {
		return err
	}
	tr, err := r.startTask(ctx, s, PurposeRefetch, r.log.With("task", task))
	if err != nil {
		return fmt.Errorf("task %s: %w", task, err)
	}
	defer tr.end()
	got, err := r.fetchNow(ctx, s, tr, refsOf(entries))
	if err != nil {
		return err
	}
	var batch []*change
	var raws []string
	apply := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := r.apply(ctx, ds, cnt, batch, r.log, func(u, reason string) { job.Fail(task, u, reason) }); err != nil {
			return err
		}
		for i, c := range batch {
			if r.target != nil && !c.rec.deliveredCurrent() {
				o.Failure(raws[i], "delivery to the ingestion target failed; see the log")
				continue
			}
			o.Success(raws[i])
		}
		batch, raws = batch[:0], raws[:0]
		return nil
	}
	for _, e := range entries {
		ref, rec := e.id.Reference, recs[e.id.Reference]
		f := got[ref]
		switch {
		case f.err != nil:
			cnt.Errors.Add(1)
			o.Failure(e.raw, f.err.Error())
			continue
		case f.page.FinalURL != ref:
			cnt.Errors.Add(1)
			o.Failure(e.raw, fmt.Sprintf("the page now redirects to %s; a Synchronize will pick that up", f.page.FinalURL))
			continue
		case !s.ingestible(ref):
			cnt.Errors.Add(1)
			o.Failure(e.raw, "the page is excluded by UrlMustHaveRegex or UrlCantHaveRegex")
			continue
		}
		pg := f.page
		if pg.RenderErr != nil {
			cnt.Errors.Add(1)
			job.Fail(task, ref, "rendering failed (delivered as served): "+pg.RenderErr.Error())
			r.log.Warn("rendering failed; the page is delivered as served", "url", secret.LogURL(ref), "error", pg.RenderErr)
		}
		extra := mergeFields(rec.Extra, e.metadata)
		nr := *rec
		nr.ETag, nr.LastModified = pg.Header.Get("ETag"), pg.Header.Get("Last-Modified")
		hash := pg.Hash() // the fetch kept the body (fetchNow)
		nr.Hash, nr.Excluded, nr.Extra, nr.Unrendered = hash[:], false, extra, pg.RenderErr != nil
		nr.Title, nr.MediaType, nr.Size, nr.FetchedMs = pageTitle(pg.Title, ref), pg.MediaType, int64(len(pg.Body)), pg.FetchedAt.UnixMilli()
		if nr.Extract = ""; !textType(nr.MediaType) {
			nr.Extract = s.extractShape()
		}
		nr.XV = extract.Version
		nr.Render = tr.shape(nr.MediaType, ref)
		if pg.Links != nil {
			nr.Links = pg.Prior().Links
		}
		pg.Depth, pg.Parent = rec.Depth, rec.Parent // a crawl property, not the fetch's
		c := &change{key: ref, rec: &nr, prev: rec.Delivered, kind: kindUpdated, seen: sync}
		switch {
		case !sync:
		case r.target != nil && rec.Delivered == nil:
			c.kind = kindAdded
		case r.target == nil && bytes.Equal(rec.Hash, nr.Hash):
			c.kind = kindUnchanged
		}
		if r.target != nil {
			doc, err := documentNow(ctx, s.extractor(), tr, task, pg, extra)
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err != nil {
				cnt.Errors.Add(1)
				r.log.Warn("text extraction failed; the document is delivered without text", "url", secret.LogURL(ref), "error", err)
			}
			c.doc = doc
		}
		batch, raws = append(batch, c), append(raws, e.raw)
		if len(batch) >= r.batchSize {
			if err := apply(); err != nil {
				return err
			}
		}
	}
	return apply()
}

// mergeFields returns old with every field named in add replaced by add's
// values of that name, followed by add's other fields.
func mergeFields(old, add []ingest.Field) []ingest.Field {
	if len(add) == 0 {
		return old
	}
	names := map[string]bool{}
	for _, f := range add {
		names[strings.ToUpper(f.Name)] = true
	}
	out := make([]ingest.Field, 0, len(old)+len(add))
	for _, f := range old {
		if !names[strings.ToUpper(f.Name)] {
			out = append(out, f)
		}
	}
	return append(out, add...)
}

// batchBytes bounds the documents a batch holds in memory: a batch is
// delivered once they reach [Server] MaxRequestBytes, whatever
// IngestBatchSize says, so that large pages or inserted files are not held
// a hundred at a time.
func (r *Repository) batchBytes() int { return r.cfg.Server.MaxRequestBytes }

// docBytes is about what a document holds in memory.
func docBytes(d *ingest.Document) int {
	if d == nil {
		return 0
	}
	n := len(d.Reference) + len(d.Content) + len(d.Source)
	for _, f := range d.Fields {
		n += len(f.Name) + len(f.Value)
	}
	return n
}
