package objectivefetch

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/ingest"
)

// refusingRemoves refuses Remove while refuse is set.
type refusingRemoves struct {
	ingest.Target
	refuse atomic.Bool
}

func (t *refusingRemoves) Remove(ctx context.Context, refs []string) error {
	if t.refuse.Load() {
		return errors.New("the ingestion target is restarting")
	}
	return t.Target.Remove(ctx, refs)
}

// A version that is gone has its document removed, even when the target
// refused the removal the first time: the next run removes it.
func TestGoneVersionIsRemovedAfterARefusedRemoval(t *testing.T) {
	e := newEnv(t, "Versions=ALL")
	folder := e.srv.AddFolder(objectivetest.RootID, "Contracts")
	docID := e.srv.AddDocument(folder, objectivetest.Doc{Name: "lease.txt", Data: []byte("first draft")})
	e.srv.NewVersion(docID, []byte("signed lease"))
	tgt := &refusingRemoves{Target: e.target}
	e.repo = e.newRepoWith(tgt)
	e.sync()
	old := e.srv.Object(docID).Versions[0].ID
	require.NotNil(t, e.target.Get(versionRef(e.srv.URL, old)))

	// The old version is deleted; the target refuses removals this run.
	e.srv.Update(docID, func(o *objectivetest.Object) { o.Versions = o.Versions[1:] })
	tgt.refuse.Store(true)
	c := e.sync()
	require.NotZero(t, c.Ingestfailed, "%+v", c)
	require.NotNil(t, e.target.Get(versionRef(e.srv.URL, old)), "not removed yet")

	tgt.refuse.Store(false)
	e.sync()
	require.Nil(t, e.target.Get(versionRef(e.srv.URL, old)), "the gone version's document is removed")
	require.Equal(t, "signed lease", e.doc(kindDocument, docID).Content)
}
