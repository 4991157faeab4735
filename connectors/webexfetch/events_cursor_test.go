package webexfetch

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/store"
)

// TestFailingSpaceDoesNotHoldTheEventsCursor: as compliance officer, one
// space whose messages Webex fails to list on every run. On main the
// events cursor moved only when every space the feed named was brought up
// to date, so it stayed where that space first failed: every later run
// read the whole organisation's feed again from there (growing for as
// long as the space failed, up to EventsLookback's 90 days) and fetched
// again every message edited anywhere since (here the edit in the space
// that works, run after run). The cursor now moves on, and what the feed
// said about the failing space is kept for it and applied once it can be
// read: its edit made while it failed is delivered then, though the feed
// no longer shows it.
func TestFailingSpaceDoesNotHoldTheEventsCursor(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.compliance = true; o.settings = "EventsLookback=24h" })
	bad := e.srv.AddRoom("Bad", "group", e.bob, e.carol)
	old := e.srv.Post(bad, e.bob, "the original")
	e.srv.Advance(time.Minute)
	e.srv.Post(bad, e.carol, "a later one") // the listing stops above the original
	good := e.srv.AddRoom("Good", "group", e.bob, e.carol)
	goodOld := e.srv.Post(good, e.bob, "good original")
	require.Zero(t, e.sync().Errors)

	var failing atomic.Bool
	failing.Store(true)
	var mu sync.Mutex
	var froms []string
	var goodFetches atomic.Int64
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == "/v1/events" && r.URL.Query().Get("resource") == "messages" {
			mu.Lock()
			froms = append(froms, r.URL.Query().Get("from"))
			mu.Unlock()
		}
		if r.URL.Path == "/v1/messages/"+goodOld {
			goodFetches.Add(1)
		}
		if failing.Load() && (r.URL.Query().Get("roomId") == bad || r.URL.Path == "/v1/messages/"+old) {
			return &webextest.Fault{Status: http.StatusInternalServerError, Message: "Something went wrong"}
		}
		return nil
	})
	e.srv.Advance(time.Hour)
	e.srv.Edit(old, "the original (edited while the space fails)")
	e.srv.Edit(goodOld, "good original (edited)")
	require.NotZero(t, e.sync().Errors, "the space fails")
	require.Equal(t, "good original (edited)", e.doc(msgRef(e, goodOld)).Content)

	// The organisation goes on (a message an hour); the space still
	// fails.
	goodFetches.Store(0)
	for range 3 {
		e.srv.Advance(time.Hour)
		e.srv.Post(good, e.carol, "an hour later")
		require.NotZero(t, e.sync().Errors, "the space still fails")
	}
	require.Zero(t, goodFetches.Load(), "the edit in the space that works is not fetched again by every run")
	mu.Lock()
	require.Len(t, froms, 4)
	require.NotEqual(t, froms[2], froms[3], "the events cursor moves on: %v", froms)
	mu.Unlock()

	failing.Store(false)
	e.srv.Advance(time.Hour)
	require.Zero(t, e.sync().Errors)
	require.Equal(t, "the original (edited while the space fails)", e.doc(msgRef(e, old)).Content,
		"the edit the feed named while the space failed is applied")

	// And once applied, it is not fetched again.
	e.srv.Advance(time.Hour)
	e.srv.ResetRequests()
	require.Zero(t, e.sync().Errors)
	by, _ := e.srv.Requests()
	require.Zero(t, by["GET /v1/messages/{id}"], "%v", by)
}

// TestComplianceSpaceNoLongerWantedIsRemoved: as compliance officer, a
// space found in the events feed (the officer is not in it) is indexed;
// then the task's filters stop taking it (here its title now matches
// RoomTitleCantHaveRegex; a RoomTypes or Rooms change alike). The docs
// say such a space is removed with its messages; on main it stayed in the
// index for good: only a space seen in the account's own list was checked
// against the filters, and one found through the feed was never looked at
// again unless the feed named it.
func TestComplianceSpaceNoLongerWantedIsRemoved(t *testing.T) {
	for _, filter := range []string{"RoomTitleCantHaveRegex=.*Board.*", "RoomTypes=direct"} {
		t.Run(filter, func(t *testing.T) {
			e := newEnv(t, func(o *envOptions) { o.compliance = true; o.settings = "EventsLookback=24h" })
			hidden := e.srv.AddRoom("Board", "group", e.bob, e.carol)
			m := e.srv.Post(hidden, e.bob, "quarterly numbers")
			own := e.srv.AddRoom("Mine", "direct", e.alice, e.bob)
			n := e.srv.Post(own, e.alice, "note")
			require.Zero(t, e.sync().Errors)
			require.NotNil(t, e.target.Get(msgRef(e, m)))

			// A later run: the feed's cursor has moved past the space's
			// events.
			e.srv.Advance(time.Hour)
			e.srv.Post(own, e.bob, "an hour later")
			require.Zero(t, e.sync().Errors)
			e.srv.Advance(time.Hour)
			e.reconfigure("ComplianceOfficer=TRUE\nEventsLookback=24h\n" + filter)
			c := e.sync()
			require.Zero(t, c.Errors)
			require.Nil(t, e.target.Get(msgRef(e, m)), "the space the filters no longer take is removed")
			require.Nil(t, e.target.Get(roomRefOf(e, hidden)))
			if filter == "RoomTypes=direct" {
				require.NotNil(t, e.target.Get(msgRef(e, n)))
			}
		})
	}
}

// As a compliance officer, every space of the organisation the events
// feed names was asked for (GET /rooms/{id}), every run it had activity,
// only to be dropped by the task's filters: with RoomTypes=group, every
// 1:1 space with a message, whose type the event itself gives
// (data.roomType); with Rooms, every active space not among them. In an
// organisation of thousands of active spaces that is thousands of
// requests a run, which Webex throttles. A space the feed names is now
// dropped without asking when its type, or Rooms, already rules it out.
func TestComplianceEventsOfSpacesTheFiltersDropAreNotAskedFor(t *testing.T) {
	for _, tc := range []struct{ name, settings string }{
		{"RoomTypes", "RoomTypes=group"},
		{"Rooms", "Rooms=%s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *envOptions) { o.compliance = true; o.settings = "EventsLookback=24h" })
			board := e.srv.AddRoom("Board", "group", e.bob, e.carol)
			e.reconfigure("EventsLookback=24h\nComplianceOfficer=TRUE\n" + strings.ReplaceAll(tc.settings, "%s", board))
			e.srv.Post(board, e.bob, "quarterly numbers")
			var others []string
			for range 3 {
				dm := e.srv.AddRoom("", "direct", e.bob, e.carol)
				e.srv.Post(dm, e.carol, "hi")
				others = append(others, dm)
			}
			if tc.name == "Rooms" {
				g := e.srv.AddRoom("Other", "group", e.bob, e.carol)
				e.srv.Post(g, e.carol, "elsewhere")
				others = append(others, g)
			}
			var asked []string
			var mu sync.Mutex
			e.srv.SetFault(func(r *http.Request) *webextest.Fault {
				if id, ok := strings.CutPrefix(r.URL.Path, "/v1/rooms/"); ok {
					mu.Lock()
					asked = append(asked, id)
					mu.Unlock()
				}
				return nil
			})
			c := e.sync()
			require.Zero(t, c.Errors, "%+v", c)
			require.NotNil(t, e.target.Get(roomRefOf(e, board)))
			for _, id := range others {
				require.Nil(t, e.target.Get(roomRefOf(e, id)))
			}
			require.Equal(t, []string{board}, asked, "only the space the filters take is asked for")
		})
	}
}

// TestQuietFeedDoesNotMoveTheEventsCursorBack: as compliance officer,
// in an organisation whose feed has no event in the window read. Each
// run stored as its cursor where it began reading, EventsOverlap before
// the last one's, so that every run without events read the feed from
// 15 minutes further back than the one before, without end (past
// EventsLookback), where the docs say a later run reads from
// EventsOverlap before the last event seen. The cursor stays where it
// was now when a run sees no event.
func TestQuietFeedDoesNotMoveTheEventsCursorBack(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.compliance = true; o.settings = "EventsLookback=24h" })
	var mu sync.Mutex
	var froms []string
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == "/v1/events" && r.URL.Query().Get("resource") == "messages" {
			mu.Lock()
			froms = append(froms, r.URL.Query().Get("from"))
			mu.Unlock()
		}
		return nil
	})
	for range 4 {
		require.Zero(t, e.sync().Errors)
		e.srv.Advance(time.Hour)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, froms, 4)
	first, err := time.Parse(time.RFC3339Nano, froms[0])
	require.NoError(t, err)
	for _, f := range froms[1:] {
		at, err := time.Parse(time.RFC3339Nano, f)
		require.NoError(t, err)
		require.Equal(t, first.Add(-DefaultEventsOverlap), at, "each later run reads from EventsOverlap before the first run's start: %v", froms)
	}
}

// TestEventsAlreadyAppliedAreNotAppliedAgain: as compliance officer,
// each run reads the feed from EventsOverlap before the newest event seen
// (for events that show up late), and applied again every event of that
// overlap it had already applied: while the feed stayed quiet, every run
// (an hourly task here, over a quiet week) read again the members and
// the newest messages of each space active in the overlap, and asked
// again for each such space the officer is not in (9 requests a run
// here, where 4 do: the feed's three resources and the account's
// spaces); in a busy organisation every event was applied by as many
// runs as fit in EventsOverlap. A run now skips the events it has
// applied (the cursor keeps the overlap's event ids); an event that
// shows up late, created within the overlap, is still applied.
func TestEventsAlreadyAppliedAreNotAppliedAgain(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.compliance = true; o.settings = "EventsLookback=24h" })
	hidden := e.srv.AddRoom("Board", "group", e.bob, e.carol)
	m := e.srv.Post(hidden, e.bob, "quarterly numbers")
	own := e.srv.AddRoom("Mine", "group", e.alice, e.bob)
	e.srv.Post(own, e.alice, "note")
	e.srv.Edit(m, "quarterly numbers (edited)")
	e.srv.AddMember(own, e.carol)
	last := e.srv.Now() // the newest event: the cursor
	require.Zero(t, e.sync().Errors)
	require.Equal(t, "quarterly numbers (edited)", e.doc(msgRef(e, m)).Content)

	for range 3 {
		e.srv.Advance(time.Hour)
		e.srv.ResetRequests()
		require.Zero(t, e.sync().Errors)
		by, _ := e.srv.Requests()
		require.Equal(t, map[string]int{"GET /v1/events": 3, "GET /v1/rooms": 1}, by, "a quiet run reads the feed and the account's spaces, nothing more")
	}

	// An edit whose event shows up late: created five minutes before the
	// cursor, in the feed only now.
	now := e.srv.Now()
	e.srv.Advance(last.Add(-5 * time.Minute).Sub(now))
	e.srv.Edit(m, "quarterly numbers (edited late)")
	e.srv.Advance(now.Sub(e.srv.Now()) + time.Hour)
	require.Zero(t, e.sync().Errors)
	require.Equal(t, "quarterly numbers (edited late)", e.doc(msgRef(e, m)).Content, "an event that shows up late is applied")
	e.srv.Advance(time.Hour)
	e.srv.ResetRequests()
	require.Zero(t, e.sync().Errors)
	by, _ := e.srv.Requests()
	require.Equal(t, map[string]int{"GET /v1/events": 3, "GET /v1/rooms": 1}, by, "and then not again")
}

// TestFutureDatedMessageDoesNotMoveTheCursorsAhead: as compliance
// officer, a message whose creation time lies a month ahead (a client or
// service clock gone wrong). Its event and the message itself were
// taken as the newest seen: the events cursor and its space's cursor
// moved a month ahead, so every later run read the feed from there
// (missing every event until then: here a message posted in a space the
// officer is not in) and stopped listing the space at that message
// (missing every message posted since). The cursors are now bounded by
// the run's start: what lies ahead of it is read again by the next run,
// and found unchanged.
func TestFutureDatedMessageDoesNotMoveTheCursorsAhead(t *testing.T) {
	e, hidden, own := officerSpaces(t)

	e.srv.Advance(time.Hour)
	ahead := e.srv.PostMessage(&webextest.Message{RoomID: own, PersonID: e.bob, Text: "from a clock a month ahead",
		Created: e.srv.Now().Add(30 * 24 * time.Hour)})
	require.Zero(t, e.sync().Errors)
	require.NotNil(t, e.target.Get(msgRef(e, ahead)))

	for range 3 {
		e.srv.Advance(time.Hour)
		requireLaterPostsIndexed(t, e, hidden, own)
	}
}

// TestForbiddenSpaceOfTheFeedIsNotAFailureForEver: as compliance officer,
// the feed names a space that Webex refuses to show the account (403: a
// space another organisation owns, say). Every run asked for it again and
// counted the refusal as a failure, for good: what the feed said about it
// stayed pending, so every later run reported an error (GetStatus), however
// long the space stayed forbidden, and asked for it again. The refusal is
// now a failure of maxRoomAttempts runs in a row; then the space is asked
// for once a day, without a failure, what the feed says about it kept
// until it can be read, and then it is indexed.
func TestForbiddenSpaceOfTheFeedIsNotAFailureForEver(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.compliance = true; o.settings = "EventsLookback=24h" })
	external := e.srv.AddRoom("External", "group", e.bob, e.carol)
	first := e.srv.Post(external, e.bob, "from the other organisation")
	own := e.srv.AddRoom("Mine", "group", e.alice, e.bob)
	e.srv.Post(own, e.alice, "note")
	var forbidden atomic.Bool
	forbidden.Store(true)
	var asked atomic.Int64
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == "/v1/rooms/"+external {
			asked.Add(1)
			if forbidden.Load() {
				return &webextest.Fault{Status: http.StatusForbidden, Message: "The space belongs to another organization."}
			}
		}
		return nil
	})
	for i := range maxRoomAttempts {
		c := e.sync()
		require.Equal(t, uint64(1), c.Errors, "run %d: the refusal is a failure: %+v", i, c)
		require.Equal(t, int64(i+1), asked.Load())
		e.srv.Advance(time.Hour)
		e.srv.Post(external, e.carol, "more")
	}
	for i := range 3 {
		c := e.sync()
		require.Zero(t, c.Errors, "run %d after the refusals: %+v", i, c)
		e.srv.Advance(time.Hour)
		e.srv.Post(external, e.carol, "more")
	}
	require.Equal(t, int64(maxRoomAttempts), asked.Load(), "not asked for again within a day")
	e.srv.Advance(24 * time.Hour)
	require.Zero(t, e.sync().Errors)
	require.Equal(t, int64(maxRoomAttempts+1), asked.Load(), "asked for again after a day")
	require.Nil(t, e.target.Get(roomRefOf(e, external)))

	// It can be read: indexed with the next ask.
	forbidden.Store(false)
	e.srv.Advance(24 * time.Hour)
	require.Zero(t, e.sync().Errors)
	require.NotNil(t, e.target.Get(roomRefOf(e, external)))
	require.Equal(t, "from the other organisation", e.doc(msgRef(e, first)).Content)
	for _, id := range e.srv.Messages(external) {
		require.NotNil(t, e.target.Get(msgRef(e, id)))
	}
}

// TestCursorsAlreadyAheadAreBroughtBack: the cursors a server before the
// fix above moved ahead (the events cursor and a space's, a month ahead)
// were kept as they were: the task went on missing every event and every
// message until then. A cursor past the run's start is now taken as the
// run's start.
func TestCursorsAlreadyAheadAreBroughtBack(t *testing.T) {
	e, hidden, own := officerSpaces(t)

	// What such a server stored: both cursors a month ahead.
	ahead := formatTime(e.srv.Now().Add(30 * 24 * time.Hour))
	ds, err := e.st.Datastore("MYWEBEX")
	require.NoError(t, err)
	require.NoError(t, ds.Update(func(w store.Writer) error {
		var c eventsCursor
		b, err := w.Get(eventsCursorKey)
		if err != nil {
			return err
		}
		require.NoError(t, json.Unmarshal(b, &c))
		c.From = ahead
		b, _ = json.Marshal(c)
		if err := w.Put(eventsCursorKey, b); err != nil {
			return err
		}
		rec, err := getRecordW(w, roomKey(own))
		if err != nil {
			return err
		}
		var st roomState
		require.NoError(t, json.Unmarshal(rec.Extra, &st))
		st.Newest = ahead
		rec.Extra, _ = json.Marshal(st)
		b, _ = json.Marshal(rec)
		return w.Put(restsync.RecordKey(roomKey(own)), b)
	}))

	e.srv.Advance(time.Hour)
	requireLaterPostsIndexed(t, e, hidden, own)
}

// officerSpaces is a compliance task, indexed, with a space the officer
// is not in (hidden) and one of the account's own (own), a message each.
func officerSpaces(t *testing.T) (e *env, hidden, own string) {
	e = newEnv(t, func(o *envOptions) { o.compliance = true; o.settings = "EventsLookback=24h" })
	hidden = e.srv.AddRoom("Board", "group", e.bob, e.carol)
	e.srv.Post(hidden, e.bob, "quarterly numbers")
	own = e.srv.AddRoom("Mine", "group", e.alice, e.bob)
	e.srv.Post(own, e.alice, "note")
	require.Zero(t, e.sync().Errors)
	return e, hidden, own
}

// requireLaterPostsIndexed posts a message in hidden and own, and
// requires that a run indexes both: the one the feed names, and the one
// posted below the own space's cursor.
func requireLaterPostsIndexed(t *testing.T, e *env, hidden, own string) {
	t.Helper()
	inHidden := e.srv.Post(hidden, e.carol, "later, in the space the officer is not in")
	inOwn := e.srv.Post(own, e.alice, "later, in the account's own space")
	require.Zero(t, e.sync().Errors)
	require.NotNil(t, e.target.Get(msgRef(e, inHidden)), "a message posted in a space the feed names")
	require.NotNil(t, e.target.Get(msgRef(e, inOwn)), "a message posted below the space's cursor")
}

// getRecordW reads the record of key as w has it.
func getRecordW(w store.Writer, key string) (*restsync.Record, error) {
	b, err := w.Get(restsync.RecordKey(key))
	if err != nil || b == nil {
		return nil, err
	}
	rec := &restsync.Record{}
	return rec, json.Unmarshal(b, rec)
}

// TestForbiddenSpaceNamedInRoomsFailsEveryRun: a space the task's Rooms
// names, which Webex refuses to show the account (403), is the task's own
// configuration at fault, and fails every run, as it does while the feed
// says nothing of it. Once the feed named it (a message posted there), the
// refusal went quiet after maxRoomAttempts runs, as for a space only the
// feed names: the task reported success run after run while the one space
// it was set up for was never indexed.
func TestForbiddenSpaceNamedInRoomsFailsEveryRun(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.compliance = true; o.settings = "EventsLookback=24h" })
	board := e.srv.AddRoom("Board", "group", e.bob, e.carol)
	e.reconfigure("EventsLookback=24h\nComplianceOfficer=TRUE\nRooms=" + board)
	e.srv.SetFault(func(r *http.Request) *webextest.Fault {
		if r.URL.Path == "/v1/rooms/"+board {
			return &webextest.Fault{Status: http.StatusForbidden, Message: "The space belongs to another organization."}
		}
		return nil
	})
	for i := range maxRoomAttempts + 2 {
		e.srv.Post(board, e.carol, "more")
		c := e.sync()
		require.Equal(t, uint64(1), c.Errors, "run %d: the space Rooms names is refused: %+v", i, c)
		e.srv.Advance(time.Hour)
	}
}
