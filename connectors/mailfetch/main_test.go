package mailfetch

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// rig is a repository on a configuration, a memory store and a resttest.Target.
type rig struct {
	t      *testing.T
	dir    string
	text   string // the configuration's text
	cfg    *config.Config
	st     store.Store
	target *resttest.Target
	repo   *Repository
	skew   atomic.Int64 // added to the repository's clock (advance)
}

// now is the repository's clock: the time plus what advance added.
func (g *rig) now() time.Time { return time.Now().Add(time.Duration(g.skew.Load())) }

// advance moves the repository's clock on by d.
func (g *rig) advance(d time.Duration) { g.skew.Add(int64(d)) }

func newRig(t *testing.T, cfgText string) *rig {
	t.Helper()
	dir := t.TempDir()
	text := strings.ReplaceAll(cfgText, "$DIR", dir)
	cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
	require.NoError(t, err)
	require.NoError(t, Check(cfg))
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	g := &rig{t: t, dir: dir, text: text, cfg: cfg, st: st, target: resttest.NewTarget()}
	g.repo, err = New(Options{Config: cfg, Store: st, Target: g.target, Now: g.now})
	require.NoError(t, err)
	return g
}

// run validates and runs an action, and returns its results and counts.
func (g *rig) run(action string, params ...string) ([]*messages.Element, *fetch.Job, error) {
	g.t.Helper()
	ps := resttest.Params(params...)
	tasks, err := g.repo.Validate(action, ps)
	if err != nil {
		return nil, nil, err
	}
	job := fetch.NewJob("tok", strings.ToUpper(action), ps, tasks)
	res, err := g.repo.Run(context.Background(), job)
	return res, job, err
}

func (g *rig) mustRun(action string, params ...string) ([]*messages.Element, *fetch.Job) {
	g.t.Helper()
	res, job, err := g.run(action, params...)
	require.NoError(g.t, err)
	return res, job
}

// counts of task, as "added=1 updated=0 ...".
func countsOf(job *fetch.Job, task string) *messages.DocumentCount {
	return job.Counts(task).Snapshot()
}

func summary(c *messages.DocumentCount) string {
	return fmt.Sprintf("seen=%d added=%d updated=%d deleted=%d unchanged=%d ingestadded=%d ingestupdated=%d ingestdeleted=%d ingestfailed=%d errors=%d",
		c.Seen, c.Added, c.Updated, c.Deleted, c.Unchanged, c.Ingestadded, c.Ingestupdated, c.Ingestdeleted, c.Ingestfailed, c.Errors)
}
