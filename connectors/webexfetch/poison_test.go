package webexfetch

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
)

// A message whose file URL the ingestion target cannot take as a
// reference (here a C1 control character in its query, which the service
// serves all the same) fails alone: the other messages of its batch are
// delivered and recorded, and are not held back run after run.
func TestUndeliverableFileDoesNotHoldBackItsBatch(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Room", "group", e.alice, e.bob)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, e.srv.Post(room, e.bob, fmt.Sprintf("message %d", i)))
	}
	bad := e.srv.AddFile(&webextest.File{Name: "a.txt", ContentType: "text/plain", Data: []byte("hello")}) + "?v=\u0085"
	e.srv.Post(room, e.bob, "with a file", bad)
	for i := 3; i < 6; i++ {
		ids = append(ids, e.srv.Post(room, e.bob, fmt.Sprintf("message %d", i)))
	}
	for run := 0; run < 2; run++ {
		job, _, err := e.run("SYNCHRONIZE")
		require.NoError(t, err)
		require.Equal(t, uint64(2), job.Snapshot()[0].Ingestfailed, "the message and its file, each run")
		for _, id := range ids {
			require.Equal(t, 1, e.target.AddsOf(msgRef(e, id)), "run %d: message %s", run, id)
		}
	}
}
