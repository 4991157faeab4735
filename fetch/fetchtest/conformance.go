package fetchtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// Action is one fetch action a conformance test runs.
type Action struct {
	FetchAction string // upper case
	Params      messages.Params
}

// BadSetting is a fetch action whose parameters Validate must refuse with
// a *messages.ParamError naming Key (case-insensitive substring of the
// error's Name: "[MyTask] Depth" names Depth).
type BadSetting struct {
	Action
	Key string
}

// BadKey is a task setting TaskKeys must refuse: an unknown key
// (Unknown: config.ErrUnknownKey) or a bad value.
type BadKey struct {
	Key, Value string
	Unknown    bool
}

// Conformance describes a repository to the conformance suite.
type Conformance struct {
	// Descriptor is the connector's descriptor (required).
	Descriptor *fetch.Descriptor
	// New builds a fresh repository (over a fresh store) for one test.
	New func(t *testing.T) fetch.Repository
	// BadSettings must each be refused by Validate, naming the key (at
	// least one).
	BadSettings []BadSetting
	// BadKeys must each be refused by the descriptor's TaskKeys.
	BadKeys []BadKey
	// Long is an action that runs until it is cancelled, or long enough
	// for the cancellation to arrive while it works (a crawl of a site
	// that answers slowly). Started reports when it is under way (for
	// example: a request reached the test site); nil waits for the first
	// count or progress.
	Long    Action
	Started func(job *fetch.Job) bool
	// CancelBound is how long Run may take to return once its context is
	// cancelled; default 5s.
	CancelBound time.Duration
	// Counted is an action that ends by itself and reports counts; Counts
	// checks them (nil: some count of some task moved).
	Counted Action
	Counts  func(t *testing.T, job *fetch.Job)
	// Identifiers, when the repository has identifiers, returns some of
	// the items Counted reached (at least one), from its results or by
	// asking r (the same repository, after Counted); each must then
	// round-trip:
	// View returns the item (when the repository is a fetch.Viewer) and
	// Collect of it reports it collected (when COLLECT is a fetch action,
	// with CollectParams added to Identifiers=id).
	Identifiers   func(t *testing.T, r fetch.Repository, results []*messages.Element) []string
	CollectParams messages.Params
}

// Run runs the conformance suite: every connector's repository passes it
// (docs/adding-a-connector.md).
func Run(t *testing.T, c Conformance) {
	t.Helper()
	if c.Descriptor == nil || c.New == nil {
		t.Fatal("fetchtest: Conformance needs Descriptor and New")
	}
	if c.CancelBound <= 0 {
		c.CancelBound = 5 * time.Second
	}
	t.Run("Descriptor", func(t *testing.T) {
		if err := c.Descriptor.Validate(); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(config.DefaultName, c.Descriptor.DefaultConfig, c.Descriptor.TaskKeys); err != nil {
			t.Fatalf("the embedded default does not load: %v", err)
		}
		got := c.New(t).FetchActions()
		if strings.Join(got, ",") != strings.Join(c.Descriptor.FetchActions, ",") {
			t.Fatalf("FetchActions %v, the descriptor says %v", got, c.Descriptor.FetchActions)
		}
	})
	t.Run("TaskKeysRefuse", func(t *testing.T) {
		if len(c.BadKeys) == 0 {
			t.Fatal("fetchtest: give at least one BadKey")
		}
		for _, b := range c.BadKeys {
			err := c.Descriptor.TaskKeys(b.Key, b.Value)
			if err == nil {
				t.Errorf("TaskKeys accepted %s=%q", b.Key, b.Value)
				continue
			}
			if b.Unknown != errors.Is(err, config.ErrUnknownKey) {
				t.Errorf("TaskKeys(%s=%q) = %v: unknown key %v, want %v", b.Key, b.Value, err, !b.Unknown, b.Unknown)
			}
		}
	})
	t.Run("ValidateRefuses", func(t *testing.T) {
		if len(c.BadSettings) == 0 {
			t.Fatal("fetchtest: give at least one BadSetting")
		}
		r := c.New(t)
		for _, b := range c.BadSettings {
			_, err := r.Validate(b.FetchAction, b.Params)
			var pe *messages.ParamError
			switch {
			case err == nil:
				t.Errorf("Validate(%s, %v) accepted a bad %s", b.FetchAction, b.Params, b.Key)
			case !errors.As(err, &pe):
				t.Errorf("Validate(%s): %v is not a *messages.ParamError", b.FetchAction, err)
			case !strings.Contains(strings.ToLower(pe.Name), strings.ToLower(b.Key)):
				t.Errorf("Validate(%s): the error names %q, not %s: %v", b.FetchAction, pe.Name, b.Key, err)
			}
		}
	})
	t.Run("RunHonoursCancel", func(t *testing.T) {
		r := c.New(t)
		job := newJob(t, r, c.Long)
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		type ended struct {
			err error
		}
		done := make(chan ended, 1)
		go func() {
			_, err := r.Run(ctx, job)
			done <- ended{err}
		}()
		started := c.Started
		if started == nil {
			started = func(job *fetch.Job) bool { return job.Progress() != nil || moved(job) }
		}
		deadline := time.Now().Add(30 * time.Second)
		for !started(job) {
			select {
			case e := <-done:
				t.Fatalf("the long action ended before it was cancelled: %v", e.err)
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("the long action never started")
			}
		}
		stop := errors.New("fetchtest: stop")
		cancel(stop)
		select {
		case e := <-done:
			if e.err != nil && !errors.Is(e.err, stop) && !errors.Is(e.err, context.Canceled) {
				t.Fatalf("Run returned %v after the cancel; want nil or the cause", e.err)
			}
		case <-time.After(c.CancelBound):
			t.Fatalf("Run did not return within %v of its context's cancellation", c.CancelBound)
		}
	})
	t.Run("CountsReported", func(t *testing.T) {
		r := c.New(t)
		job := newJob(t, r, c.Counted)
		res, err := r.Run(context.Background(), job)
		if err != nil {
			t.Fatalf("Run(%s): %v", c.Counted.FetchAction, err)
		}
		if c.Counts != nil {
			c.Counts(t, job)
		} else if !moved(job) {
			t.Fatalf("Run(%s) moved no count: %v", c.Counted.FetchAction, job.Snapshot())
		}
		if c.Identifiers == nil {
			return
		}
		ids := c.Identifiers(t, r, res)
		if len(ids) == 0 {
			t.Fatalf("no identifier in the results of %s", c.Counted.FetchAction)
		}
		for _, id := range ids {
			if v, ok := r.(fetch.Viewer); ok {
				vr, err := v.View(context.Background(), id, nil)
				if err != nil {
					t.Fatalf("View(%s): %v", id, err)
				}
				if vr == nil || vr.Reference == "" {
					t.Fatalf("View(%s) returned no reference", id)
				}
			}
			if hasAction(r, fetch.ActionCollect) {
				p := append(messages.Params{{Name: "Identifiers", Value: id}}, c.CollectParams...)
				cj := newJob(t, r, Action{FetchAction: fetch.ActionCollect, Params: p})
				if _, err := r.Run(context.Background(), cj); err != nil {
					t.Fatalf("Collect(%s): %v", id, err)
				}
				var collected uint64
				for _, cn := range cj.AllCounts() {
					collected += cn.Collected.Load()
				}
				if collected == 0 {
					t.Fatalf("Collect(%s) collected nothing: %v", id, cj.Snapshot())
				}
			}
		}
	})
}

func newJob(t *testing.T, r fetch.Repository, a Action) *fetch.Job {
	t.Helper()
	if !hasAction(r, a.FetchAction) {
		t.Fatalf("%s is not among the repository's fetch actions %v", a.FetchAction, r.FetchActions())
	}
	tasks, err := r.Validate(a.FetchAction, a.Params)
	if err != nil {
		t.Fatalf("Validate(%s, %v): %v", a.FetchAction, a.Params, err)
	}
	return fetch.NewJob("conformance-"+strings.ToLower(a.FetchAction), a.FetchAction, a.Params, tasks)
}

func hasAction(r fetch.Repository, fa string) bool {
	for _, a := range r.FetchActions() {
		if a == fa {
			return true
		}
	}
	return false
}

// moved reports whether any count of any task is above zero.
func moved(job *fetch.Job) bool {
	for _, c := range job.Snapshot() {
		if c.Seen+c.Added+c.Updated+c.Deleted+c.Unchanged+c.Collected+c.Inserted+c.Errors+c.Ingestadded+c.Ingestupdated+c.Ingestdeleted > 0 {
			return true
		}
	}
	return false
}
