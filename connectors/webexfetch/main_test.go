package webexfetch

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// env is a Webex connector over a stand-in whose every request and answer
// is validated against Cisco's OpenAPI description (a mismatch fails the
// test at its end).
type env struct {
	t      *testing.T
	srv    *webextest.Server
	dir    string
	cfg    *config.Config
	st     store.Store
	target *resttest.Target
	// gated, when set, is the repository's target (in front of target).
	gated *resttest.Gated
	repo  *Repository
	key   *secret.Key
	logs  *resttest.LogBuffer
	waits *resttest.Waits

	alice, bob, carol string
}

type envOptions struct {
	compliance bool
	settings   string // more task settings, one per line
	srv        webextest.Options
}

func newEnv(t *testing.T, opts ...func(*envOptions)) *env {
	t.Helper()
	o := &envOptions{}
	for _, f := range opts {
		f(o)
	}
	srv := webextest.New(o.srv)
	t.Cleanup(srv.Close)
	v, err := webextest.NewValidator(srv.URL)
	require.NoError(t, err)
	srv.SetValidator(v)
	t.Cleanup(func() {
		if !t.Failed() {
			require.Empty(t, srv.Violations(), "requests and answers that do not match Cisco's OpenAPI description")
		}
	})
	e := &env{t: t, srv: srv, dir: t.TempDir(), target: resttest.NewTarget(), logs: &resttest.LogBuffer{}, waits: &resttest.Waits{}}
	e.alice = srv.AddPerson("alice@example.com", "Alice Archer")
	e.bob = srv.AddPerson("Bob@Example.com", "Bob Baker")
	e.carol = srv.AddPerson("carol@example.com", "Carol Cole")
	srv.SetMe(e.alice, o.compliance)
	e.key, err = secret.EnsureKeyFile(filepath.Join(e.dir, "aes.ky"))
	require.NoError(t, err)
	extra := o.settings
	if o.compliance {
		extra += "\nComplianceOfficer=TRUE"
	}
	e.cfg = e.config(extra)
	tok := &oauth2.Token{RefreshToken: srv.IssueRefreshToken()}
	require.NoError(t, oauth.TokenFile{Path: filepath.Join(e.dir, "data", "oauth", "mywebex.token"), Key: e.key}.Save(tok, "client-id", nil))
	e.st, err = store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { e.st.Close() })
	e.repo = e.newRepo()
	return e
}

func (e *env) config(extra string) *config.Config {
	e.t.Helper()
	text := fmt.Sprintf(`[Server]
DataDirectory=%[1]s/data
[Security]
AESKeyFile=%[1]s/aes.ky
CollectFolders=%[1]s/collect
[FetchTasks]
Number=1
0=MyWebex
[MyWebex]
WebexApiUrl=%[2]s
OAuthAuthorizeUrl=%[2]s/authorize
OAuthTokenUrl=%[2]s/access_token
OAuthClientID=client-id
OAuthClientSecret=client-secret
PageSize=5
%[3]s
`, e.dir, e.srv.URL, strings.TrimSpace(extra))
	cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
	require.NoError(e.t, err)
	return cfg
}

// reconfigure gives the task new settings (the server restarted with
// an edited configuration): same store, target and service.
func (e *env) reconfigure(extra string) {
	e.t.Helper()
	e.cfg = e.config(extra)
	e.repo = e.newRepo()
}

func (e *env) newRepo() *Repository {
	e.t.Helper()
	var tgt ingest.Target = e.target
	if e.gated != nil {
		tgt = e.gated
	}
	r, err := New(Options{Config: e.cfg, Store: e.st, Target: tgt, Sleep: e.waits.Sleep,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return e.srv.Now() }})
	require.NoError(e.t, err)
	return r
}

// run performs an action and returns its job, results and error.
func (e *env) run(action string, params ...string) (*fetch.Job, []*messages.Element, error) {
	e.t.Helper()
	return resttest.Run(e.t, e.repo, action, params...)
}

// sync runs a Synchronize that must succeed and returns its counts.
func (e *env) sync() *messages.DocumentCount {
	e.t.Helper()
	job, _, err := e.run("SYNCHRONIZE")
	require.NoError(e.t, err)
	return job.Snapshot()[0]
}

func (e *env) doc(ref string) *ingest.Document {
	e.t.Helper()
	d := e.target.Get(ref)
	require.NotNil(e.t, d, "no document %s", ref)
	return d
}

func msgRef(e *env, id string) string    { return e.srv.URL + "/messages/" + id }
func roomRefOf(e *env, id string) string { return e.srv.URL + "/rooms/" + id }

func field(d *ingest.Document, name string) []string { return resttest.Field(d, name) }
func field1(d *ingest.Document, name string) string  { return resttest.Field1(d, name) }
