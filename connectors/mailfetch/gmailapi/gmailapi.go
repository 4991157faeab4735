// Package gmailapi is the Gmail API transport of the Google Mail connector:
// a mailbox.Mailbox on Google's REST API through Google's official client,
// google.golang.org/api/gmail/v1, with OAuth 2.0 access tokens (a user's,
// refreshed from the token file, or a service account's acting for the
// user by domain-wide delegation).
//
// The mailbox is one collection: the account's messages, with their labels
// as metadata. A message's version is its set of labels.
//
// Synchronization follows Google's guide to synchronizing a client: a full
// listing first (messages.list of the whole mailbox, and per label, which
// gives every message's labels without fetching any message), then, from
// the profile's historyId recorded before the listing, history.list:
// messagesAdded, messagesDeleted, labelsAdded and labelsRemoved say which
// messages to fetch and which are gone. When the recorded historyId is too
// old (history.list answers 404), the full listing is done again.
//
// Messages are read in the raw format (the RFC 5322 bytes). A message
// larger than MaxMessageBytes (its sizeEstimate) is read in the metadata
// format instead: its header alone, marked truncated. Up to 8 messages are
// read at once. Every API response is read up to twice MaxMessageBytes
// plus 1 MiB; past it, a raw message is read as one larger than
// MaxMessageBytes, and any other response is an error.
package gmailapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/gmail/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/connectorhq/connector/connectors/mailfetch/imapbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/oauth"
)

// Config configures the transport.
type Config struct {
	// Endpoint is the API's root URL (default https://gmail.googleapis.com/).
	Endpoint string
	// User is the mailbox: an address, or "me".
	User   string
	Tokens oauth2.TokenSource
	// HTTPClient carries the requests (its transport is used, with the
	// tokens added); nil: http.DefaultClient.
	HTTPClient *http.Client
	// Labels to index (names); empty: every message (except spam and
	// trash unless IncludeSpamTrash). A message is indexed when it has
	// one of them.
	Labels           []string
	LabelMustHave    *regexp.Regexp // a label's name must match
	LabelCantHave    *regexp.Regexp // no label's name may match
	IncludeSpamTrash bool
	MaxMessageBytes  int64
	// DeleteForever deletes messages for good; else Delete moves them to
	// the trash.
	DeleteForever bool
	Logger        *slog.Logger
}

// Box is a connected Gmail mailbox.
type Box struct {
	cfg      Config
	svc      *gmail.Service
	user     string            // the API's userId
	email    string            // the account's address
	labels   map[string]string // id → name
	byName   map[string]string // lower-case name → id
	requests atomic.Int64
	bodies   atomic.Int64
	bytes    atomic.Int64
}

var _ mailbox.Mailbox = (*Box)(nil)

// counting counts the requests sent.
type counting struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// responseLimit is the most bytes of one API response read: a raw
// message of maxMessage bytes is 4/3 of it in base64, and the rest of its
// JSON is small; twice maxMessage plus 1 MiB leaves room for a message
// somewhat over its sizeEstimate (cut to maxMessage as before).
func responseLimit(maxMessage int64) int64 { return 2*maxMessage + 1<<20 }

// errResponseTooLarge: an API response passed responseLimit.
var errResponseTooLarge = errors.New("the API's response is larger than")

// bounding reads each response body up to limit bytes: the Google client
// decodes a response whole (8 at a time), so a server answering without
// end would otherwise hold the connector's memory until the client's
// timeout.
type bounding struct {
	base  http.RoundTripper
	limit int64
}

func (t bounding) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		resp.Body = &boundedBody{ReadCloser: resp.Body, left: t.limit, limit: t.limit}
	}
	return resp, err
}

type boundedBody struct {
	io.ReadCloser
	left, limit int64 // left < 0: the limit was passed
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%w %d bytes", errResponseTooLarge, b.limit)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte more says whether the body goes on
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		n, b.left = int(b.left), -1
		return n, fmt.Errorf("%w %d bytes", errResponseTooLarge, b.limit)
	}
	b.left -= int64(n)
	return n, err
}

// Open connects: it reads the profile (which checks the token) and the
// labels.
func Open(ctx context.Context, cfg Config) (*Box, error) {
	if cfg.Endpoint == "" {
		cfg.Endpoint = "https://gmail.googleapis.com/"
	}
	if cfg.User == "" {
		cfg.User = "me"
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = imapbox.DefaultMaxMessageBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tokens == nil {
		return nil, fmt.Errorf("%w: the Gmail API needs OAuth 2.0 tokens", mailbox.ErrAuth)
	}
	base := http.DefaultTransport
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		base = cfg.HTTPClient.Transport
	}
	endpoint, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("gmail: endpoint: %w", err)
	}
	b := &Box{cfg: cfg, user: cfg.User}
	bounded := bounding{base: base, limit: responseLimit(cfg.MaxMessageBytes)}
	// Under the token: an error that quotes it is scrubbed of it.
	hc := &http.Client{Transport: authorizing{src: cfg.Tokens, base: throttling{base: oauth.ScrubRefusals(counting{base: bounded, n: &b.requests}), log: cfg.Logger}, log: cfg.Logger},
		// oauth2.Transport puts the token on every request it carries,
		// a redirect's too: none may leave the API's origin.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// One origin: scheme, host and port, the scheme's
			// default port written out or not (netguard.Origin).
			if netguard.Origin(req.URL) != netguard.Origin(endpoint) {
				return fmt.Errorf("redirected away from the API's origin, to %s", req.URL.Redacted())
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		}}
	if cfg.HTTPClient != nil {
		hc.Timeout = cfg.HTTPClient.Timeout
	}
	svc, err := gmail.NewService(ctx, option.WithEndpoint(cfg.Endpoint), option.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("gmail: %w", err)
	}
	b.svc = svc
	prof, err := svc.Users.GetProfile(b.user).Context(ctx).Do()
	if err != nil {
		return nil, b.fail("read the profile", err)
	}
	b.email = prof.EmailAddress
	if err := b.loadLabels(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// missing returns the error of the labels of Labels that do not exist
// (deleted by the mailbox's owner, or never there); nil when all do.
func (b *Box) missing() error {
	var errs []error
	for _, name := range b.cfg.Labels {
		if _, ok := b.byName[strings.ToLower(name)]; !ok {
			errs = append(errs, fmt.Errorf("gmail: label %q does not exist in %s (Folders): %w", name, b.email, mailbox.ErrMissingFolder))
		}
	}
	return errors.Join(errs...)
}

// errPageLoop: a listing's next page token is one it already gave.
var errPageLoop = errors.New("the API's paging names a page already read as the next")

// pageLoop returns a check of a listing's next page tokens: a token given
// before would make Pages ask for the same pages for ever.
func pageLoop() func(next string) error {
	seen := map[string]bool{}
	return func(next string) error {
		if next == "" {
			return nil
		}
		if seen[next] {
			return errPageLoop
		}
		seen[next] = true
		return nil
	}
}

// fail wraps an API error: 401 and 403 and token refusals are ErrAuth
// (not the token endpoint's rate limit or failure on the way), 404
// ErrNotFound; the API's message is kept.
func (b *Box) fail(what string, err error) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		throttled := ge.Code == http.StatusTooManyRequests || slices.ContainsFunc(ge.Errors, func(e googleapi.ErrorItem) bool { return isRateLimit(e.Reason) })
		switch {
		case throttled:
			// Waited out as long as it was worth it (throttling): the
			// account is not refused, and the message is not at fault.
			return fmt.Errorf("gmail: %s: %w", what, &answerError{code: ge.Code, message: ge.Message, throttled: true})
		case ge.Code == http.StatusUnauthorized || ge.Code == http.StatusForbidden:
			return fmt.Errorf("%w: gmail: %s: %d %s", mailbox.ErrAuth, what, ge.Code, ge.Message)
		case ge.Code == http.StatusNotFound:
			return fmt.Errorf("gmail: %s: %s: %w", what, ge.Message, mailbox.ErrNotFound)
		}
		return fmt.Errorf("gmail: %s: %w", what, &answerError{code: ge.Code, message: ge.Message})
	}
	if oauth.Unavailable(err) {
		// The token endpoint is rate limited or failing for now: the
		// authorization is not refused.
		return fmt.Errorf("gmail: %s: %w", what, err)
	}
	if strings.Contains(err.Error(), "oauth2") || strings.Contains(err.Error(), "oauth:") {
		return fmt.Errorf("%w: gmail: %s: %v", mailbox.ErrAuth, what, err)
	}
	return fmt.Errorf("gmail: %s: %w", what, err)
}

// answerError is an error answer of the API (other than 401, 403 and
// 404): its status and Google's message.
type answerError struct {
	code    int
	message string
	// throttled: a rate limit (a 429, a 403 whose reason says so) the
	// connector stopped waiting out.
	throttled bool
}

func (e *answerError) Error() string { return fmt.Sprintf("%d %s", e.code, e.message) }

// Is makes a 5xx answer mailbox.ErrTransient: the API's servers failed,
// which says nothing of the message.
func (e *answerError) Is(target error) bool { return target == mailbox.ErrTransient && e.code >= 500 }

func (b *Box) loadLabels(ctx context.Context) error {
	resp, err := b.svc.Users.Labels.List(b.user).Context(ctx).Do()
	if err != nil {
		return b.fail("list the labels", err)
	}
	b.labels, b.byName = map[string]string{}, map[string]string{}
	for _, l := range resp.Labels {
		b.labels[l.Id] = l.Name
		b.byName[strings.ToLower(l.Name)] = l.Id
	}
	return nil
}

// Collections implements mailbox.Mailbox: the one collection. A label of
// Labels that does not exist matches no message: the others' are
// indexed, and the error says which (mailbox.ErrMissingFolder).
func (b *Box) Collections(context.Context) ([]mailbox.Collection, error) {
	return []mailbox.Collection{{Name: ""}}, b.missing()
}

// labelNames names label ids.
func (b *Box) labelNames(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if n, ok := b.labels[id]; ok {
			out = append(out, n)
		} else {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// included says whether a message with these labels is indexed.
func (b *Box) included(ids []string) bool {
	if !b.cfg.IncludeSpamTrash && (slices.Contains(ids, "SPAM") || slices.Contains(ids, "TRASH")) {
		return false
	}
	names := b.labelNames(ids)
	if len(b.cfg.Labels) > 0 && !slices.ContainsFunc(names, func(n string) bool {
		return slices.ContainsFunc(b.cfg.Labels, func(w string) bool { return strings.EqualFold(w, n) })
	}) {
		return false
	}
	if b.cfg.LabelMustHave != nil && !slices.ContainsFunc(names, b.cfg.LabelMustHave.MatchString) {
		return false
	}
	if b.cfg.LabelCantHave != nil && slices.ContainsFunc(names, b.cfg.LabelCantHave.MatchString) {
		return false
	}
	return true
}

func version(ids []string) string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return strings.Join(s, " ")
}

// cursor is the recorded history id, and the labels indexed when it was
// recorded (filter).
type cursor struct {
	HistoryID uint64 `json:"h"`
	Filter    string `json:"f,omitempty"`
	// Labels are the labels' names by id when it was recorded: a label
	// renamed since (the history says nothing of it) has its messages
	// read again, whose documents name their labels.
	Labels map[string]string `json:"l,omitempty"`
}

// cursor is the cursor to record for a history id.
func (b *Box) cursor(historyID uint64) []byte {
	return mustJSON(cursor{HistoryID: historyID, Filter: b.filter(), Labels: b.labels})
}

// filter says which messages the settings index (a hash of Labels,
// LabelMustHave, LabelCantHave, IncludeSpamTrash); "" for every message but spam and
// trash (the default, and what a cursor recorded before the filter was
// kept means).
func (b *Box) filter() string {
	if len(b.cfg.Labels) == 0 && b.cfg.LabelMustHave == nil && b.cfg.LabelCantHave == nil && !b.cfg.IncludeSpamTrash {
		return ""
	}
	labels := make([]string, len(b.cfg.Labels))
	for i, l := range b.cfg.Labels {
		labels[i] = strings.ToLower(l)
	}
	slices.Sort(labels)
	f := []string{strings.Join(labels, "\x1f"), "", "", strconv.FormatBool(b.cfg.IncludeSpamTrash)}
	if b.cfg.LabelMustHave != nil {
		f[1] = b.cfg.LabelMustHave.String()
	}
	if b.cfg.LabelCantHave != nil {
		f[2] = b.cfg.LabelCantHave.String()
	}
	h := sha256.Sum256([]byte(strings.Join(f, "\x00")))
	return hex.EncodeToString(h[:8])
}

// Plan implements mailbox.Mailbox. The history says which messages
// changed, not which ones the settings take: when the labels indexed are
// not those of the recorded history id (Folders, or a filter, changed, or
// a label was renamed while the labels indexed go by name), the whole
// mailbox is listed, so that the messages of a label added are indexed
// and those of a label taken out are removed.
func (b *Box) Plan(ctx context.Context, c mailbox.Collection, known mailbox.Known) (*mailbox.Plan, error) {
	var prev cursor
	if raw := known.Cursor(); len(raw) > 0 {
		_ = json.Unmarshal(raw, &prev)
	}
	var plan *mailbox.Plan
	var err error
	if prev.HistoryID != 0 && prev.Filter != b.filter() {
		b.cfg.Logger.Info("gmail: the labels indexed changed: listing the whole mailbox")
	} else if prev.HistoryID != 0 && b.byNames() && b.anyRenamed(prev.Labels) {
		// The filter's text is the same, but not the names it is
		// matched with, and the history says nothing of a rename.
		b.cfg.Logger.Info("gmail: a label was renamed and the labels indexed go by name: listing the whole mailbox")
	} else if prev.HistoryID != 0 && b.byNames() && b.anyDeleted(prev.Labels) {
		// Its messages lost it, which Google does not say the history
		// records: those it alone had indexed go.
		b.cfg.Logger.Info("gmail: a label was deleted and the labels indexed go by name: listing the whole mailbox")
	} else if prev.HistoryID != 0 {
		plan, err = b.fromHistory(ctx, prev.HistoryID, known)
		if err != nil && !errors.Is(err, mailbox.ErrNotFound) {
			return nil, err
		}
		if err != nil {
			b.cfg.Logger.Info("gmail: the recorded history id has expired: listing the whole mailbox", "history_id", prev.HistoryID)
		}
	}
	if plan == nil {
		if plan, err = b.fullListing(ctx, known); err != nil {
			return nil, err
		}
	}
	if err := b.renamed(ctx, prev.Labels, known, plan); err != nil {
		return nil, err
	}
	return plan, nil
}

// byNames reports whether the messages indexed depend on labels' names
// (Labels, LabelMustHave, LabelCantHave).
func (b *Box) byNames() bool {
	return len(b.cfg.Labels) > 0 || b.cfg.LabelMustHave != nil || b.cfg.LabelCantHave != nil
}

// anyRenamed reports whether a label of was (names by id, as recorded)
// has another name now.
func (b *Box) anyRenamed(was map[string]string) bool {
	for id, name := range was {
		if now, ok := b.labels[id]; ok && now != name {
			return true
		}
	}
	return false
}

// anyDeleted reports whether a label of was (names by id, as
// recorded) does not exist any more.
func (b *Box) anyDeleted(was map[string]string) bool {
	for id := range was {
		if _, ok := b.labels[id]; !ok {
			return true
		}
	}
	return false
}

// renamed adds to plan the known messages of the labels renamed since
// the cursor was recorded (was: their names then): their documents name
// their labels, and neither the history nor their versions (label ids)
// say that the names changed.
func (b *Box) renamed(ctx context.Context, was map[string]string, known mailbox.Known, plan *mailbox.Plan) error {
	var ids []string
	for id, name := range was {
		if now, ok := b.labels[id]; ok && now != name {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	planned := make(map[string]bool, len(plan.Fetch)+len(plan.Delete))
	for _, id := range plan.Fetch {
		planned[id] = true
	}
	for _, id := range plan.Delete {
		planned[id] = true
	}
	for _, label := range ids {
		b.cfg.Logger.Info("gmail: a label was renamed: its messages are read again", "was", was[label], "now", b.labels[label])
		loop := pageLoop()
		err := b.svc.Users.Messages.List(b.user).LabelIds(label).IncludeSpamTrash(true).MaxResults(500).Pages(ctx, func(r *gmail.ListMessagesResponse) error {
			if err := loop(r.NextPageToken); err != nil {
				return err
			}
			for _, m := range r.Messages {
				if _, ok := known.Version(m.Id); ok && !planned[m.Id] {
					planned[m.Id] = true
					plan.Fetch = append(plan.Fetch, m.Id)
					plan.Unchanged--
				}
			}
			return nil
		})
		if err != nil {
			return b.fail("list the messages of label "+b.labels[label], err)
		}
	}
	return nil
}

// fullListing lists every message with its labels.
func (b *Box) fullListing(ctx context.Context, known mailbox.Known) (*mailbox.Plan, error) {
	// The history id from before the listing: changes made while it runs
	// are in the next history.list.
	prof, err := b.svc.Users.GetProfile(b.user).Context(ctx).Do()
	if err != nil {
		return nil, b.fail("read the profile", err)
	}
	if err := b.loadLabels(ctx); err != nil {
		return nil, err
	}
	labelsOf := map[string][]string{}
	loop := pageLoop()
	err = b.svc.Users.Messages.List(b.user).IncludeSpamTrash(b.cfg.IncludeSpamTrash).MaxResults(500).Pages(ctx, func(r *gmail.ListMessagesResponse) error {
		if err := loop(r.NextPageToken); err != nil {
			return err
		}
		for _, m := range r.Messages {
			if _, ok := labelsOf[m.Id]; !ok {
				labelsOf[m.Id] = []string{}
			}
		}
		return nil
	})
	if err != nil {
		return nil, b.fail("list the messages", err)
	}
	ids := make([]string, 0, len(b.labels))
	for id := range b.labels {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, label := range ids {
		loop := pageLoop()
		err := b.svc.Users.Messages.List(b.user).LabelIds(label).IncludeSpamTrash(true).MaxResults(500).Pages(ctx, func(r *gmail.ListMessagesResponse) error {
			if err := loop(r.NextPageToken); err != nil {
				return err
			}
			for _, m := range r.Messages {
				if l, ok := labelsOf[m.Id]; ok {
					labelsOf[m.Id] = append(l, label)
				}
			}
			return nil
		})
		if err != nil {
			return nil, b.fail("list the messages of label "+b.labels[label], err)
		}
	}
	plan := &mailbox.Plan{Cursor: b.cursor(prof.HistoryId)}
	present := map[string]bool{}
	keys := make([]string, 0, len(labelsOf))
	for id := range labelsOf {
		keys = append(keys, id)
	}
	slices.Sort(keys)
	for _, id := range keys {
		labels := labelsOf[id]
		if !b.included(labels) {
			continue
		}
		present[id] = true
		v, ok := known.Version(id)
		switch {
		case !ok || v != version(labels):
			plan.Fetch = append(plan.Fetch, id)
		default:
			plan.Unchanged++
		}
	}
	gone := func(k string) {
		if !present[k] {
			plan.Delete = append(plan.Delete, k)
		}
	}
	known.Keys(gone)
	if u, ok := known.(mailbox.Unread); ok {
		u.UnreadKeys(gone)
	}
	slices.Sort(plan.Delete)
	return plan, nil
}

// fromHistory plans from history.list since start; ErrNotFound when the
// history id has expired.
func (b *Box) fromHistory(ctx context.Context, start uint64, known mailbox.Known) (*mailbox.Plan, error) {
	latest := start
	type change struct {
		labels  []string
		deleted bool
		known   bool // labels are the message's whole set
	}
	changes := map[string]*change{}
	var order []string
	touch := func(id string) *change {
		ch := changes[id]
		if ch == nil {
			ch = &change{}
			changes[id] = ch
			order = append(order, id)
		}
		return ch
	}
	loop := pageLoop()
	err := b.svc.Users.History.List(b.user).StartHistoryId(start).MaxResults(500).Pages(ctx, func(r *gmail.ListHistoryResponse) error {
		if err := loop(r.NextPageToken); err != nil {
			return err
		}
		latest = max(latest, r.HistoryId)
		for _, h := range r.History {
			for _, a := range h.MessagesAdded {
				if a.Message != nil {
					ch := touch(a.Message.Id)
					ch.labels, ch.known, ch.deleted = a.Message.LabelIds, true, false
				}
			}
			for _, d := range h.MessagesDeleted {
				if d.Message != nil {
					touch(d.Message.Id).deleted = true
				}
			}
			for _, l := range h.LabelsAdded {
				if l.Message != nil {
					ch := touch(l.Message.Id)
					ch.labels, ch.known = l.Message.LabelIds, true
				}
			}
			for _, l := range h.LabelsRemoved {
				if l.Message != nil {
					ch := touch(l.Message.Id)
					ch.labels, ch.known = l.Message.LabelIds, true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, b.fail("read the history", err)
	}
	plan := &mailbox.Plan{Cursor: b.cursor(latest)}
	unread := func(string) bool { return false }
	if u, ok := known.(mailbox.Unread); ok {
		unread = u.Unread
	}
	touched := 0
	for _, id := range order {
		ch := changes[id]
		_, isKnown := known.Version(id)
		if isKnown {
			touched++
		}
		switch {
		case ch.deleted || ch.known && !b.included(ch.labels):
			if isKnown || unread(id) {
				plan.Delete = append(plan.Delete, id)
			}
		case ch.known:
			if v, _ := known.Version(id); !isKnown || v != version(ch.labels) {
				plan.Fetch = append(plan.Fetch, id)
			} else {
				plan.Unchanged++
			}
		}
	}
	plan.Unchanged += known.Len() - touched
	return plan, nil
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// parallel is how many messages are read at once.
const parallel = 8

// Fetch implements mailbox.Mailbox. It reads parallel messages at once,
// each on a goroutine of its own, outside the worker's recovery: a panic
// there (in the reading of the API's answers) is the message's error,
// which Fetch returns, instead of the process's end.
func (b *Box) Fetch(ctx context.Context, c mailbox.Collection, keys []string, fn func(*mailbox.Message) error) error {
	for len(keys) > 0 {
		n := min(parallel, len(keys))
		group := keys[:n]
		keys = keys[n:]
		msgs := make([]*mailbox.Message, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, id := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer panics.Catch(b.cfg.Logger, "gmail: reading a message", &errs[i])
				msgs[i], errs[i] = b.get(ctx, id)
			}()
		}
		wg.Wait()
		for i := range group {
			if errs[i] != nil {
				if errors.Is(errs[i], mailbox.ErrNotFound) {
					continue // deleted meanwhile
				}
				if !messageError(errs[i]) {
					return errs[i]
				}
				msgs[i] = &mailbox.Message{Meta: mailbox.Meta{Key: group[i], GmailID: group[i]},
					Reference: imapbox.GmailReference(b.email, group[i]), Err: errs[i]}
			}
			if err := fn(msgs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// messageError reports whether err, an error of reading one message, is
// that message's own: an answer of the API about it (a 400 or a 500 for it
// alone, as Google gives for some messages run after run) or an answer
// that cannot be read as the message. It is not when the answer says the
// account or the connector is refused (401, 403, a token refusal) or must
// slow down (429), when no answer came (the connection, the context), or
// when reading it panicked (the action's error).
func messageError(err error) bool {
	if errors.Is(err, mailbox.ErrAuth) || errors.Is(err, panics.ErrPanic) {
		return false
	}
	var ae *answerError
	if errors.As(err, &ae) {
		return !ae.throttled
	}
	return errors.Is(err, errBadRaw) || errors.Is(err, errResponseTooLarge)
}

// errBadRaw: a message's raw format could not be decoded.
var errBadRaw = errors.New("its raw format is not base64url")

// get reads one message: its size and labels first, then the raw message,
// or only its header when it is larger than MaxMessageBytes.
func (b *Box) get(ctx context.Context, id string) (*mailbox.Message, error) {
	meta, err := b.svc.Users.Messages.Get(b.user, id).Format("minimal").Context(ctx).Do()
	if err != nil {
		return nil, b.fail("read message "+id, err)
	}
	m := &mailbox.Message{Meta: mailbox.Meta{
		Key: id, Version: version(meta.LabelIds), Labels: b.labelNames(meta.LabelIds), Size: meta.SizeEstimate,
		GmailID: meta.Id, GmailThreadID: meta.ThreadId,
	}, Reference: imapbox.GmailReference(b.email, meta.Id)}
	if meta.InternalDate > 0 {
		m.Received = time.UnixMilli(meta.InternalDate)
	}
	headerOnly := meta.SizeEstimate > b.cfg.MaxMessageBytes
	var raw *gmail.Message
	if !headerOnly {
		raw, err = b.svc.Users.Messages.Get(b.user, id).Format("raw").Context(ctx).Do()
		// Far larger than its sizeEstimate said: read as a message
		// larger than MaxMessageBytes.
		headerOnly = errors.Is(err, errResponseTooLarge)
		if err != nil && !headerOnly {
			return nil, b.fail("read message "+id, err)
		}
	}
	if headerOnly {
		full, err := b.svc.Users.Messages.Get(b.user, id).Format("metadata").Context(ctx).Do()
		if err != nil {
			return nil, b.fail("read message "+id, err)
		}
		var hdr strings.Builder
		if full.Payload != nil {
			for _, h := range full.Payload.Headers {
				hdr.WriteString(h.Name + ": " + h.Value + "\r\n")
			}
		}
		hdr.WriteString("\r\n")
		m.Raw, m.Truncated = []byte(hdr.String()), true
		b.bodies.Add(1)
		b.bytes.Add(int64(len(m.Raw)))
		return m, nil
	}
	data, err := decodeRaw(raw.Raw)
	if err != nil {
		return nil, fmt.Errorf("gmail: message %s: %w: %w", id, errBadRaw, err)
	}
	if int64(len(data)) > b.cfg.MaxMessageBytes {
		data, m.Truncated = data[:b.cfg.MaxMessageBytes], true
	}
	m.Raw = data
	if m.Size == 0 {
		m.Size = int64(len(data))
	}
	b.bodies.Add(1)
	b.bytes.Add(int64(len(data)))
	return m, nil
}

// decodeRaw decodes the raw format: base64url, with or without padding.
func decodeRaw(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if data, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return data, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// Get implements mailbox.Mailbox.
func (b *Box) Get(ctx context.Context, _ mailbox.Collection, key string) (*mailbox.Message, error) {
	return b.get(ctx, key)
}

// Delete implements mailbox.Mailbox: to the trash, or for good.
func (b *Box) Delete(ctx context.Context, _ mailbox.Collection, keys []string) error {
	for _, id := range keys {
		var err error
		if b.cfg.DeleteForever {
			err = b.svc.Users.Messages.Delete(b.user, id).Context(ctx).Do()
		} else {
			_, err = b.svc.Users.Messages.Trash(b.user, id).Context(ctx).Do()
		}
		if err != nil && !errors.Is(b.fail("", err), mailbox.ErrNotFound) {
			return b.fail("delete message "+id, err)
		}
	}
	return nil
}

// Append implements mailbox.Mailbox: messages.insert with the label named
// folder (INBOX by default).
func (b *Box) Append(ctx context.Context, folder string, raw []byte, flags []string, _ time.Time) (mailbox.Collection, string, error) {
	label := "INBOX"
	if folder != "" {
		id, ok := b.byName[strings.ToLower(folder)]
		if !ok {
			return mailbox.Collection{}, "", fmt.Errorf("gmail: label %q does not exist: %w", folder, mailbox.ErrNotFound)
		}
		label = id
	}
	labels := []string{label}
	seen := slices.ContainsFunc(flags, func(f string) bool { return strings.EqualFold(f, `\Seen`) })
	if !seen {
		labels = append(labels, "UNREAD")
	}
	m, err := b.svc.Users.Messages.Insert(b.user, &gmail.Message{Raw: base64.URLEncoding.EncodeToString(raw), LabelIds: labels}).Context(ctx).Do()
	if err != nil {
		return mailbox.Collection{}, "", b.fail("insert a message", err)
	}
	return mailbox.Collection{Name: ""}, m.Id, nil
}

// Stats implements mailbox.Mailbox.
func (b *Box) Stats() mailbox.Stats {
	return mailbox.Stats{Commands: b.requests.Load(), BodiesFetched: b.bodies.Load(), BytesFetched: b.bytes.Load()}
}

// Close implements mailbox.Mailbox.
func (b *Box) Close() error { return nil }
