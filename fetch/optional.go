package fetch

import (
	"context"
	"time"

	"github.com/connectorhq/connector/messages"
)

// Viewer is implemented by repositories that serve the synchronous View
// action: the content of one item, fetched from the repository now.
type Viewer interface {
	View(ctx context.Context, identifier string, params messages.Params) (*ViewResult, error)
}

// ViewResult is one item's content. The front end serves byte ranges of
// Content itself.
type ViewResult struct {
	Reference string // DREREFERENCE
	MimeType  string
	FileName  string
	Content   []byte
	Metadata  []*messages.Param
}

// TaskLister is implemented by repositories that answer the synchronous
// TaskList action.
type TaskLister interface {
	TaskList() ([]TaskInfo, error)
}

// TaskInfo describes one fetch task (TaskListTaskInfo in connectors.xsd).
type TaskInfo struct {
	Name       string
	Action     string // the fetch action it last ran, e.g. SYNCHRONIZE
	Calls      uint64 // how many times it ran
	Datastore  string // where its incremental state lives
	LastStart  time.Time
	LastFinish time.Time
}

// Scheduler is implemented by repositories whose tasks run on a schedule;
// the server submits a Synchronize of each task at the times it gives, as
// if a client had sent it.
type Scheduler interface {
	Schedules() []Schedule
}

// Schedule is one task's automatic synchronize cycles.
type Schedule struct {
	Task   string
	Start  time.Time     // first run; zero: at once
	Every  time.Duration // repeat interval; 0: run once
	Cycles int           // runs in all; 0: unlimited (with Every > 0)
	// Moved is how far the clocks moved Start past the local time
	// written, one they skip on its day (02:30 when they go from 02:00
	// to 03:00 is 03:30): with Every a whole number of days, the runs on
	// the days after keep the time written. Zero: Start is as written.
	Moved time.Duration
}

// Exclusive is implemented by repositories some of whose fetch actions
// must not run while another such action of one of the same task sections
// runs (a Synchronize and an Update of one task both rewrite its
// datastore). The queue does not start such an action while one of its
// tasks is held by another: it stays Queued, holding no thread, the queue
// starts the next action in priority order instead, and it starts once the
// task is free (when the holder's worker has exited).
type Exclusive interface {
	// Exclusive reports whether actions of fetchAction (upper case) hold
	// the task sections Validate returned for them exclusively while
	// they run.
	Exclusive(fetchAction string) bool
}

// Closer is implemented by repositories that hold resources of their own
// (the Web connector's browser). The server closes the repository during
// shutdown once the queue has stopped every action, before it closes the
// ingestion target and the store; and when a start-up fails after the
// repository was built.
type Closer interface {
	Close() error
}
