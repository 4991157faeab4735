package mailfetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mimedoc"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/messages"
)

func notFound(format string, args ...any) error {
	return fmt.Errorf("mailfetch: "+format+": %w", append(args, messages.ErrNotFound)...)
}

// knownRecord returns the record of an identifier's message, or nil when
// the task never delivered it.
func (r *Repository) knownRecord(id Identifier) (*record, error) {
	names, err := r.st.DatastoreNames()
	if err != nil || !slices.Contains(names, id.Task) {
		return nil, err
	}
	ds, err := r.datastore(id.Task)
	if err != nil {
		return nil, err
	}
	b, err := ds.Get(recordKey(id.Collection, id.Key))
	if err != nil || b == nil {
		return nil, err
	}
	rec := &record{}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// item is one fetched message or attachment.
type item struct {
	ref, mime, name string
	content         []byte
	doc             *ingest.Document
}

// fetchItem fetches what an identifier names from the server, now.
func (r *Repository) fetchItem(ctx context.Context, mb mailbox.Mailbox, id Identifier) (*item, error) {
	s := r.set[id.Task]
	c := mailbox.Collection{Name: id.Collection}
	m, err := mb.Get(ctx, c, id.Key)
	if err != nil {
		if errors.Is(err, mailbox.ErrNotFound) {
			return nil, notFound("message %s of folder %q is gone", id.Key, id.Collection)
		}
		return nil, err
	}
	builder, err := newDocBuilder(s)
	if err != nil {
		return nil, err
	}
	bl := builder.build(ctx, id.Task, c, m)
	if id.Section == "" {
		name := "message.eml"
		if bl.title != "" {
			name = restsync.SafeName(bl.title) + ".eml"
		}
		return &item{ref: m.Reference, mime: "message/rfc822", name: name, content: m.Raw, doc: bl.docs[0]}, nil
	}
	p := mimedoc.Parse(m.Raw, m.Truncated, s.MIME, nil)
	for i, a := range p.Attachments {
		if a.Section != id.Section {
			continue
		}
		var doc *ingest.Document
		for _, d := range bl.docs[1:] {
			if _, sec := splitSection(d.Reference); sec == a.Section {
				doc = d
			}
		}
		if doc == nil {
			doc = &ingest.Document{Reference: m.Reference + sectionSuffix + a.Section}
		}
		name := a.FileName
		if name == "" {
			name = fmt.Sprintf("part-%d", i+1)
		}
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		return &item{ref: doc.Reference, mime: ct, name: restsync.SafeName(name), content: a.Data, doc: doc}, nil
	}
	return nil, notFound("message %s has no attachment %s", id.Key, id.Section)
}

// View implements fetch.Viewer: the raw message (message/rfc822), or the
// attachment's bytes, fetched from the server now, with the document's
// fields as metadata. Only messages the task delivered can be viewed.
func (r *Repository) View(ctx context.Context, identifier string, _ messages.Params) (*fetch.ViewResult, error) {
	id, err := DecodeIdentifier(identifier)
	if err != nil {
		return nil, messages.Invalid("Identifier", identifier, err.Error())
	}
	if !r.hasTask(id.Task) {
		return nil, messages.Invalid("Identifier", identifier, "names task "+id.Task+", which is not configured")
	}
	rec, err := r.knownRecord(id)
	if err != nil {
		return nil, fmt.Errorf("mailfetch: view: %w", err)
	}
	if rec == nil {
		return nil, notFound("view: task %s has not indexed message %s of %q", id.Task, id.Key, id.Collection)
	}
	mb, err := r.open(ctx, r.set[id.Task])
	if err != nil {
		return nil, err
	}
	defer mb.Close()
	it, err := r.fetchItem(ctx, mb, id)
	if err != nil {
		return nil, err
	}
	meta := make([]*messages.Param, 0, len(it.doc.Fields))
	for _, f := range it.doc.Fields {
		meta = append(meta, &messages.Param{Name: f.Name, Value: f.Value})
	}
	return &fetch.ViewResult{Reference: it.ref, MimeType: it.mime, FileName: it.name, Content: it.content, Metadata: meta}, nil
}

// collect fetches each identified message or attachment now and writes it
// to Destination, with an IDX file of its document's fields beside it
// ("<name>.idx", AUTN_COLLECTTIME added). Files are written through
// os.Root, so nothing is written outside [Security] CollectFolders, and an
// existing file is never replaced (a number is added to the name).
func (r *Repository) collect(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	o := &restsync.Outcome{}
	c, err := restsync.OpenCollector(req.Destination)
	if err != nil {
		return nil, fmt.Errorf("mailfetch: %w", err)
	}
	defer c.Close()
	for _, task := range req.Tasks {
		ds, err := r.datastore(task)
		if err != nil {
			return nil, err
		}
		done := restsync.NoteAction(ds, restsync.ActionCollect, r.now, r.log)
		var mb mailbox.Mailbox
		seen := map[Identifier]bool{}
		for _, e := range req.ids {
			if e.id.Task != task || seen[e.id] {
				// Given twice: one message or attachment, collected
				// once (one success), as Delete takes it.
				continue
			}
			seen[e.id] = true
			if err := job.Checkpoint(ctx); err != nil {
				done()
				return o.Elements(), err
			}
			rec, err := r.knownRecord(e.id)
			if err != nil {
				done()
				return o.Elements(), err
			}
			if rec == nil {
				o.Failure(e.raw, "the task has not indexed this message")
				continue
			}
			if mb == nil {
				if mb, err = r.open(ctx, r.set[task]); err != nil {
					done()
					return o.Elements(), err
				}
				defer mb.Close()
			}
			it, err := r.fetchItem(ctx, mb, e.id)
			if err == nil {
				_, err = c.Write(it.name, it.content, it.doc, r.now())
			}
			if err != nil {
				if collectFatal(ctx, err) {
					done()
					return o.Elements(), err
				}
				// The server would not give this one (it is gone, or
				// it answered an error for it): it is listed as failed
				// and the others are collected, as the other
				// connectors' Collect does.
				o.Failure(e.raw, err.Error())
				if !errors.Is(err, messages.ErrNotFound) {
					restsync.Counts(job, task).Errors.Add(1)
				}
				continue
			}
			restsync.Counts(job, task).Collected.Add(1)
			o.Success(e.raw)
		}
		done()
	}
	return o.Elements(), nil
}

// collectFatal reports whether an error of collecting one item ends the
// action: the account is refused (every other item would be too), reading
// it panicked, or the action was stopped.
func collectFatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, mailbox.ErrAuth) || errors.Is(err, panics.ErrPanic)
}

// identifiers lists the messages a task has indexed: one identifier per
// message, under ROOT, in folder and key order, with its subject as name.
func (r *Repository) identifiers(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	task := req.Tasks[0]
	ds, err := r.datastore(task)
	if err != nil {
		return nil, err
	}
	defer restsync.NoteAction(ds, restsync.ActionIdentifiers, r.now, r.log)()
	cnt := restsync.Counts(job, task)
	g := &messages.Element{Name: "identifiers", List: true, Attrs: []*messages.Param{{Name: "parent_identifier", Value: "ROOT"}}}
	n := 0
	err = ds.ForEach(func(k, v []byte) error {
		if !bytes.HasPrefix(k, []byte(recordPrefix)) {
			return nil
		}
		if n++; n%256 == 0 {
			if err := job.Checkpoint(ctx); err != nil {
				return err
			}
		}
		coll, key, ok := strings.Cut(string(k[len(recordPrefix):]), "\x00")
		if !ok {
			return nil
		}
		rec := &record{}
		if json.Unmarshal(v, rec) != nil {
			return nil
		}
		name := rec.Title
		if name == "" {
			name = rec.Ref
		}
		g.Children = append(g.Children, &messages.Element{Name: "identifier", List: true,
			Text:  Identifier{Task: task, Collection: coll, Key: key}.Encode(),
			Attrs: []*messages.Param{{Name: "name", Value: name}, {Name: "type", Value: "Mail Message"}, {Name: "attributes", Value: "document"}}})
		cnt.Seen.Add(1)
		return nil
	})
	return []*messages.Element{g}, err
}

// delete deletes messages on the server (IMAP: \Deleted and expunge;
// Gmail API: trash, or delete with DeleteMode=DELETE), then removes their
// documents from the target and forgets them. An attachment cannot be
// deleted on its own, and only a message the task has indexed is deleted
// (an identifier of any other fails, as with View and Collect).
func (r *Repository) delete(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	o := &restsync.Outcome{}
	for _, task := range req.Tasks {
		if err := r.deleteTask(ctx, job, req, task, o); err != nil {
			return o.Elements(), err
		}
	}
	return o.Elements(), nil
}

func (r *Repository) deleteTask(ctx context.Context, job *fetch.Job, req *request, task string, o *restsync.Outcome) error {
	ds, err := r.datastore(task)
	if err != nil {
		return err
	}
	defer restsync.NoteAction(ds, restsync.ActionDelete, r.now, r.log)()
	cnt := restsync.Counts(job, task)
	byColl := map[string][]idEntry{}
	recs := map[Identifier]*record{}
	var colls []string
	for _, e := range req.ids {
		if e.id.Task != task {
			continue
		}
		if e.id.Section != "" {
			o.Failure(e.raw, "an attachment cannot be deleted on its own: delete its message")
			continue
		}
		if _, dup := recs[e.id]; dup {
			// Given twice: one message, deleted and forgotten once
			// (forgotten twice, it would release another folder's
			// hold on its reference too, and its document would go).
			continue
		}
		// Only a message the task indexed is deleted, as only such a
		// message can be viewed or collected: a stale or crafted
		// identifier must not delete (with DeleteMode=DELETE,
		// irrecoverably) a message the task never delivered.
		rec, err := r.knownRecord(e.id)
		if err != nil {
			return fmt.Errorf("mailfetch: delete: %w", err)
		}
		if rec == nil {
			o.Failure(e.raw, "the task has not indexed this message")
			continue
		}
		recs[e.id] = rec
		if _, ok := byColl[e.id.Collection]; !ok {
			colls = append(colls, e.id.Collection)
		}
		byColl[e.id.Collection] = append(byColl[e.id.Collection], e)
	}
	if len(colls) == 0 {
		return nil
	}
	mb, err := r.open(ctx, r.set[task])
	if err != nil {
		return err
	}
	defer mb.Close()
	b := r.newBatch(ds, cnt, r.log)
	b.Report = restsync.FailOf(job, task)
	b.Wrote = func() { r.wrote[task].Add(1) } // (shared.othersWrote)
	shAll := r.shared(task, ds, r.log)
	if shAll != nil {
		b.Keep = shAll.keepBatch
	}
	defer b.Close()
	// On Gmail a message deleted from one folder (its label taken off)
	// may still be in another folder indexed, under the same reference:
	// its documents stay while another folder's record (or another
	// task's, of another of its labels) holds it (the
	// records are read only for such a reference, over IMAP: the Gmail
	// API's one collection trashes or deletes the message itself).
	var h *holders
	held := func() (*holders, error) {
		if h == nil {
			st, err := loadState(ds)
			if err != nil {
				return nil, fmt.Errorf("mailfetch: read the datastore of %s: %w", task, err)
			}
			if h = countHolders(st, nil); h == nil {
				h = newHolders()
			}
		}
		return h, nil
	}
	for _, coll := range colls {
		var keys []string
		for _, e := range byColl[coll] {
			keys = append(keys, e.id.Key)
		}
		err := mb.Delete(ctx, mailbox.Collection{Name: coll}, keys)
		// Keys that name no message any more (a new UIDVALIDITY): not
		// deleted, and their records and documents stay.
		var nd *mailbox.NotDeleted
		var left []string
		if errors.As(err, &nd) {
			left, err = nd.Keys, nil
		}
		if err != nil {
			for _, e := range byColl[coll] {
				o.Failure(e.raw, err.Error())
			}
			cnt.Errors.Add(uint64(len(keys)))
			continue
		}
		for _, e := range byColl[coll] {
			if slices.Contains(left, e.id.Key) {
				o.Failure(e.raw, nd.Error())
				cnt.Errors.Add(1)
				continue
			}
			rec := recs[e.id]
			var h *holders
			var sh *shared
			if shareable(rec.Ref) && r.set[task].Transport == TransportIMAP {
				if h, err = held(); err != nil {
					return err
				}
				// Another task may index the message through
				// another of its labels: its documents stay.
				sh = shAll
			}
			if err := forget(b, h, sh, coll, e.id.Key, rec); err != nil {
				return flushed(ctx, b, err)
			}
			o.Success(e.raw)
		}
	}
	if err := b.Flush(ctx); err != nil {
		return fmt.Errorf("mailfetch: %w", err)
	}
	return nil
}

// insertDoc is one message of InsertXML.
type insertDoc struct {
	insertID string
	folder   string
	flags    []string
	raw      []byte
}

// parseInsertXML reads InsertXML: one or more <insert> elements (in an
// element around them or one after the other; or the document itself),
// each with <file><type>content</type><content>BASE64 of the RFC 5322
// message</content></file> (or <type>drecontent</type> with the message
// as text), optional <metadata name="FOLDER" value=".."/>
// (default the task's InsertFolder), <metadata name="FLAGS" value="\Seen
// \Flagged"/> (IMAP flags, each checked) and <insert_id>. The message is APPENDed to the folder (or
// inserted with the label, Gmail API).
func parseInsertXML(v string, s *settings) ([]insertDoc, error) {
	const name = "InsertXML"
	type meta struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	type file struct {
		Type    string `xml:"type"`
		Content string `xml:"content"`
	}
	type ins struct {
		InsertID string `xml:"insert_id"`
		Metadata []meta `xml:"metadata"`
		File     *file  `xml:"file"`
	}
	type top struct {
		Inserts []ins `xml:"insert"`
		ins
	}
	// Each top-level element is read: <insert> elements may also be
	// given one after the other.
	tops, err := restsync.DecodeEach[top](v)
	if err != nil {
		return nil, messages.Invalid(name, shorten(v), "not well-formed XML: "+err.Error())
	}
	var list []ins
	for _, doc := range tops {
		list = append(list, doc.Inserts...)
		if len(doc.Inserts) == 0 && doc.File != nil {
			list = append(list, doc.ins)
		}
	}
	if len(list) == 0 {
		return nil, messages.Invalid(name, shorten(v), "has no <insert> with a <file>")
	}
	var out []insertDoc
	for _, in := range list {
		d := insertDoc{insertID: strings.TrimSpace(in.InsertID), folder: s.InsertFolder}
		for _, m := range in.Metadata {
			switch strings.ToUpper(strings.TrimSpace(m.Name)) {
			case "FOLDER", "LABEL":
				if f := strings.TrimSpace(m.Value); f != "" {
					// go-imap writes a line break of the name as
					// it is: the rest went to the server as a
					// command, and the connection was lost.
					if strings.ContainsFunc(f, unicode.IsControl) {
						return nil, messages.Invalid(name, f, "FOLDER and LABEL: a folder name has no control character (line break, tab)")
					}
					d.folder = f
				}
			case "FLAGS":
				d.flags = strings.Fields(strings.ReplaceAll(m.Value, ",", " "))
				for _, f := range d.flags {
					// go-imap refuses such a flag half-way through
					// the APPEND, and the connection is lost with
					// every later message of the action.
					if !imapFlag(f) {
						return nil, messages.Invalid(name, f, `FLAGS: not an IMAP flag (\Seen, \Flagged, or a keyword: printable ASCII without ( ) { % * " \ ])`)
					}
				}
			}
		}
		if in.File == nil {
			return nil, messages.Invalid(name, shorten(v), "an <insert> has no <file>")
		}
		switch t := strings.ToLower(strings.TrimSpace(in.File.Type)); t {
		case "content", "":
			raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(in.File.Content), ""))
			if err != nil {
				return nil, messages.Invalid(name, shorten(v), "<file><type>content</type> needs the message in base64 in <content>")
			}
			d.raw = raw
		case "drecontent":
			d.raw = []byte(in.File.Content)
		default:
			return nil, messages.Invalid(name, t, "<file><type> must be content or drecontent (a mail message; files on the server are not read)")
		}
		if len(bytes.TrimSpace(d.raw)) == 0 {
			return nil, messages.Invalid(name, shorten(v), "the message is empty")
		}
		if int64(len(d.raw)) > s.MaxMessageBytes {
			return nil, messages.Invalid(name, shorten(v), fmt.Sprintf("the message is larger than MaxMessageBytes (%d)", s.MaxMessageBytes))
		}
		out = append(out, d)
	}
	return out, nil
}

// imapFlag reports whether f is an IMAP flag (RFC 3501 flag-keyword or
// flag-extension: an atom, or \ and an atom).
func imapFlag(f string) bool {
	f = strings.TrimPrefix(f, `\`)
	if f == "" {
		return false
	}
	for i := 0; i < len(f); i++ {
		if c := f[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// insert appends each message to its folder. The result lists, per
// message, its identifier when the server says which message it became
// (UIDPLUS; the Gmail API always does), else the folder; an insert_id
// comes back with it in <identifiers>. The messages are indexed by the
// next Synchronize, as any new mail.
func (r *Repository) insert(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	task := req.Tasks[0]
	ds, err := r.datastore(task)
	if err != nil {
		return nil, err
	}
	defer restsync.NoteAction(ds, restsync.ActionInsert, r.now, r.log)()
	cnt := restsync.Counts(job, task)
	mb, err := r.open(ctx, r.set[task])
	if err != nil {
		return nil, err
	}
	defer mb.Close()
	o := &restsync.Outcome{}
	for _, d := range req.inserts {
		if err := job.Checkpoint(ctx); err != nil {
			return o.Elements(), err
		}
		c, key, err := mb.Append(ctx, d.folder, d.raw, d.flags, time.Time{})
		if err != nil {
			o.Failure(d.folder, err.Error())
			cnt.Errors.Add(1)
			continue
		}
		id := d.folder
		if key != "" {
			id = Identifier{Task: task, Collection: c.Name, Key: key}.Encode()
		}
		cnt.Inserted.Add(1)
		o.Success(id)
		if d.insertID != "" {
			o.Inserted = append(o.Inserted, restsync.Inserted{ID: id, InsertID: d.insertID})
		}
	}
	return o.Elements(), nil
}
