package webexfetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/ingest"
)

// refusing is a target that refuses every delivery holding one of its
// references, while refuse is set.
type refusing struct {
	*resttest.Target
	mu      sync.Mutex
	refuse  map[string]bool
	refused int
}

func (r *refusing) Add(ctx context.Context, docs []*ingest.Document) error {
	r.mu.Lock()
	for _, d := range docs {
		if r.refuse[d.Reference] {
			r.refused++
			r.mu.Unlock()
			return errors.New("refused by the test")
		}
	}
	r.mu.Unlock()
	return r.Target.Add(ctx, docs)
}

// Rooms read at once share the task's batches: a delivery refused in the
// middle of a room (its second newest message, older than its newest by
// more than ListOverlap) keeps that room's cursor where it was, although
// the room's record joins a later batch that is delivered, and although
// other rooms' messages and records come and go in between. The next run
// delivers the refused message; nothing is missed, nothing delivered
// twice. Without the ordering guard (a room's mark taken before its
// messages, its record added after them on condition that no delivery
// since the mark was refused), the record would move the cursor past the
// refused message and the next run would miss it.
func TestConcurrentRoomsRefusedDeliveryKeepsCursor(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "Concurrency=4" })
	var rooms []string
	for i := 0; i < 8; i++ {
		rooms = append(rooms, e.srv.AddRoom(fmt.Sprintf("Room %d", i), "group", e.alice, e.bob))
	}
	for j := 0; j < 9; j++ {
		for _, r := range rooms {
			e.srv.Post(r, e.bob, fmt.Sprintf("message %d", j))
		}
		e.srv.Advance(5 * time.Second) // more than ListOverlap between a room's messages
	}
	bad := e.srv.Messages(rooms[3])
	secondNewest := bad[len(bad)-2] // oldest first
	target := &refusing{Target: e.target, refuse: map[string]bool{msgRef(e, secondNewest): true}}
	r, err := New(Options{Config: e.cfg, Store: e.st, Target: target, Sleep: e.waits.Sleep,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return e.srv.Now() }})
	require.NoError(t, err)
	// Batches of 3: the room's record is at least two batches after the
	// refused one (seven more of its messages come between them).
	r.batchSize = 3
	e.repo = r

	e.sync()
	require.Equal(t, 1, target.refused)
	require.Zero(t, e.target.AddsOf(msgRef(e, secondNewest)))

	target.mu.Lock()
	target.refuse = nil
	target.mu.Unlock()
	e.sync()
	requireAllOnce(t, e, rooms)
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted)
}

// Rooms are read Concurrency at a time: the first pages of three rooms
// are asked for at the same time (the stand-in holds each until three
// rooms' are in flight, or a deadline passes).
func TestRoomsReadConcurrently(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "Concurrency=3" })
	rooms := busyRooms(e, 6, 4)
	var mu sync.Mutex
	inFlight := map[string]int{} // requests held, by room
	all := make(chan struct{})
	closed := false
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		room := r.URL.Query().Get("roomId")
		if r.URL.Path != "/v1/messages" || room == "" {
			return nil
		}
		mu.Lock()
		inFlight[room]++
		if len(inFlight) == 3 && !closed {
			close(all)
			closed = true
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
		}
		mu.Lock()
		if inFlight[room]--; inFlight[room] == 0 {
			delete(inFlight, room)
		}
		mu.Unlock()
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors)
	select {
	case <-all:
	default:
		t.Fatal("the rooms' messages were not asked for at the same time")
	}
	requireAllOnce(t, e, rooms)
}

// A room that ends the action (Webex refuses the token) stops the rooms
// being read with it: the action ends as Error with Webex's message, and
// no room's cursor passes a message that was not delivered.
func TestConcurrentRoomsUnauthorizedStopsAll(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "Concurrency=4" })
	rooms := busyRooms(e, 8, 12)
	var mu sync.Mutex
	pages := 0
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path != "/v1/messages" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		pages++
		if pages > 6 {
			return &webextest.Fault{Status: http.StatusUnauthorized, Message: "The request requires a valid access token set in the Authorization request header."}
		}
		return nil
	})
	_, _, err := e.run("SYNCHRONIZE")
	require.Error(t, err)
	require.Contains(t, err.Error(), "valid access token")

	e.srv.SetFault(nil)
	e.sync()
	requireAllOnce(t, e, rooms)
}
