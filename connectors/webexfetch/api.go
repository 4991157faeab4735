package webexfetch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/connectors/internal/restsync"
)

// api is the Webex Messaging REST API, as the connector uses it.
type api struct {
	c        *restsync.Client
	pageSize int
}

// room, message, membership, person and event are the parts of Webex's
// schemas (Room, ListMessage, Membership, Person, Event) the connector
// reads.
type room struct {
	ID           string `json:"id"`
	Title        string `json:"title"`
	Type         string `json:"type"`
	TeamID       string `json:"teamId"`
	CreatorID    string `json:"creatorId"`
	IsLocked     bool   `json:"isLocked"`
	Created      string `json:"created"`
	LastActivity string `json:"lastActivity"`
}

type message struct {
	ID              string   `json:"id"`
	RoomID          string   `json:"roomId"`
	RoomType        string   `json:"roomType"`
	ParentID        string   `json:"parentId"`
	Text            string   `json:"text"`
	Markdown        string   `json:"markdown"`
	HTML            string   `json:"html"`
	Files           []string `json:"files"`
	PersonID        string   `json:"personId"`
	PersonEmail     string   `json:"personEmail"`
	MentionedPeople []string `json:"mentionedPeople"`
	MentionedGroups []string `json:"mentionedGroups"`
	Created         string   `json:"created"`
	Updated         string   `json:"updated"`
}

// version is what changes when a message is edited.
func (m *message) version() string {
	if m.Updated != "" {
		return m.Updated
	}
	return m.Created
}

type membership struct {
	ID                string `json:"id"`
	RoomID            string `json:"roomId"`
	PersonID          string `json:"personId"`
	PersonEmail       string `json:"personEmail"`
	PersonDisplayName string `json:"personDisplayName"`
	IsModerator       bool   `json:"isModerator"`
}

type person struct {
	ID          string   `json:"id"`
	Emails      []string `json:"emails"`
	DisplayName string   `json:"displayName"`
}

type event struct {
	ID       string    `json:"id"`
	Resource string    `json:"resource"`
	Type     string    `json:"type"`
	ActorID  string    `json:"actorId"`
	Created  string    `json:"created"`
	Data     eventData `json:"data"`
}

type eventData struct {
	ID       string `json:"id"`
	RoomID   string `json:"roomId"`
	RoomType string `json:"roomType"`
	PersonID string `json:"personId"`
}

// errorMessage is Webex's message in an error body: {"message": ...,
// "errors": [{"description": ...}], "trackingId": ...}.
func errorMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
		Errors  []struct {
			Description string `json:"description"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	if e.Message != "" {
		return e.Message
	}
	if len(e.Errors) > 0 {
		return e.Errors[0].Description
	}
	return ""
}

// parseTime reads a Webex time (ISO 8601); zero when it is not one.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// notAfter returns t, or limit when t is after it.
func notAfter(t, limit time.Time) time.Time {
	if t.After(limit) {
		return limit
	}
	return t
}

// formatTime writes a time as Webex does.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (a *api) max() string { return strconv.Itoa(a.pageSize) }

// list reads a list's pages (Link rel="next"), one page ahead, calling
// each with every page's items; each returns stop to end early. more,
// when given, says from a page's items whether the next page is wanted
// (so that a listing that stops there does not read one page too many).
func list[T any](ctx context.Context, a *api, first string, more func(items []T) bool, each func(items []T) (stop bool, err error)) error {
	return restsync.Walk(ctx, a.c, first, func(ctx context.Context, u string) (restsync.Page[T], error) {
		var page itemsPage[T]
		h, err := a.c.GetJSON(ctx, u, &page)
		if err != nil {
			return restsync.Page[T]{}, err
		}
		p := restsync.Page[T]{Items: page.Items, Next: restsync.NextLink(h)}
		if more != nil && !more(page.Items) {
			p.Next = ""
		}
		return p, nil
	}, each)
}

// rooms lists the rooms of the account, by id. Not by lastactivity:
// Cisco's description of GET /rooms warns that that sort covers only a
// limited set of rooms, pulled in id order, and may leave recently active
// rooms out for accounts in more than 3000 of them.
func (a *api) rooms(ctx context.Context, typ string, each func([]room) error) error {
	q := url.Values{"sortBy": {"id"}, "max": {a.max()}}
	if typ != "" {
		q.Set("type", typ)
	}
	return list(ctx, a, "rooms?"+q.Encode(), nil, func(items []room) (bool, error) { return false, each(items) })
}

func (a *api) room(ctx context.Context, id string) (*room, error) {
	r := &room{}
	if _, err := a.c.GetJSON(ctx, "rooms/"+url.PathEscape(id), r); err != nil {
		return nil, err
	}
	return r, nil
}

// messages lists a room's messages, newest first, page by page, until
// each says stop, or down to the first message created before stop (not
// zero): no page is read past it.
func (a *api) messages(ctx context.Context, roomID string, stop time.Time, each func([]message) (bool, error)) error {
	q := url.Values{"roomId": {roomID}, "max": {a.max()}}
	var more func([]message) bool
	if !stop.IsZero() {
		more = func(items []message) bool {
			return len(items) == 0 || !parseTime(items[len(items)-1].Created).Before(stop)
		}
	}
	return list(ctx, a, "messages?"+q.Encode(), more, each)
}

func (a *api) message(ctx context.Context, id string) (*message, error) {
	m := &message{}
	if _, err := a.c.GetJSON(ctx, "messages/"+url.PathEscape(id), m); err != nil {
		return nil, err
	}
	return m, nil
}

func (a *api) memberships(ctx context.Context, roomID string) ([]membership, error) {
	var out []membership
	q := url.Values{"roomId": {roomID}, "max": {"1000"}}
	err := list(ctx, a, "memberships?"+q.Encode(), nil, func(items []membership) (bool, error) {
		out = append(out, items...)
		return false, nil
	})
	return out, err
}

// people looks people up by id, 85 at a time (the API's limit).
func (a *api) people(ctx context.Context, ids []string) ([]person, error) {
	var out []person
	for len(ids) > 0 {
		n := min(len(ids), 85)
		q := url.Values{"id": {strings.Join(ids[:n], ",")}}
		var page struct {
			Items []person `json:"items"`
		}
		if _, err := a.c.GetJSON(ctx, "people?"+q.Encode(), &page); err != nil {
			return out, err
		}
		out = append(out, page.Items...)
		ids = ids[n:]
	}
	return out, nil
}

// events lists compliance events of a resource after from.
func (a *api) events(ctx context.Context, resource string, from time.Time, each func([]event) error) error {
	q := url.Values{"resource": {resource}, "from": {formatTime(from)}, "max": {"1000"}}
	return list(ctx, a, "events?"+q.Encode(), nil, func(items []event) (bool, error) { return false, each(items) })
}

// download reads a message's file (abs: on the API's origin), at most
// limit bytes of it. A file Webex cannot scan for malware (428
// Precondition Required: an encrypted archive, say) is asked for again
// with allow=unscannable when unscannable (IndexUnscannableFiles).
func (a *api) download(ctx context.Context, abs *url.URL, limit int64, unscannable bool) (*restsync.File, error) {
	f, err := a.c.Download(ctx, abs.String(), limit)
	if err != nil && unscannable && httpStatus(err) == http.StatusPreconditionRequired {
		u := *abs // its own query kept as it is
		u.RawQuery = strings.TrimPrefix(u.RawQuery+"&allow=unscannable", "&")
		return a.c.Download(ctx, u.String(), limit)
	}
	return f, err
}

// post posts a message.
func (a *api) post(ctx context.Context, roomID, parentID, text, markdown string) (*message, error) {
	in := map[string]string{"roomId": roomID}
	if parentID != "" {
		in["parentId"] = parentID
	}
	// Both when both are given: Webex shows the text to clients that do
	// not show the markdown.
	if markdown != "" {
		in["markdown"] = markdown
	}
	if text != "" {
		in["text"] = text
	}
	body, _ := json.Marshal(in)
	m := &message{}
	_, err := a.c.SendJSON(ctx, &restsync.Request{Method: http.MethodPost, URL: "messages",
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          func() (io.Reader, error) { return bytes.NewReader(body), nil },
		ContentLength: int64(len(body))}, m)
	if err != nil {
		return nil, err
	}
	return m, nil
}
