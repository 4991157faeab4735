// Package gmailtest is a stand-in for the Gmail API that follows Google's
// discovery document, gmail-api.json, shipped inside the
// google.golang.org/api module: every request it receives must match a
// method of the document (HTTP method and path template), with only the
// parameters the method or the API declares, of the declared types; every
// JSON body it answers with must hold only properties the method's
// response schema declares. Anything else is recorded as a violation,
// which Violations returns and the test fails on.
//
// Behind that it keeps a mailbox in memory: labels, messages (raw RFC 5322
// bytes, labels, thread id, internal date) and a history log, with the
// methods a mail connector uses: users.getProfile, labels.list,
// messages.list (labelIds, includeSpamTrash, paging), messages.get (raw,
// minimal, metadata), messages.insert, messages.trash, messages.delete and
// history.list (messagesAdded, messagesDeleted, labelsAdded,
// labelsRemoved, paging; 404 for a startHistoryId older than the history
// kept, as Google answers for an expired one). Requests need a bearer token
// the test's token server vouches for.
package gmailtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DiscoveryPath finds gmail/v1/gmail-api.json in the module cache (with
// the go command).
func DiscoveryPath() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "google.golang.org/api").Output()
	if err != nil {
		return "", fmt.Errorf("locate google.golang.org/api: %w", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "gmail", "v1", "gmail-api.json")
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

type discovery struct {
	Parameters map[string]param    `json:"parameters"`
	Resources  map[string]resource `json:"resources"`
	Schemas    map[string]*schema  `json:"schemas"`
}

type resource struct {
	Methods   map[string]method   `json:"methods"`
	Resources map[string]resource `json:"resources"`
}

type method struct {
	ID         string           `json:"id"`
	FlatPath   string           `json:"flatPath"`
	HTTPMethod string           `json:"httpMethod"`
	Parameters map[string]param `json:"parameters"`
	Response   *struct {
		Ref string `json:"$ref"`
	} `json:"response"`
	re *regexp.Regexp
}

type param struct {
	Type     string   `json:"type"`
	Location string   `json:"location"`
	Required bool     `json:"required"`
	Repeated bool     `json:"repeated"`
	Enum     []string `json:"enum"`
}

type schema struct {
	Type       string             `json:"type"`
	Ref        string             `json:"$ref"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	Additional *schema            `json:"additionalProperties"`
}

// Message is one message of the stand-in's mailbox.
type Message struct {
	ID, ThreadID string
	Raw          []byte
	Labels       []string // label ids
	Internal     time.Time
}

// Server is the stand-in.
type Server struct {
	URL string // the API's root URL, for option.WithEndpoint

	doc     discovery
	methods []*method
	srv     *httptest.Server
	authz   func(token string) string

	mu         sync.Mutex
	violations []string
	email      string
	labels     []label
	msgs       map[string]*Message
	order      []string // message ids, newest first
	history    []event
	historyID  uint64
	oldest     uint64 // history before this id is forgotten
	nextID     uint64
	requests   []string // "METHOD path"
}

type label struct{ ID, Name, Type string }

type event struct {
	id      uint64
	kind    string // messagesAdded, messagesDeleted, labelsAdded, labelsRemoved
	msg     string
	labels  []string // of the change
	current []string // the message's labels after it
}

// Start starts the stand-in for the mailbox of email. authz returns the
// user an access token is good for ("" for none).
func Start(t testing.TB, email string, authz func(token string) string) *Server {
	t.Helper()
	p, err := DiscoveryPath()
	if err != nil {
		t.Fatalf("gmailtest: %v", err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("gmailtest: %v", err)
	}
	s := &Server{email: email, authz: authz, msgs: map[string]*Message{}, historyID: 1000, oldest: 1000, nextID: 0x18c0000000000000}
	if err := json.Unmarshal(data, &s.doc); err != nil {
		t.Fatalf("gmailtest: read %s: %v", p, err)
	}
	s.collect(s.doc.Resources)
	s.labels = append(s.labels, label{"INBOX", "INBOX", "system"}, label{"SENT", "SENT", "system"}, label{"DRAFT", "DRAFT", "system"},
		label{"SPAM", "SPAM", "system"}, label{"TRASH", "TRASH", "system"}, label{"UNREAD", "UNREAD", "system"},
		label{"STARRED", "STARRED", "system"}, label{"IMPORTANT", "IMPORTANT", "system"})
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/"
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() {
		if v := s.Violations(); len(v) > 0 {
			t.Errorf("gmailtest: requests or answers outside gmail-api.json:\n%s", strings.Join(v, "\n"))
		}
	})
	return s
}

func (s *Server) collect(rs map[string]resource) {
	for _, r := range rs {
		for _, m := range r.Methods {
			m := m
			pat := regexp.QuoteMeta(m.FlatPath)
			pat = regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(pat, `([^/]+)`)
			m.re = regexp.MustCompile("^/" + pat + "$")
			s.methods = append(s.methods, &m)
		}
		s.collect(r.Resources)
	}
}

// Violations returns what did not follow the discovery document.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// Requests returns the requests received, "METHOD id".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Server) violate(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// AddLabel adds a user label and returns its id.
func (s *Server) AddLabel(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("Label_%d", len(s.labels)+1)
	s.labels = append(s.labels, label{ID: id, Name: name, Type: "user"})
	return id
}

// RenameLabel renames a user label (its id stays; Gmail's history says
// nothing of it).
func (s *Server) RenameLabel(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.labels {
		if s.labels[i].ID == id {
			s.labels[i].Name = name
		}
	}
}

// DeleteLabel deletes a user label: the messages lose it (the history
// is not told: whether Gmail's is, is not documented).
func (s *Server) DeleteLabel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.labels = slices.DeleteFunc(s.labels, func(l label) bool { return l.ID == id })
	for _, m := range s.msgs {
		m.Labels = slices.DeleteFunc(m.Labels, func(l string) bool { return l == id })
	}
}

// Deliver adds a message with labels (ids) and returns its id.
func (s *Server) Deliver(raw []byte, labels ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(raw, labels)
}

func (s *Server) add(raw []byte, labels []string) string {
	s.nextID++
	id := strconv.FormatUint(s.nextID, 16)
	m := &Message{ID: id, ThreadID: id, Raw: raw, Labels: slices.Clone(labels), Internal: time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC).Add(time.Duration(s.nextID%1000) * time.Minute)}
	s.msgs[id] = m
	s.order = append([]string{id}, s.order...)
	s.log("messagesAdded", id, nil, m.Labels)
	return id
}

func (s *Server) log(kind, id string, changed, current []string) {
	s.historyID++
	s.history = append(s.history, event{id: s.historyID, kind: kind, msg: id, labels: slices.Clone(changed), current: slices.Clone(current)})
}

// Relabel adds and removes labels of a message.
func (s *Server) Relabel(id string, add, remove []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[id]
	if len(add) > 0 {
		for _, l := range add {
			if !slices.Contains(m.Labels, l) {
				m.Labels = append(m.Labels, l)
			}
		}
		s.log("labelsAdded", id, add, m.Labels)
	}
	if len(remove) > 0 {
		m.Labels = slices.DeleteFunc(m.Labels, func(l string) bool { return slices.Contains(remove, l) })
		s.log("labelsRemoved", id, remove, m.Labels)
	}
}

// Remove deletes a message for good.
func (s *Server) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(id)
}

func (s *Server) remove(id string) {
	delete(s.msgs, id)
	s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
	s.log("messagesDeleted", id, nil, nil)
}

// ForgetHistory drops the history kept so far: a startHistoryId from
// before now answers 404, as an expired one does.
func (s *Server) ForgetHistory() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = nil
	s.oldest = s.historyID + 1
}

// Message returns a copy of a message, or nil.
func (s *Server) Message(id string) *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.msgs[id]; m != nil {
		c := *m
		c.Labels = slices.Clone(m.Labels)
		return &c
	}
	return nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m *method
	var args []string
	for _, cand := range s.methods {
		if cand.HTTPMethod != r.Method {
			continue
		}
		if sub := cand.re.FindStringSubmatch(r.URL.Path); sub != nil {
			m, args = cand, sub[1:]
			break
		}
	}
	if m == nil {
		s.violate("%s %s: no method of gmail-api.json", r.Method, r.URL.Path)
		s.error(w, http.StatusNotFound, "not found")
		return
	}
	s.requests = append(s.requests, r.Method+" "+m.ID)
	q := r.URL.Query()
	for name, vals := range q {
		p, ok := m.Parameters[name]
		if !ok {
			p, ok = s.doc.Parameters[name]
		}
		if !ok || p.Location != "query" {
			s.violate("%s: undeclared query parameter %q", m.ID, name)
			continue
		}
		if len(vals) > 1 && !p.Repeated {
			s.violate("%s: %q repeated", m.ID, name)
		}
		for _, v := range vals {
			if !validValue(p, v) {
				s.violate("%s: %q=%q is not a %s", m.ID, name, v, p.Type)
			}
		}
	}
	for name, p := range m.Parameters {
		if p.Required && p.Location == "query" && !q.Has(name) {
			s.violate("%s: required %q missing", m.ID, name)
		}
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	user := s.authz(tok)
	if user == "" {
		s.error(w, http.StatusUnauthorized, "Request had invalid authentication credentials.")
		return
	}
	if len(args) > 0 && args[0] != "me" && args[0] != s.email || user != s.email {
		s.error(w, http.StatusForbidden, "Delegation denied for "+user)
		return
	}
	status, body := s.handle(m, args, q, r)
	if body == nil {
		w.WriteHeader(status)
		return
	}
	data, _ := json.Marshal(body)
	if status < 300 && m.Response != nil {
		var v any
		_ = json.Unmarshal(data, &v)
		s.check(m.ID, m.Response.Ref, v)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func validValue(p param, v string) bool {
	switch p.Type {
	case "boolean":
		return v == "true" || v == "false"
	case "integer":
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	}
	return len(p.Enum) == 0 || slices.Contains(p.Enum, v)
}

// check walks an answer against its schema.
func (s *Server) check(where, ref string, v any) {
	sc := s.doc.Schemas[ref]
	if sc == nil {
		s.violate("%s: unknown schema %s", where, ref)
		return
	}
	s.checkSchema(where, sc, v)
}

func (s *Server) checkSchema(where string, sc *schema, v any) {
	if sc.Ref != "" {
		s.check(where, sc.Ref, v)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if p, ok := sc.Properties[k]; ok {
				s.checkSchema(where+"."+k, p, val)
			} else if sc.Additional != nil {
				s.checkSchema(where+"."+k, sc.Additional, val)
			} else {
				s.violate("%s: property %q is not in the schema", where, k)
			}
		}
	case []any:
		if sc.Items == nil {
			s.violate("%s: an array where the schema has %s", where, sc.Type)
			return
		}
		for _, it := range x {
			s.checkSchema(where+"[]", sc.Items, it)
		}
	}
}

func (s *Server) error(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": http.StatusText(code)}})
}

type errAnswer struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func fail(code int, msg string) (int, any) {
	var e errAnswer
	e.Error.Code, e.Error.Message = code, msg
	return code, e
}

func (s *Server) labelsOf(m *Message) []string { return slices.Clone(m.Labels) }

func (s *Server) msgJSON(m *Message, format string) map[string]any {
	out := map[string]any{"id": m.ID, "threadId": m.ThreadID, "labelIds": s.labelsOf(m),
		"sizeEstimate": len(m.Raw), "historyId": strconv.FormatUint(s.historyID, 10),
		"internalDate": strconv.FormatInt(m.Internal.UnixMilli(), 10)}
	switch format {
	case "raw":
		out["raw"] = base64.URLEncoding.EncodeToString(m.Raw)
	case "metadata", "full":
		var headers []map[string]any
		head, _, _ := strings.Cut(strings.ReplaceAll(string(m.Raw), "\r\n", "\n"), "\n\n")
		for _, line := range strings.Split(head, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
				headers = append(headers, map[string]any{"name": k, "value": strings.TrimSpace(v)})
			}
		}
		out["payload"] = map[string]any{"partId": "", "mimeType": "message/rfc822", "headers": headers}
	}
	return out
}

func (s *Server) handle(m *method, args []string, q map[string][]string, r *http.Request) (int, any) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	switch m.ID {
	case "gmail.users.getProfile":
		return 200, map[string]any{"emailAddress": s.email, "messagesTotal": len(s.msgs), "threadsTotal": len(s.msgs), "historyId": strconv.FormatUint(s.historyID, 10)}
	case "gmail.users.labels.list":
		var ls []map[string]any
		for _, l := range s.labels {
			ls = append(ls, map[string]any{"id": l.ID, "name": l.Name, "type": l.Type})
		}
		return 200, map[string]any{"labels": ls}
	case "gmail.users.messages.list":
		if get("q") != "" {
			return fail(400, "q is not supported by the stand-in")
		}
		want := q["labelIds"]
		spamTrash := get("includeSpamTrash") == "true"
		var ids []string
		for _, id := range s.order {
			msg := s.msgs[id]
			if !spamTrash && (slices.Contains(msg.Labels, "SPAM") || slices.Contains(msg.Labels, "TRASH")) {
				continue
			}
			ok := true
			for _, l := range want {
				ok = ok && slices.Contains(msg.Labels, l)
			}
			if ok {
				ids = append(ids, id)
			}
		}
		return 200, page(ids, get("pageToken"), get("maxResults"), 100, func(id string) any {
			return map[string]any{"id": id, "threadId": s.msgs[id].ThreadID}
		}, "messages", map[string]any{"resultSizeEstimate": len(ids)})
	case "gmail.users.messages.get":
		msg := s.msgs[args[1]]
		if msg == nil {
			return fail(404, "Requested entity was not found.")
		}
		format := get("format")
		if format == "" {
			format = "full"
		}
		return 200, s.msgJSON(msg, format)
	case "gmail.users.messages.insert":
		var in struct {
			Raw      string   `json:"raw"`
			LabelIds []string `json:"labelIds"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			return fail(400, "bad body: "+err.Error())
		}
		raw, err := base64.URLEncoding.DecodeString(in.Raw)
		if err != nil {
			raw, err = base64.RawURLEncoding.DecodeString(in.Raw)
		}
		if err != nil {
			return fail(400, "raw is not base64url")
		}
		id := s.add(raw, in.LabelIds)
		return 200, s.msgJSON(s.msgs[id], "minimal")
	case "gmail.users.messages.trash":
		msg := s.msgs[args[1]]
		if msg == nil {
			return fail(404, "Requested entity was not found.")
		}
		msg.Labels = append(slices.DeleteFunc(msg.Labels, func(l string) bool { return l == "INBOX" }), "TRASH")
		s.log("labelsAdded", msg.ID, []string{"TRASH"}, msg.Labels)
		return 200, s.msgJSON(msg, "minimal")
	case "gmail.users.messages.delete":
		if s.msgs[args[1]] == nil {
			return fail(404, "Requested entity was not found.")
		}
		s.remove(args[1])
		return 204, nil
	case "gmail.users.history.list":
		start, err := strconv.ParseUint(get("startHistoryId"), 10, 64)
		if err != nil {
			return fail(400, "Invalid startHistoryId")
		}
		if start < s.oldest-1 {
			return fail(404, "Requested entity was not found.")
		}
		var evs []event
		for _, e := range s.history {
			if e.id > start {
				evs = append(evs, e)
			}
		}
		return 200, page(evs, get("pageToken"), get("maxResults"), 100, func(e event) any {
			msg := map[string]any{"id": e.msg, "threadId": e.msg}
			if e.current != nil {
				msg["labelIds"] = e.current
			}
			h := map[string]any{"id": strconv.FormatUint(e.id, 10), "messages": []any{map[string]any{"id": e.msg, "threadId": e.msg}}}
			switch e.kind {
			case "messagesAdded", "messagesDeleted":
				h[e.kind] = []any{map[string]any{"message": msg}}
			default:
				h[e.kind] = []any{map[string]any{"message": msg, "labelIds": e.labels}}
			}
			return h
		}, "history", map[string]any{"historyId": strconv.FormatUint(s.historyID, 10)})
	}
	return fail(501, m.ID+" is not served by the stand-in")
}

// page answers a list request: items from pageToken, at most maxResults.
func page[T any](items []T, token, maxResults string, def int, render func(T) any, key string, extra map[string]any) map[string]any {
	start, _ := strconv.Atoi(token)
	n := def
	if v, err := strconv.Atoi(maxResults); err == nil && v > 0 {
		n = min(v, 500)
	}
	start = min(start, len(items))
	end := min(start+n, len(items))
	out := map[string]any{}
	for k, v := range extra {
		out[k] = v
	}
	var list []any
	for _, it := range items[start:end] {
		list = append(list, render(it))
	}
	if len(list) > 0 {
		out[key] = list
	}
	if end < len(items) {
		out["nextPageToken"] = strconv.Itoa(end)
	}
	return out
}
