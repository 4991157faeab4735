package queue

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// grpcMaxMessage is the largest message a gRPC server accepts unless told
// otherwise (grpc.MaxRecvMsgSize; the cluster's remoting does not).
const grpcMaxMessage = 4 << 20

// The retention pass tells another node of every one of its actions it
// removed, however many, in notices small enough that remoting can send
// them: one message of 250,000 ids (4.5 MB) was more than gRPC accepts,
// its send failed, and the owner kept those task actors for good. Since
// remoting packs up to EndpointWriterBatchSize queued messages into one
// gRPC message, a batch of full notices must fit too.
func TestClusterRetentionNoticesFitRemoting(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	t.Cleanup(sys.Shutdown)

	// The owner's QueueManager, at this system's address (a local send:
	// the test measures what remoting would encode).
	var mu sync.Mutex
	var notices []*messages.ActionsRemoved
	_, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if n, ok := c.Message().(*messages.ActionsRemoved); ok {
			mu.Lock()
			notices = append(notices, n)
			mu.Unlock()
		}
	}), "owner-manager")
	require.NoError(t, err)

	const removed = 250_000
	op := &cOp{retain: true, removed: make([]pgstore.Removed, removed)}
	want := make(map[uuid.UUID]bool, removed)
	for i := range op.removed {
		id := uuid.New()
		want[id] = true
		op.removed[i] = pgstore.Removed{ID: id.String(), Owner: "n2", OwnerAddr: sys.Address()}
	}
	m := &cmanager{node: "n1", name: "owner-manager", entries: map[uuid.UUID]*centry{},
		mem: &soloMember{id: "n2", addr: sys.Address()}}
	sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			m.retained(c, op, nil)
		}
	}))

	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range notices {
			n += len(r.Ids)
		}
		return n
	}
	require.Eventually(t, func() bool { return count() >= removed }, 30*time.Second, time.Millisecond,
		"every removed id reaches its owner")

	batch := remote.Configure("127.0.0.1", 0).EndpointWriterBatchSize
	mu.Lock()
	defer mu.Unlock()
	largest := 0
	for _, r := range notices {
		largest = max(largest, proto.Size(r))
		for _, b := range r.Ids {
			id, err := uuid.FromBytes(b)
			require.NoError(t, err)
			require.True(t, want[id], "an id retention did not remove, or one told twice")
			delete(want, id)
		}
	}
	assert.Empty(t, want)
	assert.Less(t, largest*batch, grpcMaxMessage,
		"the largest notice has %d bytes: a batch of %d of them must fit in one gRPC message", largest, batch)
}
