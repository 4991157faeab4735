package objectivefetch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
)

// twoTasks gives the connector two tasks on the one Objective server
// delivering to the one target: A with RootFolders a, B with RootFolders
// b.
func (e *env) twoTasks(a, b string) {
	e.t.Helper()
	task := func(name, roots string) string {
		return fmt.Sprintf("[%s]\nServerUrl=%s\nUsername=alice\nPassword=alice-password\nPageSize=4\nRootFolders=%s\n", name, e.srv.URL, roots)
	}
	text := fmt.Sprintf("[Server]\nDataDirectory=%[1]s/data\n[Security]\nAESKeyFile=%[1]s/aes.ky\nCollectFolders=%[1]s/collect\nInsertFolders=%[1]s/insert\n[FetchTasks]\nNumber=2\n0=A\n1=B\n",
		e.dir) + task("A", a) + task("B", b)
	cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
	require.NoError(e.t, err)
	e.cfg = cfg
	e.repo = e.newRepo()
}

// Two tasks index the same tree: each delivers an object under one
// reference to the one target. When task A no longer indexes it (its
// RootFolders changed), B still does: its document stays in the target,
// and is still there after B's next run. Before, A's Synchronize removed
// it, and B, whose record said it was delivered, never delivered it
// again while it did not change in Objective.
func TestRemovalByOneTaskKeepsAnotherTasksObject(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.twoTasks(tr.home+","+tr.archive, tr.home)
	e.sync()
	require.False(t, e.gone(kindDocument, tr.report))

	e.twoTasks(tr.archive, tr.home)
	_, _, err := e.run("SYNCHRONIZE", "TaskSections", "A")
	require.NoError(t, err)
	require.False(t, e.gone(kindDocument, tr.report), "B's document stays in the index")
	_, _, err = e.run("SYNCHRONIZE", "TaskSections", "B")
	require.NoError(t, err)
	require.False(t, e.gone(kindDocument, tr.report), "B's document is in the index")
	require.False(t, e.gone(kindFolder, tr.aliceF))
	id, err := decodeIdentifier(field1(e.doc(kindDocument, tr.report), "AUTN_IDENTIFIER"))
	require.NoError(t, err)
	require.Equal(t, "B", id.Task, "delivered again by B (the one A delivered named A)")
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)

	// Once no task has it, it is removed.
	e.twoTasks(tr.archive, tr.archive)
	e.sync()
	require.True(t, e.gone(kindDocument, tr.report))
	require.True(t, e.gone(kindFolder, tr.home))
	require.False(t, e.gone(kindFolder, tr.archive))
}

// A task that does not index folders (IndexFolders=FALSE) records them
// without a document: it does not keep another task's folder documents,
// which are removed when that task lets them go; the documents under
// them, which both index, stay.
func TestRemovalKeepsNoFolderOfATaskThatDoesNotIndexThem(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.twoTasks(tr.home+","+tr.archive, tr.home+"\nIndexFolders=FALSE")
	e.sync()
	require.False(t, e.gone(kindFolder, tr.aliceF))

	e.twoTasks(tr.archive, tr.home+"\nIndexFolders=FALSE")
	e.sync()
	require.True(t, e.gone(kindFolder, tr.aliceF), "no task indexes it any more")
	require.True(t, e.gone(kindFolder, tr.home))
	require.False(t, e.gone(kindDocument, tr.report), "B indexes it")
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}

// The same when task A delivers an object again without a version B
// still indexes (A's Versions changed): the version's document stays,
// and is still there after B's next run.
func TestVersionDroppedByOneTaskStaysForAnother(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	d := e.srv.AddDocument(tr.archive, objectivetest.Doc{Name: "a.txt", Data: []byte("version one")})
	e.srv.NewVersion(d, []byte("version two"))
	e.twoTasks(tr.archive+"\nVersions=ALL", tr.archive+"\nVersions=ALL")
	e.sync()
	old := versionRef(e.srv.URL, "v"+d)
	require.NotNil(t, e.target.Get(old))

	e.twoTasks(tr.archive+"\nVersions=CURRENT", tr.archive+"\nVersions=ALL")
	_, _, err := e.run("SYNCHRONIZE", "TaskSections", "A")
	require.NoError(t, err)
	require.NotNil(t, e.target.Get(old), "B's version stays in the index")
	_, _, err = e.run("SYNCHRONIZE", "TaskSections", "B")
	require.NoError(t, err)
	require.NotNil(t, e.target.Get(old), "B's version is in the index")

	e.twoTasks(tr.archive+"\nVersions=CURRENT", tr.archive+"\nVersions=CURRENT")
	e.sync()
	require.Nil(t, e.target.Get(old), "no task indexes it any more")
}

// syncAsync validates a Synchronize of task on e's repository and runs
// it in a goroutine; the channel returned gives its error.
func (e *env) syncAsync(task string) <-chan error {
	e.t.Helper()
	ps := resttest.Params("TaskSections", task)
	tasks, err := e.repo.Validate("SYNCHRONIZE", ps)
	require.NoError(e.t, err)
	repo := e.repo
	done := make(chan error, 1)
	go func() {
		_, err := repo.Run(context.Background(), fetch.NewJob("tok-"+task, "SYNCHRONIZE", ps, tasks))
		done <- err
	}()
	return done
}

// Two tasks that let a shared object go in runs at the same time: its
// document is removed, by the second to decide. Before, A kept it (B's
// record said held) and, until A's record was forgotten at the end of its
// batch (after its removals), B found A's record holding it and kept it
// too: it stayed in the index with no task left to remove it. A's
// removal of an object of its own is held while B runs.
func TestSharedObjectLetGoByTwoTasksAtOnceIsRemoved(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	own := e.srv.AddDocument(tr.archive, objectivetest.Doc{Name: "own.txt", Data: []byte("only A indexes this")})
	g := &resttest.Gated{Inner: e.target}
	e.twoTasks(tr.home+","+tr.archive, tr.home)
	e.repo = e.newRepoWith(g)
	e.sync()
	require.False(t, e.gone(kindDocument, tr.report))

	// Both let Home go; A also loses its own document.
	e.twoTasks(tr.archive, tr.archive)
	e.repo = e.newRepoWith(g)
	e.srv.Remove(own)
	h := g.HoldRemove(objectRef(e.srv.URL, kindDocument, own))
	defer h.Release()
	done := e.syncAsync("A")
	testwait.Recv(t, h.Reached(), 20*time.Second, "A removing its own document, having let Home go")
	_, _, err := e.run("SYNCHRONIZE", "TaskSections", "B")
	require.NoError(t, err)
	h.Release()
	require.NoError(t, testwait.Recv(t, done, 20*time.Second, "A's Synchronize to end"))
	require.True(t, e.gone(kindDocument, own))
	require.True(t, e.gone(kindDocument, tr.report), "no task indexes it: it is removed")
	require.True(t, e.gone(kindFolder, tr.home))
}
