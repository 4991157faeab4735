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
	"github.com/connectorhq/connector/messages"
)

func notFound(format string, args ...any) error {
	return fmt.Errorf("webexfetch: "+format+": %w", append(args, messages.ErrNotFound)...)
}

// items are the rooms, messages and files Collect and View fetch.
func (r *Repository) items() restsync.ItemSource {
	return restsync.ItemSource{Known: r.known, Fetch: r.fetchItem, Fatal: fatal}
}

// known reports whether the task indexed an identified item (a file: its
// message).
func (r *Repository) known(id restsync.Identifier) (bool, error) {
	key := messageKey(id.Container, id.Item)
	if id.Kind == kindRoom {
		key = roomKey(id.Item)
	}
	rec, err := r.Record(id.Task, key)
	return rec != nil, err
}

// fetchItem fetches what an identifier names from Webex, now, as the
// documents Synchronize makes of it.
func (r *Repository) fetchItem(ctx context.Context, id restsync.Identifier) (*restsync.Fetched, error) {
	s := r.Set[id.Task]
	a, err := r.open(ctx, s)
	if err != nil {
		return nil, err
	}
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
		b.names.set(mb)
	}
	sec := newRoomSec(members)
	if id.Kind == kindRoom {
		doc := b.roomDoc(id.Task, rm, sec)
		var text bytes.Buffer
		fmt.Fprintf(&text, "%s\n", rm.Title)
		for _, m := range members {
			fmt.Fprintf(&text, "%s <%s>\n", m.Name, m.Email)
		}
		return &restsync.Fetched{Ref: doc.Reference, MimeType: "text/plain; charset=utf-8", Name: restsync.SafeName(rm.Title) + ".txt", Content: text.Bytes(), Doc: doc}, nil
	}
	m, err := a.message(ctx, id.Item)
	if err != nil {
		if errors.Is(err, messages.ErrNotFound) {
			return nil, notFound("message %s is gone", id.Item)
		}
		return nil, err
	}
	t := &taskRun{TaskSync: &restsync.TaskSync{Log: r.Log, Task: id.Task}, r: r, s: s, api: a, b: b}
	if err := t.lookupNames(ctx, []message{*m}); err != nil {
		return nil, err
	}
	if id.Kind == kindMessage {
		// Its files' URLs, as Synchronize's document has them (their
		// names would need the files themselves).
		files := make([]fileItem, len(m.Files))
		for i, u := range m.Files {
			files[i] = fileItem{url: u}
		}
		doc := b.messageDoc(ctx, id.Task, rm, sec, m, files)
		return &restsync.Fetched{Ref: doc.Reference, MimeType: "text/plain; charset=utf-8", Name: restsync.SafeName(messageTitle(rm, m)) + ".txt",
			Content: []byte(doc.Content), Doc: doc}, nil
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
	f, err := a.download(ctx, abs, s.MaxFileBytes, s.Unscannable)
	if err != nil {
		if errors.Is(err, messages.ErrNotFound) {
			return nil, notFound("file %d of message %s is gone", part, id.Item)
		}
		return nil, err
	}
	if f.TooLarge {
		return nil, fmt.Errorf("webexfetch: file %d of message %s is larger than MaxFileBytes (%d bytes)", part, id.Item, s.MaxFileBytes)
	}
	doc := b.fileDoc(ctx, id.Task, rm, sec, m, part, fileItem{url: u, file: f})
	name := f.FileName
	if name == "" {
		name = "file-" + id.Part
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &restsync.Fetched{Ref: u, MimeType: ct, Name: restsync.SafeName(name), Content: f.Data, Doc: doc}, nil
}

// View implements fetch.Viewer: a message's text, a file's bytes, or a
// room's title and members, fetched from Webex now, with the document's
// fields as metadata. Only items the task indexed can be viewed.
func (r *Repository) View(ctx context.Context, identifier string, _ messages.Params) (*fetch.ViewResult, error) {
	return r.Repo.View(ctx, identifier, r.items())
}

// identifiers lists the rooms and messages a task has indexed, with their
// titles as names.
func (r *Repository) identifiers(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	task := req.Tasks[0]
	return r.Identifiers(ctx, job, task, "", func(key string, rec *restsync.Record) (restsync.Listed, bool) {
		switch {
		case strings.HasPrefix(key, "room\x00"):
			return restsync.Listed{ID: identifier(task, strings.TrimPrefix(key, "room\x00"), "", 0), Name: rec.Title,
				Type: "Webex Space", Attributes: "document"}, true
		case strings.HasPrefix(key, "msg\x00"):
			parts := strings.SplitN(key, "\x00", 3)
			if len(parts) != 3 {
				return restsync.Listed{}, false
			}
			return restsync.Listed{ID: identifier(task, parts[1], parts[2], 0), Name: rec.Title, Type: "Webex Message", Attributes: "document"}, true
		}
		return restsync.Listed{}, false
	})
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
// base64 of UTF-8 text), or the property TEXT, and MARKDOWN (both may be
// given: the text is then the markdown's plain alternative).
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
	// Blank is not given (one is posted without the other).
	if strings.TrimSpace(m.text) == "" {
		m.text = ""
	}
	if strings.TrimSpace(m.markdown) == "" {
		m.markdown = ""
	}
	if m.text == "" && m.markdown == "" {
		return nil, messages.Invalid("InsertXML", d.Reference, "an <insert> has no text (a <file>, or the property TEXT or MARKDOWN)")
	}
	// Both are posted when both are given (the text is the plain
	// alternative of the markdown): each must pass.
	for _, t := range []struct{ what, v string }{{"text", m.text}, {"markdown", m.markdown}} {
		switch {
		case !utf8.ValidString(t.v):
			return nil, messages.Invalid("InsertXML", d.Reference, "the "+t.what+" is not UTF-8")
		case len(t.v) > maxMessageBytes:
			return nil, messages.Invalid("InsertXML", d.Reference, fmt.Sprintf("the %s has %d bytes; Webex takes at most %d", t.what, len(t.v), maxMessageBytes))
		}
	}
	return m, nil
}

// insert posts the messages; each comes back in <identifiers> (with its
// insert_id) and is indexed by the next Synchronize.
func (r *Repository) insert(ctx context.Context, job *fetch.Job, req *request) ([]*messages.Element, error) {
	task := req.Tasks[0]
	s := r.Set[task]
	ins := make([]*insertMessage, len(req.inserts))
	items := make([]restsync.Inserting, len(req.inserts))
	for i, d := range req.inserts {
		ins[i], _ = insertOf(d, s)
		items[i] = restsync.Inserting{Ref: ins[i].roomID, InsertID: ins[i].insertID}
	}
	var a *api
	return r.Insert(ctx, job, task, items, func() (err error) { a, err = r.open(ctx, s); return err }, func(i int) (string, error) {
		in := ins[i]
		m, err := a.post(ctx, in.roomID, in.parentID, in.text, in.markdown)
		if err != nil {
			return "", err
		}
		return identifier(task, m.RoomID, m.ID, 0), nil
	}, fatal)
}
