// Package webextest is a stateful stand-in for the Webex Messaging REST API
// (https://webexapis.com/v1), for the Webex connector's tests and
// benchmarks. No Webex service can be reached from where this project is
// built and tested, so the stand-in is as faithful as the public evidence
// allows, and says where it guesses.
//
// # What it serves
//
// Under /v1: GET /rooms (sortBy=id|lastactivity|created, type, max),
// GET /rooms/{roomId}, GET /messages (roomId, before, beforeMessage,
// parentId, max), GET and DELETE /messages/{messageId}, POST /messages
// (JSON), GET /memberships (roomId, max), GET /people (id, email, max),
// GET /events (resource, type, from, to, max); the file contents the
// messages' "files" URLs name (GET and HEAD /contents/{id}); and the
// OAuth 2.0 endpoints of an integration (GET /authorize, which approves at
// once and redirects, and POST /access_token with the authorization_code
// and refresh_token grants).
//
// # Documented by Cisco (webex-messaging.json, the developer guides)
//
//   - The paths, parameters and response schemas above, except /contents,
//     /authorize and /access_token, which the OpenAPI description does not
//     cover (the developer guide documents them). Tests validate every
//     request and response on the described paths against Cisco's OpenAPI
//     description (Validator), with object schemas made strict.
//   - Lists are pages of {"items": [...]} with the next page in a Link
//     header (rel="next"); max bounds a page; messages come newest first;
//     rooms sort by lastactivity, created or id; /people takes up to 85
//     ids; /events is for compliance officers.
//   - 429 answers carry Retry-After (seconds); 401 means the access token
//     is missing, expired or revoked.
//   - Access tokens expire (expires_in); refresh tokens are used at
//     /access_token with the client's id and secret.
//
// # Inferred (not stated by Cisco; the gap to the real service)
//
//   - How pages link: messages pages link with beforeMessage (a documented
//     parameter) and max; the other lists with an opaque cursor parameter
//     that the OpenAPI description does not list. The connector follows
//     Link URLs as given and never builds one, so either is fine for it.
//   - Order of /events: newest first, like the other lists; the connector
//     does not depend on the order.
//   - Error bodies are {"message": ..., "errors": [{"description": ...}],
//     "trackingId": ...} with a TrackingID header (the OpenAPI description
//     gives no body for errors).
//   - Where Cisco's schema and its own example disagree, the schema wins:
//     the answer to POST /messages (schema Message) has no parentId, html
//     or updated, though the example shows parentId.
//   - What a user may see: the rooms the authenticated person is a member
//     of; listing another room's messages or memberships is 404 unless the
//     person is a compliance officer (Compliance), who may read any room of
//     the organisation and the events feed (else 403).
//   - Events are written when the stand-in's state changes (messages
//     created, updated and deleted; memberships created and deleted; rooms
//     created) with data fields from the Event schema.
//   - A room's lastActivity moves with each message posted, edited or
//     deleted, and with membership changes.
//   - File URLs are /v1/contents/{id}; a file answers with
//     Content-Disposition (its name), Content-Type and Content-Length.
//   - Refresh tokens are not rotated unless RotateRefreshTokens is set.
//   - GET /rooms?sortBy=lastactivity returns every room, unless
//     LastActivitySortLimit plays Cisco's known limitation of that sort
//     (for accounts in more than 3000 spaces, recently active spaces may
//     be left out): then only the first rooms in id order.
package webextest

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"time"
)

// OrgID is the organisation of every person the stand-in creates.
var OrgID = ID("ORGANIZATION", 1)

// ID is a Webex id: base64url, without padding, of
// ciscospark://us/<KIND>/<uuid>.
func ID(kind string, n int) string {
	uuid := fmt.Sprintf("%08x-0000-4000-8000-%012x", n>>16, n)
	return base64.RawURLEncoding.EncodeToString([]byte("ciscospark://us/" + kind + "/" + uuid))
}

// Room is a space.
type Room struct {
	ID           string
	Title        string
	Type         string // direct or group
	TeamID       string
	CreatorID    string
	IsLocked     bool
	Created      time.Time
	LastActivity time.Time
	Deleted      bool
}

// Message is one message of a room.
type Message struct {
	ID              string
	RoomID          string
	ParentID        string
	Text            string
	Markdown        string
	HTML            string
	PersonID        string
	PersonEmail     string
	Files           []string // URLs
	MentionedPeople []string
	MentionedGroups []string
	Created         time.Time
	Updated         time.Time // zero: never edited
}

// Membership puts a person in a room.
type Membership struct {
	ID          string
	RoomID      string
	PersonID    string
	IsModerator bool
	Created     time.Time
}

// Person is a user.
type Person struct {
	ID          string
	Email       string
	DisplayName string
	FirstName   string
	LastName    string
	Type        string // person or bot
	Created     time.Time
}

// Event is a compliance event.
type Event struct {
	ID       string
	Resource string // messages, memberships, rooms
	Type     string // created, updated, deleted
	ActorID  string
	Created  time.Time
	Data     map[string]string
}

// File is the content behind a "files" URL.
type File struct {
	ID          string
	Name        string
	ContentType string
	Data        []byte
	// Size, when Data is nil, makes a file of that many generated bytes
	// (served as a stream, never held in memory).
	Size int64
	// NoLength serves the file without Content-Length (chunked).
	NoLength bool
	// Unscannable: Webex cannot scan it for malware (an encrypted
	// archive, say), and answers 428 Precondition Required unless the
	// request takes the risk (allow=unscannable).
	Unscannable bool
}

func (f *File) size() int64 {
	if f.Data != nil {
		return int64(len(f.Data))
	}
	return f.Size
}

// state is everything the stand-in holds; Server guards it with a mutex.
type state struct {
	seq         int
	clock       time.Time
	tick        time.Duration
	people      map[string]*Person
	rooms       map[string]*Room
	messages    map[string][]*Message // by room, newest first
	byID        map[string]*Message
	memberships map[string][]*Membership // by room
	events      []*Event                 // oldest first
	files       map[string]*File
}

func newState(start time.Time, tick time.Duration) *state {
	return &state{clock: start, tick: tick, people: map[string]*Person{}, rooms: map[string]*Room{},
		messages: map[string][]*Message{}, byID: map[string]*Message{}, memberships: map[string][]*Membership{},
		files: map[string]*File{}}
}

func (s *state) next(kind string) string {
	s.seq++
	return ID(kind, s.seq)
}

// next advances the clock by a tick and returns it: every change gets
// its own time.
func (s *state) now() time.Time {
	s.clock = s.clock.Add(s.tick)
	return s.clock
}

func (s *state) event(resource, typ, actor string, at time.Time, data map[string]string) {
	s.events = append(s.events, &Event{ID: s.next("EVENT"), Resource: resource, Type: typ, ActorID: actor, Created: at, Data: data})
}

func (s *state) member(roomID, personID string) bool {
	return slices.ContainsFunc(s.memberships[roomID], func(m *Membership) bool { return m.PersonID == personID })
}

// insertMessage keeps a room's messages newest first (stable for equal
// times: the later insert first).
func (s *state) insertMessage(m *Message) {
	list := s.messages[m.RoomID]
	i := sort.Search(len(list), func(i int) bool { return !list[i].Created.After(m.Created) })
	list = slices.Insert(list, i, m)
	s.messages[m.RoomID] = list
	s.byID[m.ID] = m
}

func (s *state) messageEventData(m *Message) map[string]string {
	r := s.rooms[m.RoomID]
	d := map[string]string{"id": m.ID, "roomId": m.RoomID, "roomType": r.Type, "personId": m.PersonID,
		"personEmail": m.PersonEmail, "created": formatTime(m.Created)}
	if m.Text != "" {
		d["text"] = m.Text
	}
	return d
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
