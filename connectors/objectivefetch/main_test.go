package objectivefetch

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// env is an Objective connector over the stand-in.
type env struct {
	t      *testing.T
	srv    *objectivetest.Server
	dir    string
	cfg    *config.Config
	st     store.Store
	target *resttest.Target
	repo   *Repository
	logs   *resttest.LogBuffer
	waits  *resttest.Waits
}

func newEnv(t *testing.T, settings string, opts ...objectivetest.Options) *env {
	t.Helper()
	o := objectivetest.Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	srv := objectivetest.New(o)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir(), target: resttest.NewTarget(), logs: &resttest.LogBuffer{}, waits: &resttest.Waits{}}
	_, err := secret.EnsureKeyFile(filepath.Join(e.dir, "aes.ky"))
	require.NoError(t, err)
	e.cfg = e.config(settings)
	e.st, err = store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { e.st.Close() })
	e.repo = e.newRepo()
	return e
}

func (e *env) config(extra string) *config.Config {
	e.t.Helper()
	if !strings.Contains(extra, "AuthMethod") {
		extra = "Username=alice\nPassword=alice-password\n" + extra
	}
	if !strings.Contains(extra, "PageSize=") {
		extra = "PageSize=4\n" + extra
	}
	text := fmt.Sprintf(`[Server]
DataDirectory=%[1]s/data
[Security]
AESKeyFile=%[1]s/aes.ky
CollectFolders=%[1]s/collect
InsertFolders=%[1]s/insert
[FetchTasks]
Number=1
0=MyObjective
[MyObjective]
ServerUrl=%[2]s
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
	return e.newRepoWith(e.target)
}

// newRepoWith is newRepo delivering to tgt.
func (e *env) newRepoWith(tgt ingest.Target) *Repository {
	e.t.Helper()
	r, err := New(Options{Config: e.cfg, Store: e.st, Target: tgt, Sleep: e.waits.Sleep,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(e.t, err)
	return r
}

func (e *env) run(action string, params ...string) (*fetch.Job, []*messages.Element, error) {
	e.t.Helper()
	return resttest.Run(e.t, e.repo, action, params...)
}

func (e *env) sync() *messages.DocumentCount {
	e.t.Helper()
	job, _, err := e.run("SYNCHRONIZE")
	require.NoError(e.t, err)
	return job.Snapshot()[0]
}

func (e *env) doc(kind, id string) *ingest.Document {
	e.t.Helper()
	d := e.target.Get(objectRef(e.srv.URL, kind, id))
	require.NotNil(e.t, d, "no document for %s %s", kind, id)
	return d
}

func (e *env) gone(kind, id string) bool {
	return e.target.Get(objectRef(e.srv.URL, kind, id)) == nil
}

func field(d *ingest.Document, name string) []string { return resttest.Field(d, name) }
func field1(d *ingest.Document, name string) string  { return resttest.Field1(d, name) }

func user(name string, privileges ...string) objectivetest.Permission {
	return objectivetest.Permission{Principal: name, PrincipalType: "user", Privileges: privileges}
}

func group(name string, privileges ...string) objectivetest.Permission {
	return objectivetest.Permission{Principal: name, PrincipalType: "group", Privileges: privileges}
}
