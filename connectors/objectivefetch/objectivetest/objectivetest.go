// Package objectivetest is a stateful stand-in for the REST API of an
// Objective ECM / Objective Nexus server, for the Objective connector's
// tests and benchmarks.
//
// Objective publishes no machine-readable description of its REST API,
// and none could be reached from where this project is built. The stand-in
// implements the shape observed in a public client (an n8n node written in
// an Objective-affiliated fork: victors-objective/n8n,
// packages/nodes-base/nodes/Objective/Nexus/ObjectiveNexus.node.ts and
// GenericFunctions.ts, and the token request of its direct-grant
// credentials) and, where that client is silent, behaviour inferred from
// it. Every inferred behaviour is listed below and in
// docs/connectors/objective.md, so that the gap to a real server stays
// visible.
//
// # Observed in the public client
//
//   - Token: POST {server}/auth/realms/ecm/protocol/openid-connect/token, a
//     Keycloak realm "ecm", form grant_type=password with client_id,
//     username and password; then Authorization: Bearer. Basic
//     authentication (user and password) is the other option.
//   - Ids: folders fA<n> (fA0 in the client's examples), documents A<n>,
//     document versions vA<n>.
//   - GET /api/resources?parentId=<id>&containersFirst=true lists a
//     container's children as a JSON array of objects with id, name,
//     dateCreated, dateUpdated, currentVersionNumber, fileSize, type,
//     $etag, extension, state, revision, versionLabel, corporateValue,
//     docVersionName.
//   - GET /api/resources/{documents|folders|files}/{id}: one object's
//     metadata; .../{id}/fields: its catalogue fields; DELETE
//     /api/resources/{documents|folders}/{id}.
//   - GET /api/resources/documents/{id}/content: the current version's
//     bytes; POST to it with multipart "content": a new version.
//   - GET /api/resources/documentversions?documentId=<id>: the versions;
//     GET /api/resources/documentversions/{vId}/content.
//   - POST /api/resources/folders (JSON name, parentId, objectType,
//     default dotdA12); POST /api/resources/documents (multipart parentId,
//     name, content).
//   - GET /api/resources/files/{id}/children and /fileparts: an Objective
//     "file" (a record container, objectType dotdA11) and its parts.
//
// # Inferred (not shown by any public source)
//
//   - Paging: offset and limit query parameters on every list; a page
//     shorter than limit is the last. Without them a list is whole (as
//     the client saw it).
//   - Error bodies: JSON {"status": n, "error": reason, "message": text};
//     401 for a missing or expired token, 403 where the user lacks the
//     privilege, 404 for an unknown id.
//   - Ids of files qA<n>, of file parts pA<n>; parentId on every object;
//     objectType on folders and files; a file's children are its
//     documents with their filePartId.
//   - Catalogue fields: a JSON array of {"name", "label", "value"}, value
//     a string or an array of strings.
//   - Permissions: GET /api/resources/{kind}/{id}/permissions, a JSON
//     array of {"principal", "principalType" (user|group), "privileges"
//     (read, browse, write), "deny"}; the group "Everyone" stands for
//     everyone. A change of an object's permissions, fields, name or
//     parent changes its $etag and dateUpdated, as a new version does.
//   - A document's $etag does not change when another object changes; a
//     folder's does not change when its children change.
//   - No list or object answer carries catalogue fields or permissions,
//     and no parameter (expand, include, fields) asks for them along with
//     a listing: the public client reads fields with .../{id}/fields, one
//     request per object, and shows no other way, and no public source
//     shows an object answer's shape. Whether an object has permissions
//     of its own is known only from its .../permissions answer (an empty
//     array: it inherits). So a client that indexes a document with its
//     catalogue fields and its permissions makes three requests for it
//     (fields, permissions, content) besides its container's listing.
//   - Token exchange: with a client secret and no password, the token
//     endpoint's Keycloak token exchange (grant_type
//     urn:ietf:params:oauth:grant-type:token-exchange, requested_subject
//     the user to act for) gives a token for that user, as the vendors'
//     "client ID, client secret and user" settings suggest; refresh
//     tokens work as Keycloak's (grant_type refresh_token).
package objectivetest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of objects.
const (
	KindFolder   = "folder"
	KindFile     = "file"
	KindDocument = "document"
)

// RootID is the folder every path starts from.
const RootID = "fA0"

// Permission is one entry of an object's permissions.
type Permission struct {
	Principal     string   `json:"principal"`
	PrincipalType string   `json:"principalType"` // user or group
	Privileges    []string `json:"privileges"`    // read, browse, write
	Deny          bool     `json:"deny"`
}

// Field is one catalogue field.
type Field struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Value any    `json:"value"`
}

// Version is one version of a document.
type Version struct {
	ID             string
	Number         int
	Label          string
	Data           []byte
	Size           int64 // generated content when Data is nil
	Corporate      bool
	Created        time.Time
	DocVersionName string
}

// Object is a folder, a file or a document.
type Object struct {
	ID          string
	Kind        string
	Name        string
	ParentID    string
	ObjectType  string
	Extension   string
	FilePartID  string
	Created     time.Time
	Updated     time.Time
	State       string
	Revision    int
	Fields      []Field
	Permissions []Permission
	Versions    []*Version // documents, oldest first
	Parts       []string   // file parts' names (files)
	etagSalt    int
}

func (o *Object) etag() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%d\x00%d", o.Name, o.ParentID, o.Updated.Format(time.RFC3339Nano), len(o.Versions), o.Revision, o.etagSalt)
	return `W/"` + hex.EncodeToString(h.Sum(nil)[:8]) + `"`
}

func (o *Object) current() *Version {
	if len(o.Versions) == 0 {
		return nil
	}
	return o.Versions[len(o.Versions)-1]
}

func (v *Version) size() int64 {
	if v.Data != nil {
		return int64(len(v.Data))
	}
	return v.Size
}

// Fault is what a request gets instead of its answer (Server.SetFault).
type Fault struct {
	Status     int
	RetryAfter string
	// TruncateAt sends the answer's headers and its first TruncateAt
	// bytes, then drops the connection.
	TruncateAt int
	// RepeatPage answers a list page with the first page again,
	// whatever its offset (a server that ignores offset, or a page
	// linking back to itself).
	RepeatPage bool
	// MaxLimit caps a list page at MaxLimit items, whatever limit asks
	// (a server with a largest page of its own).
	MaxLimit int
	// Drop closes the connection without an answer (a connection reset
	// on the way); only at the token endpoint.
	Drop bool
}

// Options configure a Server.
type Options struct {
	// Users are the users and passwords basic authentication and the
	// password grant accept; default alice/alice-password.
	Users map[string]string
	// Groups are the groups of each user.
	Groups map[string][]string
	// ClientID and ClientSecret are the client the token endpoint
	// accepts; default "connector" and "client-secret".
	ClientID, ClientSecret string
	// AccessTTL of the access tokens; default 5 minutes (Keycloak's).
	AccessTTL time.Duration
	// Start of the clock; default 2026-01-05 09:00 UTC.
	Start time.Time
}

// Server is the stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's root (http://127.0.0.1:port).
	URL string
	srv *httptest.Server
	opt Options

	mu      sync.Mutex
	objs    map[string]*Object
	seq     int
	clock   time.Time
	access  map[string]tokenInfo
	refresh map[string]tokenInfo
	grants  int

	fault    atomic.Pointer[func(*http.Request) *Fault]
	tokFault atomic.Pointer[func(*http.Request) *Fault]
	rmu      sync.Mutex
	requests map[string]int
	total    atomic.Int64
	sent     atomic.Int64
}

type tokenInfo struct {
	user    string
	expires time.Time
}

// New starts a stand-in on 127.0.0.1 with the root folder fA0; it stops
// with Close.
func New(o Options) *Server {
	if o.Users == nil {
		o.Users = map[string]string{"alice": "alice-password"}
	}
	if o.ClientID == "" {
		o.ClientID, o.ClientSecret = "connector", "client-secret"
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = 5 * time.Minute
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	}
	s := &Server{opt: o, objs: map[string]*Object{}, clock: o.Start, access: map[string]tokenInfo{},
		refresh: map[string]tokenInfo{}, requests: map[string]int{}}
	s.objs[RootID] = &Object{ID: RootID, Kind: KindFolder, Name: "Objective Global Folder", ObjectType: "dotdA12",
		Created: o.Start, Updated: o.Start, Permissions: []Permission{{Principal: "Everyone", PrincipalType: "group", Privileges: []string{"read", "browse"}}}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// TokenURL is the Keycloak token endpoint.
func (s *Server) TokenURL() string { return s.URL + "/auth/realms/ecm/protocol/openid-connect/token" }

// SetTokenFault sets a function that may answer a request to the token
// endpoint with a fault's status and Retry-After, or drop it (nil: none).
func (s *Server) SetTokenFault(f func(*http.Request) *Fault) {
	if f == nil {
		s.tokFault.Store(nil)
		return
	}
	s.tokFault.Store(&f)
}

// SetFault sets a function that may answer a request with a fault.
func (s *Server) SetFault(f func(*http.Request) *Fault) {
	if f == nil {
		s.fault.Store(nil)
		return
	}
	s.fault.Store(&f)
}

// Requests returns the request counts by "METHOD /path" (ids replaced by
// {id}) and the total.
func (s *Server) Requests() (map[string]int, int) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out, int(s.total.Load())
}

// ResetRequests sets the request counts to zero.
func (s *Server) ResetRequests() {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.requests = map[string]int{}
	s.total.Store(0)
}

// ContentBytesSent is how many bytes of content the server has written.
func (s *Server) ContentBytesSent() int64 { return s.sent.Load() }

// Grants is how many tokens the token endpoint issued.
func (s *Server) Grants() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants
}

// RevokeAccessTokens makes every access token issued so far invalid.
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access = map[string]tokenInfo{}
}

// RevokeRefreshTokens makes every refresh token invalid.
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh = map[string]tokenInfo{}
}

// SetPassword changes (or adds) a user's password.
func (s *Server) SetPassword(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opt.Users[user] = password
}

// Now returns the clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock
}

// Advance moves the clock.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = s.clock.Add(d)
}

func (s *Server) tick() time.Time {
	s.clock = s.clock.Add(time.Second)
	return s.clock
}

func (s *Server) newID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%d", prefix, 100+s.seq)
}

// AddFolder creates a folder and returns its id.
func (s *Server) AddFolder(parentID, name string, perms ...Permission) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFolderLocked(parentID, name, "dotdA12", perms)
}

func (s *Server) addFolderLocked(parentID, name, objectType string, perms []Permission) string {
	at := s.tick()
	id := s.newID("fA")
	s.objs[id] = &Object{ID: id, Kind: KindFolder, Name: name, ParentID: parentID, ObjectType: objectType, Created: at, Updated: at, Permissions: perms}
	return id
}

// AddFile creates an Objective file (a record container) with parts and
// returns its id.
func (s *Server) AddFile(parentID, name string, parts []string, perms ...Permission) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.tick()
	id := s.newID("qA")
	s.objs[id] = &Object{ID: id, Kind: KindFile, Name: name, ParentID: parentID, ObjectType: "dotdA11", Created: at, Updated: at, Parts: parts, Permissions: perms}
	return id
}

// Doc describes a document to add.
type Doc struct {
	Name      string // with its extension
	Data      []byte
	Size      int64 // generated content of this size when Data is nil
	Fields    []Field
	Perms     []Permission
	FilePart  string // for a document in a file: the part's name
	Corporate bool
}

// AddDocument creates a document with one version and returns its id.
func (s *Server) AddDocument(parentID string, d Doc) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addDocumentLocked(parentID, d)
}

func (s *Server) addDocumentLocked(parentID string, d Doc) string {
	at := s.tick()
	id := s.newID("A")
	ext := strings.TrimPrefix(path.Ext(d.Name), ".")
	o := &Object{ID: id, Kind: KindDocument, Name: strings.TrimSuffix(d.Name, path.Ext(d.Name)), ParentID: parentID, Extension: ext,
		Created: at, Updated: at, State: "Published", Fields: d.Fields, Permissions: d.Perms}
	if d.FilePart != "" {
		o.FilePartID = partID(parentID, d.FilePart)
	}
	o.Versions = []*Version{{ID: "v" + id, Number: 1, Label: "1", Data: d.Data, Size: d.Size, Corporate: d.Corporate, Created: at, DocVersionName: d.Name}}
	s.objs[id] = o
	return id
}

func partID(fileID, part string) string {
	h := sha256.Sum256([]byte(fileID + "\x00" + part))
	return "pA" + hex.EncodeToString(h[:4])
}

// NewVersion adds a version to a document and returns its id.
func (s *Server) NewVersion(docID string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newVersionLocked(docID, data, "")
}

func (s *Server) newVersionLocked(docID string, data []byte, name string) string {
	o := s.objs[docID]
	at := s.tick()
	n := len(o.Versions) + 1
	v := &Version{ID: fmt.Sprintf("v%s.%d", docID, n), Number: n, Label: strconv.Itoa(n), Data: data, Created: at, DocVersionName: name}
	if name == "" {
		v.DocVersionName = o.Name + "." + o.Extension
	}
	o.Versions = append(o.Versions, v)
	o.Updated = at
	return v.ID
}

// Update changes an object: fn edits it (its name, fields, permissions,
// parent); its dateUpdated and $etag move.
func (s *Server) Update(id string, fn func(o *Object)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objs[id]
	fn(o)
	o.Updated = s.tick()
	o.etagSalt++
}

// Remove deletes an object with everything under it.
func (s *Server) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(id)
}

func (s *Server) removeLocked(id string) {
	for _, o := range s.objs {
		if o.ParentID == id {
			s.removeLocked(o.ID)
		}
	}
	delete(s.objs, id)
}

// Object returns a copy of an object (nil when there is none).
func (s *Server) Object(id string) *Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objs[id]
	if o == nil {
		return nil
	}
	c := *o
	c.Versions = slices.Clone(o.Versions)
	return &c
}

// Find returns the id of the child of parentID with that name ("" when
// none).
func (s *Server) Find(parentID, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.objs {
		if o.ParentID == parentID && (o.Name == name || o.Kind == KindDocument && o.Name+"."+o.Extension == name) {
			return o.ID
		}
	}
	return ""
}

// Documents returns the ids of every document.
func (s *Server) Documents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, o := range s.objs {
		if o.Kind == KindDocument {
			out = append(out, o.ID)
		}
	}
	sort.Strings(out)
	return out
}

// --- HTTP ---

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func normPath(p string) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) >= 4 && parts[0] == "api" {
		parts[3] = "{id}"
	}
	return "/" + strings.Join(parts, "/")
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.total.Add(1)
	s.rmu.Lock()
	s.requests[r.Method+" "+normPath(r.URL.Path)]++
	s.rmu.Unlock()
	if r.URL.Path == "/auth/realms/ecm/protocol/openid-connect/token" {
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
				fail(w, f.Status, http.StatusText(f.Status))
				return
			}
		}
		s.token(w, r)
		return
	}
	var f *Fault
	if fp := s.fault.Load(); fp != nil {
		f = (*fp)(r)
	}
	if f != nil && f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		fail(w, f.Status, http.StatusText(f.Status))
		return
	}
	user, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ecm"`)
		fail(w, http.StatusUnauthorized, "The access token is missing, invalid or expired.")
		return
	}
	rec := &recorder{h: http.Header{}}
	s.route(rec, r, user, f)
	for k, vs := range rec.h {
		w.Header()[k] = vs
	}
	if rec.gen != nil {
		// Generated content: streamed, never held (the lock is released).
		w.WriteHeader(http.StatusOK)
		rec.gen.stream(w)
		return
	}
	body := rec.body.Bytes()
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	w.WriteHeader(rec.status)
	if f != nil && f.TruncateAt > 0 && f.TruncateAt < len(body) {
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
	_, _ = w.Write(body)
}

type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
	gen    *generated // content to stream after the answer's headers
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "error": http.StatusText(status), "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) authenticate(r *http.Request) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, p, ok := r.BasicAuth(); ok {
		want, known := s.opt.Users[u]
		return u, known && p == want
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	ti, known := s.access[tok]
	if !known || time.Now().After(ti.expires) {
		return "", false
	}
	return ti.user, true
}

// allowed reports whether user holds privilege on o (its own entries, else
// its parent's: permissions are inherited when an object has none).
func (s *Server) allowed(o *Object, user, privilege string) bool {
	for cur := o; cur != nil; cur = s.objs[cur.ParentID] {
		if len(cur.Permissions) == 0 {
			if cur.ParentID == "" {
				return false
			}
			continue
		}
		groups := s.opt.Groups[user]
		granted := false
		for _, p := range cur.Permissions {
			match := p.PrincipalType == "user" && p.Principal == user ||
				p.PrincipalType == "group" && (p.Principal == "Everyone" || slices.Contains(groups, p.Principal))
			if !match || !slices.Contains(p.Privileges, privilege) {
				continue
			}
			if p.Deny {
				return false
			}
			granted = true
		}
		return granted
	}
	return false
}

func (s *Server) item(o *Object) map[string]any {
	m := map[string]any{"id": o.ID, "name": o.Name, "type": o.Kind, "parentId": o.ParentID,
		"dateCreated": o.Created.UTC().Format(time.RFC3339), "dateUpdated": o.Updated.UTC().Format(time.RFC3339), "$etag": o.etag()}
	switch o.Kind {
	case KindFolder, KindFile:
		m["objectType"] = o.ObjectType
	case KindDocument:
		v := o.current()
		m["currentVersionNumber"] = v.Number
		m["fileSize"] = v.size()
		m["extension"] = o.Extension
		m["state"] = o.State
		m["revision"] = o.Revision
		m["versionLabel"] = v.Label
		m["corporateValue"] = v.Corporate
		m["docVersionName"] = v.DocVersionName
		m["currentVersionId"] = v.ID
		if o.FilePartID != "" {
			m["filePartId"] = o.FilePartID
		}
	}
	return m
}

// page answers a list with offset and limit (inferred paging).
func page[T any](w http.ResponseWriter, r *http.Request, items []T, f *Fault) {
	q := r.URL.Query()
	off, _ := strconv.Atoi(q.Get("offset"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if q.Get("limit") == "" {
		limit, err = len(items), nil
	}
	if err != nil || off < 0 || limit < 1 && len(items) > 0 {
		fail(w, http.StatusBadRequest, "offset and limit must be whole numbers, limit at least 1")
		return
	}
	if f != nil && f.RepeatPage {
		off = 0
	}
	if f != nil && f.MaxLimit > 0 {
		limit = min(limit, f.MaxLimit)
	}
	end := min(len(items), off+limit)
	if off > len(items) {
		off = len(items)
	}
	out := items[off:end]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, out)
}

var kinds = map[string]string{"folders": KindFolder, "files": KindFile, "documents": KindDocument}

func (s *Server) route(w *recorder, r *http.Request, user string, f *Fault) {
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(p) < 2 || p[0] != "api" || p[1] != "resources" {
		fail(w, http.StatusNotFound, "No such resource.")
		return
	}
	p = p[2:]
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(p) == 0 && r.Method == http.MethodGet:
		s.children(w, r, user, r.URL.Query().Get("parentId"), f)
	case len(p) == 1 && p[0] == "documentversions" && r.Method == http.MethodGet:
		o := s.objs[r.URL.Query().Get("documentId")]
		if o == nil || o.Kind != KindDocument || !s.allowed(o, user, "read") {
			fail(w, http.StatusNotFound, "No such document.")
			return
		}
		var out []map[string]any
		for _, v := range o.Versions {
			out = append(out, map[string]any{"id": v.ID, "documentId": o.ID, "versionNumber": v.Number, "versionLabel": v.Label,
				"dateCreated": v.Created.UTC().Format(time.RFC3339), "fileSize": v.size(), "extension": o.Extension,
				"corporateValue": v.Corporate, "docVersionName": v.DocVersionName})
		}
		page(w, r, out, f)
	case len(p) == 3 && p[0] == "documentversions" && p[2] == "content" && r.Method == http.MethodGet:
		for _, o := range s.objs {
			for _, v := range o.Versions {
				if v.ID == p[1] && s.allowed(o, user, "read") {
					s.content(w, r, o, v, f)
					return
				}
			}
		}
		fail(w, http.StatusNotFound, "No such document version.")
	case len(p) == 1 && p[0] == "folders" && r.Method == http.MethodPost:
		s.createFolder(w, r, user)
	case len(p) == 1 && p[0] == "documents" && r.Method == http.MethodPost:
		s.createDocument(w, r, user, "")
	case len(p) >= 2 && kinds[p[0]] != "":
		o := s.objs[p[1]]
		if o == nil || o.Kind != kinds[p[0]] || !s.allowed(o, user, "browse") && !s.allowed(o, user, "read") {
			fail(w, http.StatusNotFound, "No such "+kinds[p[0]]+".")
			return
		}
		s.object(w, r, user, o, p[2:], f)
	default:
		fail(w, http.StatusNotFound, "No such resource.")
	}
}

func (s *Server) children(w *recorder, r *http.Request, user, parentID string, f *Fault) {
	parent := s.objs[parentID]
	if parent == nil || parent.Kind == KindDocument || !s.allowed(parent, user, "browse") && !s.allowed(parent, user, "read") {
		fail(w, http.StatusNotFound, "No such container.")
		return
	}
	var kids []*Object
	for _, o := range s.objs {
		if o.ParentID == parentID && (s.allowed(o, user, "browse") || s.allowed(o, user, "read")) {
			kids = append(kids, o)
		}
	}
	first := r.URL.Query().Get("containersFirst") == "true"
	sort.Slice(kids, func(i, j int) bool {
		ci, cj := kids[i].Kind != KindDocument, kids[j].Kind != KindDocument
		if first && ci != cj {
			return ci
		}
		if kids[i].Name != kids[j].Name {
			return kids[i].Name < kids[j].Name
		}
		return kids[i].ID < kids[j].ID
	})
	items := make([]map[string]any, len(kids))
	for i, o := range kids {
		items[i] = s.item(o)
	}
	page(w, r, items, f)
}

func (s *Server) object(w *recorder, r *http.Request, user string, o *Object, rest []string, f *Fault) {
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		writeJSON(w, s.item(o))
	case len(rest) == 0 && r.Method == http.MethodDelete:
		if !s.allowed(o, user, "write") {
			fail(w, http.StatusForbidden, "You may not delete this object.")
			return
		}
		s.removeLocked(o.ID)
		w.WriteHeader(http.StatusNoContent)
	case len(rest) == 1 && rest[0] == "fields" && r.Method == http.MethodGet:
		out := o.Fields
		if out == nil {
			out = []Field{}
		}
		writeJSON(w, out)
	case len(rest) == 1 && rest[0] == "permissions" && r.Method == http.MethodGet:
		out := o.Permissions
		if out == nil {
			out = []Permission{}
		}
		writeJSON(w, out)
	case len(rest) == 1 && rest[0] == "content" && o.Kind == KindDocument && r.Method == http.MethodGet:
		if !s.allowed(o, user, "read") {
			fail(w, http.StatusForbidden, "You may not read this document.")
			return
		}
		s.content(w, r, o, o.current(), f)
	case len(rest) == 1 && rest[0] == "content" && o.Kind == KindDocument && r.Method == http.MethodPost:
		s.createDocument(w, r, user, o.ID)
	case len(rest) == 1 && rest[0] == "children" && o.Kind == KindFile && r.Method == http.MethodGet:
		s.children(w, r, user, o.ID, f)
	case len(rest) == 1 && rest[0] == "fileparts" && o.Kind == KindFile && r.Method == http.MethodGet:
		var out []map[string]any
		for _, name := range o.Parts {
			out = append(out, map[string]any{"id": partID(o.ID, name), "name": name, "fileId": o.ID})
		}
		page(w, r, out, f)
	default:
		fail(w, http.StatusNotFound, "No such resource.")
	}
}

// content streams a version's bytes (generated ones when it has a Size).
func (s *Server) content(w *recorder, r *http.Request, o *Object, v *Version, f *Fault) {
	name := v.DocVersionName
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.h
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("ETag", o.etag())
	if v.Data != nil {
		_, _ = w.Write(v.Data)
		s.sent.Add(int64(len(v.Data)))
		return
	}
	h.Set("Content-Length", strconv.FormatInt(v.size(), 10))
	w.gen = &generated{size: v.size(), sent: &s.sent}
}

type generated struct {
	size int64
	sent *atomic.Int64
}

func (g *generated) stream(w io.Writer) {
	chunk := bytes.Repeat([]byte("objective content "), 3641)
	for n := int64(0); n < g.size; {
		k := min(int64(len(chunk)), g.size-n)
		if _, err := w.Write(chunk[:k]); err != nil {
			return
		}
		g.sent.Add(k)
		n += k
	}
}

func (s *Server) createFolder(w *recorder, r *http.Request, user string) {
	var in struct {
		Name       string `json:"name"`
		ParentID   string `json:"parentId"`
		ObjectType string `json:"objectType"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil || strings.TrimSpace(in.Name) == "" {
		fail(w, http.StatusBadRequest, "name and parentId are required.")
		return
	}
	parent := s.objs[in.ParentID]
	if parent == nil || parent.Kind == KindDocument {
		fail(w, http.StatusNotFound, "No such container.")
		return
	}
	if !s.allowed(parent, user, "write") {
		fail(w, http.StatusForbidden, "You may not create folders here.")
		return
	}
	if in.ObjectType == "" {
		in.ObjectType = "dotdA12"
	}
	id := s.addFolderLocked(in.ParentID, in.Name, in.ObjectType, nil)
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, s.item(s.objs[id]))
}

// createDocument takes a multipart upload: a new document (parentId, name,
// content) or, for docID, a new version of it (content).
func (s *Server) createDocument(w *recorder, r *http.Request, user, docID string) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		fail(w, http.StatusUnsupportedMediaType, "Send multipart/form-data.")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	form := map[string]string{}
	var data []byte
	fileName := ""
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(w, http.StatusBadRequest, "The multipart body is malformed.")
			return
		}
		b, err := io.ReadAll(io.LimitReader(part, 256<<20))
		if err != nil {
			fail(w, http.StatusBadRequest, "The multipart body is malformed.")
			return
		}
		if part.FormName() == "content" {
			data, fileName = b, part.FileName()
		} else {
			form[part.FormName()] = string(b)
		}
	}
	if data == nil {
		fail(w, http.StatusBadRequest, "content is required.")
		return
	}
	if docID != "" {
		o := s.objs[docID]
		if !s.allowed(o, user, "write") {
			fail(w, http.StatusForbidden, "You may not change this document.")
			return
		}
		s.newVersionLocked(docID, data, fileName)
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, s.item(o))
		return
	}
	parent := s.objs[form["parentId"]]
	if parent == nil || parent.Kind == KindDocument {
		fail(w, http.StatusNotFound, "No such container.")
		return
	}
	if !s.allowed(parent, user, "write") {
		fail(w, http.StatusForbidden, "You may not create documents here.")
		return
	}
	name := form["name"]
	if name == "" {
		name = fileName
	}
	if !strings.Contains(name, ".") && fileName != "" {
		name += path.Ext(fileName)
	}
	id := s.addDocumentLocked(parent.ID, Doc{Name: name, Data: data})
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, s.item(s.objs[id]))
}

// token is the Keycloak token endpoint: password, refresh_token and token
// exchange grants.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
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
	if id != s.opt.ClientID || (secret != "" && secret != s.opt.ClientSecret) {
		tokenError(w, http.StatusUnauthorized, "unauthorized_client", "Invalid client or Invalid client credentials")
		return
	}
	user := ""
	switch r.PostForm.Get("grant_type") {
	case "password":
		u, p := r.PostForm.Get("username"), r.PostForm.Get("password")
		if want, known := s.opt.Users[u]; !known || p != want {
			tokenError(w, http.StatusUnauthorized, "invalid_grant", "Invalid user credentials")
			return
		}
		user = u
	case "refresh_token":
		ti, known := s.refresh[r.PostForm.Get("refresh_token")]
		if !known || time.Now().After(ti.expires) {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "Token is not active")
			return
		}
		user = ti.user
	case "urn:ietf:params:oauth:grant-type:token-exchange":
		if secret == "" {
			tokenError(w, http.StatusUnauthorized, "unauthorized_client", "Client not allowed to exchange")
			return
		}
		u := r.PostForm.Get("requested_subject")
		if _, known := s.opt.Users[u]; !known {
			tokenError(w, http.StatusBadRequest, "invalid_request", "requested_subject not found")
			return
		}
		user = u
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
		return
	}
	s.grants++
	at, rt := "at-"+randomHex(), "rt-"+randomHex()
	s.access[at] = tokenInfo{user: user, expires: time.Now().Add(s.opt.AccessTTL)}
	s.refresh[rt] = tokenInfo{user: user, expires: time.Now().Add(30 * time.Minute)}
	writeJSON(w, map[string]any{"access_token": at, "expires_in": int(s.opt.AccessTTL.Seconds()), "refresh_expires_in": 1800,
		"refresh_token": rt, "token_type": "Bearer", "not-before-policy": 0, "scope": "profile email"})
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
