package objectivefetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// removeSizes records the number of references of each Remove.
type removeSizes struct {
	ingest.Target
	mu    sync.Mutex
	sizes []int
}

func (t *removeSizes) Remove(ctx context.Context, refs []string) error {
	t.mu.Lock()
	t.sizes = append(t.sizes, len(refs))
	t.mu.Unlock()
	return t.Target.Remove(ctx, refs)
}

// What a run forgets goes to the target in batches of the Batch's size,
// as what it delivers does. Before, every object forgotten went in the
// run's last batch, whatever their number: a tree of 50,000 objects taken
// out of RootFolders was one removal, which a CFS answering in more than
// restsync.DeliveryTimeout (30 s) for all of its requests refused, and
// so again by every run.
func TestForgottenObjectsAreRemovedInBatches(t *testing.T) {
	e := newEnv(t, "")
	home := e.srv.AddFolder(objectivetest.RootID, "Home")
	archive := e.srv.AddFolder(objectivetest.RootID, "Archive")
	for i := range 7 {
		e.srv.AddDocument(archive, objectivetest.Doc{Name: fmt.Sprintf("d%d.txt", i), Data: []byte("old")})
	}
	e.reconfigure("RootFolders=" + home + "," + archive)
	tgt := &removeSizes{Target: e.target}
	e.repo = e.newRepoWith(tgt)
	e.repo.batchSize = 3
	e.sync()
	require.Equal(t, 9, e.target.Len())

	e.reconfigure("RootFolders=" + home)
	e.repo = e.newRepoWith(tgt)
	e.repo.batchSize = 3
	c := e.sync()
	require.Equal(t, uint64(8), c.Deleted, "%+v", c)
	require.Equal(t, 1, e.target.Len())
	require.NotEmpty(t, tgt.sizes)
	for _, n := range tgt.sizes {
		require.LessOrEqual(t, n, 3, "removals of %v references", tgt.sizes)
	}
}
