package webexfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
)

func notFound(format string, args ...any) error {
	return fmt.Errorf("webexfetch: "+format+": %w", append(args, messages.ErrNotFound)...)
}

// item is one room, message or file, fetched now.
type item struct {
	ref, mime, name string
	content         []byte
	doc             *ingest.Document
}

// knownRecord returns the record of an identified item when the task has
// indexed it (a file: its message's record, listing the file).
func (r *Repository) knownRecord(id restsync.Identifier) (*restsync.Record, error) {
	names, err := r.st.DatastoreNames()
	if err != nil {
		return nil, err
	}
	found := false
	for _, n := range names {
		found = found || n == id.Task
	}
	if !found {
		return nil, nil
	}
	ds, err := r.datastore(id.Task)
	if err != nil {
		return nil, err
	}
	if id.Kind == kindRoom {
		return restsync.GetRecord(ds, roomKey(id.Item))
	}
	return restsync.GetRecord(ds, messageKey(id.Container, id.Item))
}

// fetchItem fetches what an identifier names from Webex, now, as the
// documents Synchronize makes of it.
func (r *Repository) fetchItem(ctx context.Context, a *api, id restsync.Identifier) (*item, error) {
	s := r.set[id.Task]
	b, err := newBuilder(s)
	if err != nil {
		return nil, err
	}
	roomID := id.Item
	if id.Kind != kindRoom {
		roomID = id.Container
	}
	rm, err := a.room(ctx, roomID)
	if err != nil {
		if errors.Is(err, messages.ErrNotFound) {
			return nil, notFound("room %s is gone", roomID)
		}
		return nil, err
	}
	ms, err := a.memberships(ctx, rm.ID)
	if err != nil {
		return nil, err
	}
	var members []member
	for _, m := range ms {
		mb := member{ID: m.PersonID, Email: m.PersonEmail, Name: m.PersonDisplayName}
		members = append(members, mb)
		b.names[m.PersonID] = mb
	}
	if id.Kind == kindRoom {
		doc := b.roomDoc(id.Task, rm, newRoomSec(members))
		var text bytes.Buffer
		fmt.Fprintf(&text, "%s\n", rm.Title)
		for _, m := range members {
			fmt.Fprintf(&text, "%s <%s>\n", m.Name, m.Email)
		}
		return &item{ref: doc.Reference, mime: "text/plain; charset=utf-8", name: restsync.SafeName(rm.Title) + ".txt", content: text.Bytes(), doc: doc}, nil
	}
	m, err := a.message(ctx, id.Item)
	if err != nil {
		if errors.Is(err, messages.ErrNotFound) {
			return nil, notFound("message %s is gone", id.Item)
		}
		return nil, err
	}
	t := &taskRun{r: r, s: s, api: a, b: b, log: r.log, task: id.Task}
	t.lookupNames(ctx, []message{*m})
	if id.Kind == kindMessage {
		docs := b.messageDocs(ctx, id.Task, rm, newRoomSec(members), m, nil)
		return &item{ref: docs[0].Reference, mime: "text/plain; charset=utf-8", name: restsync.SafeName(messageTitle(rm, m)) + ".txt",
			content: []byte(docs[0].Content), doc: docs[0]}, nil
	}
	part, _ := strconv.Atoi(id.Part)
	if part > len(m.Files) {
		return nil, notFound("message %s has no file %d", id.Item, part)
	}
	u := m.Files[part-1]
	abs, err := a.c.Resolve(u)
	if err != nil || !a.c.SameOrigin(abs) {
		return nil, notFound("file %d of message %s is not on the Webex API's origin", part, id.Item)
	}
	f, err := a.c.Download(ctx, abs.String(), s.MaxFileBytes)
	if err != nil {
		if errors.Is(err, messages.ErrNotFound) {
			return nil, notFound("file %d of message %s is gone", part, id.Item)
		}
		return nil, err
	}
	if f.TooLarge {
		return nil, fmt.Errorf("webexfetch: file %d of message %s is larger than MaxFileBytes (%d bytes)", part, id.Item, s.MaxFileBytes)
	}
	doc := b.fileDoc(ctx, id.Task, rm, newRoomSec(members), m, part, fileItem{url: u, file: f})
	name := f.FileName
	if name == "" {
		name = "file-" + id.Part
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &item{ref: u, mime: ct, name: restsync.SafeName(name), content: f.Data, doc: doc}, nil
}

func (r *Repository) checkID(raw string) (restsync.Identifier, error) {
	id, err := decodeIdentifier(raw)
	if err != nil {
		return id, messages.Invalid("Identifier", raw, err.Error())
	}
	if !r.hasTask(id.Task) {
		return id, messages.Invalid("Identifier", raw, "names task "+id.Task+", which is not configured")
	}
	return id, nil
}

// View implements fetch.Viewer: a message's text, a file's bytes, or a
// room's title and members, fetched from Webex now, with the document's
// fields as metadata. Only items the task indexed can be viewed.
func (r *Repository) View(ctx context.Context, identifier string, _ messages.Params) (*fetch.ViewResult, error) {
	id, err := r.checkID(identifier)
	if err != nil {
		return nil, err
	}
	rec, err := r.knownRecord(id)
	if err != nil {
		return nil, fmt.Errorf("webexfetch: view: %w", err)
	}
	if rec == nil {
		return nil, notFound("view: task %s has not indexed this %s", id.Task, id.Kind)
	}
	a, err := r.open(ctx, r.set[id.Task])
	if err != nil {
		return nil, err
	}
	it, err := r.fetchItem(ctx, a, id)
	if err != nil {
		return nil, err
	}
	meta := make([]*messages.Param, 0, len(it.doc.Fields))
	for _, f := range it.doc.Fields {
		meta = append(meta, &messages.Param{Name: f.Name, Value: f.Value})
	}
	return &fetch.ViewResult{Reference: it.ref, MimeType: it.mime, FileName: it.name, Content: it.content, Metadata: meta}, nil
}

// collect fetches each identified item now and writes it to Destination
// with an IDX file of its document beside it.
func (r *Repository) collect(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	o := &restsync.Outcome{}
	c, err := restsync.OpenCollector(req.Destination)
	if err != nil {
		return nil, fmt.Errorf("webexfetch: %w", err)
	}
	defer c.Close()
	for _, task := range req.Tasks {
		ds, err := r.datastore(task)
		if err != nil {
			return nil, err
		}
		done := restsync.NoteAction(ds, restsync.ActionCollect, r.now, r.log)
		var a *api
		for _, e := range req.IDs {
			if e.Task != task {
				continue
			}
			if err := job.Checkpoint(ctx); err != nil {
				done()
				return o.Elements(), err
			}
			id, _ := decodeIdentifier(e.Raw)
			rec, err := r.knownRecord(id)
			if err != nil {
				done()
				return o.Elements(), err
			}
			if rec == nil {
				o.Failure(e.Raw, "the task has not indexed this "+id.Kind)
				continue
			}
			if a == nil {
				if a, err = r.open(ctx, r.set[task]); err != nil {
					done()
					return o.Elements(), err
				}
			}
			it, err := r.fetchItem(ctx, a, id)
			if err != nil {
				if fatal(ctx, err) {
					done()
					return o.Elements(), err
				}
				o.Failure(e.Raw, err.Error())
				restsync.Counts(job, task).Errors.Add(1)
				continue
			}
			if _, err := c.Write(it.name, it.content, it.doc, r.now()); err != nil {
				o.Failure(e.Raw, err.Error())
				restsync.Counts(job, task).Errors.Add(1)
				continue
			}
			restsync.Counts(job, task).Collected.Add(1)
			o.Success(e.Raw)
		}
		done()
	}
	return o.Elements(), nil
}

// identifiers lists the rooms and messages a task has indexed, with their
// titles as names.
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
	err = restsync.EachRecord(ds, "", func(key string, rec *restsync.Record) error {
		if n++; n%256 == 0 {
			if err := job.Checkpoint(ctx); err != nil {
				return err
			}
		}
		var raw, typ string
		switch {
		case strings.HasPrefix(key, "room\x00"):
			raw, typ = identifier(task, strings.TrimPrefix(key, "room\x00"), "", 0), "Webex Space"
		case strings.HasPrefix(key, "msg\x00"):
			parts := strings.SplitN(key, "\x00", 3)
			if len(parts) != 3 {
				return nil
			}
			raw, typ = identifier(task, parts[1], parts[2], 0), "Webex Message"
		default:
			return nil
		}
		name := rec.Title
		if name == "" {
			name = rec.Ref
		}
		g.Children = append(g.Children, &messages.Element{Name: "identifier", List: true, Text: raw,
			Attrs: []*messages.Param{{Name: "name", Value: name}, {Name: "type", Value: typ}, {Name: "attributes", Value: "document"}}})
		cnt.Seen.Add(1)
		return nil
	})
	return []*messages.Element{g}, err
}

// maxMessageBytes is Webex's longest message text.
const maxMessageBytes = 7439

// insertMessage is one message of InsertXML.
type insertMessage struct {
	insertID string
	roomID   string
	parentID string
	text     string
	markdown string
}

// parseInserts reads InsertXML: each <insert> posts one message to the
// room its property ROOMID names (default InsertRoomId), in the thread of
// PARENTID when given; its text is the <file> (drecontent: text; content:
// base64 of UTF-8 text), or the property TEXT, or MARKDOWN.
func parseInserts(v string, s *settings) ([]*restsync.InsertDoc, error) {
	docs, err := restsync.ParseInsertXML(v)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		if _, err := insertOf(d, s); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

func insertOf(d *restsync.InsertDoc, s *settings) (*insertMessage, error) {
	m := &insertMessage{insertID: d.InsertID, roomID: strings.TrimSpace(d.Property("ROOMID")), parentID: strings.TrimSpace(d.Property("PARENTID")),
		text: d.Property("TEXT"), markdown: d.Property("MARKDOWN")}
	if m.roomID == "" {
		m.roomID = s.InsertRoom
	}
	if m.roomID == "" {
		return nil, messages.Invalid("InsertXML", d.Reference, "an <insert> names no room: give <property name=\"ROOMID\" value=\"...\"/> or set the task's InsertRoomId")
	}
	if d.File != nil {
		if d.File.Type == "file" {
			return nil, messages.Invalid("InsertXML", d.File.Path, "a Webex message is text: give it as <type>drecontent</type> or <type>content</type>")
		}
		m.text = string(d.File.Data)
	}
	text := m.text
	if m.markdown != "" {
		text = m.markdown
	}
	switch {
	case strings.TrimSpace(text) == "":
		return nil, messages.Invalid("InsertXML", d.Reference, "an <insert> has no text (a <file>, or the property TEXT or MARKDOWN)")
	case !utf8.ValidString(text):
		return nil, messages.Invalid("InsertXML", d.Reference, "the text is not UTF-8")
	case len(text) > maxMessageBytes:
		return nil, messages.Invalid("InsertXML", d.Reference, fmt.Sprintf("the text has %d bytes; Webex takes at most %d", len(text), maxMessageBytes))
	}
	return m, nil
}

// insert posts the messages; each comes back in <identifiers> (with its
// insert_id) and is indexed by the next Synchronize.
func (r *Repository) insert(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	task := req.Tasks[0]
	s := r.set[task]
	ds, err := r.datastore(task)
	if err != nil {
		return nil, err
	}
	defer restsync.NoteAction(ds, restsync.ActionInsert, r.now, r.log)()
	cnt := restsync.Counts(job, task)
	o := &restsync.Outcome{}
	a, err := r.open(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, d := range req.inserts {
		if err := job.Checkpoint(ctx); err != nil {
			return o.Elements(), err
		}
		in, _ := insertOf(d, s)
		m, err := a.post(ctx, in.roomID, in.parentID, in.text, in.markdown)
		if err != nil {
			if fatal(ctx, err) {
				return o.Elements(), err
			}
			o.Failure(in.roomID, err.Error())
			cnt.Errors.Add(1)
			continue
		}
		id := identifier(task, m.RoomID, m.ID, 0)
		cnt.Inserted.Add(1)
		o.Success(id)
		o.Inserted = append(o.Inserted, restsync.Inserted{ID: id, InsertID: in.insertID})
	}
	return o.Elements(), nil
}
