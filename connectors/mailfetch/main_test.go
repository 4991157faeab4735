package mailfetch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// memTarget keeps the documents delivered, by reference.
type memTarget struct {
	mu      sync.Mutex
	docs    map[string]*ingest.Document
	adds    int
	removes int
}

func newMemTarget() *memTarget { return &memTarget{docs: map[string]*ingest.Document{}} }

func (m *memTarget) Add(_ context.Context, docs []*ingest.Document) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range docs {
		if err := d.Validate(); err != nil {
			return err
		}
		c := *d
		c.Fields = slices.Clone(d.Fields)
		c.Source = slices.Clone(d.Source)
		m.docs[d.Reference] = &c
		m.adds++
	}
	return nil
}

func (m *memTarget) Remove(_ context.Context, refs []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range refs {
		delete(m.docs, r)
		m.removes++
	}
	return nil
}

func (m *memTarget) Close() error     { return nil }
func (m *memTarget) Describe() string { return "memory" }

func (m *memTarget) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.docs)
}

// find returns the documents whose field name has value.
func (m *memTarget) find(name, value string) []*ingest.Document {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ingest.Document
	for _, d := range m.docs {
		if slices.Contains(field(d, name), value) {
			out = append(out, d)
		}
	}
	return out
}

func (m *memTarget) all() []*ingest.Document {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ingest.Document
	for _, d := range m.docs {
		out = append(out, d)
	}
	return out
}

func field(d *ingest.Document, name string) []string {
	var out []string
	for _, f := range d.Fields {
		if f.Name == name {
			out = append(out, f.Value)
		}
	}
	return out
}

func field1(d *ingest.Document, name string) string {
	v := field(d, name)
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// rig is a repository on a configuration, a memory store and a memTarget.
type rig struct {
	t      *testing.T
	dir    string
	cfg    *config.Config
	st     store.Store
	target *memTarget
	repo   *Repository
}

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
	g := &rig{t: t, dir: dir, cfg: cfg, st: st, target: newMemTarget()}
	g.repo, err = New(Options{Config: cfg, Store: st, Target: g.target})
	require.NoError(t, err)
	return g
}

// run validates and runs an action, and returns its results and counts.
func (g *rig) run(action string, params ...string) ([]*messages.Element, *fetch.Job, error) {
	g.t.Helper()
	var ps messages.Params
	for i := 0; i+1 < len(params); i += 2 {
		ps = append(ps, &messages.Param{Name: params[i], Value: params[i+1]})
	}
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
