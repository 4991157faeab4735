package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// scenario is one workload: the request types it sends, a setup before
// the load, one operation, and a cleanup that runs whenever setup was
// attempted, however the run ends.
type scenario interface {
	kinds() []kind
	setup(ctx context.Context, r *runner) error
	// op runs one operation on w. It returns the failure that ended it,
	// or nil; it sets o.aborted when the run's end cut it short.
	op(ctx context.Context, w *worker, o *outcome) *failure
	cleanup(ctx context.Context, r *runner) error
}

// queries are the encoded request parameter strings, built once per run.
type queries struct {
	submit, list, pause, resume, version []byte
	status, cancel, stop                 []byte // each ends in "&Token="
}

func buildQueries(s *settings) *queries {
	q := &queries{}
	queue := appendEscape(nil, s.Queue)
	qi := func(action string) []byte {
		b := append([]byte("action=QueueInfo&QueueAction="), action...)
		b = append(b, "&QueueName="...)
		return append(b, queue...)
	}
	q.submit = append([]byte("action=Fetch&FetchAction="), appendEscape(nil, s.FetchAction)...)
	q.submit = appendParams(q.submit, s.params)
	q.list = appendParams(qi("GetStatus"), s.filter)
	q.pause = qi("Pause")
	q.resume = qi("Resume")
	q.version = []byte("action=GetVersion")
	q.status = append(qi("GetStatus"), "&Token="...)
	q.cancel = append(qi("Cancel"), "&Token="...)
	q.stop = append(qi("Stop"), "&Token="...)
	return q
}

func newScenario(s *settings) scenario {
	switch s.Scenario {
	case ScenarioStatus:
		return &statusScenario{}
	case ScenarioStatusList:
		return &listScenario{}
	case ScenarioMixed:
		return &mixedScenario{}
	case ScenarioCancel:
		return &cancelScenario{}
	case ScenarioStop:
		return &stopScenario{}
	case ScenarioSubmit:
		return &submitScenario{}
	}
	return &versionScenario{}
}

// version: one GetVersion per operation; success is a SUCCESS reply. It
// queues nothing, so it is the default.
type versionScenario struct{}

func (versionScenario) kinds() []kind                          { return []kind{kindVersion} }
func (versionScenario) setup(context.Context, *runner) error   { return nil }
func (versionScenario) cleanup(context.Context, *runner) error { return nil }
func (versionScenario) op(_ context.Context, w *worker, _ *outcome) *failure {
	return w.do(kindVersion, w.r.q.version)
}

// submit: one Fetch per operation; success is a token in a SUCCESS reply.
type submitScenario struct{}

func (submitScenario) kinds() []kind                          { return []kind{kindFetch} }
func (submitScenario) setup(context.Context, *runner) error   { return nil }
func (submitScenario) cleanup(context.Context, *runner) error { return nil }
func (submitScenario) op(_ context.Context, w *worker, _ *outcome) *failure {
	_, f := w.submit()
	return f
}

// status: GetStatus by token, round robin over the tokens of -prepare
// actions submitted in setup.
type statusScenario struct {
	tokens [][]byte // full encoded GetStatus queries
	next   atomic.Uint64
}

func (*statusScenario) kinds() []kind { return []kind{kindGetStatus} }

func (sc *statusScenario) setup(ctx context.Context, r *runner) error {
	toks, err := r.prepare(ctx, r.s.Prepare)
	if err != nil {
		return err
	}
	for _, t := range toks {
		sc.tokens = append(sc.tokens, appendEscape(append([]byte(nil), r.q.status...), t))
	}
	return nil
}

func (*statusScenario) cleanup(context.Context, *runner) error { return nil }

func (sc *statusScenario) op(_ context.Context, w *worker, _ *outcome) *failure {
	q := sc.tokens[(sc.next.Add(1)-1)%uint64(len(sc.tokens))]
	if f := w.do(kindGetStatus, q); f != nil {
		return f
	}
	if w.rep.status == statusNone {
		return &failure{class: classProtocol, key: "no-status", detail: "GetStatus by token: no <action><status> in the reply"}
	}
	return nil
}

// status-list: GetStatus without token, with the filter parameters.
type listScenario struct{}

func (listScenario) kinds() []kind { return []kind{kindList} }
func (listScenario) setup(ctx context.Context, r *runner) error {
	_, err := r.prepare(ctx, r.s.Prepare)
	return err
}
func (listScenario) cleanup(context.Context, *runner) error { return nil }
func (listScenario) op(_ context.Context, w *worker, _ *outcome) *failure {
	return w.do(kindList, w.r.q.list)
}

// mixed: submit, poll GetStatus until a terminal status. The operation
// latency is submit to final status; a final status other than Finished
// is a check failure.
type mixedScenario struct{}

func (mixedScenario) kinds() []kind                          { return []kind{kindFetch, kindGetStatus} }
func (mixedScenario) setup(context.Context, *runner) error   { return nil }
func (mixedScenario) cleanup(context.Context, *runner) error { return nil }
func (mixedScenario) op(ctx context.Context, w *worker, o *outcome) *failure {
	tok, f := w.submit()
	if f != nil {
		return f
	}
	st, _, f := w.poll(ctx, tok, o, status.terminal)
	if f != nil || o.aborted {
		return f
	}
	o.final = st
	if st != statusFinished {
		return &failure{class: classCheck, key: "final-" + st.String(), detail: "action " + tok + " ended " + w.statusText(st)}
	}
	return nil
}

// cancel: with the queue paused, submit and cancel; then GetStatus must
// read Cancelled. Setup pauses the queue, cleanup resumes it.
type cancelScenario struct{}

func (cancelScenario) kinds() []kind { return []kind{kindFetch, kindCancel, kindGetStatus} }

func (cancelScenario) setup(ctx context.Context, r *runner) error {
	if err := r.control(ctx, r.q.pause); err != nil {
		return fmt.Errorf("%w: pause queue %s: %w", ErrSetup, r.s.Queue, err)
	}
	r.log.Info("queue paused", "queue", r.s.Queue)
	return nil
}

func (cancelScenario) cleanup(ctx context.Context, r *runner) error {
	if err := r.control(ctx, r.q.resume); err != nil {
		return fmt.Errorf("%w: resume queue %s: %w", ErrCleanup, r.s.Queue, err)
	}
	r.log.Info("queue resumed", "queue", r.s.Queue)
	return nil
}

func (cancelScenario) op(_ context.Context, w *worker, _ *outcome) *failure {
	tok, f := w.submit()
	if f != nil {
		return f
	}
	if f := w.doToken(kindCancel, w.r.q.cancel, tok); f != nil {
		return f
	}
	if f := w.doToken(kindGetStatus, w.r.q.status, tok); f != nil {
		return f
	}
	if st := w.rep.status; st != statusCancelled {
		return &failure{class: classCheck, key: "not-cancelled-" + st.String(), detail: "after Cancel, action " + tok + " reads " + w.statusText(st)}
	}
	return nil
}

// stop: submit a long action, wait until it is Processing, Stop it, and
// wait until GetStatus reads Stopped. It measures the Stop reply
// (request latency "stop") and Stop-to-Stopped (StopLatency).
type stopScenario struct{}

func (stopScenario) kinds() []kind                          { return []kind{kindFetch, kindGetStatus, kindStop} }
func (stopScenario) setup(context.Context, *runner) error   { return nil }
func (stopScenario) cleanup(context.Context, *runner) error { return nil }

func isProcessingOrEnded(s status) bool { return s == statusProcessing || s.terminal() }

func (stopScenario) op(ctx context.Context, w *worker, o *outcome) *failure {
	tok, f := w.submit()
	if f != nil {
		return f
	}
	st, _, f := w.poll(ctx, tok, o, isProcessingOrEnded)
	if f != nil || o.aborted {
		return f
	}
	if st != statusProcessing {
		o.final = st
		return &failure{class: classCheck, key: "ended-before-stop-" + st.String(),
			detail: "action " + tok + " ended " + w.statusText(st) + " before it was seen Processing: give -params an action that runs longer"}
	}
	sent := time.Now()
	if f := w.doToken(kindStop, w.r.q.stop, tok); f != nil {
		return f
	}
	st, at, f := w.poll(ctx, tok, o, status.terminal)
	if f != nil || o.aborted {
		return f
	}
	o.final = st
	if st != statusStopped {
		return &failure{class: classCheck, key: "not-stopped-" + st.String(), detail: "after Stop, action " + tok + " ended " + w.statusText(st)}
	}
	o.derived, o.hasDerived = at.Sub(sent), true
	return nil
}

// prepare submits n actions with up to 16 workers and returns their
// tokens; the first failure ends it.
func (r *runner) prepare(ctx context.Context, n int) ([]string, error) {
	if n == 0 {
		return nil, nil
	}
	r.log.Info("preparing actions", "count", n)
	tokens := make([]string, n)
	var next atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range min(n, r.s.workers, 16) {
		wg.Go(func() {
			k := r.cl.conn()
			var rep reply
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				if _, f := k.exchange(r.q.submit, &rep); f != nil {
					once.Do(func() { firstErr = fmt.Errorf("%w: prepare: submit %d of %d: %v", ErrSetup, i+1, n, f) })
					next.Store(int64(n))
					return
				}
				if rep.token == "" {
					once.Do(func() {
						firstErr = fmt.Errorf("%w: prepare: submit %d of %d: no <token> in the reply", ErrSetup, i+1, n)
					})
					next.Store(int64(n))
					return
				}
				tokens[i] = rep.token
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: prepare: %w", ErrSetup, err)
	}
	return tokens, nil
}

// control sends a setup or cleanup request that must succeed.
func (r *runner) control(ctx context.Context, query []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var rep reply
	if _, f := r.cl.conn().exchange(query, &rep); f != nil {
		return f
	}
	return nil
}
