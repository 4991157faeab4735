// Package webexfetch is the Webex connector ([Connector] Type=WEBEX): it
// indexes Webex spaces (rooms) and their messages, with the messages'
// files as child documents and the rooms' members as the documents'
// security, read as the person who authorized the connector or, as a
// compliance officer, across the organisation. It talks to the Webex
// Messaging REST API (https://webexapis.com/v1) with OAuth 2.0 tokens
// refreshed from the token file `connector oauth` writes.
//
// Fetch actions: Synchronize (incremental: per room, newest first down to
// the last message seen; rooms in order of last activity, so an idle room
// costs no request; as compliance officer, the events feed brings edits
// and deletions), Collect, Identifiers, View, and Insert (posts a message
// when the task's scopes include spark:messages_write).
//
// docs/connectors/webex.md describes the settings and documents, and says
// which behaviour of Webex is documented by Cisco and which is inferred.
// Package webextest is the stand-in the tests and benchmarks run against.
package webexfetch

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/oauth"
)

// DefaultConfig is the embedded default configuration of a Webex
// connector server.
//
//go:embed default.cfg
var DefaultConfig []byte

// FetchActions are the connector's fetch actions.
var FetchActions = []string{fetch.ActionSynchronize, fetch.ActionCollect, fetch.ActionIdentifiers, fetch.ActionInsert}

// Type is the [Connector] Type of the Webex connector.
const Type = "WEBEX"

// Descriptor describes the connector to the registry of connector types
// (package connectors). The product name follows IDOL's pattern (IDOL's
// guide is WebExConnector_24.1_Documentation): WEBEXCONNECTOR.
func Descriptor() *fetch.Descriptor {
	return &fetch.Descriptor{
		Type:          Type,
		Product:       "WEBEXCONNECTOR",
		DefaultConfig: DefaultConfig,
		Doc:           "docs/connectors/webex.md",
		TaskKeys:      TaskKeys,
		Check:         Check,
		FetchActions:  slices.Clone(FetchActions),
		New: func(d fetch.Deps) (fetch.Repository, error) {
			return New(Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger})
		},
	}
}

// Options configure a Repository.
type Options = restsync.Deps

// Repository is the Webex connector: it implements fetch.Repository,
// fetch.Viewer, fetch.TaskLister, fetch.Exclusive and fetch.Secrets.
type Repository struct {
	*restsync.Repo[settings]
	// batchSize, when set, is the Size of a Synchronize's Batch (tests
	// make it small, so that rooms read at once share several batches).
	batchSize int
}

var (
	_ fetch.Repository = (*Repository)(nil)
	_ fetch.Viewer     = (*Repository)(nil)
	_ fetch.TaskLister = (*Repository)(nil)
	_ fetch.Exclusive  = (*Repository)(nil)
	_ fetch.Secrets    = (*Repository)(nil)
)

// New resolves every task and returns the repository.
func New(o Options) (*Repository, error) {
	base, err := restsync.NewRepo(restsync.RepoOptions[settings]{Deps: o, Name: "webexfetch", Actions: FetchActions, Keys: keys,
		Resolve: resolve, Decode: decodeIdentifier, Shared: shared})
	if err != nil {
		return nil, err
	}
	return &Repository{Repo: base}, nil
}

// Check validates every task of a configuration without touching anything
// on disk (beyond reading [Security] AESKeyFile when a secret is given
// encrypted).
func Check(cfg *config.Config) error {
	return restsync.CheckAll(cfg, resolve)
}

// OAuthTask is a task's OAuth 2.0 client and token file, for `connector
// oauth`.
type OAuthTask interface {
	OAuthClient() (oauth.Config, string)
}

// TaskSettings returns a task's OAuth 2.0 client and token file, for
// `connector oauth`.
func TaskSettings(cfg *config.Config, task string) (OAuthTask, error) {
	s, err := restsync.TaskSettings(cfg, resolve, task)
	if err != nil {
		return nil, err // a nil interface, not a nil *settings in one
	}
	return s, nil
}

// Exclusive implements fetch.Exclusive: a task's Synchronize rewrites its
// datastore, one at a time.
func (r *Repository) Exclusive(fetchAction string) bool {
	return strings.EqualFold(fetchAction, restsync.ActionSynchronize)
}

// request is a validated action.
type request struct {
	*restsync.Action
	inserts []*restsync.InsertDoc
}

func (r *Repository) prepare(action string, params messages.Params) (*request, error) {
	a, err := r.Prepare(action, params)
	if err != nil {
		return nil, err
	}
	req := &request{Action: a}
	if a.Action == restsync.ActionInsert {
		s := r.Set[a.Tasks[0]]
		if !s.canWrite() {
			return nil, messages.Invalid("FetchAction", action, fmt.Sprintf("task %s cannot post messages: its OAuthScopes lack %s (add it, and run `connector oauth` again)", s.Task, WriteScope))
		}
		if req.inserts, err = parseInserts(a.InsertXML, s); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// Validate implements fetch.Repository.
func (r *Repository) Validate(fetchAction string, params messages.Params) ([]string, error) {
	req, err := r.prepare(strings.ToUpper(strings.TrimSpace(fetchAction)), params)
	if err != nil {
		return nil, err
	}
	return req.Tasks, nil
}

// Run implements fetch.Repository.
func (r *Repository) Run(ctx context.Context, job *fetch.Job) ([]*messages.Element, error) {
	req, err := r.prepare(strings.ToUpper(job.FetchAction), job.Params)
	if err != nil {
		return nil, err
	}
	return r.Logged(job, req.Action, func(log *slog.Logger) ([]*messages.Element, error) {
		switch req.Action.Action {
		case restsync.ActionSynchronize:
			return nil, restsync.SyncTasks(ctx, job, req.Tasks, func(task string, progress func(float64, string)) error {
				return r.syncTask(ctx, job, task, progress, log)
			})
		case restsync.ActionCollect:
			return r.Collect(ctx, job, req.Action, r.items())
		case restsync.ActionIdentifiers:
			return r.identifiers(ctx, job, req)
		case restsync.ActionInsert:
			return r.insert(ctx, job, req)
		}
		return nil, nil
	})
}

// open returns the task's API client (kept for its next actions): every
// connection through [Security] DeniedAddresses, tokens refreshed from the
// task's token file (renewed once when Webex refuses one mid-run).
func (r *Repository) open(_ context.Context, s *settings) (*api, error) {
	return restsync.Kept(r.Repo, s.Task, func() (*api, error) {
		key, err := r.Key.Get()
		if err != nil {
			return nil, fmt.Errorf("webexfetch: [%s] the token file is encrypted with [Security] AESKeyFile: %w", s.Task, err)
		}
		tf := oauth.TokenFile{Path: s.TokenFile, Key: key, Store: r.Store, Name: r.tokenName(s)}
		c, err := r.ServiceClient(s.Task, s.APIURL, restsync.TLS{CheckCertificate: s.CheckCert, CAFile: s.CACert}, s.Timeout,
			func(hc *http.Client) restsync.Auth {
				// Concurrency rooms are read at once, each with a page in
				// flight, the next one asked for ahead and a file: as
				// many connections stay open between them (else each
				// burst opens new ones and closes them again).
				if tr, ok := hc.Transport.(*http.Transport); ok {
					tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, 3*int(s.Concurrency)+1)
				}
				oc := s.OAuth()
				oc.HTTPClient = hc
				return &restsync.TokenAuth{New: func(ctx context.Context) (oauth2.TokenSource, error) {
					// The source outlives the action that made it: its
					// refreshes must not end with that action.
					return tf.TokenSource(context.WithoutCancel(ctx), oc)
				}}
			},
			restsync.Options{Service: "webex", MaxAttempts: int(s.MaxAttempts), MaxRetryAfter: s.MaxRetryAfter,
				Message: errorMessage, UserAgent: "connector-webex"})
		if err != nil {
			return nil, err
		}
		return &api{c: c, pageSize: int(s.PageSize)}, nil
	})
}

// tokenName names a task's refresh token in a cluster's shared store
// (oauth.TokenFile.Name), alike on every node and whatever the other
// tasks: a task's default token file (DataDirectory/oauth/<task>.token,
// under each node's own DataDirectory) after that task, a file given as
// OAuthTokenFile (the same in every node's configuration) after its path,
// so that the tasks sharing it share its token. Named after the first
// task (by name) using the file, as it was, a task added on the same file
// that sorted first, or the first one removed or renamed, renamed the
// token: the store had none under the new name, so the node refreshed
// from its token file, whose token the first rotation had spent
// (invalid_grant for every action of the task).
func (r *Repository) tokenName(s *settings) string {
	for _, t := range slices.Sorted(maps.Keys(r.Set)) {
		if s.TokenFile == defaultTokenFile(r.Cfg, t) {
			return t
		}
	}
	return "file " + s.TokenFile
}

// httpStatus is a Webex error's status (0 when it is not one).
func httpStatus(err error) int {
	var se *restsync.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// fatal reports whether err ends the action: the credentials are refused
// or cannot be had (the action ends as Error with Webex's message), or the
// action was stopped.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, restsync.ErrUnauthorized) || errors.Is(err, restsync.ErrAuth) ||
		httpStatus(err) == http.StatusUnauthorized
}
