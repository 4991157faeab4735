package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/connectorhq/connector/transport/aci"
)

// program is a workload compiled for one run: variables resolved, request
// templates split into literal bytes and placeholders, rows numbered.
type program struct {
	w       *Workload
	vars    map[string]string // the global variables' values
	setup   []*cstep
	cleanup []*cstep
	ops     []*cop
	order   []int // weighted round robin: the operation of each turn
	turn    atomic.Uint64
	seq     atomic.Uint64
	pools   map[string]*pool
	slots   []string          // operation variables (saved from replies)
	clocks  []string          // mark names
	reqRows []string          // request rows, in first-appearance order
	meas    []string          // measured rows (mark/measure)
	polls   bool              // some step polls: operations report a final status
	files   map[string][]byte // the data files read, by the name written
}

type cop struct {
	name   string
	weight int
	steps  []*cstep
}

// cstep is a compiled step.
type cstep struct {
	src      *Step
	row      int // request row (operations), -1 in setup and cleanup
	parts    []part
	token    bool
	needStat bool
	statuses []status
	failKey  string
	hint     string
	save     []saveSpec
	pool     []poolSpec
	poll     *cpoll
	mark     int // clock index, -1 none
	measure  int // measured row index (and clock index in measureClock), -1 none
	mclock   int
	sleep    time.Duration
	repeat   int
	conc     int
}

type cpoll struct {
	every time.Duration
	until func(status) bool
	what  string
}

type saveSpec struct {
	slot int
	src  []string // "token", "status", or an element path
}

type poolSpec struct {
	p   *pool
	src []string
}

// part is one piece of an encoded request: literal bytes, or a
// placeholder whose value is percent-encoded when the request is built.
type part struct {
	text  string // the placeholder as written, for the plan
	lit   []byte
	kind  partKind
	slot  int
	pool  *pool
	lo    int64
	span  uint64 // random: the count of numbers from lo, HIGH-LOW+1 (0: all 2^64 of them)
	lines []string
}

type partKind uint8

const (
	partLit partKind = iota
	partSlot
	partPool
	partRandom
	partSeq
	partUUID
	partLine
	partWorker
)

// pool is a run-wide list of values taken from replies ({{pool NAME}}),
// read round robin; it keeps the last poolMax values.
type pool struct {
	name string
	mu   sync.Mutex
	vals []string
	next int
	ring int
}

const poolMax = 100_000

func (p *pool) add(v string) {
	p.mu.Lock()
	if len(p.vals) < poolMax {
		p.vals = append(p.vals, v)
	} else {
		p.vals[p.ring] = v
		p.ring = (p.ring + 1) % poolMax
	}
	p.mu.Unlock()
}

func (p *pool) pick() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.vals) == 0 {
		return "", false
	}
	v := p.vals[p.next%len(p.vals)]
	p.next++
	return v, true
}

func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.vals)
}

// compileWorkload compiles w with the variables' values overridden by
// over (nil: the file's defaults). It checks everything a run could trip
// on before the first request: unknown variables, variables used before
// a step saves them, bad durations, statuses, data files.
func compileWorkload(w *Workload, over map[string]string) (*program, error) {
	pg := &program{w: w, vars: map[string]string{}, pools: map[string]*pool{}}
	for _, v := range w.Vars {
		pg.vars[v.Name] = v.Value
	}
	for k, v := range over {
		if _, ok := pg.vars[k]; !ok {
			var names []string
			for _, v := range w.Vars {
				names = append(names, v.Name)
			}
			return nil, fmt.Errorf("%w: workload %s has no variable %q to set (it has: %s)", ErrInvalidConfig, w.File, k, strings.Join(names, ", "))
		}
		pg.vars[k] = v
	}
	// Pools are known from every pool: clause, wherever it is.
	for _, st := range slices.Concat(w.Setup, w.Cleanup, opSteps(w)) {
		for name := range st.Pool {
			if pg.pools[name] == nil {
				pg.pools[name] = &pool{name: name}
			}
		}
	}
	for i := range w.Setup {
		cs, err := pg.compileStep(&w.Setup[i], nil, false)
		if err != nil {
			return nil, err
		}
		pg.setup = append(pg.setup, cs)
	}
	for i := range w.Cleanup {
		cs, err := pg.compileStep(&w.Cleanup[i], nil, false)
		if err != nil {
			return nil, err
		}
		pg.cleanup = append(pg.cleanup, cs)
	}
	for i := range w.Operations {
		op := &w.Operations[i]
		c := &cop{name: op.Name, weight: op.Weight}
		saved := map[string]bool{}
		for j := range op.Steps {
			cs, err := pg.compileStep(&op.Steps[j], saved, true)
			if err != nil {
				return nil, err
			}
			for name := range op.Steps[j].Save {
				saved[name] = true
			}
			c.steps = append(c.steps, cs)
		}
		pg.ops = append(pg.ops, c)
	}
	pg.order = weightedOrder(pg.ops)
	return pg, nil
}

func opSteps(w *Workload) []Step {
	var out []Step
	for _, op := range w.Operations {
		out = append(out, op.Steps...)
	}
	return out
}

// weightedOrder returns one cycle of turns in which each operation comes
// up weight times, spread evenly (smooth weighted round robin).
func weightedOrder(ops []*cop) []int {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	if total > 100_000 {
		// Scale down: the mix stays within 1 in 100000.
		f := float64(total) / 100_000
		total = 0
		for _, o := range ops {
			o.weight = max(1, int(float64(o.weight)/f))
			total += o.weight
		}
	}
	cur := make([]int, len(ops))
	order := make([]int, 0, total)
	for range total {
		best := 0
		for i, o := range ops {
			cur[i] += o.weight
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		order = append(order, best)
	}
	return order
}

func (pg *program) fail(st *Step, format string, args ...any) error {
	return workloadError(pg.w.File, st.line, "step %s: %s", st.Name, fmt.Sprintf(format, args...))
}

// resolveGlobal expands the global variables of a template that may use
// nothing else (durations, repeat counts).
func (pg *program) resolveGlobal(st *Step, what, s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return "", pg.fail(st, "%s: unclosed {{", what)
		}
		name := strings.TrimSpace(s[i+2 : i+j])
		v, ok := pg.vars[name]
		if !ok {
			return "", pg.fail(st, "%s: {{%s}} is not a variable of the workload", what, name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+2:]
	}
}

func (pg *program) compileStep(st *Step, saved map[string]bool, inOp bool) (*cstep, error) {
	cs := &cstep{src: st, row: -1, mark: -1, measure: -1, mclock: -1, token: st.Expect.Token, hint: st.Expect.Hint}
	if inOp {
		if i := slices.Index(pg.reqRows, st.Name); i >= 0 {
			cs.row = i
		} else {
			cs.row = len(pg.reqRows)
			pg.reqRows = append(pg.reqRows, st.Name)
		}
	}
	pairs, err := splitRequest(st.Request)
	if err != nil {
		return nil, pg.fail(st, "request: %v", err)
	}
	first := true
	for _, pr := range pairs {
		if pr.splice != "" {
			v, ok := pg.vars[pr.splice]
			if !ok {
				return nil, pg.fail(st, "request: {{%s}} (a list of parameters) must be a variable of the workload", pr.splice)
			}
			sub, err := splitRequest(v)
			if err != nil {
				return nil, pg.fail(st, "variable %s: %v", pr.splice, err)
			}
			for _, sp := range sub {
				if sp.splice != "" {
					return nil, pg.fail(st, "variable %s: a list of parameters holds no {{...}}", pr.splice)
				}
				if err := pg.checkParam(st, sp.name); err != nil {
					return nil, err
				}
				cs.lit(first, aci.AppendQueryEscape(nil, sp.name), aci.AppendQueryEscape(nil, sp.value))
				first = false
			}
			continue
		}
		if err := pg.checkParam(st, pr.name); err != nil {
			return nil, err
		}
		cs.lit(first, aci.AppendQueryEscape(nil, pr.name), nil)
		first = false
		if err := pg.compileValue(cs, st, pr.value, saved, inOp); err != nil {
			return nil, err
		}
	}
	if first {
		return nil, pg.fail(st, "request: no parameters")
	}
	if !strings.Contains(strings.ToLower(st.Request), "action=") {
		return nil, pg.fail(st, "request: no action=")
	}
	for _, s := range st.Expect.Status {
		if strings.EqualFold(s, "any") {
			continue
		}
		v, ok := workloadStatuses[strings.ToLower(s)]
		if !ok {
			return nil, pg.fail(st, "expect status %q: one of Queued, Processing, Paused, Finished, Error, Stopped, Cancelled, or any", s)
		}
		cs.statuses = append(cs.statuses, v)
	}
	cs.needStat = len(st.Expect.Status) > 0 || st.Poll != nil
	cs.failKey = st.Expect.Fail
	if cs.failKey == "" {
		cs.failKey = st.Name + "-status"
	}
	for name, src := range st.Save {
		if !inOp {
			return nil, pg.fail(st, "save: setup and cleanup steps have no operation to save into; use pool:")
		}
		if _, ok := pg.vars[name]; ok {
			return nil, pg.fail(st, "save: %s is a variable of the workload; save into another name", name)
		}
		cs.save = append(cs.save, saveSpec{slot: pg.slot(name), src: sourcePath(src)})
	}
	slices.SortFunc(cs.save, func(a, b saveSpec) int { return a.slot - b.slot })
	for name, src := range st.Pool {
		cs.pool = append(cs.pool, poolSpec{p: pg.pools[name], src: sourcePath(src)})
	}
	slices.SortFunc(cs.pool, func(a, b poolSpec) int { return strings.Compare(a.p.name, b.p.name) })
	if st.Poll != nil {
		if !inOp {
			return nil, pg.fail(st, "poll: only operation steps poll")
		}
		every, err := pg.resolveGlobal(st, "poll every", st.Poll.Every)
		if err != nil {
			return nil, err
		}
		d, err := parseDurationValue(every)
		if err != nil || d < time.Millisecond/10 {
			return nil, pg.fail(st, "poll every: %q: a duration of at least 100µs, such as 10ms", every)
		}
		cs.poll = &cpoll{every: d, what: st.Poll.Until}
		switch strings.ToLower(strings.TrimSpace(st.Poll.Until)) {
		case "ended":
			cs.poll.until = status.Terminal
		case "running":
			cs.poll.until = isProcessingOrEnded
		case "":
			return nil, pg.fail(st, "poll: until is missing: running, ended, or statuses separated by commas")
		default:
			var set []status
			for s := range strings.SplitSeq(st.Poll.Until, ",") {
				v, ok := workloadStatuses[strings.ToLower(strings.TrimSpace(s))]
				if !ok {
					return nil, pg.fail(st, "poll until %q: running, ended, or statuses separated by commas", st.Poll.Until)
				}
				set = append(set, v)
			}
			// A status that can no longer change ends the polling too.
			cs.poll.until = func(s status) bool { return slices.Contains(set, s) || s.Terminal() }
		}
		pg.polls = true
	}
	if st.Mark != "" {
		if !inOp {
			return nil, pg.fail(st, "mark: only operation steps measure")
		}
		cs.mark = pg.clock(st.Mark)
	}
	if st.Measure != "" {
		if !inOp {
			return nil, pg.fail(st, "measure: only operation steps measure")
		}
		if !slices.Contains(pg.clocks, st.Measure) {
			return nil, pg.fail(st, "measure %s: no earlier step marks %s", st.Measure, st.Measure)
		}
		if slices.Contains(pg.reqRows, st.Measure) {
			return nil, pg.fail(st, "measure %s: a request row has that name", st.Measure)
		}
		cs.mclock = slices.Index(pg.clocks, st.Measure)
		if i := slices.Index(pg.meas, st.Measure); i >= 0 {
			cs.measure = i
		} else {
			cs.measure = len(pg.meas)
			pg.meas = append(pg.meas, st.Measure)
		}
	}
	if st.Sleep != "" {
		s, err := pg.resolveGlobal(st, "sleep", st.Sleep)
		if err != nil {
			return nil, err
		}
		if cs.sleep, err = parseDurationValue(s); err != nil {
			return nil, pg.fail(st, "sleep: %v", err)
		}
	}
	cs.repeat = 1
	if st.Repeat != "" {
		s, err := pg.resolveGlobal(st, "repeat", st.Repeat)
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || n > 10_000_000 {
			return nil, pg.fail(st, "repeat: %q: a whole number from 0 to 10000000", s)
		}
		cs.repeat = n
	}
	cs.conc = max(st.Concurrency, 1)
	if st.Concurrency == 0 {
		cs.conc = 16
	}
	return cs, nil
}

func sourcePath(src string) []string {
	src = strings.Trim(strings.TrimSpace(src), "/")
	return strings.Split(src, "/")
}

func (pg *program) slot(name string) int {
	if i := slices.Index(pg.slots, name); i >= 0 {
		return i
	}
	pg.slots = append(pg.slots, name)
	return len(pg.slots) - 1
}

func (pg *program) clock(name string) int {
	if i := slices.Index(pg.clocks, name); i >= 0 {
		return i
	}
	pg.clocks = append(pg.clocks, name)
	return len(pg.clocks) - 1
}

// checkParam refuses the parameters the harness sets itself.
func (pg *program) checkParam(st *Step, name string) error {
	if strings.EqualFold(name, "ResponseFormat") {
		return pg.fail(st, "request: ResponseFormat is set by -format")
	}
	return nil
}

// lit appends "&name=" (or "name=" first) and an encoded literal value.
func (cs *cstep) lit(first bool, name, value []byte) {
	var b []byte
	if !first {
		b = append(b, '&')
	}
	b = append(b, name...)
	b = append(b, '=')
	b = append(b, value...)
	cs.addLit(b)
}

func (cs *cstep) addLit(b []byte) {
	if n := len(cs.parts); n > 0 && cs.parts[n-1].kind == partLit {
		cs.parts[n-1].lit = append(cs.parts[n-1].lit, b...)
		return
	}
	cs.parts = append(cs.parts, part{kind: partLit, lit: b})
}

// compileValue compiles a parameter value template.
func (pg *program) compileValue(cs *cstep, st *Step, v string, saved map[string]bool, inOp bool) error {
	for v != "" {
		i := strings.Index(v, "{{")
		if i < 0 {
			cs.addLit(aci.AppendQueryEscape(nil, v))
			return nil
		}
		if i > 0 {
			cs.addLit(aci.AppendQueryEscape(nil, v[:i]))
		}
		j := strings.Index(v[i:], "}}")
		if j < 0 {
			return pg.fail(st, "request: unclosed {{ in %q", v)
		}
		f := strings.Fields(v[i+2 : i+j])
		text := v[i : i+j+2]
		v = v[i+j+2:]
		n0 := len(cs.parts)
		if len(f) == 0 {
			return pg.fail(st, "request: empty {{}}")
		}
		switch f[0] {
		case "pool":
			if len(f) != 2 || pg.pools[f[1]] == nil {
				return pg.fail(st, "request: {{pool NAME}} needs a pool that a step fills (pool: {NAME: token})")
			}
			if !inOp && pg.pools[f[1]] != nil && !pg.filledBySetup(f[1], st) {
				return pg.fail(st, "request: pool %s is filled only after this step", f[1])
			}
			cs.parts = append(cs.parts, part{kind: partPool, pool: pg.pools[f[1]]})
		case "random":
			if len(f) != 3 {
				return pg.fail(st, "request: {{random LOW HIGH}} takes two whole numbers")
			}
			lo, err1 := strconv.ParseInt(f[1], 10, 64)
			hi, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil || hi < lo {
				return pg.fail(st, "request: {{random LOW HIGH}} takes two whole numbers, LOW <= HIGH")
			}
			// In uint64, where HIGH-LOW+1 does not overflow below 2^64.
			cs.parts = append(cs.parts, part{kind: partRandom, lo: lo, span: uint64(hi-lo) + 1})
		case "seq":
			cs.parts = append(cs.parts, part{kind: partSeq})
		case "uuid":
			cs.parts = append(cs.parts, part{kind: partUUID})
		case "worker":
			cs.parts = append(cs.parts, part{kind: partWorker})
		case "line":
			if len(f) != 2 {
				return pg.fail(st, "request: {{line FILE}} names one file")
			}
			raw, err := pg.w.readData(f[1])
			if err != nil {
				return pg.fail(st, "request: {{line %s}}: %v", f[1], err)
			}
			lines, err := splitLines(raw)
			if err != nil {
				return pg.fail(st, "request: {{line %s}}: %v", f[1], err)
			}
			if pg.files == nil {
				pg.files = map[string][]byte{}
			}
			pg.files[f[1]] = raw
			cs.parts = append(cs.parts, part{kind: partLine, lines: lines})
		default:
			if len(f) != 1 {
				return pg.fail(st, "request: {{%s}}: a variable, or pool NAME, random LOW HIGH, seq, uuid, worker, line FILE", strings.Join(f, " "))
			}
			name := f[0]
			if g, ok := pg.vars[name]; ok {
				cs.addLit(aci.AppendQueryEscape(nil, g))
				continue
			}
			if !inOp || !saved[name] {
				return pg.fail(st, "request: {{%s}} is neither a variable of the workload nor saved by an earlier step of the operation", name)
			}
			cs.parts = append(cs.parts, part{kind: partSlot, slot: pg.slot(name)})
		}
		if len(cs.parts) > n0 && cs.parts[len(cs.parts)-1].kind != partLit {
			cs.parts[len(cs.parts)-1].text = text
		}
	}
	return nil
}

// shown returns the step's request for the plan: the encoded literal
// parts, and the placeholders as written.
func (cs *cstep) shown() string {
	var b strings.Builder
	for _, p := range cs.parts {
		if p.kind == partLit {
			b.Write(p.lit)
		} else {
			b.WriteString(p.text)
		}
	}
	return b.String()
}

// sendsFetch reports whether the step submits a Fetch action.
func (cs *cstep) sendsFetch() bool {
	pairs, _ := splitRequest(cs.src.Request)
	for _, p := range pairs {
		if strings.EqualFold(p.name, "action") && strings.EqualFold(p.value, "Fetch") {
			return true
		}
	}
	return false
}

// filledBySetup reports whether a setup step before st fills pool name.
func (pg *program) filledBySetup(name string, st *Step) bool {
	for i := range pg.w.Setup {
		s := &pg.w.Setup[i]
		if s == st {
			return false
		}
		if _, ok := s.Pool[name]; ok {
			return true
		}
	}
	return true // cleanup steps run after the load: any pool may be filled
}

// splitLines returns the non-empty lines of a data file.
func splitLines(raw []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); l != "" {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no lines")
	}
	return out, nil
}

// build appends the step's encoded request to dst with the worker's
// values; it fails when a pool is still empty.
func (cs *cstep) build(dst []byte, w *worker) ([]byte, *failure) {
	for i := range cs.parts {
		p := &cs.parts[i]
		switch p.kind {
		case partLit:
			dst = append(dst, p.lit...)
		case partSlot:
			dst = aci.AppendQueryEscape(dst, w.slots[p.slot])
		case partPool:
			v, ok := p.pool.pick()
			if !ok {
				return dst, &failure{class: classProtocol, key: "empty-pool", detail: "step " + cs.src.Name + ": pool " + p.pool.name + " has no value yet"}
			}
			dst = aci.AppendQueryEscape(dst, v)
		case partRandom:
			n := w.rng.Uint64()
			if p.span != 0 {
				n = w.rng.Uint64N(p.span)
			}
			dst = strconv.AppendInt(dst, p.lo+int64(n), 10) // wraps into [LOW, HIGH]
		case partSeq:
			dst = strconv.AppendUint(dst, w.seq, 10)
		case partUUID:
			dst = append(dst, uuid.NewString()...)
		case partWorker:
			dst = strconv.AppendInt(dst, int64(w.id), 10)
		case partLine:
			dst = aci.AppendQueryEscape(dst, p.lines[w.rng.IntN(len(p.lines))])
		}
	}
	return dst, nil
}

// engine runs a compiled workload: the scenario of a run.
type engine struct{ pg *program }

// setup runs the setup steps; each step's repeats go out with up to its
// concurrency in flight; the first failure ends it.
func (e *engine) setup(ctx context.Context, r *runner) error {
	for _, cs := range e.pg.setup {
		if err := r.runFixed(ctx, cs); err != nil {
			return fmt.Errorf("%w: %w", ErrSetup, err)
		}
	}
	return nil
}

// cleanup runs every cleanup step, even after one fails.
func (e *engine) cleanup(ctx context.Context, r *runner) error {
	var errs []string
	for _, cs := range e.pg.cleanup {
		if err := r.runFixed(ctx, cs); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrCleanup, strings.Join(errs, "; "))
	}
	return nil
}

// runFixed sends a setup or cleanup step its repeat count of times.
func (r *runner) runFixed(ctx context.Context, cs *cstep) error {
	n := cs.repeat
	if n == 0 {
		return nil
	}
	if n > 1 {
		r.log.Info("setup step", "step", cs.src.Name, "requests", n)
	}
	var next atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range min(n, cs.conc, r.s.workers+spareConns) {
		wg.Go(func() {
			w := r.newWorker(-1)
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				f := w.fixed(cs)
				if f != nil {
					once.Do(func() {
						firstErr = fmt.Errorf("step %s (%s): request %d of %d: %v", cs.src.Name, cs.src.Request, i+1, n, f)
					})
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("step %s: %w", cs.src.Name, err)
	}
	if cs.src.Name != "" && len(cs.pool) > 0 {
		for _, p := range cs.pool {
			r.log.Info("pool filled", "pool", p.p.name, "values", p.p.size())
		}
	}
	return nil
}

// fixed sends one setup or cleanup request, unmeasured.
func (w *worker) fixed(cs *cstep) *failure {
	q, f := cs.build(w.q[:0], w)
	w.q = q
	if f != nil {
		return f
	}
	if _, f := w.k.exchange(w.q, &w.rep); f != nil {
		return f
	}
	return w.checkReply(cs)
}

// op runs one operation: the next of the weighted order.
func (e *engine) op(ctx context.Context, w *worker, o *outcome) *failure {
	pg := e.pg
	idx := pg.order[(pg.turn.Add(1)-1)%uint64(len(pg.order))]
	o.op = idx
	w.seq = pg.seq.Add(1)
	clear(w.slots)
	for _, cs := range pg.ops[idx].steps {
		if cs.sleep > 0 && !w.sleep(ctx, cs.sleep) {
			o.aborted = true
			return nil
		}
		if f := w.step(ctx, cs, o); f != nil || o.aborted {
			return f
		}
	}
	return nil
}

// step runs one step of an operation, polling when it polls.
func (w *worker) step(ctx context.Context, cs *cstep, o *outcome) *failure {
	marked := false
	for {
		q, f := cs.build(w.q[:0], w)
		w.q = q
		if f != nil {
			return f
		}
		if cs.mark >= 0 && !marked {
			w.clocks[cs.mark] = time.Now()
			marked = true
		}
		if f := w.do(cs.row, w.q); f != nil {
			return f
		}
		if cs.needStat && w.rep.State == statusNone {
			return &failure{class: classProtocol, key: "no-status", detail: "step " + cs.src.Name + ": no <action><status> in the reply"}
		}
		if cs.poll == nil || cs.poll.until(w.rep.State) {
			break
		}
		if !w.sleep(ctx, cs.poll.every) {
			o.aborted = true
			return nil
		}
	}
	at := time.Now()
	if cs.poll != nil && w.rep.State.Terminal() {
		o.final = w.rep.State
	}
	if f := w.checkReply(cs); f != nil {
		return f
	}
	if cs.measure >= 0 {
		o.addMeasured(cs.measure, at.Sub(w.clocks[cs.mclock]))
	}
	return nil
}

// checkReply checks the reply in w.rep against the step's expectations
// and stores what the step saves.
func (w *worker) checkReply(cs *cstep) *failure {
	if cs.token && w.rep.Token == "" {
		return &failure{class: classProtocol, key: "no-token", detail: "step " + cs.src.Name + ": SUCCESS reply without <token>"}
	}
	if cs.needStat && w.rep.State == statusNone {
		return &failure{class: classProtocol, key: "no-status", detail: "step " + cs.src.Name + ": no <action><status> in the reply"}
	}
	if len(cs.statuses) > 0 && !slices.Contains(cs.statuses, w.rep.State) {
		detail := "step " + cs.src.Name + ": the action"
		if w.rep.Token != "" {
			detail += " " + w.rep.Token
		}
		detail += " reads " + w.statusText(w.rep.State)
		if cs.hint != "" {
			detail += ": " + cs.hint
		}
		return &failure{class: classCheck, key: cs.failKey + "-" + w.rep.State.String(), detail: detail}
	}
	for _, s := range cs.save {
		v, ok := w.value(s.src)
		if !ok {
			return &failure{class: classProtocol, key: "no-" + strings.Join(s.src, "-"), detail: "step " + cs.src.Name + ": nothing at " + strings.Join(s.src, "/") + " in the reply"}
		}
		w.slots[s.slot] = v
	}
	for _, p := range cs.pool {
		v, ok := w.value(p.src)
		if !ok {
			return &failure{class: classProtocol, key: "no-" + strings.Join(p.src, "-"), detail: "step " + cs.src.Name + ": nothing at " + strings.Join(p.src, "/") + " in the reply"}
		}
		p.p.add(v)
	}
	return nil
}

// value reads a source of the last reply: its token, its status, or the
// text at an element path.
func (w *worker) value(src []string) (string, bool) {
	if len(src) == 1 {
		switch strings.ToLower(src[0]) {
		case "token":
			return w.rep.Token, w.rep.Token != ""
		case "status":
			if w.rep.State == statusNone {
				return "", false
			}
			if w.rep.State == statusOther {
				return w.rep.StateRaw, true
			}
			return w.rep.State.String(), true
		}
	}
	return extractPath(w.k.resp.Body(), src)
}

// outcome.addMeasured records a measured duration of the operation.
func (o *outcome) addMeasured(row int, d time.Duration) {
	if o.nmeas < len(o.meas) {
		o.meas[o.nmeas] = measured{row, d}
		o.nmeas++
	}
}

// newWorker returns a worker with its own connection state; id -1 for
// setup and cleanup.
func (r *runner) newWorker(id int) *worker {
	w := &worker{r: r, k: r.cl.conn(), timer: time.NewTimer(time.Hour), id: id,
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(id+1)))}
	w.timer.Stop()
	if r.pg != nil {
		w.slots = make([]string, len(r.pg.slots))
		w.clocks = make([]time.Time, len(r.pg.clocks))
	}
	return w
}
