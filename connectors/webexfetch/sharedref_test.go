package webexfetch

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/oauth"
)

// twoTasks gives the connector two tasks on the one Webex account
// delivering to the one target, with settings a and b (one per line).
func (e *env) twoTasks(a, b string) {
	e.t.Helper()
	task := func(name, extra string) string {
		return fmt.Sprintf("[%[1]s]\nWebexApiUrl=%[2]s\nOAuthAuthorizeUrl=%[2]s/authorize\nOAuthTokenUrl=%[2]s/access_token\nOAuthClientID=client-id\nOAuthClientSecret=client-secret\nPageSize=5\n%[3]s\n",
			name, e.srv.URL, extra)
	}
	text := fmt.Sprintf("[Server]\nDataDirectory=%[1]s/data\n[Security]\nAESKeyFile=%[1]s/aes.ky\nCollectFolders=%[1]s/collect\n[FetchTasks]\nNumber=2\n0=A\n1=B\n",
		e.dir) + task("A", a) + task("B", b)
	cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
	require.NoError(e.t, err)
	for _, n := range []string{"a", "b"} {
		tf := oauth.TokenFile{Path: filepath.Join(e.dir, "data", "oauth", n+".token"), Key: e.key}
		if _, err := tf.Load(); err != nil {
			require.NoError(e.t, tf.Save(&oauth2.Token{RefreshToken: e.srv.IssueRefreshToken()}, "client-id", nil))
		}
	}
	e.cfg = cfg
	e.repo = e.newRepo()
}

// Two tasks index the same space: each delivers the space and its
// messages under one reference to the one target. When task A no longer
// indexes the space (its filters changed), B still does: its documents
// stay in the target, and are still there after B's next run. Before,
// A's Synchronize removed them, and B, whose space had not changed, never
// delivered them again.
func TestRemovalByOneTaskKeepsAnotherTasksSpace(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("General", "group", e.alice, e.bob)
	other := e.srv.AddRoom("Other", "group", e.alice, e.bob)
	m := e.srv.Post(room, e.bob, "hello")
	e.srv.Post(other, e.bob, "elsewhere")
	e.twoTasks("", "RoomTitleCantHaveRegex=Other")
	e.sync()
	require.NotNil(t, e.target.Get(msgRef(e, m)))

	e.twoTasks("RoomTitleCantHaveRegex=General", "RoomTitleCantHaveRegex=Other")
	_, _, err := e.run("SYNCHRONIZE", "TaskSections", "A")
	require.NoError(t, err)
	require.NotNil(t, e.target.Get(roomRefOf(e, room)), "B's space stays in the index")
	require.NotNil(t, e.target.Get(msgRef(e, m)), "B's message stays in the index")
	_, _, err = e.run("SYNCHRONIZE", "TaskSections", "B")
	require.NoError(t, err)
	require.NotNil(t, e.target.Get(roomRefOf(e, room)), "B's space is in the index")
	id, err := decodeIdentifier(field1(e.doc(msgRef(e, m)), "AUTN_IDENTIFIER"))
	require.NoError(t, err)
	require.Equal(t, "B", id.Task, "delivered again by B (the one A delivered named A)")
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)

	// Once no task has it, it is removed.
	e.twoTasks("RoomTitleCantHaveRegex=General", "RoomTitleCantHaveRegex=General")
	e.sync()
	require.Nil(t, e.target.Get(roomRefOf(e, room)))
	require.Nil(t, e.target.Get(msgRef(e, m)))
	require.NotNil(t, e.target.Get(roomRefOf(e, other)))
}

// A task's mark on another task's record survives that task's run under
// way: A lets a space go while B is delivering a new message of it. A
// keeps the space's documents (B indexes them) and marks B's records to
// deliver them again (the ones in the index are A's: B delivered first);
// B's run then writes its space's record (the new message's cursor),
// read before A's mark. Before, that write undid the mark: B's next runs
// found the space unchanged and never delivered the older message again,
// which stayed in the index as A's document (AUTN_IDENTIFIER naming A,
// which no longer indexes it; A's security and fields).
func TestMarkByOneTaskSurvivesAnotherTasksRun(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("General", "group", e.alice, e.bob)
	m := e.srv.Post(room, e.bob, "hello")
	e.gated = &resttest.Gated{Inner: e.target}
	taskOf := e.bothDeliverALast("")
	require.Equal(t, "A", taskOf(msgRef(e, m)))

	e.twoTasks("RoomTitleCantHaveRegex=General", "")
	n := e.srv.Post(room, e.bob, "later")
	h := e.gated.HoldAdd(msgRef(e, n))
	defer h.Release()
	ps := resttest.Params("TaskSections", "B")
	tasks, err := e.repo.Validate("SYNCHRONIZE", ps)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := e.repo.Run(context.Background(), fetch.NewJob("tok-b", "SYNCHRONIZE", ps, tasks))
		done <- err
	}()
	testwait.Recv(t, h.Reached(), 20*time.Second, "B delivering the new message")
	_, _, err = e.run("SYNCHRONIZE", "TaskSections", "A") // A lets the space go meanwhile
	require.NoError(t, err)
	require.NotNil(t, e.target.Get(msgRef(e, m)), "B indexes it: it stays")
	h.Release()
	require.NoError(t, testwait.Recv(t, done, 20*time.Second, "B's Synchronize to end"))

	_, _, err = e.run("SYNCHRONIZE", "TaskSections", "B")
	require.NoError(t, err)
	require.Equal(t, "B", taskOf(msgRef(e, m)), "B delivered its own document again")
	require.Equal(t, "B", taskOf(roomRefOf(e, room)))
}

// bothDeliverALast gives the connector tasks A and B, both with settings
// (one per line), synchronizes B then A, so that the documents in the
// index are A's, and returns a function that tells which task delivered
// a document (its AUTN_IDENTIFIER's).
func (e *env) bothDeliverALast(settings string) func(ref string) string {
	e.t.Helper()
	e.twoTasks(settings, settings)
	for _, task := range []string{"B", "A"} {
		_, _, err := e.run("SYNCHRONIZE", "TaskSections", task)
		require.NoError(e.t, err)
	}
	return func(ref string) string {
		e.t.Helper()
		id, err := decodeIdentifier(field1(e.doc(ref), "AUTN_IDENTIFIER"))
		require.NoError(e.t, err)
		return id.Task
	}
}
