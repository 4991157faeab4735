package webexfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/ingest"
)

// Kinds of items (Identifier.Kind).
const (
	kindRoom    = "room"
	kindMessage = "message"
	kindFile    = "file"
)

// identifier returns the AUTN_IDENTIFIER of a room (msgID ""), a message,
// or a message's file (part: its 1-based place in the message's files).
func identifier(task, roomID, msgID string, part int) string {
	id := restsync.Identifier{Task: task, Kind: kindRoom, Item: roomID}
	if msgID != "" {
		id = restsync.Identifier{Task: task, Kind: kindMessage, Container: roomID, Item: msgID}
		if part > 0 {
			id.Kind, id.Part = kindFile, strconv.Itoa(part)
		}
	}
	return id.Encode()
}

// decodeIdentifier reads an identifier of this connector.
func decodeIdentifier(raw string) (restsync.Identifier, error) {
	id, err := restsync.DecodeIdentifier(raw)
	if err != nil {
		return id, err
	}
	switch id.Kind {
	case kindRoom:
	case kindMessage, kindFile:
		if id.Container == "" {
			return id, restsync.ErrIdentifier
		}
		if id.Kind == kindFile {
			if n, err := strconv.Atoi(id.Part); err != nil || n < 1 {
				return id, restsync.ErrIdentifier
			}
		}
	default:
		return id, restsync.ErrIdentifier
	}
	return id, nil
}

// Datastore keys of the connector's records (under restsync's r:).
func roomKey(roomID string) string           { return "room\x00" + roomID }
func messageKey(roomID, msgID string) string { return "msg\x00" + roomID + "\x00" + msgID }
func messagePrefix(roomID string) string     { return "msg\x00" + roomID + "\x00" }

// member is a person of a room, as the room's security and names.
type member struct {
	ID    string `json:"i"`
	Email string `json:"e,omitempty"`
	Name  string `json:"n,omitempty"`
}

// builder turns Webex items into documents for one task.
type builder struct {
	s    *settings
	base string // the API's URL, for references
	x    *extract.Extractor
	// names of people by id (members of the rooms read, and people looked
	// up), for authors and mentions.
	names *people
}

// people are the names of people by id, shared by the rooms read at once.
type people struct {
	mu sync.RWMutex
	m  map[string]member
}

func newPeople() *people { return &people{m: map[string]member{}} }

// get returns a person (the zero member when unknown).
func (p *people) get(id string) member {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.m[id]
}

// known reports whether a person is known (found, or looked up and not
// found).
func (p *people) known(id string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.m[id]
	return ok
}

// set records a person.
func (p *people) set(m member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[m.ID] = m
}

// setUnknown records ids as looked up and not found, unless another room
// found them meanwhile.
func (p *people) setUnknown(ids []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if _, ok := p.m[id]; !ok {
			p.m[id] = member{ID: id}
		}
	}
}

func newBuilder(s *settings) (*builder, error) {
	x, err := extract.New(extract.Config{Limits: extract.Limits{
		MaxInputBytes: s.MaxFileBytes + 1,
		MaxTextBytes:  int(s.ExtractTextBytes),
		Timeout:       s.ExtractTimeout,
	}})
	if err != nil {
		return nil, err
	}
	return &builder{s: s, base: s.APIURL, x: x, names: newPeople()}, nil
}

func roomRef(base, id string) string    { return base + "/rooms/" + url.PathEscape(id) }
func messageRef(base, id string) string { return base + "/messages/" + url.PathEscape(id) }

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// fields gathers a document's fields, leaving out empty values.
type fields []ingest.Field

func (f *fields) add(name, value string) {
	if value != "" {
		*f = append(*f, ingest.Field{Name: name, Value: value})
	}
}

func (f *fields) time(name, v string) {
	if t := parseTime(v); !t.IsZero() {
		f.add(name, unix(t))
	}
}

// fieldValue is the value of a document's first field of that name ("" for
// none).
func fieldValue(fs []ingest.Field, name string) string {
	for _, f := range fs {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// messageFields is room for a message document's fields (about twenty),
// so that they are not grown field by field.
const messageFields = 24

// acl is IDOL's generic mapped-security ACL of a room's members:
// 0:U:<users>:G: with each member's e-mail address, lower case and
// percent-encoded (SECURITYTYPE WEBEX).
func acl(members []member) string {
	var users []string
	for _, m := range members {
		if m.Email != "" {
			users = append(users, restsync.ACLName(m.Email))
		}
	}
	slices.Sort(users)
	users = slices.Compact(users)
	return "0:U:" + strings.Join(users, ",") + ":G:"
}

// membersHash is what changes when a room's members change.
func membersHash(members []member) string {
	ids := make([]string, 0, len(members))
	for _, m := range members {
		ids = append(ids, m.ID+"\x00"+strings.ToLower(m.Email))
	}
	slices.Sort(ids)
	h := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(h[:12])
}

// roomSec is a room's members, with their ACL worked out once.
type roomSec struct {
	members []member
	acl     string
}

func newRoomSec(members []member) *roomSec { return &roomSec{members: members, acl: acl(members)} }

func (b *builder) security(f *fields, sec *roomSec) {
	if b.s.MappedSecurity {
		f.add("AUTONOMYMETADATA", sec.acl)
		f.add("SECURITYTYPE", "WEBEX")
	}
}

// roomDoc is a room's own document.
func (b *builder) roomDoc(task string, rm *room, sec *roomSec) *ingest.Document {
	members := sec.members
	var f fields
	f.add("AUTN_IDENTIFIER", identifier(task, rm.ID, "", 0))
	title := rm.Title
	if title == "" {
		title = "(untitled space)"
	}
	f.add(ingest.FieldTitle, title)
	f.time(ingest.FieldDate, rm.Created)
	f.add("DOCUMENT_KIND", "room")
	f.add("WEBEX_ROOM_ID", rm.ID)
	f.add("WEBEX_ROOM_TITLE", rm.Title)
	f.add("WEBEX_ROOM_TYPE", rm.Type)
	f.add("WEBEX_TEAM_ID", rm.TeamID)
	f.time("CREATED", rm.Created)
	f.time("LAST_ACTIVITY", rm.LastActivity)
	f.add("CREATOR", b.names.get(rm.CreatorID).Email)
	for _, m := range members {
		f.add("MEMBER", m.Email)
		f.add("MEMBER_NAME", m.Name)
	}
	f.add("MEMBER_COUNT", strconv.Itoa(len(members)))
	b.security(&f, sec)
	return &ingest.Document{Reference: roomRef(b.base, rm.ID), Fields: f}
}

// roomVersion is what changes the room's document.
func roomVersion(rm *room, members []member) string {
	return rm.Title + "\x00" + rm.Type + "\x00" + rm.TeamID + "\x00" + membersHash(members)
}

// fileItem is one of a message's files, as fetched.
type fileItem struct {
	url  string
	file *restsync.File // nil when not fetched (IndexFiles=false, another origin)
	why  string         // why it was not fetched
	// failed: the service failed to serve it (read again later).
	failed bool
}

// messageTitle is a room title and the first line of a message's text.
func messageTitle(rm *room, m *message) string {
	line, _, _ := strings.Cut(strings.TrimSpace(m.Text), "\n")
	line = strings.TrimSpace(line)
	if len(line) > 80 {
		line = strings.ToValidUTF8(line[:80], "") + "…"
	}
	switch {
	case line == "" && len(m.Files) > 0:
		line = "(file)"
	case line == "":
		line = "(message)"
	}
	if rm.Title == "" {
		return line
	}
	return rm.Title + ": " + line
}

// messageText is a message's text: its HTML as text, else its text.
func (b *builder) messageText(ctx context.Context, m *message) string {
	if m.HTML != "" {
		if d, err := b.x.Extract(ctx, extract.Input{Data: []byte(m.HTML), ContentType: "text/html; charset=utf-8", Name: "message.html"}); err == nil {
			return d.Text
		}
	}
	if m.Text != "" {
		return m.Text
	}
	return m.Markdown
}

// messageDoc is a message's own document, naming its files (whose
// documents are fileDoc's).
func (b *builder) messageDoc(ctx context.Context, task string, rm *room, sec *roomSec, m *message, files []fileItem) *ingest.Document {
	ref := messageRef(b.base, m.ID)
	f := make(fields, 0, messageFields)
	f.add("AUTN_IDENTIFIER", identifier(task, rm.ID, m.ID, 0))
	f.add(ingest.FieldTitle, messageTitle(rm, m))
	created := ""
	if t := parseTime(m.Created); !t.IsZero() {
		created = unix(t)
	}
	f.add(ingest.FieldDate, created)
	f.add("DOCUMENT_KIND", "message")
	f.add("WEBEX_MESSAGE_ID", m.ID)
	f.add("WEBEX_ROOM_ID", rm.ID)
	f.add("WEBEX_ROOM_TITLE", rm.Title)
	f.add("WEBEX_ROOM_TYPE", rm.Type)
	f.add("ROOM_REFERENCE", roomRef(b.base, rm.ID))
	author := b.names.get(m.PersonID)
	f.add("AUTHOR", author.Name)
	email := m.PersonEmail
	if email == "" {
		email = author.Email
	}
	f.add("AUTHOR_EMAIL", email)
	f.add("AUTHOR_ID", m.PersonID)
	for _, p := range m.MentionedPeople {
		for _, id := range strings.Split(p, ",") { // Cisco's example packs ids with commas
			if id = strings.TrimSpace(id); id != "" {
				mp := b.names.get(id)
				f.add("MENTIONED_PERSON_ID", id)
				f.add("MENTIONED_PERSON", mp.Email)
				f.add("MENTIONED_PERSON_NAME", mp.Name)
			}
		}
	}
	for _, g := range m.MentionedGroups {
		f.add("MENTIONED_GROUP", g)
	}
	if m.ParentID != "" {
		f.add("PARENT_ID", m.ParentID)
		f.add("PARENT_REFERENCE", messageRef(b.base, m.ParentID))
	}
	f.add("CREATED", created)
	f.time("UPDATED", m.Updated)
	f.add("FILE_COUNT", strconv.Itoa(len(m.Files)))
	for _, fi := range files {
		f.add("FILE_URL", fi.url)
		if fi.file != nil {
			f.add("FILE_NAME", fi.file.FileName)
		}
	}
	b.security(&f, sec)
	return &ingest.Document{Reference: ref, Fields: f, Content: b.messageText(ctx, m)}
}

// fileDoc is one file of a message: its text when it could be extracted,
// its metadata either way (a file over MaxFileBytes is not read at all).
func (b *builder) fileDoc(ctx context.Context, task string, rm *room, sec *roomSec, m *message, part int, fi fileItem) *ingest.Document {
	file := fi.file
	var f fields
	f.add("AUTN_IDENTIFIER", identifier(task, rm.ID, m.ID, part))
	name := file.FileName
	if name == "" {
		name = "file " + strconv.Itoa(part)
	}
	f.add(ingest.FieldTitle, name)
	f.time(ingest.FieldDate, m.Created)
	f.add("DOCUMENT_KIND", "file")
	f.add("FILE_NAME", file.FileName)
	f.add("FILE_URL", fi.url)
	f.add("CONTENT_TYPE", file.ContentType)
	f.add("FILE_SIZE", restsync.ContentLength(file.Size))
	f.add("WEBEX_MESSAGE_ID", m.ID)
	f.add("WEBEX_ROOM_ID", rm.ID)
	f.add("WEBEX_ROOM_TITLE", rm.Title)
	f.add("PARENT_REFERENCE", messageRef(b.base, m.ID))
	f.add("AUTHOR", b.names.get(m.PersonID).Name)
	f.add("AUTHOR_EMAIL", m.PersonEmail)
	f.time("CREATED", m.Created)
	doc := &ingest.Document{Reference: fi.url, SourceType: file.ContentType}
	restsync.FileContent(ctx, b.x, b.s.ExtractText, file, file.FileName, doc, f.add)
	b.security(&f, sec)
	doc.Fields = f
	return doc
}
