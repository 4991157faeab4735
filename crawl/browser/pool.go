package browser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// ErrClosed: the pool was closed.
var ErrClosed = errors.New("browser: pool closed")

// ErrBrowserLost: the browser died (crashed or was killed) during a
// render, and again during its one retry.
var ErrBrowserLost = errors.New("browser: the browser process died")

// ErrTabCrashed: the tab's renderer process crashed during a render, and
// again during its one retry.
var ErrTabCrashed = errors.New("browser: the page's renderer crashed")

// StartError: the browser could not start. Stderr is the tail of what the
// browser printed (its own reason), also part of Error().
type StartError struct {
	Exec   string
	Err    error
	Stderr string
}

func (e *StartError) Error() string {
	msg := fmt.Sprintf("browser: %s could not start: %v", e.Exec, e.Err)
	if e.Stderr != "" {
		msg += "; browser output: " + e.Stderr
	}
	return msg
}

func (e *StartError) Unwrap() error { return e.Err }

// Stats are counters of a Pool's life.
type Stats struct {
	// PID is the browser's process id (0 when no browser runs).
	PID int
	// Starts counts browser starts; Restarts those that replaced a browser
	// that died.
	Starts, Restarts int
	// TabsOpen is the number of tabs open now (idle or busy); Busy those
	// rendering.
	TabsOpen, Busy int
	// TabsOpened counts tabs ever opened (recycling opens new ones).
	TabsOpened int
	// Rendered counts renders that returned a page; Retried those that
	// needed their one retry.
	Rendered, Retried uint64
	// PopupsClosed counts page targets opened by a page (window.open that
	// got past --block-new-web-contents) that the pool closed.
	PopupsClosed uint64
	// InternalErrors counts chromedp's internal error lines (they are not
	// logged: they may quote page data).
	InternalErrors uint64
	// ProxyDenied counts requests the deny list's proxy refused
	// (Config.Deny).
	ProxyDenied uint64
}

// Pool is one browser process and a bounded set of tabs. It is safe for
// concurrent use. The browser starts on first use and stops after
// Config.IdleTimeout without renders, and on Close.
type Pool struct {
	cfg  Config
	exec string
	log  *slog.Logger
	sem  chan struct{}

	mu         sync.Mutex
	idle       *sync.Cond // signalled when busy drops
	gen        *generation
	starting   chan struct{} // closed when the start in progress ends
	startErr   error
	free       []*tab
	open       int
	busy       int
	idleTimer  *time.Timer
	closed     bool
	starts     int
	restarts   int
	tabsOpened int

	rendered, retried, popups, internal atomic.Uint64

	proxy *guardProxy // the deny list's proxy (Config.Deny), started with the first browser

	wg sync.WaitGroup // tab closers, idle stops
}

// New checks the configuration and finds the browser binary; it does not
// start the browser. It returns an error wrapping ErrNoBrowser when the
// binary is missing.
func New(cfg Config) (*Pool, error) {
	cfg = cfg.withDefaults()
	path, err := FindExec(cfg.Exec)
	if err != nil {
		return nil, err
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if st, err := os.Stat(cfg.TempDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("browser: TempDir %q is not a folder", cfg.TempDir)
	}
	p := &Pool{
		cfg:  cfg,
		exec: path,
		log:  cfg.Logger,
		sem:  make(chan struct{}, cfg.Tabs),
	}
	p.idle = sync.NewCond(&p.mu)
	return p, nil
}

// Exec returns the browser binary the pool runs.
func (p *Pool) Exec() string { return p.exec }

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{
		Starts: p.starts, Restarts: p.restarts, TabsOpen: p.open, Busy: p.busy, TabsOpened: p.tabsOpened,
		Rendered: p.rendered.Load(), Retried: p.retried.Load(), PopupsClosed: p.popups.Load(),
		InternalErrors: p.internal.Load(),
	}
	if p.gen != nil && !p.gen.dead() {
		s.PID = p.gen.pid
	}
	if p.proxy != nil {
		s.ProxyDenied = p.proxy.denied.Load()
	}
	return s
}

// Processes returns the pids of every process of the running browser (the
// browser and all it started), found by the marker in their environment;
// nil when no browser runs.
func (p *Pool) Processes() []int {
	p.mu.Lock()
	g := p.gen
	p.mu.Unlock()
	if g == nil {
		return nil
	}
	return browserProcesses(g.pid, g.marker)
}

// Close stops the browser (its whole process group), waits for the pool's
// goroutines, and removes the user-data-dir. Renders in progress fail with
// ErrClosed. Close is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	if p.idleTimer != nil {
		p.idleTimer.Stop()
	}
	g := p.gen
	p.gen = nil
	p.free = nil
	starting := p.starting
	p.mu.Unlock()
	if starting != nil {
		<-starting
		p.mu.Lock()
		if p.gen != nil { // a start that finished after Close began
			g2 := p.gen
			p.gen = nil
			p.mu.Unlock()
			g2.stop()
		} else {
			p.mu.Unlock()
		}
	}
	if g != nil {
		g.stop()
	}
	// Renders in progress fail fast once the browser is gone; wait for
	// them so that every goroutine they start is counted by wg.
	p.mu.Lock()
	for p.busy > 0 {
		p.idle.Wait()
	}
	proxy := p.proxy
	p.proxy = nil
	p.mu.Unlock()
	p.wg.Wait()
	if proxy != nil {
		proxy.close()
	}
	return nil
}

// generation is one browser process.
type generation struct {
	p           *Pool
	marker      string
	dir         string
	allocCancel context.CancelFunc
	ctx         context.Context // the browser's first chromedp context
	cancel      context.CancelFunc
	browser     *chromedp.Browser
	pid         int
	userAgent   string // the browser's own User-Agent
	stderr      *tailBuffer
	done        chan struct{} // closed when the browser is gone
	doneOnce    sync.Once
	stopOnce    sync.Once
	stopped     chan struct{}
}

func (g *generation) dead() bool {
	if g.ctx != nil && g.ctx.Err() != nil {
		return true // done is closed from another goroutine, a moment later
	}
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

var genSeq atomic.Int64

// startHook, when set (by the tests), is called with the pid (= process
// group id) of every browser started.
var startHook func(pgid int)

// flags returns the browser's command line flags (without user-data-dir,
// which chromedp receives through UserDataDir).
func (p *Pool) flags() []chromedp.ExecAllocatorOption {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(p.exec),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-hang-monitor", true),
		chromedp.Flag("disable-prompt-on-repost", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		// LocalNetworkAccessChecks: a rendered page is fulfilled from the
		// crawl's bytes, so it has no address of its own and counts as
		// public; Chromium then refuses its requests to private and
		// loopback addresses (an intranet site's own scripts and data)
		// unless they go through a proxy. What the browser may reach is
		// [Security] DeniedAddresses' rule (Config.Deny), with or
		// without the proxy.
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,InterestFeedContentSuggestions,SpareRendererForSitePerProcess,LocalNetworkAccessChecks"),
		chromedp.Flag("block-new-web-contents", true),
		chromedp.Flag("deny-permission-prompts", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("window-size", strconv.Itoa(p.cfg.WindowWidth)+","+strconv.Itoa(p.cfg.WindowHeight)),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.Flag("no-sandbox", true))
	}
	if shmSmall() {
		opts = append(opts, chromedp.Flag("disable-dev-shm-usage", true))
	}
	for _, f := range p.cfg.ExtraFlags {
		name, val, hasVal := cutFlag(f)
		if name == "" {
			continue
		}
		if hasVal {
			opts = append(opts, chromedp.Flag(name, val))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	return opts
}

func cutFlag(f string) (name, val string, hasVal bool) {
	for len(f) > 0 && f[0] == '-' {
		f = f[1:]
	}
	for i := 0; i < len(f); i++ {
		if f[i] == '=' {
			return f[:i], f[i+1:], true
		}
	}
	return f, "", false
}

// shmSmall reports whether /dev/shm has less than 512 MiB free (then the
// browser keeps its shared memory in the temporary folder instead).
func shmSmall() bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil {
		return true
	}
	return uint64(st.Bavail)*uint64(st.Bsize) < 512<<20
}

// start starts a browser process. It runs with no caller context: the
// browser outlives the render that asked for it.
func (p *Pool) start() (*generation, error) {
	sweepStale(p.cfg.TempDir, p.log)
	self, err := identity(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("browser: reading this process's start time: %w", err)
	}
	dir, err := os.MkdirTemp(p.cfg.TempDir, dirPrefix+self+"-")
	if err != nil {
		return nil, fmt.Errorf("browser: creating the user-data-dir: %w", err)
	}
	g := &generation{
		p:       p,
		marker:  self + "/" + strconv.FormatInt(genSeq.Add(1), 10),
		dir:     dir,
		stderr:  &tailBuffer{max: 4 << 10},
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	opts := p.flags()
	// The proxy runs for the deny list, and for the environment's proxy
	// (the browser's requests go through it as the crawl's do).
	if !p.cfg.Deny.Empty() || environmentProxy() != nil {
		p.mu.Lock()
		proxy := p.proxy
		p.mu.Unlock()
		if proxy == nil {
			if proxy, err = startGuardProxy(p.cfg.Deny, p.log); err != nil {
				_ = os.RemoveAll(dir)
				return nil, fmt.Errorf("browser: starting the deny list's proxy: %w", err)
			}
			p.mu.Lock()
			p.proxy = proxy
			p.mu.Unlock()
		}
		// WebRTC sends its UDP (STUN, media) itself, past the proxy:
		// with this policy it uses no UDP that does not go through the
		// proxy, so a page cannot send packets to a denied address.
		opts = append(opts, chromedp.ProxyServer("http://"+proxy.addr()), chromedp.Flag("proxy-bypass-list", "<-loopback>"),
			chromedp.Flag("force-webrtc-ip-handling-policy", "disable_non_proxied_udp"))
	}
	opts = append(opts,
		chromedp.UserDataDir(dir),
		chromedp.Env(markerEnv+"="+g.marker),
		chromedp.CombinedOutput(g.stderr),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Its own process group, killed whole on stop; SIGKILL when
			// the thread that started it exits (chromedp starts the
			// browser from a goroutine locked to its OS thread until the
			// browser exits, so that is when this process dies).
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			cmd.Cancel = func() error {
				if cmd.Process == nil {
					return nil
				}
				return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		}),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	discard := func(string, ...any) { p.internal.Add(1) }
	ctx, cancel := chromedp.NewContext(allocCtx,
		chromedp.WithLogf(func(string, ...any) {}),
		chromedp.WithErrorf(discard),
		chromedp.WithBrowserOption(chromedp.WithBrowserErrorf(discard), chromedp.WithBrowserLogf(func(string, ...any) {})),
	)
	g.allocCancel, g.ctx, g.cancel = allocCancel, ctx, cancel

	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }() // the first Do binds the browser to ctx itself
	timer := time.NewTimer(p.cfg.StartTimeout)
	defer timer.Stop()
	select {
	case err = <-started:
	case <-timer.C:
		err = fmt.Errorf("no answer within %s", p.cfg.StartTimeout)
		cancel()
		<-started
	}
	if err == nil {
		c := chromedp.FromContext(ctx)
		if c == nil || c.Browser == nil || c.Browser.Process() == nil {
			err = errors.New("no browser process after start")
		} else {
			g.browser = c.Browser
			g.pid = c.Browser.Process().Pid
			exe, _ := os.Readlink("/proc/" + strconv.Itoa(g.pid) + "/exe")
			err = writeOwnerFile(dir, g.pid, exe)
		}
	}
	if err == nil {
		var v cdpbrowser.GetVersionResult
		if v, err = cdp.Call(ctx, g.browser, cdpbrowser.GetVersion, cdp.Empty{}); err == nil {
			g.userAgent = v.UserAgent
		}
	}
	if err == nil {
		_, err = cdp.Call(ctx, g.browser, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorDeny})
	}
	if err == nil {
		err = chromedp.ListenBrowser(ctx, g.onBrowserEvent)
	}
	if err == nil {
		// The browser's start-up tab (about:blank, which chromedp's first
		// context attached to) is never used for a render; closed, it keeps
		// no renderer process alive: with no render in progress and no idle
		// tab, the browser runs no renderer at all.
		if c := chromedp.FromContext(ctx); c.Target != nil {
			_, err = cdp.Call(ctx, g.browser, target.CloseTarget, target.CloseTargetParams{TargetID: c.Target.TargetID})
		}
	}
	if err != nil {
		g.closeDone()
		g.stop()
		return nil, &StartError{Exec: p.exec, Err: err, Stderr: g.stderr.String()}
	}
	context.AfterFunc(ctx, g.closeDone)
	if startHook != nil {
		startHook(g.pid)
	}
	return g, nil
}

func (g *generation) closeDone() { g.doneOnce.Do(func() { close(g.done) }) }

// onBrowserEvent closes page targets that a page opened (window.open that
// got past --block-new-web-contents). It runs in chromedp's read loop, so
// the close is sent from another goroutine.
func (g *generation) onBrowserEvent(ev any) {
	e, ok := ev.(*target.EventTargetCreated)
	if !ok || e.TargetInfo == nil || e.TargetInfo.Type != "page" || e.TargetInfo.OpenerID == "" {
		return
	}
	id := e.TargetInfo.TargetID
	g.p.popups.Add(1)
	g.p.mu.Lock()
	if g.p.closed { // Close is waiting for wg: add nothing to it
		g.p.mu.Unlock()
		return
	}
	g.p.wg.Add(1)
	g.p.mu.Unlock()
	go func() {
		defer g.p.wg.Done()
		ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
		defer cancel()
		_, _ = cdp.Call(ctx, g.browser, target.CloseTarget, target.CloseTargetParams{TargetID: id})
	}()
}

// hung stops g, a browser that did not answer what (opening a tab,
// preparing one) within Config.AnswerTimeout, as a dead one is stopped
// (every process of it killed), and returns the render's error: the next
// render starts a new browser, and Render retries this one there.
func (g *generation) hung(what string) error {
	g.p.log.Warn("browser: the browser does not answer; stopping it", "pid", g.pid, "step", what, "within", g.p.cfg.AnswerTimeout)
	g.stop()
	return fmt.Errorf("%w: it did not answer %s within %s", ErrBrowserLost, what, g.p.cfg.AnswerTimeout)
}

// stop kills the browser's process group and every process carrying its
// marker, waits for chromedp's goroutines, and removes the user-data-dir.
func (g *generation) stop() {
	g.stopOnce.Do(func() {
		defer close(g.stopped)
		g.cancel()
		if g.pid > 0 {
			_ = syscall.Kill(-g.pid, syscall.SIGKILL)
		}
		g.allocCancel() // waits for the process to be reaped
		if left := killMarked(g.pid, g.marker, 5*time.Second); left > 0 {
			g.p.log.Error("browser: processes survived SIGKILL", "count", left, "pid", g.pid)
		}
		for i := 0; ; i++ {
			err := os.RemoveAll(g.dir)
			if err == nil || i == 50 {
				if err != nil {
					g.p.log.Warn("browser: could not remove the user-data-dir", "dir", g.dir, "err", err)
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	<-g.stopped
}

// ensureGen returns a running browser, starting one when there is none or
// the last one died. Only one start runs at a time; other callers wait
// for it (or for ctx).
func (p *Pool) ensureGen(ctx context.Context) (*generation, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if g := p.gen; g != nil && !g.dead() {
			p.mu.Unlock()
			return g, nil
		}
		if p.starting != nil {
			ch := p.starting
			p.mu.Unlock()
			select {
			case <-ch:
				p.mu.Lock()
				err := p.startErr
				p.mu.Unlock()
				if err != nil {
					return nil, err
				}
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		// Start one. A dead generation is cleaned up first.
		old := p.gen
		p.gen = nil
		var oldTabs []*tab
		if old != nil {
			oldTabs = p.free
			p.free = nil
			p.open -= len(oldTabs)
		}
		ch := make(chan struct{})
		p.starting = ch
		p.mu.Unlock()

		for _, t := range oldTabs {
			t.cancelNoWait()
		}
		if old != nil {
			p.log.Warn("browser: the browser died; restarting it", "pid", old.pid, "output", old.stderr.String())
			old.stop()
		}
		go func() {
			g, err := p.start()
			p.mu.Lock()
			p.starting = nil
			p.startErr = err
			if err == nil {
				if p.closed {
					p.mu.Unlock()
					g.stop()
					close(ch)
					return
				}
				p.gen = g
				p.starts++
				if old != nil {
					p.restarts++
				}
				p.log.Info("browser: started", "pid", g.pid, "exec", p.exec)
			}
			p.mu.Unlock()
			close(ch)
		}()
		select {
		case <-ch:
			p.mu.Lock()
			err := p.startErr
			p.mu.Unlock()
			if err != nil {
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// acquire takes a tab slot and a tab (an idle one, or a new one).
func (p *Pool) acquire(ctx context.Context) (*tab, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	t, err := p.acquireTab(ctx)
	if err != nil {
		<-p.sem
		p.maybeIdle()
		return nil, err
	}
	return t, nil
}

func (p *Pool) acquireTab(ctx context.Context) (*tab, error) {
	p.mu.Lock()
	p.busy++
	if p.idleTimer != nil {
		p.idleTimer.Stop()
	}
	p.mu.Unlock()
	fail := func(err error) (*tab, error) {
		p.mu.Lock()
		p.busy--
		p.idle.Broadcast()
		p.mu.Unlock()
		return nil, err
	}
	g, err := p.ensureGen(ctx)
	if err != nil {
		return fail(err)
	}
	p.mu.Lock()
	for len(p.free) > 0 {
		t := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		if t.unscope != nil {
			t.unscope() // closeScoped, if already running, no longer finds it in free
			t.unscope = nil
		}
		if t.gen == g && !t.broken() {
			p.mu.Unlock()
			return t, nil
		}
		p.open--
		t.cancelNoWait()
	}
	p.open++
	p.tabsOpened++
	p.mu.Unlock()
	// The tab's first Do must run on the tab's own context (chromedp binds
	// the tab to the context of its first Do), so the creation runs apart
	// from ctx; a caller that gives up leaves it to be closed.
	ch := make(chan tabResult, 1)
	go func() {
		t, err := newTab(g)
		ch <- tabResult{t, err}
	}()
	// A browser that does not open a tab within AnswerTimeout is hung:
	// no render would ever end.
	timer := time.NewTimer(p.cfg.AnswerTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			p.mu.Lock()
			p.open--
			p.mu.Unlock()
			if g.dead() {
				return fail(fmt.Errorf("%w: %v", ErrBrowserLost, r.err))
			}
			return fail(fmt.Errorf("browser: opening a tab: %w", r.err))
		}
		return r.t, nil
	case <-ctx.Done():
		p.abandonTab(ch)
		return fail(ctx.Err())
	case <-timer.C:
		p.abandonTab(ch)
		return fail(g.hung("opening a tab"))
	}
}

// tabResult is the outcome of newTab.
type tabResult struct {
	t   *tab
	err error
}

// abandonTab leaves a tab being opened, which acquireTab no longer waits
// for, to be closed once it is open (or its opening failed).
func (p *Pool) abandonTab(ch <-chan tabResult) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		r := <-ch
		if r.err == nil {
			r.t.close()
		}
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
	}()
}

// release gives a tab back: kept for the next render when reuse is true
// and the tab is healthy and young enough; otherwise closed (in the
// background: the slot is freed when the tab is gone, so no more than
// Config.Tabs tabs exist at once). A kept tab is closed when scope ends,
// unless a render took it before (RenderOptions.TabsEndWithContext).
func (p *Pool) release(t *tab, reuse bool, scope context.Context) {
	t.pages++
	p.mu.Lock()
	p.busy--
	p.idle.Broadcast()
	keep := reuse && !p.closed && p.gen == t.gen && !t.broken() && t.pages < p.cfg.TabMaxPages
	if keep {
		p.free = append(p.free, t)
		if scope != nil {
			// A scope that has already ended runs this at once.
			t.unscope = context.AfterFunc(scope, func() { p.closeScoped(t) })
		}
		p.mu.Unlock()
		<-p.sem
		p.maybeIdle()
		return
	}
	p.wg.Add(1) // before busy can be seen as 0 by Close
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		t.close()
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
		<-p.sem
		p.maybeIdle()
	}()
}

// closeScoped closes idle tab t when the context of its last render has
// ended, if it is still idle in the pool.
func (p *Pool) closeScoped(t *tab) {
	p.mu.Lock()
	i := -1
	for j, f := range p.free {
		if f == t {
			i = j
			break
		}
	}
	if i < 0 || p.closed { // taken by a render, or dropped with its browser
		p.mu.Unlock()
		return
	}
	p.free = append(p.free[:i], p.free[i+1:]...)
	t.unscope = nil
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	t.close()
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
}

// maybeIdle arms the idle timer when nothing is busy.
func (p *Pool) maybeIdle() {
	if p.cfg.IdleTimeout < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.busy > 0 || p.gen == nil {
		return
	}
	g := p.gen
	if p.idleTimer != nil {
		p.idleTimer.Stop()
	}
	p.idleTimer = time.AfterFunc(p.cfg.IdleTimeout, func() { p.idleStop(g) })
}

// idleStop stops generation g if it is still the pool's and still idle.
func (p *Pool) idleStop(g *generation) {
	p.mu.Lock()
	if p.closed || p.gen != g || p.busy > 0 || p.starting != nil {
		p.mu.Unlock()
		return
	}
	tabs := p.free
	p.free = nil
	p.open -= len(tabs)
	p.gen = nil
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	p.log.Info("browser: idle; stopping the browser", "pid", g.pid, "idle", p.cfg.IdleTimeout)
	for _, t := range tabs {
		t.cancelNoWait()
	}
	g.stop()
}
