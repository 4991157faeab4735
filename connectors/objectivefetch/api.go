package objectivefetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/oauth"
)

// api is the Objective REST API, as the connector uses it (the shape
// observed in a public client; objectivetest lists what is inferred).
type api struct {
	c        *restsync.Client
	pageSize int
}

// item is an object as lists and metadata give it.
type item struct {
	ID                   string `json:"id"`
	Name                 string `json:"name"`
	Type                 string `json:"type"` // folder, file, document
	ParentID             string `json:"parentId"`
	ObjectType           string `json:"objectType"`
	DateCreated          string `json:"dateCreated"`
	DateUpdated          string `json:"dateUpdated"`
	ETag                 string `json:"$etag"`
	CurrentVersionNumber int    `json:"currentVersionNumber"`
	CurrentVersionID     string `json:"currentVersionId"`
	FileSize             int64  `json:"fileSize"`
	Extension            string `json:"extension"`
	State                string `json:"state"`
	Revision             int    `json:"revision"`
	VersionLabel         string `json:"versionLabel"`
	CorporateValue       bool   `json:"corporateValue"`
	DocVersionName       string `json:"docVersionName"`
	FilePartID           string `json:"filePartId"`
}

// kind is the item's kind, from its type or its id.
func (it *item) kind() string {
	switch strings.ToLower(it.Type) {
	case "folder", "file", "document":
		return strings.ToLower(it.Type)
	}
	switch {
	case strings.HasPrefix(it.ID, "fA"):
		return "folder"
	case strings.HasPrefix(it.ID, "qA"):
		return "file"
	}
	return "document"
}

// version is what changes the item's documents.
func (it *item) version() string {
	return it.ETag + "\x00" + it.DateUpdated + "\x00" + it.ParentID + "\x00" + strconv.Itoa(it.CurrentVersionNumber)
}

type version struct {
	ID             string `json:"id"`
	DocumentID     string `json:"documentId"`
	VersionNumber  int    `json:"versionNumber"`
	VersionLabel   string `json:"versionLabel"`
	DateCreated    string `json:"dateCreated"`
	FileSize       int64  `json:"fileSize"`
	Extension      string `json:"extension"`
	CorporateValue bool   `json:"corporateValue"`
	DocVersionName string `json:"docVersionName"`
}

type catalogueField struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Value any    `json:"value"`
}

type permission struct {
	Principal     string   `json:"principal"`
	PrincipalType string   `json:"principalType"`
	Privileges    []string `json:"privileges"`
	Deny          bool     `json:"deny"`
}

type filePart struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// errorMessage is the server's message in an error body (inferred:
// {"message"}; Keycloak's {"error", "error_description"}).
func errorMessage(body []byte) string {
	var e struct {
		Message          string `json:"message"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorSummary     string `json:"error_summary"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	for _, m := range []string{e.Message, e.ErrorDescription, e.ErrorSummary, e.Error} {
		if m != "" {
			return m
		}
	}
	return ""
}

func kindPath(kind string) string { return kind + "s" }

// list reads a container's children page by page (offset and limit;
// inferred paging, see objectivetest), one page ahead. The listing ends
// at an empty page, or at a page shorter than an earlier one (the
// server's own largest page: a server may cap limit below PageSize, so a
// short first page is not taken for the last). A page longer than the
// limit means the server ignored the limit and sent the whole list; a
// short page followed by one that starts with the same item means it
// ignores offset too, and that short page was the whole list. A page
// whose every item came before, after a full one, is a loop.
func (a *api) list(ctx context.Context, first string, each func([]item) error) error {
	pageURL := func(off int) string {
		q := url.Values{"offset": {strconv.Itoa(off)}, "limit": {strconv.Itoa(a.pageSize)}}
		if strings.Contains(first, "?") {
			return first + "&" + q.Encode()
		}
		return first + "?" + q.Encode()
	}
	seen := map[string]bool{}
	off, longest, prevFirst := 0, 0, ""
	return restsync.Walk(ctx, a.c, pageURL(0), func(ctx context.Context, u string) (restsync.Page[item], error) {
		var page []item
		if _, err := a.c.GetJSON(ctx, u, &page); err != nil {
			return restsync.Page[item]{}, err
		}
		if len(page) > 0 && longest < a.pageSize && page[0].ID == prevFirst {
			return restsync.Page[item]{}, nil // offset ignored: the short page before was whole
		}
		p := restsync.Page[item]{Items: page}
		if len(page) > 0 && len(page) <= a.pageSize && len(page) >= longest {
			longest, off = len(page), off+len(page)
			prevFirst = page[0].ID
			// Absolute: a relative next page is relative to this
			// page's URL, and pageURL's to the base URL.
			next, err := a.c.Resolve(pageURL(off))
			if err != nil {
				return restsync.Page[item]{}, err
			}
			p.Next = next.String()
		}
		return p, nil
	}, func(page []item) (bool, error) {
		fresh := 0
		for _, it := range page {
			if !seen[it.ID] {
				fresh++
				seen[it.ID] = true
			}
		}
		if len(page) > 0 && fresh == 0 {
			return true, fmt.Errorf("objective: %s: %w", first, restsync.ErrPageLoop)
		}
		return false, each(page)
	})
}

// children lists a folder's (containers first) or a file's children.
func (a *api) children(ctx context.Context, kind, id string, each func([]item) error) error {
	if kind == "file" {
		return a.list(ctx, "api/resources/files/"+url.PathEscape(id)+"/children", each)
	}
	return a.list(ctx, "api/resources?"+url.Values{"parentId": {id}, "containersFirst": {"true"}}.Encode(), each)
}

func (a *api) object(ctx context.Context, kind, id string) (*item, error) {
	it := &item{}
	if _, err := a.c.GetJSON(ctx, "api/resources/"+kindPath(kind)+"/"+url.PathEscape(id), it); err != nil {
		return nil, err
	}
	return it, nil
}

// ancestors calls each with the parents of it, the nearest first, up to
// the top (an object without a parent), asking for each; each returns
// stop to end early. A parent met twice (a server whose parents loop) is
// an error, rather than a walk without end.
func (a *api) ancestors(ctx context.Context, it *item, each func(parent *item) (stop bool, err error)) error {
	seen := map[string]bool{it.ID: true}
	for p := it.ParentID; p != ""; {
		if seen[p] {
			return fmt.Errorf("objective: the parents of %s loop (at %s)", it.ID, p)
		}
		seen[p] = true
		parent, err := a.object(ctx, kindOf(p), p)
		if err != nil {
			return err
		}
		if stop, err := each(parent); err != nil || stop {
			return err
		}
		p = parent.ParentID
	}
	return nil
}

func (a *api) fields(ctx context.Context, kind, id string) ([]catalogueField, error) {
	var out []catalogueField
	_, err := a.c.GetJSON(ctx, "api/resources/"+kindPath(kind)+"/"+url.PathEscape(id)+"/fields", &out)
	return out, err
}

func (a *api) permissions(ctx context.Context, kind, id string) ([]permission, error) {
	var out []permission
	_, err := a.c.GetJSON(ctx, "api/resources/"+kindPath(kind)+"/"+url.PathEscape(id)+"/permissions", &out)
	return out, err
}

func (a *api) fileParts(ctx context.Context, id string) ([]filePart, error) {
	var out []filePart
	_, err := a.c.GetJSON(ctx, "api/resources/files/"+url.PathEscape(id)+"/fileparts", &out)
	return out, err
}

func (a *api) versions(ctx context.Context, docID string) ([]version, error) {
	var out []version
	_, err := a.c.GetJSON(ctx, "api/resources/documentversions?"+url.Values{"documentId": {docID}}.Encode(), &out)
	return out, err
}

// content downloads a document's current version, or a version (vID).
func (a *api) content(ctx context.Context, docID, vID string, limit int64) (*restsync.File, error) {
	u := "api/resources/documents/" + url.PathEscape(docID) + "/content"
	if vID != "" {
		u = "api/resources/documentversions/" + url.PathEscape(vID) + "/content"
	}
	return a.c.Download(ctx, u, limit)
}

func (a *api) createFolder(ctx context.Context, parentID, name, objectType string) (*item, error) {
	body, _ := json.Marshal(map[string]string{"name": name, "parentId": parentID, "objectType": objectType})
	it := &item{}
	_, err := a.c.SendJSON(ctx, &restsync.Request{Method: http.MethodPost, URL: "api/resources/folders",
		Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: int64(len(body)),
		Body: func() (io.Reader, error) { return bytes.NewReader(body), nil }}, it)
	return it, err
}

// upload is a document's content for createDocument: open returns a fresh
// reader of it for each attempt.
type upload struct {
	name string
	size int64
	open func() (io.ReadCloser, error)
}

// createDocument uploads a new document (parentID set) or a new version of
// docID, as multipart/form-data streamed from the upload.
func (a *api) createDocument(ctx context.Context, parentID, docID, name string, up upload) (*item, error) {
	u := "api/resources/documents"
	fields := map[string]string{"parentId": parentID, "name": name}
	if docID != "" {
		u = "api/resources/documents/" + url.PathEscape(docID) + "/content"
		fields = nil
	}
	boundary := "connector-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	_ = mw.SetBoundary(boundary)
	for _, k := range []string{"parentId", "name"} {
		if v, ok := fields[k]; ok {
			_ = mw.WriteField(k, v)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="content"; filename=%q`, up.name))
	h.Set("Content-Type", "application/octet-stream")
	if _, err := mw.CreatePart(h); err != nil {
		return nil, err
	}
	tail := "\r\n--" + boundary + "--\r\n"
	prefix := head.Bytes()
	it := &item{}
	_, err := a.c.SendJSON(ctx, &restsync.Request{Method: http.MethodPost, URL: u,
		Header:        http.Header{"Content-Type": {"multipart/form-data; boundary=" + boundary}},
		ContentLength: int64(len(prefix)) + up.size + int64(len(tail)),
		Body: func() (io.Reader, error) {
			rc, err := up.open()
			if err != nil {
				return nil, err
			}
			return io.MultiReader(bytes.NewReader(prefix), &closeAtEOF{rc}, strings.NewReader(tail)), nil
		}}, it)
	return it, err
}

// closeAtEOF closes its reader once it is read to the end.
type closeAtEOF struct{ rc io.ReadCloser }

func (c *closeAtEOF) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	if err == io.EOF {
		c.rc.Close()
	}
	return n, err
}

func (a *api) delete(ctx context.Context, kind, id string) error {
	resp, err := a.c.Do(ctx, &restsync.Request{Method: http.MethodDelete, URL: "api/resources/" + kindPath(kind) + "/" + url.PathEscape(id)})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// keycloak is an OAuth 2.0 token source of the Keycloak-style token
// endpoint: the password grant (the public client's way) when the task
// has a password, else the token exchange that acts for the user (with
// the client's secret); refresh tokens are used while they last. A
// refresh the endpoint refuses (the refresh token expired or revoked)
// falls back to the grant; one it throttles or fails (429, 5xx, no
// answer) is returned, to be waited out and sent again.
type keycloak struct {
	ctx context.Context
	hc  *http.Client
	s   *settings

	mu  sync.Mutex
	tok *oauth2.Token
}

type tokenAnswer struct {
	AccessToken      string `json:"access_token"`
	ExpiresIn        int64  `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// Token implements oauth2.TokenSource.
func (k *keycloak) Token() (*oauth2.Token, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.tok.Valid() {
		return k.tok, nil
	}
	if k.tok != nil && k.tok.RefreshToken != "" {
		t, err := k.grant(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {k.tok.RefreshToken}})
		if err == nil {
			k.tok = t
			return t, nil
		}
		if oauth.Unavailable(err) {
			// The endpoint is throttled or failing, not refusing the
			// refresh token: the caller waits (Retry-After) and sends
			// it again, rather than posting the password now.
			return nil, err
		}
	}
	form := url.Values{"grant_type": {"password"}, "username": {k.s.Username}, "password": {k.s.Password}}
	if k.s.Password == "" {
		form = url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "requested_subject": {k.s.Username},
			"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}
	}
	t, err := k.grant(form)
	if err != nil {
		return nil, err
	}
	k.tok = t
	return t, nil
}

func (k *keycloak) grant(form url.Values) (*oauth2.Token, error) {
	form.Set("client_id", k.s.ClientID)
	if k.s.ClientSecret != "" {
		form.Set("client_secret", k.s.ClientSecret)
	}
	body := form.Encode()
	req, err := http.NewRequestWithContext(k.ctx, http.MethodPost, k.s.TokenURL, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// No redirect off the endpoint's origin: a 307 or 308 would re-post
	// the password or client secret there.
	resp, err := oauth.TokenClient(k.hc, k.s.TokenURL).Do(req)
	if err != nil {
		why := err
		var ue *url.Error
		if errors.As(err, &ue) {
			why = ue.Err
		}
		msg := fmt.Sprintf("token endpoint %s: %v", k.s.TokenURL, why)
		// No answer (refused, reset, timed out): tried again as a 502 is.
		if ee := oauth.Unanswered(err, msg); ee != nil {
			return nil, ee
		}
		return nil, errors.New(msg)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ta tokenAnswer
	_ = json.Unmarshal(data, &ta)
	if resp.StatusCode != http.StatusOK || ta.AccessToken == "" {
		msg := ta.Error
		if ta.ErrorDescription != "" {
			msg += ": " + ta.ErrorDescription
		}
		if msg == "" {
			msg = resp.Status
		}
		msg = "the token endpoint answered " + msg
		if resp.StatusCode != http.StatusOK {
			// Its status and Retry-After: a rate limit or a failure on
			// the way is waited out (restsync.Client.Do).
			return nil, &oauth.EndpointError{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"), Message: msg}
		}
		return nil, errors.New(msg)
	}
	t := &oauth2.Token{AccessToken: ta.AccessToken, RefreshToken: ta.RefreshToken, TokenType: "Bearer"}
	if ta.ExpiresIn > 0 {
		t.Expiry = time.Now().Add(time.Duration(ta.ExpiresIn) * time.Second)
	}
	return t, nil
}
