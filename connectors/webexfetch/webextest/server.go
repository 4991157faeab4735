package webextest

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what a request gets instead of its answer (Server.SetFault).
type Fault struct {
	// Status answers with this status and an error body (Message).
	Status     int
	RetryAfter string // with 429 or 503
	Message    string
	// TruncateAt sends the real answer's headers and only its first
	// TruncateAt bytes, then drops the connection.
	TruncateAt int
	// SelfLink makes the answer's Link rel="next" point at the request
	// itself.
	SelfLink bool
	// Drop closes the connection without an answer (a connection reset
	// on the way); only at the token endpoint.
	Drop bool
}

// Server is the stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API's base URL (http://127.0.0.1:port/v1).
	URL string
	srv *httptest.Server

	mu  sync.Mutex
	st  *state
	me  string
	co  bool // the authenticated person is a compliance officer
	tok tokens

	fault     atomic.Pointer[func(*http.Request) *Fault]
	tokFault  atomic.Pointer[func(*http.Request) *Fault]
	validator atomic.Pointer[Validator]
	vmu       sync.Mutex
	violation []string

	rmu      sync.Mutex
	requests map[string]int
	total    atomic.Int64
	trace    atomic.Int64
	sent     atomic.Int64 // bytes of file contents sent
}

// Options configure a new Server.
type Options struct {
	// ClientID and ClientSecret are the integration's credentials the
	// token endpoint accepts; default "client-id" and "client-secret".
	ClientID, ClientSecret string
	// AccessTTL is the lifetime of the access tokens issued; default 14
	// days (Webex's).
	AccessTTL time.Duration
	// RotateRefreshTokens issues a new refresh token with each refresh.
	RotateRefreshTokens bool
	// LastActivitySortLimit plays the known limitation Cisco's OpenAPI
	// description gives for GET /rooms?sortBy=lastactivity ("will only
	// sort on limited set of results, which are pulled from the database
	// in order of roomId ... spaces that have had recent activity not
	// being returned"): such a listing holds only the first this many
	// rooms in id order, sorted by lastActivity. 0: no limit.
	LastActivitySortLimit int
	// Start is the stand-in's clock at the start; default 2026-01-05 09:00 UTC.
	Start time.Time
	// Tick is how far the clock moves with each change (a message posted,
	// a member added); default a second.
	Tick time.Duration
}

type tokens struct {
	clientID, secret string
	ttl              time.Duration
	rotate           bool
	sortLimit        int
	access           map[string]time.Time // token → expiry
	refresh          map[string]bool
	codes            map[string]bool
	refreshes        int
}

// New starts a stand-in on 127.0.0.1; it stops with the test.
func New(o Options) *Server {
	if o.ClientID == "" {
		o.ClientID, o.ClientSecret = "client-id", "client-secret"
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = 14 * 24 * time.Hour
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	s := &Server{st: newState(o.Start, o.Tick), requests: map[string]int{},
		tok: tokens{clientID: o.ClientID, secret: o.ClientSecret, ttl: o.AccessTTL, rotate: o.RotateRefreshTokens, sortLimit: o.LastActivitySortLimit,
			access: map[string]time.Time{}, refresh: map[string]bool{}, codes: map[string]bool{}}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Origin is the scheme, host and port of the server.
func (s *Server) Origin() string { return s.srv.URL }

// SetFault sets a function that may answer a request with a fault (nil:
// none); it is called for every request but the token endpoint's.
func (s *Server) SetFault(f func(*http.Request) *Fault) {
	if f == nil {
		s.fault.Store(nil)
		return
	}
	s.fault.Store(&f)
}

// SetTokenFault sets a function that may answer a request to the token
// endpoint with a fault's status, Retry-After and message, or drop it
// (nil: none).
func (s *Server) SetTokenFault(f func(*http.Request) *Fault) {
	if f == nil {
		s.tokFault.Store(nil)
		return
	}
	s.tokFault.Store(&f)
}

// SetValidator validates every request and response on the paths Cisco's
// OpenAPI description covers (and refuses requests to paths it does not
// and the stand-in does not serve); Violations lists what did not match.
func (s *Server) SetValidator(v *Validator) { s.validator.Store(v) }

// Violations returns the validation failures so far.
func (s *Server) Violations() []string {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	return slices.Clone(s.violation)
}

func (s *Server) violate(format string, args ...any) {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	if len(s.violation) < 100 {
		s.violation = append(s.violation, fmt.Sprintf(format, args...))
	}
}

// Requests returns how many requests each "METHOD /path" got (ids in the
// path replaced by {id}), and the total.
func (s *Server) Requests() (map[string]int, int) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out, int(s.total.Load())
}

// FileBytesSent is how many bytes of file contents the server has written.
func (s *Server) FileBytesSent() int64 { return s.sent.Load() }

// ResetRequests sets the request counts to zero.
func (s *Server) ResetRequests() {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.requests = map[string]int{}
	s.total.Store(0)
}

// --- state changes (the tests' and benchmarks' side) ---

// SetMe makes personID the person the access tokens act for;
// compliance makes them a compliance officer.
func (s *Server) SetMe(personID string, compliance bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.me, s.co = personID, compliance
}

// Now returns the stand-in's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.clock
}

// Advance moves the stand-in's clock forward.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.clock = s.st.clock.Add(d)
}

// AddPerson creates a person and returns their id.
func (s *Server) AddPerson(email, displayName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.st.next("PEOPLE")
	first, last, _ := strings.Cut(displayName, " ")
	s.st.people[id] = &Person{ID: id, Email: email, DisplayName: displayName, FirstName: first, LastName: last, Type: "person", Created: s.st.now()}
	return id
}

// AddRoom creates a room with members (the first is its creator) and
// returns its id.
func (s *Server) AddRoom(title, typ string, members ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.st.now()
	id := s.st.next("ROOM")
	creator := ""
	if len(members) > 0 {
		creator = members[0]
	}
	s.st.rooms[id] = &Room{ID: id, Title: title, Type: typ, CreatorID: creator, Created: at, LastActivity: at}
	s.st.event("rooms", "created", creator, at, map[string]string{"id": id, "type": typ, "creatorId": creator, "created": formatTime(at)})
	for _, p := range members {
		s.addMemberLocked(id, p, at)
	}
	return id
}

// AddMember puts a person in a room.
func (s *Server) AddMember(roomID, personID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addMemberLocked(roomID, personID, s.st.now())
}

func (s *Server) addMemberLocked(roomID, personID string, at time.Time) {
	if s.st.member(roomID, personID) {
		return
	}
	m := &Membership{ID: s.st.next("MEMBERSHIP"), RoomID: roomID, PersonID: personID, Created: at}
	s.st.memberships[roomID] = append(s.st.memberships[roomID], m)
	s.st.rooms[roomID].LastActivity = at
	s.st.event("memberships", "created", personID, at, map[string]string{"id": m.ID, "roomId": roomID, "personId": personID, "created": formatTime(at)})
}

// RemoveMember takes a person out of a room.
func (s *Server) RemoveMember(roomID, personID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.st.now()
	list := s.st.memberships[roomID]
	for i, m := range list {
		if m.PersonID == personID {
			s.st.memberships[roomID] = slices.Delete(list, i, i+1)
			s.st.rooms[roomID].LastActivity = at
			s.st.event("memberships", "deleted", personID, at, map[string]string{"id": m.ID, "roomId": roomID, "personId": personID})
			return
		}
	}
}

// RenameRoom changes a room's title (its lastActivity moves, and the
// change is an event "rooms updated").
func (s *Server) RenameRoom(roomID, title string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.st.rooms[roomID]
	at := s.st.now()
	r.Title, r.LastActivity = title, at
	s.st.event("rooms", "updated", r.CreatorID, at, map[string]string{"id": roomID, "type": r.Type, "creatorId": r.CreatorID, "created": formatTime(r.Created)})
}

// DeleteRoom deletes a room with its messages.
func (s *Server) DeleteRoom(roomID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.st.rooms[roomID]
	r.Deleted = true
	s.st.event("rooms", "deleted", r.CreatorID, s.st.now(), map[string]string{"id": roomID})
}

// Post posts a message as personID (with files: their URLs from AddFile)
// and returns its id.
func (s *Server) Post(roomID, personID, text string, files ...string) string {
	return s.PostMessage(&Message{RoomID: roomID, PersonID: personID, Text: text, Files: files})
}

// PostMessage posts m (its ID, PersonEmail and Created are set) and
// returns its id. A zero Created takes the next tick of the clock; a given
// one is kept (several messages may share a time).
func (s *Server) PostMessage(m *Message) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.postLocked(m)
}

func (s *Server) postLocked(m *Message) string {
	if m.Created.IsZero() {
		m.Created = s.st.now()
	}
	m.ID = s.st.next("MESSAGE")
	if p := s.st.people[m.PersonID]; p != nil {
		m.PersonEmail = p.Email
	}
	s.st.insertMessage(m)
	r := s.st.rooms[m.RoomID]
	if m.Created.After(r.LastActivity) {
		r.LastActivity = m.Created
	}
	s.st.event("messages", "created", m.PersonID, m.Created, s.st.messageEventData(m))
	return m.ID
}

// Edit changes a message's text (its updated time moves).
func (s *Server) Edit(messageID, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.st.byID[messageID]
	at := s.st.now()
	m.Text, m.Markdown, m.HTML, m.Updated = text, "", "", at
	s.st.rooms[m.RoomID].LastActivity = at
	s.st.event("messages", "updated", m.PersonID, at, s.st.messageEventData(m))
}

// Delete deletes a message.
func (s *Server) Delete(messageID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(messageID, "")
}

func (s *Server) deleteLocked(messageID, actor string) {
	m := s.st.byID[messageID]
	at := s.st.now()
	delete(s.st.byID, messageID)
	list := s.st.messages[m.RoomID]
	if i := slices.Index(list, m); i >= 0 {
		s.st.messages[m.RoomID] = slices.Delete(list, i, i+1)
	}
	s.st.rooms[m.RoomID].LastActivity = at
	if actor == "" {
		actor = m.PersonID
	}
	s.st.event("messages", "deleted", actor, at, map[string]string{"id": m.ID, "roomId": m.RoomID, "roomType": s.st.rooms[m.RoomID].Type})
}

// AddFile stores a file and returns the URL a message's files name it by.
func (s *Server) AddFile(f *File) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.ID = s.st.next("CONTENT")
	s.st.files[f.ID] = f
	return s.URL + "/contents/" + f.ID
}

// Message returns a copy of a message (nil when there is none).
func (s *Server) Message(id string) *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.st.byID[id]
	if m == nil {
		return nil
	}
	c := *m
	return &c
}

// Messages returns the ids of a room's messages, newest first.
func (s *Server) Messages(roomID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.st.messages[roomID] {
		out = append(out, m.ID)
	}
	return out
}

// --- tokens ---

// IssueRefreshToken returns a refresh token the token endpoint accepts
// (as if a person had authorized the integration).
func (s *Server) IssueRefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := "rt-" + randomHex()
	s.tok.refresh[t] = true
	return t
}

// IssueAccessToken returns a valid access token.
func (s *Server) IssueAccessToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := "at-" + randomHex()
	s.tok.access[t] = time.Now().Add(s.tok.ttl)
	return t
}

// RevokeAccessTokens makes every access token issued so far invalid, as
// if they had expired early: the next request with one gets 401.
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok.access = map[string]time.Time{}
}

// RevokeRefreshTokens makes every refresh token invalid (invalid_grant).
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok.refresh = map[string]bool{}
}

// Refreshes returns how many access tokens the token endpoint issued from
// a refresh token.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok.refreshes
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// --- HTTP ---

// recorder holds an answer so that it can be validated before it is sent.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (s *Server) count(r *http.Request) {
	s.total.Add(1)
	key := r.Method + " " + normPath(r.URL.Path)
	s.rmu.Lock()
	s.requests[key]++
	s.rmu.Unlock()
}

// normPath replaces the id segment of /v1/<kind>/<id> with {id}.
func normPath(p string) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) >= 3 {
		parts[2] = "{id}"
	}
	return "/" + strings.Join(parts, "/")
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	path := strings.TrimPrefix(r.URL.Path, "/v1")
	switch {
	case path == "/access_token":
		if fp := s.tokFault.Load(); fp != nil {
			if f := (*fp)(r); f != nil && f.Drop {
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
			} else if f != nil && f.Status != 0 {
				if f.RetryAfter != "" {
					w.Header().Set("Retry-After", f.RetryAfter)
				}
				s.fail(w, f.Status, cmp.Or(f.Message, http.StatusText(f.Status)))
				return
			}
		}
		s.accessToken(w, r)
		return
	case path == "/authorize":
		s.authorize(w, r)
		return
	}
	v := s.validator.Load()
	if v != nil {
		if err := v.Request(r, strings.HasPrefix(path, "/contents/")); err != nil {
			s.violate("request %s %s: %v", r.Method, r.URL.RequestURI(), err)
		}
	}
	var f *Fault
	if fp := s.fault.Load(); fp != nil {
		f = (*fp)(r)
	}
	if f != nil && f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		msg := f.Message
		if msg == "" {
			msg = http.StatusText(f.Status)
		}
		s.fail(w, f.Status, msg)
		return
	}
	if strings.HasPrefix(path, "/contents/") {
		s.content(w, r, strings.TrimPrefix(path, "/contents/"), f)
		return
	}
	rec := &recorder{h: http.Header{}}
	if !s.authorized(rec, r) {
		s.emit(w, r, rec, v, f)
		return
	}
	s.route(rec, r, path)
	if f != nil && f.SelfLink && rec.status == http.StatusOK {
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		rec.h.Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", u.String()))
	}
	s.emit(w, r, rec, v, f)
}

// emit validates a recorded answer and sends it (cut short for a
// TruncateAt fault).
func (s *Server) emit(w http.ResponseWriter, r *http.Request, rec *recorder, v *Validator, f *Fault) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if v != nil {
		if err := v.Response(r, rec.status, rec.h, rec.body.Bytes()); err != nil {
			s.violate("response %d to %s %s: %v", rec.status, r.Method, r.URL.RequestURI(), err)
		}
	}
	for k, vs := range rec.h {
		w.Header()[k] = vs
	}
	body := rec.body.Bytes()
	if f != nil && f.TruncateAt > 0 && f.TruncateAt < len(body) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.status)
		_, _ = w.Write(body[:f.TruncateAt])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.status)
	_, _ = w.Write(body)
}

func (s *Server) fail(w http.ResponseWriter, status int, msg string) {
	id := fmt.Sprintf("ROUTER_%08d", s.trace.Add(1))
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("TrackingID", id)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"message": msg, "errors": []map[string]string{{"description": msg}}, "trackingId": id})
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, known := s.tok.access[tok]
	s.mu.Unlock()
	if !ok || !known || time.Now().After(exp) {
		s.fail(w, http.StatusUnauthorized, "The request requires a valid access token set in the Authorization request header.")
		return false
	}
	return true
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, path string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && path == "/rooms":
		s.listRooms(w, r)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "rooms":
		s.getRoom(w, parts[1])
	case r.Method == http.MethodGet && path == "/messages":
		s.listMessages(w, r)
	case r.Method == http.MethodPost && path == "/messages":
		s.postMessage(w, r)
	case len(parts) == 2 && parts[0] == "messages" && r.Method == http.MethodGet:
		s.getMessage(w, parts[1])
	case len(parts) == 2 && parts[0] == "messages" && r.Method == http.MethodDelete:
		s.deleteMessage(w, parts[1])
	case r.Method == http.MethodGet && path == "/memberships":
		s.listMemberships(w, r)
	case r.Method == http.MethodGet && path == "/people":
		s.listPeople(w, r)
	case r.Method == http.MethodGet && path == "/events":
		s.listEvents(w, r)
	default:
		s.fail(w, http.StatusNotFound, "The requested resource could not be found.")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

// maxParam reads max: default def, 1 to limit.
func maxParam(q url.Values, def, limit int) (int, bool) {
	v := q.Get("max")
	if v == "" {
		return def, true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 1 || f != float64(int(f)) {
		return 0, false
	}
	return min(int(f), limit), true
}

// cursor is the stand-in's opaque paging state of the lists but messages.
type cursor struct {
	Offset int               `json:"o"`
	Query  map[string]string `json:"q"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// page answers one page of items, linking to the next one through an
// opaque cursor that carries the query.
func (s *Server) page(w http.ResponseWriter, r *http.Request, n int, max int, item func(i int) any, query map[string]string) {
	q := r.URL.Query()
	off := 0
	if c := q.Get("cursor"); c != "" {
		var cur cursor
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || json.Unmarshal(b, &cur) != nil || cur.Offset < 0 {
			s.fail(w, http.StatusBadRequest, "Invalid cursor.")
			return
		}
		off = cur.Offset
	}
	items := []any{}
	for i := off; i < n && i < off+max; i++ {
		items = append(items, item(i))
	}
	if off+max < n {
		nq := url.Values{}
		nq.Set("max", strconv.Itoa(max))
		nq.Set("cursor", encodeCursor(cursor{Offset: off + max, Query: query}))
		w.Header().Set("Link", fmt.Sprintf("<%s%s?%s>; rel=\"next\"", s.URL, strings.TrimPrefix(r.URL.Path, "/v1"), nq.Encode()))
	}
	writeJSON(w, map[string]any{"items": items})
}

// queryOf is the query of a request, or the one its cursor carries.
func queryOf(r *http.Request) url.Values {
	q := r.URL.Query()
	if c := q.Get("cursor"); c != "" {
		var cur cursor
		if b, err := base64.RawURLEncoding.DecodeString(c); err == nil && json.Unmarshal(b, &cur) == nil {
			for k, v := range cur.Query {
				q.Set(k, v)
			}
		}
	}
	return q
}

func roomJSON(r *Room) map[string]any {
	m := map[string]any{"id": r.ID, "title": r.Title, "type": r.Type, "isLocked": r.IsLocked,
		"lastActivity": formatTime(r.LastActivity), "created": formatTime(r.Created), "ownerId": OrgID}
	if r.CreatorID != "" {
		m["creatorId"] = r.CreatorID
	}
	if r.TeamID != "" {
		m["teamId"] = r.TeamID
	}
	return m
}

func (s *Server) listRooms(w http.ResponseWriter, r *http.Request) {
	q := queryOf(r)
	max, ok := maxParam(q, 100, 1000)
	if !ok {
		s.fail(w, http.StatusBadRequest, "max must be a number between 1 and 1000.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var rooms []*Room
	for _, rm := range s.st.rooms {
		if rm.Deleted || !s.st.member(rm.ID, s.me) || (q.Get("type") != "" && rm.Type != q.Get("type")) {
			continue
		}
		rooms = append(rooms, rm)
	}
	switch q.Get("sortBy") {
	case "lastactivity":
		if lim := s.tok.sortLimit; lim > 0 && len(rooms) > lim {
			sort.Slice(rooms, func(i, j int) bool { return rooms[i].ID < rooms[j].ID })
			rooms = rooms[:lim]
		}
		sort.Slice(rooms, func(i, j int) bool {
			if !rooms[i].LastActivity.Equal(rooms[j].LastActivity) {
				return rooms[i].LastActivity.After(rooms[j].LastActivity)
			}
			return rooms[i].ID < rooms[j].ID
		})
	case "created":
		sort.Slice(rooms, func(i, j int) bool { return rooms[i].Created.After(rooms[j].Created) })
	default:
		sort.Slice(rooms, func(i, j int) bool { return rooms[i].ID < rooms[j].ID })
	}
	s.page(w, r, len(rooms), max, func(i int) any { return roomJSON(rooms[i]) },
		map[string]string{"sortBy": q.Get("sortBy"), "type": q.Get("type")})
}

// readable reports whether the authenticated person may read a room.
func (s *Server) readable(roomID string) (*Room, bool) {
	rm := s.st.rooms[roomID]
	if rm == nil || rm.Deleted {
		return nil, false
	}
	return rm, s.co || s.st.member(roomID, s.me)
}

func (s *Server) getRoom(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm, ok := s.readable(id)
	if !ok {
		s.fail(w, http.StatusNotFound, "Could not find a room with provided ID.")
		return
	}
	writeJSON(w, roomJSON(rm))
}

func (s *Server) messageJSON(m *Message) map[string]any {
	out := map[string]any{"id": m.ID, "roomId": m.RoomID, "roomType": s.st.rooms[m.RoomID].Type,
		"personId": m.PersonID, "personEmail": m.PersonEmail, "created": formatTime(m.Created)}
	for k, v := range map[string]string{"parentId": m.ParentID, "text": m.Text, "markdown": m.Markdown, "html": m.HTML} {
		if v != "" {
			out[k] = v
		}
	}
	for k, v := range map[string][]string{"files": m.Files, "mentionedPeople": m.MentionedPeople, "mentionedGroups": m.MentionedGroups} {
		if len(v) > 0 {
			out[k] = v
		}
	}
	if !m.Updated.IsZero() {
		out["updated"] = formatTime(m.Updated)
	}
	return out
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	max, ok := maxParam(q, 50, 1000)
	if !ok {
		s.fail(w, http.StatusBadRequest, "max must be a positive number.")
		return
	}
	roomID := q.Get("roomId")
	if roomID == "" {
		s.fail(w, http.StatusBadRequest, "roomId is required.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.readable(roomID); !ok {
		s.fail(w, http.StatusNotFound, "Could not find a room with provided ID.")
		return
	}
	list := s.st.messages[roomID]
	start := 0
	if bm := q.Get("beforeMessage"); bm != "" {
		i := slices.IndexFunc(list, func(m *Message) bool { return m.ID == bm })
		if i < 0 {
			s.fail(w, http.StatusNotFound, "Could not find a message with provided ID.")
			return
		}
		start = i + 1
	}
	var before time.Time
	if b := q.Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			s.fail(w, http.StatusBadRequest, "before must be an ISO 8601 time.")
			return
		}
		before = t
	}
	parent := q.Get("parentId")
	items := []any{}
	last := ""
	more := false
	for i := start; i < len(list); i++ {
		m := list[i]
		if !before.IsZero() && !m.Created.Before(before) {
			continue
		}
		if parent != "" && m.ParentID != parent {
			continue
		}
		if len(items) == max {
			more = true
			break
		}
		items = append(items, s.messageJSON(m))
		last = m.ID
	}
	if more {
		nq := url.Values{}
		nq.Set("roomId", roomID)
		nq.Set("max", strconv.Itoa(max))
		nq.Set("beforeMessage", last)
		if parent != "" {
			nq.Set("parentId", parent)
		}
		w.Header().Set("Link", fmt.Sprintf("<%s/messages?%s>; rel=\"next\"", s.URL, nq.Encode()))
	}
	writeJSON(w, map[string]any{"items": items})
}

func (s *Server) getMessage(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.st.byID[id]
	if m == nil {
		s.fail(w, http.StatusNotFound, "Could not find a message with provided ID.")
		return
	}
	if _, ok := s.readable(m.RoomID); !ok {
		s.fail(w, http.StatusNotFound, "Could not find a message with provided ID.")
		return
	}
	writeJSON(w, s.messageJSON(m))
}

func (s *Server) deleteMessage(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.st.byID[id]
	if m == nil {
		s.fail(w, http.StatusNotFound, "Could not find a message with provided ID.")
		return
	}
	if m.PersonID != s.me && !s.co {
		s.fail(w, http.StatusForbidden, "You can only delete your own messages.")
		return
	}
	s.deleteLocked(id, s.me)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RoomID   string   `json:"roomId"`
		ParentID string   `json:"parentId"`
		Text     string   `json:"text"`
		Markdown string   `json:"markdown"`
		Files    []string `json:"files"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		s.fail(w, http.StatusBadRequest, "The request body is not valid JSON.")
		return
	}
	if in.Text == "" && in.Markdown == "" && len(in.Files) == 0 {
		s.fail(w, http.StatusBadRequest, "text, markdown or files is required.")
		return
	}
	// Cisco's POST /messages: "The maximum message length is 7439
	// bytes", of the text and of the markdown.
	if len(in.Text) > 7439 || len(in.Markdown) > 7439 {
		s.fail(w, http.StatusBadRequest, "The message is too long.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.RoomID == "" || !s.st.member(in.RoomID, s.me) {
		s.fail(w, http.StatusNotFound, "Could not find a room with provided ID.")
		return
	}
	if in.ParentID != "" {
		if p := s.st.byID[in.ParentID]; p == nil || p.RoomID != in.RoomID {
			s.fail(w, http.StatusBadRequest, "parentId is not a message of the room.")
			return
		}
	}
	m := &Message{RoomID: in.RoomID, ParentID: in.ParentID, PersonID: s.me, Text: in.Text, Markdown: in.Markdown}
	if m.Text == "" {
		m.Text = in.Markdown
	}
	s.postLocked(m)
	// Cisco's Message schema (the answer to POST) lacks parentId, html
	// and updated, which its ListMessage has and its example shows; the
	// stand-in keeps to the schema.
	out := s.messageJSON(m)
	delete(out, "parentId")
	delete(out, "html")
	delete(out, "updated")
	writeJSON(w, out)
}

func (s *Server) membershipJSON(m *Membership) map[string]any {
	out := map[string]any{"id": m.ID, "roomId": m.RoomID, "personId": m.PersonID, "isModerator": m.IsModerator,
		"isMonitor": false, "isRoomHidden": false, "roomType": s.st.rooms[m.RoomID].Type, "created": formatTime(m.Created)}
	if p := s.st.people[m.PersonID]; p != nil {
		out["personEmail"], out["personDisplayName"], out["personOrgId"] = p.Email, p.DisplayName, OrgID
	}
	return out
}

func (s *Server) listMemberships(w http.ResponseWriter, r *http.Request) {
	q := queryOf(r)
	max, ok := maxParam(q, 100, 1000)
	if !ok {
		s.fail(w, http.StatusBadRequest, "max must be a positive number.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []*Membership
	if roomID := q.Get("roomId"); roomID != "" {
		if _, ok := s.readable(roomID); !ok {
			s.fail(w, http.StatusNotFound, "Could not find a room with provided ID.")
			return
		}
		list = s.st.memberships[roomID]
	} else {
		for id, ms := range s.st.memberships {
			if s.st.member(id, s.me) && !s.st.rooms[id].Deleted {
				list = append(list, ms...)
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	}
	list = slices.Clone(list)
	s.page(w, r, len(list), max, func(i int) any { return s.membershipJSON(list[i]) }, map[string]string{"roomId": q.Get("roomId")})
}

func personJSON(p *Person) map[string]any {
	return map[string]any{"id": p.ID, "emails": []string{p.Email}, "displayName": p.DisplayName,
		"firstName": p.FirstName, "lastName": p.LastName, "orgId": OrgID, "type": p.Type, "created": formatTime(p.Created)}
}

func (s *Server) listPeople(w http.ResponseWriter, r *http.Request) {
	q := queryOf(r)
	max, ok := maxParam(q, 100, 1000)
	if !ok {
		s.fail(w, http.StatusBadRequest, "max must be a positive number.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ids := q.Get("id"); ids != "" {
		list := strings.Split(ids, ",")
		if len(list) > 85 {
			s.fail(w, http.StatusBadRequest, "At most 85 ids may be given.")
			return
		}
		items := []any{}
		var missing []string
		for _, id := range list {
			if p := s.st.people[strings.TrimSpace(id)]; p != nil {
				items = append(items, personJSON(p))
			} else {
				missing = append(missing, id)
			}
		}
		out := map[string]any{"items": items}
		if len(missing) > 0 {
			out["notFoundIds"] = missing
		}
		writeJSON(w, out)
		return
	}
	email := q.Get("email")
	if email == "" {
		s.fail(w, http.StatusBadRequest, "Either email or displayName is required.")
		return
	}
	var list []*Person
	for _, p := range s.st.people {
		if strings.EqualFold(p.Email, email) {
			list = append(list, p)
		}
	}
	s.page(w, r, len(list), max, func(i int) any { return personJSON(list[i]) }, map[string]string{"email": email})
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := queryOf(r)
	max, ok := maxParam(q, 100, 1000)
	if !ok {
		s.fail(w, http.StatusBadRequest, "max must be a number between 1 and 1000.")
		return
	}
	parse := func(name string) (time.Time, bool) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, true
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	from, ok1 := parse("from")
	to, ok2 := parse("to")
	if !ok1 || !ok2 {
		s.fail(w, http.StatusBadRequest, "from and to must be ISO 8601 times.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.co {
		s.fail(w, http.StatusForbidden, "Only compliance officers may list events.")
		return
	}
	var list []*Event
	for i := len(s.st.events) - 1; i >= 0; i-- {
		e := s.st.events[i]
		if (q.Get("resource") != "" && e.Resource != q.Get("resource")) || (q.Get("type") != "" && e.Type != q.Get("type")) {
			continue
		}
		if (!from.IsZero() && !e.Created.After(from)) || (!to.IsZero() && !e.Created.Before(to)) {
			continue
		}
		list = append(list, e)
	}
	s.page(w, r, len(list), max, func(i int) any {
		e := list[i]
		return map[string]any{"id": e.ID, "resource": e.Resource, "type": e.Type, "actorId": e.ActorID,
			"orgId": OrgID, "created": formatTime(e.Created), "data": e.Data}
	}, map[string]string{"resource": q.Get("resource"), "type": q.Get("type"), "from": q.Get("from"), "to": q.Get("to")})
}

// content serves a file (GET or HEAD), streaming generated bytes for a
// file given by Size.
func (s *Server) content(w http.ResponseWriter, r *http.Request, id string, f *Fault) {
	rec := &recorder{h: http.Header{}}
	if !s.authorized(rec, r) {
		s.emit(w, r, rec, nil, nil)
		return
	}
	s.mu.Lock()
	file := s.st.files[id]
	s.mu.Unlock()
	if file == nil {
		s.fail(w, http.StatusNotFound, "The requested file could not be found.")
		return
	}
	if file.Unscannable && r.URL.Query().Get("allow") != "unscannable" {
		s.fail(w, http.StatusPreconditionRequired, "File(s) cannot be scanned for malware and need to be force downloaded.")
		return
	}
	w.Header().Set("Content-Type", file.ContentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", file.Name))
	if !file.NoLength {
		w.Header().Set("Content-Length", strconv.FormatInt(file.size(), 10))
	}
	if r.Method == http.MethodHead {
		return
	}
	if file.Data != nil {
		data := file.Data
		if f != nil && f.TruncateAt > 0 && f.TruncateAt < len(data) {
			_, _ = w.Write(data[:f.TruncateAt])
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
				}
			}
			return
		}
		n, _ := w.Write(data)
		s.sent.Add(int64(n))
		return
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for sent := int64(0); sent < file.Size; {
		n := min(int64(len(chunk)), file.Size-sent)
		if _, err := bw.Write(chunk[:n]); err != nil {
			return
		}
		s.sent.Add(n)
		sent += n
	}
	_ = bw.Flush()
}

// authorize approves at once: it redirects to redirect_uri with a code
// and the state.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.tok.clientID || q.Get("response_type") != "code" {
		http.Error(w, "unknown client or response type", http.StatusBadRequest)
		return
	}
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || u.Host == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	code := "code-" + randomHex()
	s.mu.Lock()
	s.tok.codes[code] = true
	s.mu.Unlock()
	rq := u.Query()
	rq.Set("code", code)
	rq.Set("state", q.Get("state"))
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// accessToken is the token endpoint: authorization_code and refresh_token
// grants, client credentials in the form or in basic authentication.
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "POST a form")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.tok.clientID || secret != s.tok.secret {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "The client id or secret is wrong.")
		return
	}
	refresh := ""
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		if !s.tok.codes[code] {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "The authorization code is invalid or was used.")
			return
		}
		delete(s.tok.codes, code)
		refresh = "rt-" + randomHex()
		s.tok.refresh[refresh] = true
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !s.tok.refresh[rt] {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "The refresh token is invalid or expired.")
			return
		}
		refresh = rt
		if s.tok.rotate {
			delete(s.tok.refresh, rt)
			refresh = "rt-" + randomHex()
			s.tok.refresh[refresh] = true
		}
		s.tok.refreshes++
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	at := "at-" + randomHex()
	s.tok.access[at] = time.Now().Add(s.tok.ttl)
	writeJSON(w, map[string]any{"access_token": at, "expires_in": int(s.tok.ttl.Seconds()), "refresh_token": refresh,
		"refresh_token_expires_in": 7776000, "token_type": "Bearer"})
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
