package webexfetch

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// roomState is what a task keeps about a room (its record's Extra).
type roomState struct {
	Title string `json:"t,omitempty"`
	Type  string `json:"ty,omitempty"`
	// LastActivity is the room's lastActivity when its messages were
	// last read down to the cursor.
	LastActivity string `json:"la,omitempty"`
	// Newest is the creation time of the newest message read (the
	// cursor), or the room's own of a room listed in full without any:
	// the next listing stops ListOverlap below it. "" lists it in full.
	Newest string `json:"nw,omitempty"`
	// Members as last read, and when (unix seconds).
	Members   []member `json:"m,omitempty"`
	MembersAt int64    `json:"ma,omitempty"`
	// FullAt is when every message was last listed (unix seconds).
	FullAt int64 `json:"fa,omitempty"`
	// ViaEvents: found in the events feed (compliance), not in the
	// account's own list of rooms.
	ViaEvents bool `json:"ev,omitempty"`
	// Unsecured: its messages were delivered without security
	// (MappedSecurity off), so they are all delivered again when it is
	// turned on. (A record without it was made with MappedSecurity on,
	// the default.)
	Unsecured bool `json:"us,omitempty"`
	// Files is filesShape of the settings its messages' files were
	// delivered with; "" the defaults'. When it changes, the messages
	// with files are all delivered again.
	Files string `json:"fi,omitempty"`
	// Retry are the messages delivered without a file that could not be
	// read, by id, with the runs that tried: the next runs read them
	// again, up to maxFileAttempts runs in all.
	Retry map[string]int `json:"rt,omitempty"`
}

// maxFileAttempts is how many runs read a message's file that the service
// fails to serve. The message is delivered without it meanwhile (its
// FILE_URL only) and its space's cursor moves on; then it is given up.
const maxFileAttempts = 3

// maxRoomAttempts is how many runs in a row a space the events feed names
// (and Rooms does not: that one fails every run) is asked for and refused (403: a space another organisation owns, say)
// with a failure; then it is asked for once every refusedRetry, without
// one, what the feed says about it kept meanwhile (touch.Refused).
const (
	maxRoomAttempts = 3
	refusedRetry    = 24 * time.Hour
)

// filesShape is what of a task's settings shapes the documents of its
// messages' files (IndexFiles, IndexUnscannableFiles, MaxFileBytes,
// ExtractText, ExtractMaxTextBytes) and the extractor's version when text is
// extracted: "" for the defaults and no version, else the values that
// are not.
func filesShape(s *settings) string {
	if !s.IndexFiles {
		return "off"
	}
	var parts []string
	if s.Unscannable {
		parts = append(parts, "unscannable")
	}
	parts = restsync.FileShape(parts, s.MaxFileBytes, DefaultMaxFileBytes, s.ExtractText, s.ExtractTextBytes, DefaultExtractTextBytes, extractVersion)
	return strings.Join(parts, ",")
}

// extractVersion is the extractor's version filesShape records
// (extract.Version); tests set it to 0 to play a server from before it
// was recorded.
var extractVersion = extract.Version

// known is a room the task has a record of.
type known struct {
	rec *restsync.Record
	st  roomState
}

// touch is what the events feed says happened in a room since the last
// run (or since a run that could not bring the room up to date: kept in
// the events cursor's Pending).
type touch struct {
	Created bool     `json:"c,omitempty"` // messages were posted
	Updated []string `json:"u,omitempty"` // messages edited
	Deleted []string `json:"d,omitempty"` // messages deleted
	Members bool     `json:"m,omitempty"` // memberships changed
	Type    string   `json:"t,omitempty"` // the room's type, as the events give it
	// Refused is the runs in a row that Webex refused to show the room
	// (403), and AskAt, past maxRoomAttempts of them, when (unix
	// seconds) it is asked for again.
	Refused int   `json:"rf,omitempty"`
	AskAt   int64 `json:"aa,omitempty"`
}

// eventsCursor is the datastore's c:events.
type eventsCursor struct {
	From string `json:"from"`
	// Pending is what the feed said, before From, about the rooms a run
	// could not bring up to date (by id), and DeletedRooms the rooms it
	// said were deleted when a run's removals were refused: the next
	// runs apply them as if the feed said them again. So one room that
	// fails run after run does not hold the cursor (every run would read
	// the whole feed again from where it first failed).
	Pending      map[string]*touch `json:"p,omitempty"`
	DeletedRooms []string          `json:"dr,omitempty"`
	// Applied are the events created within EventsOverlap of From that
	// were applied (by eventKey): the next run reads them again and
	// skips them, so that a quiet feed does not have every run redo
	// what its last events said.
	Applied []string `json:"a,omitempty"`
}

// eventKey is what the events cursor keeps of an event's id (Webex's are
// about a hundred characters; a busy organisation has thousands of events
// within EventsOverlap).
func eventKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:8])
}

// addNew appends to list the ids of more it does not hold.
func addNew(list []string, more ...string) []string {
	for _, id := range more {
		if !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	return list
}

var eventsCursorKey = []byte("c:events")

// taskRun is one task's Synchronize.
type taskRun struct {
	*restsync.TaskSync
	r   *Repository
	s   *settings
	api *api
	b   *builder
	now time.Time
	// versions are the recorded versions of every room's messages (room
	// id → message id → version), read in one pass of the datastore when a
	// first room is listed in full, each room's dropped once it is done
	// (about 100 bytes a message while they are held); versionsMu guards
	// them (rooms are read at once).
	versionsMu sync.Mutex
	versions   map[string]map[string]string
}

func (r *Repository) syncTask(ctx context.Context, job *fetch.Job, task string, progress func(float64, string), log *slog.Logger) error {
	s := r.Set[task]
	var a *api
	var b *builder
	return r.SyncTask(job, task, log, func() (*restsync.Client, error) {
		var err error
		if a, err = r.open(ctx, s); err != nil {
			return nil, err
		}
		if b, err = newBuilder(s); err != nil {
			return nil, err
		}
		return a.c, nil
	}, func(ts *restsync.TaskSync) error {
		// The Batch gathers and delivers the task's documents across rooms
		// (in the background, while the next pages are read): a room's
		// record (its cursor) joins it after its messages, conditional on a
		// mark taken before them, so it is written with or after the last
		// of them, and only when none of them was refused.
		if r.batchSize > 0 {
			ts.Batch.Size = r.batchSize
		}
		t := &taskRun{TaskSync: ts, r: r, s: s, api: a, b: b, now: r.Now()}
		return t.run(ctx, progress)
	})
}

func (t *taskRun) run(ctx context.Context, progress func(float64, string)) error {
	knownRooms := map[string]*known{}
	err := restsync.EachRecord(t.DS, "room\x00", func(key string, rec *restsync.Record) error {
		k := &known{rec: rec}
		if len(rec.Extra) > 0 {
			if err := json.Unmarshal(rec.Extra, &k.st); err != nil {
				return fmt.Errorf("room record %q: %w", key, err)
			}
		}
		knownRooms[strings.TrimPrefix(key, "room\x00")] = k
		return nil
	})
	if err != nil {
		return fmt.Errorf("webexfetch: [%s] %w", t.Task, err)
	}
	for _, k := range knownRooms {
		for _, m := range k.st.Members {
			t.b.names.set(m)
		}
	}

	// The events feed (compliance officer): what happened where.
	var touched map[string]*touch
	var deletedRooms []string
	eventsOK := false
	var newCursor time.Time
	var applied []string
	// failed: rooms the feed named that this run did not bring up to
	// date; what it said about them stays pending for the next runs.
	failed := map[string]bool{}
	if t.s.Compliance {
		touched, deletedRooms, newCursor, applied, err = t.readEvents(ctx)
		if err != nil {
			if fatal(ctx, err) {
				return err
			}
			t.Fail(t.s.APIURL+"/events", err)
		} else {
			eventsOK = true
		}
	}

	// The account's rooms (listed by id, whole), most recently active
	// first.
	var listed []room
	seen := map[string]bool{}
	// unwanted: rooms seen that the task's filters do not take (a title
	// that now matches RoomTitleCantHaveRegex, say): a known one is
	// removed, as a room gone is.
	unwanted := map[string]bool{}
	listComplete := true
	typ := ""
	if len(t.s.RoomTypes) == 1 {
		typ = t.s.RoomTypes[0]
	}
	err = t.api.rooms(ctx, typ, func(items []room) error {
		for _, rm := range items {
			if seen[rm.ID] {
				continue // the list moved under us: listed twice
			}
			seen[rm.ID] = true
			if t.wanted(&rm) {
				listed = append(listed, rm)
			} else {
				unwanted[rm.ID] = true
			}
		}
		return t.Job.Checkpoint(ctx)
	})
	if err != nil {
		if fatal(ctx, err) {
			return err
		}
		listComplete = false
		t.Fail(t.s.APIURL+"/rooms", err)
	}
	slices.SortStableFunc(listed, func(a, b room) int {
		return parseTime(b.LastActivity).Compare(parseTime(a.LastActivity))
	})

	// Rooms not in the account's list: named in Rooms, found in the
	// events, or found in the events by an earlier run.
	var extra []string
	addExtra := func(id string) {
		if !seen[id] && !slices.Contains(extra, id) && !slices.Contains(deletedRooms, id) {
			extra = append(extra, id)
		}
	}
	if t.s.Compliance {
		for _, id := range t.s.Rooms {
			addExtra(id)
		}
		for id := range touched {
			addExtra(id)
		}
	}
	slices.Sort(extra)
	for _, id := range extra {
		if err := t.Job.Checkpoint(ctx); err != nil {
			return err
		}
		k := knownRooms[id]
		tc := touched[id]
		if k != nil && tc == nil && !slices.Contains(t.s.Rooms, id) {
			continue // nothing happened there
		}
		if len(t.s.Rooms) > 0 && !slices.Contains(t.s.Rooms, id) ||
			tc != nil && tc.Type != "" && !slices.Contains(t.s.RoomTypes, tc.Type) {
			// The filters drop it whatever GET /rooms/{id} says (the
			// feed gives a message's space type): not asked for, run
			// after run, for every active space of the organisation.
			// A known one goes as a space the filters drop does.
			unwanted[id] = true
			continue
		}
		// A space Rooms names is the task's own configuration: its
		// refusal fails every run (refused is for the feed's others).
		named := slices.Contains(t.s.Rooms, id)
		if tc != nil && tc.AskAt > t.now.Unix() && !named {
			failed[id] = true // refused: kept, asked for again later
			continue
		}
		rm, err := t.api.room(ctx, id)
		if err != nil {
			if fatal(ctx, err) {
				return err
			}
			if errors.Is(err, messages.ErrNotFound) {
				if k != nil {
					deletedRooms = append(deletedRooms, id)
				}
				continue
			}
			failed[id] = true
			if tc != nil && !named && httpStatus(err) == http.StatusForbidden {
				t.refused(id, k, tc, err)
				continue
			}
			t.Fail(roomRef(t.s.APIURL, id), err)
			continue
		}
		if tc != nil {
			tc.Refused, tc.AskAt = 0, 0
		}
		seen[rm.ID] = true
		if t.wanted(rm) {
			listed = append(listed, *rm)
		} else {
			unwanted[rm.ID] = true
		}
	}

	// vanished: rooms deleted since they were listed (roomGone).
	var vanishedMu sync.Mutex
	var vanished []string
	incomplete, err := t.syncRooms(ctx, listed, progress, func(ctx context.Context, rm *room) (bool, error) {
		via := !slices.Contains(t.s.Rooms, rm.ID) && seen[rm.ID] && slices.Contains(extra, rm.ID)
		ok, err := t.syncRoom(ctx, rm, knownRooms[rm.ID], touched[rm.ID], via)
		if t.roomGone(ctx, err, rm.ID) {
			vanishedMu.Lock()
			vanished = append(vanished, rm.ID)
			vanishedMu.Unlock()
			return false, nil
		}
		return ok, err
	})
	if err != nil {
		return err
	}
	for _, id := range incomplete {
		failed[id] = true
	}
	// A known one is removed below; what the feed said of any is dropped.
	deletedRooms = addNew(deletedRooms, vanished...)

	// Rooms gone: deleted (events), no longer taken by the filters, or no
	// longer in a complete list of the account's rooms and not found when
	// asked for (the list's order moves while it is read, so a room
	// missing from it is checked first).
	for id, k := range knownRooms {
		if seen[id] && !unwanted[id] && !slices.Contains(deletedRooms, id) {
			continue
		}
		// Not seen (a space found through the feed is not in the
		// account's list): the filters are applied to its recorded title
		// and type, so that one they no longer take goes as a space seen
		// would (a space renamed since is found again by its next event).
		recorded := &room{ID: id, Title: k.st.Title, Type: k.st.Type}
		if !unwanted[id] && !slices.Contains(deletedRooms, id) && t.wanted(recorded) {
			if !listComplete || k.st.ViaEvents {
				continue
			}
			rm, err := t.api.room(ctx, id)
			switch {
			case err == nil && t.wanted(rm):
				continue // still there: the list moved while it was read
			case err != nil && fatal(ctx, err):
				return err
			case err != nil && !errors.Is(err, messages.ErrNotFound) && httpStatus(err) != http.StatusForbidden:
				t.Fail(roomRef(t.s.APIURL, id), err)
				continue
			}
		}
		if err := t.forgetRoom(ctx, id, k); err != nil {
			return err
		}
	}

	if err := t.Batch.Flush(ctx); err != nil {
		return err
	}
	if eventsOK {
		// The cursor moves on; what the feed said about a room not
		// brought up to date is kept for the next runs. A refused
		// delivery or removal (a room's record may follow it, or not) is
		// not a room's: then all it said is kept, and the rooms it named
		// are read again.
		c := eventsCursor{From: formatTime(newCursor), Applied: applied}
		refused := t.Batch.Failures() > 0
		for id, tc := range touched {
			if (failed[id] || refused) && !unwanted[id] && !slices.Contains(deletedRooms, id) {
				if c.Pending == nil {
					c.Pending = map[string]*touch{}
				}
				c.Pending[id] = tc
			}
		}
		if refused {
			c.DeletedRooms = deletedRooms
		}
		v, _ := json.Marshal(c)
		if err := store.UpdateDeferred(t.DS, func(w store.Writer) error { return w.Put(eventsCursorKey, v) }); err != nil {
			return fmt.Errorf("webexfetch: [%s] record the events cursor: %w", t.Task, err)
		}
	}
	return nil
}

// roomGone reports whether room id, whose reading failed with err, was
// deleted since it was listed: err is a 404, and so is the room's own
// (GET /rooms/{id}). One Webex still has stays a failure of the run.
func (t *taskRun) roomGone(ctx context.Context, err error, id string) bool {
	if err == nil || fatal(ctx, err) || !errors.Is(err, messages.ErrNotFound) {
		return false
	}
	_, err = t.api.room(ctx, id)
	return errors.Is(err, messages.ErrNotFound)
}

// refused notes that Webex refused to show room id (403), which the feed
// names (tc: what it said, kept pending): a failure of the run for
// maxRoomAttempts runs in a row (a space the account may not read, or a
// scope the task lacks, is shown so in GetStatus); then it is asked for
// once every refusedRetry only, without a failure, so that a space the
// account may never read (another organisation's) neither fails every
// run nor costs a request each. What the feed says about it meanwhile is
// kept (the edits and deletions in a space never read only until then: it
// is listed in full when it is read).
func (t *taskRun) refused(id string, k *known, tc *touch, err error) {
	tc.Refused++
	if tc.Refused < maxRoomAttempts {
		t.Fail(roomRef(t.s.APIURL, id), err)
		return
	}
	if tc.Refused == maxRoomAttempts {
		t.Fail(roomRef(t.s.APIURL, id), err)
		t.Log.Warn("Webex keeps refusing to show the space: it is asked for again once a day, what the events say about it kept until it can be read",
			"room", roomRef(t.s.APIURL, id), "runs", tc.Refused, "error", err)
	} else {
		t.Log.Debug("Webex still refuses to show the space", "room", roomRef(t.s.APIURL, id), "error", err)
	}
	tc.AskAt = t.now.Add(refusedRetry).Unix()
	if k == nil {
		tc.Updated, tc.Deleted = nil, nil
	}
}

// syncRooms brings the listed rooms up to date with each (given a context
// that ends when another room's error ends the action), Concurrency
// rooms at a time, handed out in the order listed (most recently active
// first). It returns the rooms not read completely; an error that ends
// the action (fatal) stops the other rooms and is returned.
//
// One goroutine reads a room from its first request to its record, so a
// room's Mark is taken before any of its messages joins the task's Batch
// and its record (the cursor) joins it after the last of them, however
// the rooms read at the same time interleave in the Batch: the record is
// written only when no delivery since the mark was refused, its own
// messages' or, in between, another room's (which only makes the cursor
// wait for the next run). See TestConcurrentRoomsRefusedDeliveryKeepsCursor.
func (t *taskRun) syncRooms(ctx context.Context, listed []room, progress func(float64, string), each func(ctx context.Context, rm *room) (bool, error)) ([]string, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu         sync.Mutex // guards started, incomplete, stopErr, panicked
		started    int
		incomplete []string
		stopErr    error // the first error that ended the action
		panicked   any   // the first panic of a room's goroutine
	)
	stop := func(err error) {
		mu.Lock()
		if stopErr == nil {
			stopErr = err
		}
		mu.Unlock()
		cancel(err)
	}
	rooms := make(chan *room)
	var wg sync.WaitGroup
	for range min(int(t.s.Concurrency), len(listed)) {
		wg.Go(func() {
			defer func() {
				// A panic ends the action as it would without the
				// goroutines: raised again in the task's (below), whose
				// caller makes it the action's Error.
				if r := recover(); r != nil {
					mu.Lock()
					if panicked == nil {
						panicked = r
					}
					mu.Unlock()
					cancel(fmt.Errorf("webexfetch: panic: %s", panics.Text(r)))
				}
			}()
			for rm := range rooms {
				mu.Lock()
				progress(float64(started)*100/float64(len(listed)), rm.Title)
				started++
				mu.Unlock()
				ok, err := each(ctx, rm)
				if err != nil {
					if fatal(ctx, err) {
						stop(err)
						continue
					}
					t.Fail(roomRef(t.s.APIURL, rm.ID), err)
					ok = false
				}
				if !ok {
					mu.Lock()
					incomplete = append(incomplete, rm.ID)
					mu.Unlock()
				}
			}
		})
	}
	for i := range listed {
		if err := t.Job.Checkpoint(ctx); err != nil {
			stop(err)
			break
		}
		select {
		case rooms <- &listed[i]:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(rooms)
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	return incomplete, stopErr
}

// wanted applies the task's room filters.
func (t *taskRun) wanted(rm *room) bool {
	s := t.s
	if len(s.Rooms) > 0 && !slices.Contains(s.Rooms, rm.ID) {
		return false
	}
	if rm.Type != "" && !slices.Contains(s.RoomTypes, rm.Type) {
		return false
	}
	if s.TitleMustHave != nil && !s.TitleMustHave.MatchString(rm.Title) {
		return false
	}
	if s.TitleCantHave != nil && s.TitleCantHave.MatchString(rm.Title) {
		return false
	}
	return true
}

// readEvents reads the events feed since the last run (or EventsLookback
// on the first), less EventsOverlap for events that show up late, and
// applies the events the last run did not (the overlap's others it
// did). It returns what they say, the next cursor, and the keys of the
// events applied within EventsOverlap of it.
func (t *taskRun) readEvents(ctx context.Context) (map[string]*touch, []string, time.Time, []string, error) {
	from := t.now.Add(-t.s.EventsLookback)
	// newest is the next run's cursor: the newest event seen, else
	// where this one's cursor was (from less the overlap, kept, made
	// every run without events read from further back, without end).
	newest := from
	var c eventsCursor
	if b, err := t.DS.Get(eventsCursorKey); err != nil {
		return nil, nil, time.Time{}, nil, err
	} else if b != nil {
		if json.Unmarshal(b, &c) == nil {
			if ft := parseTime(c.From); !ft.IsZero() {
				// One past the run's start (written by a server that
				// let an event dated ahead move it) is taken as it.
				ft = notAfter(ft, t.now)
				from, newest = ft.Add(-t.s.EventsOverlap), ft
			}
		}
	}
	// What earlier runs could not apply, then what happened since.
	touched := map[string]*touch{}
	for id, tc := range c.Pending {
		if tc != nil {
			touched[id] = tc
		}
	}
	deletedRooms := c.DeletedRooms
	done := map[string]bool{}
	for _, k := range c.Applied {
		done[k] = true
	}
	// read: the events read (applied now or before), by key, with their
	// times, down to those within EventsOverlap of the newest.
	read := map[string]time.Time{}
	prune := func() {
		for k, at := range read {
			if at.Before(newest.Add(-t.s.EventsOverlap)) {
				delete(read, k)
			}
		}
	}
	at := func(room string) *touch {
		tc := touched[room]
		if tc == nil {
			tc = &touch{}
			touched[room] = tc
		}
		return tc
	}
	for _, resource := range []string{"messages", "memberships", "rooms"} {
		err := t.api.events(ctx, resource, from, func(items []event) error {
			for _, e := range items {
				c := parseTime(e.Created)
				if c.After(newest) {
					// Not past the run's start: an event dated ahead
					// (a clock gone wrong) would have the next runs
					// read the feed from there, missing every event
					// until then; it is read again, and skipped.
					newest = notAfter(c, t.now)
				}
				if e.ID != "" && !c.IsZero() {
					k := eventKey(e.ID)
					read[k] = c
					if done[k] {
						continue // applied by the last run
					}
				}
				switch resource {
				case "messages":
					if e.Data.RoomID == "" {
						continue
					}
					tc := at(e.Data.RoomID)
					tc.Type = cmp.Or(e.Data.RoomType, tc.Type)
					switch e.Type {
					case "created":
						tc.Created = true
					case "updated":
						tc.Updated = addNew(tc.Updated, e.Data.ID)
					case "deleted":
						tc.Deleted = addNew(tc.Deleted, e.Data.ID)
					}
				case "memberships":
					if e.Data.RoomID != "" {
						tc := at(e.Data.RoomID)
						tc.Members = true
						tc.Type = cmp.Or(e.Data.RoomType, tc.Type)
					}
				case "rooms":
					switch e.Type {
					case "deleted":
						deletedRooms = addNew(deletedRooms, e.Data.ID)
					case "created", "updated":
						at(e.Data.ID).Members = true
					}
				}
			}
			if len(read) > 4096 {
				prune()
			}
			return t.Job.Checkpoint(ctx)
		})
		if err != nil {
			return nil, nil, time.Time{}, nil, err
		}
	}
	for _, id := range deletedRooms {
		delete(touched, id)
	}
	prune()
	applied := slices.Sorted(maps.Keys(read))
	return touched, deletedRooms, newest, applied, nil
}

// syncRoom brings one room up to date. It returns whether the room was
// read completely (its cursor moved); an error is the room's failure.
func (t *taskRun) syncRoom(ctx context.Context, rm *room, k *known, tc *touch, via bool) (bool, error) {
	st := roomState{}
	if k != nil {
		st = k.st
	}
	now := t.now.Unix()
	changed := k == nil || st.LastActivity != rm.LastActivity || st.Title != rm.Title || st.Type != rm.Type
	membersDue := changed || (tc != nil && tc.Members) || (t.s.MembersInterval > 0 && now-st.MembersAt >= int64(t.s.MembersInterval.Seconds()))
	full := k == nil || st.Newest == "" || (t.s.FullListInterval > 0 && now-st.FullAt >= int64(t.s.FullListInterval.Seconds()))
	// Delivered without security, which is now on, or with it, which is
	// now off: every message again.
	unsecured := k != nil && t.s.MappedSecurity == st.Unsecured
	// Files delivered with other file settings: every message with files
	// again.
	refile := k != nil && st.Files != filesShape(t.s)
	needList := changed || full || (tc != nil && tc.Created) || unsecured || refile
	t.Counts.Seen.Add(1)
	if !membersDue && !needList && (tc == nil || len(tc.Updated)+len(tc.Deleted) == 0) && len(st.Retry) == 0 {
		t.Counts.Unchanged.Add(1)
		return true, nil
	}

	members := st.Members
	if membersDue {
		ms, err := t.api.memberships(ctx, rm.ID)
		if err != nil {
			return false, err
		}
		members = members[:0:0]
		for _, m := range ms {
			mb := member{ID: m.PersonID, Email: m.PersonEmail, Name: m.PersonDisplayName}
			members = append(members, mb)
			t.b.names.set(mb)
		}
	}
	// New members change the security of every message, and a new title
	// or type their titles and fields: they are all delivered again.
	resecure := unsecured || k != nil && (t.s.MappedSecurity && membersHash(members) != membersHash(st.Members) ||
		st.Title != rm.Title || st.Type != rm.Type)
	if resecure || refile {
		full = true
	}

	b := t.Batch
	fails := b.Failures()
	mark := b.Mark()
	sec := newRoomSec(members)
	complete := true
	// A cursor past the run's start (written by a server that let a
	// message dated ahead move it) is taken as it.
	newest := notAfter(parseTime(st.Newest), t.now)
	stop := time.Time{}
	if !full && !newest.IsZero() {
		stop = newest.Add(-t.s.ListOverlap)
	}
	// whole: the listing is of every message, as a full one is, or one
	// whose cursor lies below the room's creation (a room that had no
	// message when last listed).
	whole := full || !stop.IsZero() && !stop.After(parseTime(rm.Created))
	listedIDs := map[string]bool{}
	// gone: messages whose records a whole listing found deleted (not
	// forgotten again for the events' deletions).
	gone := map[string]bool{}
	// unread: messages delivered this run without a file that could not
	// be read.
	unread := map[string]bool{}
	// A whole listing reads the room's records at once rather than one by
	// one (a room without a record of its own may have some: an earlier
	// run delivered messages of it and then failed); a full one all the
	// task's at the first room that needs them.
	var versions map[string]string
	if whole {
		var err error
		if full {
			versions, err = t.roomVersions(rm.ID)
		} else {
			versions, err = t.recordedVersions(rm.ID)
		}
		if err != nil {
			return false, err
		}
	}
	if needList || resecure || refile {
		err := t.api.messages(ctx, rm.ID, stop, func(page []message) (bool, error) {
			if err := t.Job.Checkpoint(ctx); err != nil {
				return true, err
			}
			if err := t.lookupNames(ctx, page); err != nil {
				return true, err
			}
			for i := range page {
				m := &page[i]
				c := parseTime(m.Created)
				if !stop.IsZero() && c.Before(stop) {
					return true, nil
				}
				if listedIDs[m.ID] {
					continue // listed twice (the list moved while it was read)
				}
				listedIDs[m.ID] = true
				if c.After(newest) {
					newest = c
				}
				ok, err := t.deliverMessage(ctx, rm, sec, m, resecure || refile && len(m.Files) > 0 || st.Retry[m.ID] > 0, versions)
				if err != nil {
					return true, err
				}
				if !ok {
					unread[m.ID] = true
				}
			}
			return false, b.MaybeFlush(ctx)
		})
		if err != nil {
			if fatal(ctx, err) {
				return false, err
			}
			t.Fail(roomRef(t.s.APIURL, rm.ID)+" (messages)", err)
			complete = false
		}
		if whole && complete {
			// Every message was listed: the records of the others are of
			// deleted messages.
			for id := range versions {
				if listedIDs[id] {
					continue
				}
				key := messageKey(rm.ID, id)
				rec, err := restsync.GetRecord(t.DS, key)
				if err != nil {
					return false, err
				}
				if rec != nil {
					b.Forget(key, rec)
					gone[id] = true
				}
			}
		}
	}
	// What the events say was edited or deleted below the listing, and
	// the messages whose files could not be read by earlier runs.
	var again []string
	if tc != nil {
		again = append(again, tc.Updated...)
	}
	for _, id := range slices.Sorted(maps.Keys(st.Retry)) {
		if !slices.Contains(again, id) {
			again = append(again, id)
		}
	}
	if len(again) > 0 {
		for _, id := range again {
			if listedIDs[id] || gone[id] || tc != nil && slices.Contains(tc.Deleted, id) {
				continue
			}
			m, err := t.api.message(ctx, id)
			if errors.Is(err, messages.ErrNotFound) {
				if tc == nil {
					tc = &touch{}
				}
				tc.Deleted = append(tc.Deleted, id)
				continue
			}
			if err != nil {
				if fatal(ctx, err) {
					return false, err
				}
				t.Fail(messageRef(t.s.APIURL, id), err)
				complete = false
				continue
			}
			if err := t.lookupNames(ctx, []message{*m}); err != nil {
				if fatal(ctx, err) {
					return false, err
				}
				t.Fail(messageRef(t.s.APIURL, id), err)
				complete = false
				continue
			}
			ok, err := t.deliverMessage(ctx, rm, sec, m, st.Retry[id] > 0, nil)
			if err != nil {
				return false, err
			}
			if !ok {
				unread[id] = true
			}
		}
	}
	if tc != nil {
		for _, id := range tc.Deleted {
			if gone[id] {
				continue
			}
			key := messageKey(rm.ID, id)
			rec, err := restsync.GetRecord(t.DS, key)
			if err != nil {
				return false, err
			}
			if rec != nil {
				b.Forget(key, rec)
			}
		}
	}
	if !complete || b.Failures() != fails {
		return false, nil
	}

	// The room's own document and record, with the new cursor.
	next := roomState{Title: rm.Title, Type: rm.Type, LastActivity: rm.LastActivity, Members: members,
		MembersAt: st.MembersAt, FullAt: st.FullAt, ViaEvents: via || st.ViaEvents && k != nil, Newest: st.Newest,
		Unsecured: !t.s.MappedSecurity, Files: filesShape(t.s)}
	if !newest.IsZero() {
		// Not past the run's start: a message dated ahead (a clock gone
		// wrong) would stop the next listings above every message
		// posted until then; it is listed again, and found unchanged.
		next.Newest = formatTime(notAfter(newest, t.now))
	} else if c := parseTime(rm.Created); full && !c.IsZero() {
		// Listed in full, without a message: its own creation is the
		// cursor (its first message comes after it), so that the next
		// runs do not list it in full again, with the records of every
		// message of the task, while it stays idle.
		next.Newest = formatTime(c)
	}
	if membersDue {
		next.MembersAt = now
	}
	for id := range unread {
		n := st.Retry[id] + 1
		if n >= maxFileAttempts {
			t.Log.Warn("a file of the message could not be read: given up until the message changes", "message", messageRef(t.s.APIURL, id), "attempts", n)
			continue
		}
		if next.Retry == nil {
			next.Retry = map[string]int{}
		}
		next.Retry[id] = n
	}
	if full && (needList || resecure || refile) {
		next.FullAt = now
	}
	extra, _ := json.Marshal(next)
	rec := &restsync.Record{Version: roomVersion(rm, members), Ref: roomRef(t.s.APIURL, rm.ID), Title: rm.Title, Extra: extra}
	// The room's record is its cursor: written only when none of the
	// deliveries of its messages (some may still be under way) was
	// refused.
	if k == nil || k.rec.Version != rec.Version || unsecured {
		b.DeliverAfter(mark, roomKey(rm.ID), rec, []*ingest.Document{t.b.roomDoc(t.Task, rm, sec)}, oldRec(k))
	} else {
		b.RecordAfter(mark, roomKey(rm.ID), rec)
	}
	if err := b.MaybeFlush(ctx); err != nil {
		return false, err
	}
	return b.Failures() == fails, nil
}

// roomVersions returns the recorded versions of a room's messages, by
// message id, and drops them from the run's copy.
func (t *taskRun) roomVersions(roomID string) (map[string]string, error) {
	t.versionsMu.Lock()
	defer t.versionsMu.Unlock()
	if t.versions == nil {
		t.versions = map[string]map[string]string{}
		err := restsync.EachRecord(t.DS, "msg\x00", func(key string, rec *restsync.Record) error {
			room, id, _ := strings.Cut(strings.TrimPrefix(key, "msg\x00"), "\x00")
			m := t.versions[room]
			if m == nil {
				m = map[string]string{}
				t.versions[room] = m
			}
			m[id] = rec.Version
			return nil
		})
		if err != nil {
			t.versions = nil
			return nil, err
		}
	}
	m := t.versions[roomID]
	delete(t.versions, roomID)
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// recordedVersions returns the recorded versions of one room's messages,
// by message id, from the datastore.
func (t *taskRun) recordedVersions(roomID string) (map[string]string, error) {
	m := map[string]string{}
	err := restsync.EachRecord(t.DS, messagePrefix(roomID), func(key string, rec *restsync.Record) error {
		m[strings.TrimPrefix(key, messagePrefix(roomID))] = rec.Version
		return nil
	})
	return m, err
}

func oldRec(k *known) *restsync.Record {
	if k == nil {
		return nil
	}
	return k.rec
}

// lookupNames looks up the people a page names that the task does not
// know yet (authors who left the room, people mentioned), 85 at a time.
// A lookup the service refuses (a 4xx: it will not say) leaves their
// names out; one that fails on the way (no answer, a 5xx, throttling
// past MaxRetryAfter) is returned: the page's messages must not go to the
// index, and be recorded, without the names for good.
func (t *taskRun) lookupNames(ctx context.Context, page []message) error {
	var ids []string
	want := func(p string) {
		for p != "" {
			var id string
			id, p, _ = strings.Cut(p, ",") // Cisco's example packs ids with commas
			if id = strings.TrimSpace(id); id != "" {
				if !t.b.names.known(id) && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	for i := range page {
		want(page[i].PersonID)
		for _, p := range page[i].MentionedPeople {
			want(p)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	people, err := t.api.people(ctx, ids)
	if err != nil {
		if s := httpStatus(err); fatal(ctx, err) || s < 400 || s >= 500 || s == http.StatusTooManyRequests ||
			s == http.StatusRequestTimeout || s == http.StatusLocked {
			return err
		}
		t.Log.Debug("cannot look people up: their names are left out", "error", err)
	}
	for _, p := range people {
		m := member{ID: p.ID, Name: p.DisplayName}
		if len(p.Emails) > 0 {
			m.Email = p.Emails[0]
		}
		t.b.names.set(m)
	}
	t.b.names.setUnknown(ids) // not found: do not ask again this run
	return nil
}

// deliverMessage delivers a message with its files when it is new or
// changed (or resecure). It returns false when a file of it could not be
// read (deliverNew).
func (t *taskRun) deliverMessage(ctx context.Context, rm *room, sec *roomSec, m *message, resecure bool, versions map[string]string) (bool, error) {
	t.Counts.Seen.Add(1)
	key := messageKey(rm.ID, m.ID)
	if versions != nil {
		// The versions the room's listing read at once: a message it does
		// not have is new, one with the same version unchanged.
		v, ok := versions[m.ID]
		if !ok {
			return t.deliverNew(ctx, rm, sec, m, nil)
		}
		if v == m.version() && !resecure {
			t.Counts.Unchanged.Add(1)
			return true, nil
		}
	}
	old, err := restsync.GetRecord(t.DS, key)
	if err != nil {
		return false, err
	}
	if old != nil && old.Version == m.version() && !resecure {
		t.Counts.Unchanged.Add(1)
		return true, nil
	}
	return t.deliverNew(ctx, rm, sec, m, old)
}

// deliverNew delivers a message that is new (old nil) or changed. It
// returns false when a file could not be read: the message is delivered
// without it (its FILE_URL only), and read again by the next runs
// (roomState.Retry).
//
// Each file's document goes to the batch as soon as it is read, so that
// a message never holds all its files (up to MaxFileBytes each) at once;
// the message's own document and record follow them, in their group: the
// record is written only when none of them was refused, so that it never
// names a file the target lacks (the next run delivers them again).
func (t *taskRun) deliverNew(ctx context.Context, rm *room, sec *roomSec, m *message, old *restsync.Record) (bool, error) {
	key := messageKey(rm.ID, m.ID)
	g := &restsync.Group{}
	files, ok, err := t.fetchFiles(ctx, g, rm, sec, m, old)
	if err != nil {
		return false, err
	}
	doc := t.b.messageDoc(ctx, t.Task, rm, sec, m, files)
	// The document's title is the record's (messageTitle, not worked out
	// twice).
	rec := &restsync.Record{Version: m.version(), Ref: doc.Reference, Title: fieldValue(doc.Fields, ingest.FieldTitle), Parent: rm.ID}
	for _, fi := range files {
		if fi.file != nil {
			rec.Kids = append(rec.Kids, fi.url)
		}
	}
	if old != nil {
		// A file that could not be read now keeps the document an
		// earlier run delivered for it, until it is read again.
		for _, fi := range files {
			if fi.failed && slices.Contains(old.Kids, fi.url) {
				rec.Kids = append(rec.Kids, fi.url)
			}
		}
	}
	t.Batch.DeliverIn(g, key, rec, []*ingest.Document{doc}, old)
	return ok, nil
}

// nameFiles writes, ahead of the first file of message m that goes to
// the batch, a provisional record of m that names its files besides what
// old (its record, or nil) names, and has no version: if the run ends
// before m's own record is written (a fatal error, a Stop), files it
// already delivered are still named, so that m's removal removes them,
// and the next run delivers m again (its version differs) and removes
// what its new record no longer names. m's own record replaces it.
func (t *taskRun) nameFiles(rm *room, m *message, old *restsync.Record) {
	rec := &restsync.Record{Ref: messageRef(t.b.base, m.ID), Parent: rm.ID}
	if old != nil {
		rec.Title, rec.Kids = old.Title, slices.Clone(old.Kids)
	}
	for _, u := range m.Files {
		if !slices.Contains(rec.Kids, u) {
			rec.Kids = append(rec.Kids, u)
		}
	}
	t.Batch.Record(messageKey(rm.ID, m.ID), rec)
}

// fetchFiles downloads a message's files (at most MaxFileBytes each; a
// larger one is described, not read) and hands each one's document to the
// batch as it is read, in group g (the files returned keep their names,
// not their bytes). Files on another origin are not fetched: the token would go
// with the request. A file the service fails to serve is reported and
// left out (its FILE_URL stays on the message), and the result says not
// all were read; one it keeps refusing for its rate (ErrThrottled) is
// the error returned.
func (t *taskRun) fetchFiles(ctx context.Context, g *restsync.Group, rm *room, sec *roomSec, m *message, old *restsync.Record) ([]fileItem, bool, error) {
	var out []fileItem
	all, named := true, false
	for i, u := range m.Files {
		fi := fileItem{url: u}
		if !t.s.IndexFiles {
			out = append(out, fi)
			continue
		}
		abs, err := t.api.c.Resolve(u)
		if err != nil || !t.api.c.SameOrigin(abs) {
			fi.why = "the file is not on the Webex API's origin"
			out = append(out, fi)
			continue
		}
		f, err := t.api.download(ctx, abs, t.s.MaxFileBytes, t.s.Unscannable)
		if err != nil {
			if fatal(ctx, err) || errors.Is(err, restsync.ErrThrottled) {
				// Refused for its rate past MaxRetryAfter: the
				// service's, not the file's (it must not use up the
				// file's attempts): the space fails, and its cursor
				// stays.
				return nil, false, err
			}
			if errors.Is(err, messages.ErrNotFound) {
				fi.why = "the file is gone"
				out = append(out, fi)
				continue
			}
			if httpStatus(err) == http.StatusPreconditionRequired {
				// 428: Webex cannot scan the file for malware (an
				// encrypted archive, say) and serves it only when asked
				// to take the risk (allow=unscannable), which the task
				// does not (IndexUnscannableFiles). That is the file's
				// for good, not a failure on the way: every run would
				// get the same answer.
				t.Log.Info("the file cannot be scanned for malware: Webex does not serve it (IndexUnscannableFiles takes such files); its message is delivered without it", "file", u)
				fi.why = "Webex cannot scan the file for malware"
				out = append(out, fi)
				continue
			}
			t.Fail(u, err)
			fi.why, fi.failed = "the file could not be read", true
			out = append(out, fi)
			all = false
			continue
		}
		fi.file = f
		if !named {
			named = true
			t.nameFiles(rm, m, old)
		}
		it := restsync.Item{Docs: []*ingest.Document{t.b.fileDoc(ctx, t.Task, rm, sec, m, i+1, fi)}, Group: g}
		if old == nil {
			it.Added = 1
		} else {
			it.Updated = 1
		}
		t.Batch.Add(it)
		if err := t.Batch.MaybeFlush(ctx); err != nil {
			return nil, false, err
		}
		fi.file = &restsync.File{FileName: f.FileName} // the batch has its bytes
		out = append(out, fi)
	}
	return out, all, nil
}

// shared is the repository's restsync.SharedFunc: every task delivers a
// space or message under one reference, and its record is under the
// space's (and message's) id in every task's datastore, so task's target
// holds what task recorded. The record is written without a version, and
// the space's cursor is dropped, so that task's next run lists every
// message of the space and delivers the item again (a space whose
// activity did not change is otherwise not read at all).
func shared(task string, w store.Writer, key string, rec *restsync.Record) (bool, error) {
	if err := restsync.StaleRecord(w, key, rec); err != nil {
		return false, err
	}
	roomID, ok := strings.CutPrefix(key, roomKey(""))
	if !ok {
		rest, _ := strings.CutPrefix(key, "msg\x00")
		roomID, _, _ = strings.Cut(rest, "\x00")
	}
	b, err := w.Get(restsync.RecordKey(roomKey(roomID)))
	if err != nil || b == nil {
		return true, err // the space's record is written after its messages'
	}
	room := &restsync.Record{}
	st := roomState{}
	if err := json.Unmarshal(b, room); err != nil {
		return false, fmt.Errorf("room record %q: %w", roomID, err)
	}
	if len(room.Extra) > 0 {
		if err := json.Unmarshal(room.Extra, &st); err != nil {
			return false, fmt.Errorf("room record %q: %w", roomID, err)
		}
	}
	st.Newest = ""
	room.Extra, _ = json.Marshal(st)
	b, _ = json.Marshal(room)
	return true, w.Put(restsync.RecordKey(roomKey(roomID)), b)
}

// forgetRoom removes a room's documents and records.
func (t *taskRun) forgetRoom(ctx context.Context, id string, k *known) error {
	b := t.Batch
	err := restsync.EachRecord(t.DS, messagePrefix(id), func(key string, rec *restsync.Record) error {
		b.Forget(key, rec)
		return b.MaybeFlush(ctx)
	})
	if err != nil {
		return err
	}
	b.Forget(roomKey(id), k.rec)
	return b.MaybeFlush(ctx)
}
