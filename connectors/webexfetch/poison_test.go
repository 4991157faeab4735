package webexfetch

import (
	"fmt"
	"slices"
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
	withFile := e.srv.Post(room, e.bob, "with a file", bad)
	for i := 3; i < 6; i++ {
		ids = append(ids, e.srv.Post(room, e.bob, fmt.Sprintf("message %d", i)))
	}
	for run := 0; run < 2; run++ {
		job, _, err := e.run("SYNCHRONIZE")
		require.NoError(t, err)
		// The file is refused, each run; its message goes to the batch
		// after it (the file's document goes as soon as it is read), is
		// not recorded, and so is sent again with it by the next run.
		require.Equal(t, uint64(1), job.Snapshot()[0].Ingestfailed, "the file, each run")
		require.Nil(t, e.target.Get(bad))
		require.LessOrEqual(t, e.target.AddsOf(msgRef(e, withFile)), run+1)
		for _, id := range ids {
			require.Equal(t, 1, e.target.AddsOf(msgRef(e, id)), "run %d: message %d %s", run, slices.Index(ids, id), id)
		}
	}
}
