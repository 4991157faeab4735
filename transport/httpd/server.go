package httpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// Config wires the front end to the rest of the server.
type Config struct {
	System *actor.ActorSystem
	// Queue is the fetch queue: every fetch action and every QueueInfo
	// request goes through it (an in-process *queue.Queue, or a wrapper
	// around one).
	Queue queue.API
	// Repository serves the synchronous actions (View and TaskList, when
	// it implements fetch.Viewer and fetch.TaskLister) and redacts shown
	// parameters (fetch.Secrets); fetch actions go through Queue.
	Repository fetch.Repository
	Version    Version

	MaxRequestBytes int // largest body (Fetch); default 64 MiB
	// MaxRequestParameters bounds a request's parameters (URI and body);
	// default 1000.
	MaxRequestParameters int
	// MaxListResults bounds the actions of one GetStatus (and
	// GetActionParameters) listing; default 1000.
	MaxListResults int
	ReadTimeout    time.Duration // default 30s
	WriteTimeout   time.Duration // default 30s
	IdleTimeout    time.Duration // default 120s
	RequestLogSize int           // GetRequestLog entries; default 1000, negative keeps none

	Logger *slog.Logger
	Now    func() time.Time

	// Port says which port this server is: the ACI port (the default), or
	// the service port (GetStatus, GetStatusInfo, Stop, /metrics). The role
	// table (auth.Rules) is per port.
	Port auth.Port
	// Policy decides who may send which action; nil: IDOL's defaults
	// (auth.Default: Admin and ServiceControl from localhost only).
	Policy *auth.Policy
	// AllowedHosts are the hosts a request's Host header may name (any
	// port; compared without case). nil: no check; the server passes
	// [Server] AllowedHosts or its default.
	AllowedHosts []string
	// TLS, when set, makes Serve speak HTTPS (tlsconf builds it from an
	// SSLConfig section).
	TLS *tls.Config
	// Metrics, when set, answers GET /metrics (the service port) and
	// observes every request.
	Metrics Metrics
	// Stop is called by the service port's Stop action, after the reply
	// is sent; it should shut the server down as SIGTERM does.
	Stop func()
	// DashboardURL is where the service port's page links the dashboard
	// (action=Admin on the ACI port); "" when unknown.
	DashboardURL func(host string) string
	// ServicePort is the service port's number, which GetStatus reports
	// after the ACI port (serviceport) as IDOL's does; 0: there is none.
	ServicePort int
	// ACI is, on the service port, the ACI port's server: the service
	// port's GetStatus is its reply (its aciport, its supportedactions).
	// nil: the service port answers GetStatus itself.
	ACI *Server
	// MaxConnectionsPerClient bounds the connections one client (an IPv4
	// address, or an IPv6 /64) holds open at once, unless its address
	// holds Admin or ServiceControl (clientLimiter); 0: no bound.
	MaxConnectionsPerClient int
	// MaxReplyBytesPerClient bounds the bytes of large replies (as sent:
	// compressed or not, a View's document included) one client limited
	// by MaxConnectionsPerClient has waiting to be sent (send); 0: no
	// bound.
	MaxReplyBytesPerClient int
}

// Metrics is what the front end reports to, and how it serves /metrics.
type Metrics interface {
	// Request counts one request: the action (as auth.Rules spells it,
	// "other" for one this server does not answer), its outcome (success,
	// failure, denied) and how long it took.
	Request(port auth.Port, action, outcome string, d time.Duration)
	// Serve writes the metrics page.
	Serve(ctx *fasthttp.RequestCtx)
	// TLSHandshakeFailed counts a TLS handshake the port refused.
	TLSHandshakeFailed()
	// ConnectionRefused counts a connection the port refused because its
	// client had MaxConnectionsPerClient open already.
	ConnectionRefused(port auth.Port)
}

// Version is what GetVersion and GetStatus report (the server fills it from
// internal/version).
type Version struct {
	Product string // default "connector"
	// ProductType is the connector's product type (HTTPCONNECTOR), the
	// second entry of GetVersion's producttypecsv after CONNECTOR; empty:
	// CONNECTOR alone.
	ProductType string
	Version     string // release version, e.g. 1.2.0
	// Revision is the source revision (e.g. 0123456789ab, or
	// 0123456789ab-dirty); empty or "unknown" when not known.
	Revision string
	// Build is the build number: GetVersion's autn:build, an unsigned
	// integer as OpenText's getVersionResponse.xsd types it.
	Build      uint64
	ConfigPath string
	Directory  string
}

// Server is the ACI HTTP server.
type Server struct {
	cfg       Config
	log       *slog.Logger
	srv       *fasthttp.Server
	routes    map[string]handlerFunc
	policy    *auth.Policy
	hosts     []string
	hostBytes [][]byte // hosts, for comparing without a copy
	// unguarded skips the guard (origin, roles, refused parameters) and the
	// metrics: set only by the benchmarks that measure their cost.
	unguarded bool
	// poisonBodies makes putBody zero a body it takes back: set by the
	// tests that check nothing reads a body after that.
	poisonBodies atomic.Bool
	refusals     refusals // logRefusal's lines
	reqlog       *actor.PID
	// logEntries are the request log's entries, reused (entryPool).
	logEntries entryPool
	// actionKeys maps each key of routes to itself (loggedAction).
	actionKeys map[string]string
	started    time.Time
	port       atomic.Int32
	served     atomic.Uint64
	bufs       sync.Pool
	bodies     sync.Pool // *[]byte: request bodies (readBody)
	stopped    atomic.Bool
	mu         sync.Mutex // guards ln
	ln         net.Listener
	// fhLog is fasthttp's logger; it counts and logs failed TLS
	// handshakes too (tlsListener).
	fhLog *slogPrintf
}

// result is what a handler produces: reply data, or raw bytes (View).
type result struct {
	// actions, when set, is an <actions> reply: encoded straight from the
	// statuses in XML (the hot path), through aci.ActionNode otherwise.
	actions []*messages.ActionStatus
	// entries, when listed, is an <actions> reply in XML whose entries
	// come encoded or as statuses (entryLister).
	entries []queue.ListEntry
	listed  bool
	data    []aci.Node
	raw     []byte
	rawType string
	status  int
	headers [][2]string
	// after runs once the reply has been written (the service port's Stop).
	after func()
	// recycle, when set, takes the result back once its reply has been
	// written (and after has run): nothing may use it after that.
	recycle func(*result)
	// one holds the status of a one-action reply (oneAction).
	one [1]*messages.ActionStatus
}

// oneAction is an <actions> reply of one status, in one allocation.
func oneAction(st *messages.ActionStatus) *result {
	r := &result{}
	r.one[0] = st
	r.actions = r.one[:]
	return r
}

// handlerFunc serves one ACI action. ctx is the request's context
// (requestContext: its values, never cancelled by a graceful shutdown).
type handlerFunc func(ctx context.Context, req *aci.Request) (*result, error)

// requestContext is a request's context for the handlers: the fasthttp
// request's values and deadline, but not its Done, which fasthttp closes
// for every request in flight as soon as a graceful shutdown starts, while
// the server still finishes those requests. It holds one pointer, so
// passing it as a context.Context allocates nothing.
type requestContext struct{ *fasthttp.RequestCtx }

func (requestContext) Done() <-chan struct{} { return nil }
func (requestContext) Err() error            { return nil }

// New builds a server. It does not listen yet.
func New(cfg Config) (*Server, error) {
	if cfg.System == nil || cfg.Queue == nil || cfg.Repository == nil {
		return nil, errors.New("httpd: Config needs System, Queue and Repository")
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 64 << 20
	}
	if cfg.MaxRequestParameters <= 0 {
		cfg.MaxRequestParameters = 1000
	}
	if cfg.MaxListResults <= 0 {
		cfg.MaxListResults = 1000
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	switch {
	case cfg.RequestLogSize == 0:
		cfg.RequestLogSize = 1000
	case cfg.RequestLogSize < 0:
		cfg.RequestLogSize = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version.Product == "" {
		cfg.Version.Product = "connector"
	}
	if cfg.Version.Directory == "" {
		cfg.Version.Directory, _ = os.Getwd()
	}
	if cfg.Policy == nil {
		cfg.Policy = auth.Default()
	}
	if cfg.Port == auth.ServicePort {
		cfg.RequestLogSize = 0 // the ACI port keeps the request log
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "httpd"), started: cfg.Now(), policy: cfg.Policy, hosts: cfg.AllowedHosts}
	if slices.Contains(s.hosts, "*") {
		s.hosts = nil
	}
	for _, h := range s.hosts {
		s.hostBytes = append(s.hostBytes, fqdnless([]byte(h)))
	}
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	s.bodies.New = func() any { return new([]byte) }
	if cfg.Port == auth.ServicePort {
		s.log = cfg.Logger.With("component", "service")
		getStatus := s.getStatus
		if cfg.ACI != nil {
			getStatus = cfg.ACI.getStatus
		}
		s.routes = map[string]handlerFunc{
			"GETSTATUS":       getStatus,
			"GETSTATUSINFO":   s.getStatusInfo,
			"STOP":            s.stopService,
			"ADMIN":           s.servicePage,
			"SHOWPERMISSIONS": s.showPermissions,
		}
	} else {
		s.routes = map[string]handlerFunc{
			"FETCH":           s.fetch,
			"QUEUEINFO":       s.queueInfo,
			"GETVERSION":      s.getVersion,
			"GETSTATUS":       s.getStatus,
			"GETREQUESTLOG":   s.getRequestLog,
			"GETPID":          s.getPid,
			"GETLICENSEINFO":  s.getLicenseInfo,
			"THREADSTATUS":    s.threadStatus,
			"SHOWPERMISSIONS": s.showPermissions,
			"ADMIN":           s.dashboard,
		}
		if v, ok := cfg.Repository.(fetch.Viewer); ok {
			s.routes["VIEW"] = func(ctx context.Context, r *aci.Request) (*result, error) { return s.view(ctx, v, r) }
		}
		if tl, ok := cfg.Repository.(fetch.TaskLister); ok {
			s.routes["TASKLIST"] = func(ctx context.Context, r *aci.Request) (*result, error) { return s.taskList(ctx, tl, r) }
		}
	}
	s.actionKeys = make(map[string]string, len(s.routes))
	for a := range s.routes {
		s.actionKeys[a] = a
	}
	if cfg.RequestLogSize > 0 {
		// Every request sends the log its entry: the entry is stored on the
		// goroutine that sends it (the request's), instead of waking a
		// goroutine for each, as the queue's task actors are; the log never
		// blocks in Receive, so no request is held up.
		pid, err := cfg.System.Root.SpawnNamed(actor.PropsFromProducer(newRequestLog(cfg.RequestLogSize, &s.logEntries),
			actor.WithDispatcher(actor.NewSynchronizedDispatcher(300))), "request-log")
		if err != nil {
			return nil, fmt.Errorf("httpd: start request log: %w", err)
		}
		s.reqlog = pid
	}
	s.fhLog = &slogPrintf{l: s.log, metrics: cfg.Metrics}
	s.srv = &fasthttp.Server{
		Handler:            compressLarge(s.handle),
		ErrorHandler:       s.unreadable,
		Name:               cfg.Version.Product,
		MaxRequestBodySize: cfg.MaxRequestBytes,
		// Actions other than Fetch take a small body: known from the
		// request line, their limit applies before the body is read.
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			n := h.ContentLength()
			if n == 0 || n == -2 {
				// No body (none announced, and not chunked: fasthttp
				// reads none), so no limit to choose: the request line
				// is not parsed twice.
				return fasthttp.RequestConfig{}
			}
			limit, _ := s.bodyLimit(s.uriAction(h.RequestURI()))
			if n > limit {
				// Refused without reading the body. The body is streamed
				// (StreamRequestBody), and fasthttp would first wait for
				// up to 8 KiB of it: the request goes on as one without
				// a body, marked, and on the connection's last request;
				// readBody refuses it. Its "Expect: 100-continue" is
				// dropped: fasthttp would answer "100 Continue" before
				// the handler runs, and the client would then send the
				// body it is refused for. Without it the refusal is the
				// first reply, as RFC 9110 (10.1.1) lets a server answer.
				h.SetContentLength(0)
				h.Del(fasthttp.HeaderExpect)
				h.Set(tooLargeHeader, strconv.Itoa(n))
				h.SetConnectionClose()
			}
			return fasthttp.RequestConfig{MaxRequestBodySize: limit}
		},
		// A request with "Expect: 100-continue" that is refused by its
		// request line and headers alone is answered before its body is
		// asked for (refusedBeforeBody).
		ExpectHandler:   s.expect,
		ReadTimeout:     cfg.ReadTimeout,
		WriteTimeout:    cfg.WriteTimeout,
		IdleTimeout:     cfg.IdleTimeout,
		ReadBufferSize:  readBufferSize,
		Logger:          s.fhLog,
		CloseOnShutdown: true,
		// The ACI codec reads multipart bodies itself, in order. fasthttp's
		// own pre-parse would keep the parts in a map (PostBody then
		// re-encodes them in random order, so which of two duplicates
		// "comes first" changed from request to request) and may spill
		// large parts to temporary files.
		DisablePreParseMultipartForm: true,
		// fasthttp's own messages about unreadable requests must not
		// quote the request's headers (Authorization, Cookie).
		SecureErrorLogMessage: true,
		// The handler reads the body as it arrives (readBody), instead of
		// fasthttp allocating all of an announced Content-Length first.
		StreamRequestBody: true,
	}
	return s, nil
}

// expect is fasthttp's ExpectHandler: it runs for a request with
// "Expect: 100-continue" once its headers are read, before its body. A
// request the guard refuses whatever its body says (refusedBeforeBody) is
// answered here, by the handler, without the body: fasthttp then sends
// that reply instead of "100 Continue", does not call the handler again,
// and closes the connection (the client may have started sending the
// body). Any other request is asked for its body. fasthttp's
// HeaderReceived, which sees only the headers, cannot decide this: the
// roles depend on the client's address and certificate. (fasthttp numbers
// the connection's request after this hook: the request log shows such a
// request as thread 0 when it is the connection's first.)
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	if !s.refusedBeforeBody(ctx) {
		return fasthttp.StatusContinue
	}
	lingerOnClose(ctx) // a client that did not wait may be sending the body
	// No body was read (ctx.Request has no body stream): handle parses
	// the request line alone, which names the action and, for QueueInfo,
	// its QueueAction, as the body could not change (the first
	// occurrence of a parameter counts).
	s.srv.Handler(ctx)
	return ctx.Response.StatusCode()
}

// refusedBeforeBody reports whether the guard refuses a request by its
// request line and headers, whatever its body holds: a browser's request
// from another site or for a Host the server does not answer
// (checkOrigin), or an action (named in the request line, with its
// QueueAction for QueueInfo) that no role of the client allows.
func (s *Server) refusedBeforeBody(ctx *fasthttp.RequestCtx) bool {
	if !aciMethod(ctx) {
		return true // refuseMethod
	}
	if s.unguarded {
		return false
	}
	req, err := aci.ParseLimited([]byte("GET"), ctx.RequestURI(), nil, nil, aci.Limits{MaxParams: s.cfg.MaxRequestParameters})
	if err != nil || req == nil || req.Action == "" {
		return false // the action may be in the body; or handle answers the error
	}
	if s.checkOrigin(ctx, req.Action) != nil {
		return true
	}
	if _, ok := s.routes[req.Action]; !ok {
		return false
	}
	sub := ""
	if req.Action == "QUEUEINFO" {
		v, ok := req.Params.Get("QueueAction")
		if !ok {
			return false // in the body, maybe
		}
		sub = strings.TrimSpace(v)
	}
	c := s.identify(ctx)
	defer callers.Put(c)
	return !c.grant.Allows(s.cfg.Port, actionName(req.Action), sub)
}

// Serve answers requests on ln until Shutdown. It returns nil after a
// Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.SetListener(ln)
	if n := s.cfg.MaxConnectionsPerClient; n > 0 {
		key := "[Server] MaxConnectionsPerClient"
		if s.cfg.Port == auth.ServicePort {
			key = "[Service] MaxConnectionsPerClient"
		}
		cl := newClientLimiter(ln, n, key, s.policy, s.cfg.TLS != nil, s.log, s.cfg.Now)
		if m := s.cfg.Metrics; m != nil {
			port := s.cfg.Port
			cl.refused = func() { m.ConnectionRefused(port) }
		}
		ln = cl
	}
	ln = lingerListener{ln}
	if s.cfg.TLS != nil {
		ln = &tlsListener{Listener: ln, cfg: s.cfg.TLS, failed: s.fhLog.handshakeFailed}
	}
	// Shutdown may run before this goroutine gets here, when fasthttp does
	// not know the listener yet: it closes the listener we record, and a
	// Serve that comes after Shutdown does not start at all.
	s.mu.Lock()
	if s.stopped.Load() {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	err := s.srv.Serve(ln)
	if s.stopped.Load() {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for requests in flight
// (bounded by ctx), then stops the request log.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped.Store(true)
	ln := s.ln
	s.mu.Unlock()
	err := s.srv.ShutdownWithContext(ctx)
	if ln != nil {
		_ = ln.Close() // already closed by fasthttp unless Serve had not registered it yet
	}
	if s.reqlog != nil {
		_ = s.cfg.System.Root.StopFuture(s.reqlog).Wait()
	}
	return err
}

// handle serves one request. Nothing it is given may be kept after it
// returns: the codec copies what it needs out of the request.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	var req *aci.Request
	// body is the request's body (readBody); req's strings share its
	// memory, so it goes back only once the request is logged.
	var body []byte
	var status = "success"
	var metricAction = "other"
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panicked", "panic", panics.Text(r), "request", s.requestText(req), "stack", string(debug.Stack()))
			action, format := "", aci.FormatXML
			if req != nil { // parsed: answer in the format it asked for
				action, format = req.Action, req.Format
			}
			s.writePanicReply(ctx, format, &aci.Reply{Action: action, Err: aci.ErrorFor(action, fmt.Errorf("%w: %v", messages.ErrInternal, r), s.cfg.Now())})
			status = "failure"
		}
		s.served.Add(1)
		elapsed := time.Since(start)
		s.record(ctx, req, status, start, elapsed)
		if s.cfg.Metrics != nil && !s.unguarded {
			s.cfg.Metrics.Request(s.cfg.Port, metricAction, status, elapsed)
		}
		if body != nil {
			s.putBody(body)
		}
	}()

	if !aciMethod(ctx) {
		// Answered from the request line alone (the action and format
		// it names, for the reply and the log); the body is never read.
		status = "failure"
		req, _ = aci.ParseLimited(methodGet, ctx.RequestURI(), nil, nil, aci.Limits{MaxParams: s.cfg.MaxRequestParameters})
		if req != nil {
			metricAction = s.metricName(req.Action)
		}
		s.refuseMethod(ctx, req)
		return
	}
	if s.cfg.Metrics != nil && s.cfg.Port == auth.ServicePort && string(ctx.Path()) == "/metrics" {
		metricAction = "Metrics"
		status = s.serveMetrics(ctx)
		return
	}
	if s.cfg.Port == auth.ServicePort && len(ctx.URI().QueryString()) == 0 && string(ctx.Path()) == "/" {
		// The service port's page; Admin needs ServiceStatus.
		ctx.Request.SetRequestURI("/action=Admin")
	}
	var berr error
	body, berr = s.readBody(ctx)
	if berr != nil {
		status = "failure"
		metricAction = s.metricName(s.uriAction(ctx.RequestURI()))
		ctx.SetConnectionClose() // the rest of the body is not read
		s.transportError(ctx, berr)
		return
	}
	req, err := aci.ParseLimited(ctx.Method(), ctx.RequestURI(), ctx.Request.Header.ContentType(), body,
		aci.Limits{MaxParams: s.cfg.MaxRequestParameters, MaxParamsName: "[Server] MaxRequestParameters"})
	if req != nil {
		// Refused from here on (its parameters, its browser, its Host,
		// its body), it counts under the action it names, as the
		// request log shows it (a request over MaxRequestParameters
		// comes with the action read before the limit).
		metricAction = s.metricName(req.Action)
	}
	if err == nil {
		// The action may have come with the body: its limit applies now.
		if limit, name := s.bodyLimit(req.Action); len(body) > limit {
			err = fmt.Errorf("%w: the request body has %d bytes, more than %s (%d bytes)", messages.ErrTooLarge, len(body), name, limit)
		}
	}
	if err == nil && !s.unguarded {
		if err = s.checkOrigin(ctx, req.Action); err != nil {
			status = "denied"
		}
	}
	if err != nil {
		if status == "success" {
			status = "failure"
		}
		s.replyError(ctx, req, err)
		return
	}
	h := s.routes[req.Action]
	if h == nil {
		status = "failure"
		s.replyError(ctx, req, unknownAction(req.Action))
		return
	}
	if !s.unguarded {
		c := s.identify(ctx)
		defer func() {
			ctx.SetUserValue(callerKey{}, nil)
			callers.Put(c)
		}()
		if err := s.authorize(c, req); err != nil {
			status = "denied"
			s.replyError(ctx, req, err)
			return
		}
		if err := refuseUnsupported(req); err != nil {
			status = "failure"
			s.replyError(ctx, req, err)
			return
		}
		ctx.SetUserValue(callerKey{}, c) // handlers read it with callerOf
	}
	res, err := h(requestContext{ctx}, req)
	if err != nil {
		status = "failure"
		s.replyError(ctx, req, err)
		return
	}
	if res.raw != nil || res.rawType != "" {
		if s.sendRaw(ctx, req, res) {
			status = "failure"
		}
		return
	}
	// A reply refused for the client's MaxReplyBytesPerClient
	// (ERRORCLIENTLIMIT in its place) is a failure, as any error reply.
	var refused bool
	switch {
	case res.listed:
		refused = s.writeEntries(ctx, req, res.entries)
	case res.actions != nil:
		refused = s.writeActions(ctx, req, res.actions)
	default:
		refused = s.writeReply(ctx, req.Format, &aci.Reply{Action: req.Action, Data: res.data})
	}
	if refused {
		status = "failure"
	}
	if res.listed || res.actions != nil {
		return
	}
	if res.after != nil {
		res.after()
	}
	if res.recycle != nil {
		res.recycle(res)
	}
}

// allowedMethods are the HTTP methods an ACI request may come with: ACI
// clients send GET or POST (aci-protocol.md), and HEAD is GET without the
// reply's body.
const allowedMethods = "GET, HEAD, POST"

var methodGet = []byte("GET")

// aciMethod reports whether ctx's request comes with a method of
// allowedMethods.
func aciMethod(ctx *fasthttp.RequestCtx) bool {
	return ctx.IsGet() || ctx.IsPost() || ctx.IsHead()
}

// refuseMethod answers a request that came with another method than
// allowedMethods (PUT, DELETE, OPTIONS, TRACE...): 405 Method Not
// Allowed, with the Allow header HTTP requires and an ERRORBADREQUEST
// reply for req's action (nil: none), in the format req asks for. No
// action runs: a method the protocol does not use is not taken for GET,
// so that nothing an HTTP client or proxy sends to remove, probe or echo
// a resource (DELETE, OPTIONS, TRACE) changes the queue. The request's
// body, if it has one, is not read: the connection closes after the
// reply, lingering (lingerOnClose).
func (s *Server) refuseMethod(ctx *fasthttp.RequestCtx, req *aci.Request) {
	action, format := "", aci.FormatXML
	if req != nil {
		action, format = req.Action, req.Format
	}
	err := fmt.Errorf("%w: the HTTP method %s is not one of ACI's: send the request as GET or POST",
		messages.ErrBadRequest, strconv.Quote(head(string(ctx.Method()), 32)))
	if ctx.Request.Header.ContentLength() != 0 || ctx.Request.Header.Peek(tooLargeHeader) != nil {
		// The body (one over the action's limit too: HeaderReceived
		// made it none) is not read: the connection lingers as it
		// closes, or the kernel resets it under the reply.
		ctx.SetConnectionClose()
		lingerOnClose(ctx)
	}
	s.writeReply(ctx, format, &aci.Reply{Action: action, Err: aci.ErrorFor(action, err, s.cfg.Now())})
	ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
	ctx.Response.Header.Set(fasthttp.HeaderAllow, allowedMethods)
}

// metricName is the action label of a request naming route (as parsed:
// "FETCH") in the metrics: its name in the role table, or "other" for a
// route this port does not have (or none).
func (s *Server) metricName(route string) string {
	if _, ok := s.routes[route]; ok {
		return actionName(route)
	}
	return "other"
}

// sendRaw sends a result's raw bytes (a View's document), compressed when
// large and the client accepts it as any other reply (encode) unless it is
// part of the document (206: its Content-Range counts the document's own
// bytes, so the bytes sent must be those; see compressLarge), and held
// and counted against the client's budget when large (send), without a
// copy when not compressed. It reports whether the client's budget
// refused it (the reply is then that error, in the request's format).
func (s *Server) sendRaw(ctx *fasthttp.RequestCtx, req *aci.Request, res *result) bool {
	var bp *[]byte
	out, enc := res.raw, ""
	if compressibleType(res.rawType) && res.status != fasthttp.StatusPartialContent {
		bp, out, enc = s.encode(ctx, nil, out)
	}
	if err := s.send(ctx, bp, out, enc); err != nil {
		s.replyError(ctx, req, err) // send set nothing
		return true
	}
	ctx.SetStatusCode(max(res.status, fasthttp.StatusOK))
	ctx.SetContentType(res.rawType)
	for _, h := range res.headers {
		ctx.Response.Header.Set(h[0], h[1])
	}
	return false
}

// serveMetrics answers GET /metrics on the service port: the origin and
// role checks of any request, then the metrics page. It returns the
// request's outcome.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) string {
	err := s.checkOrigin(ctx, "")
	if err == nil {
		c := s.identify(ctx)
		if !c.grant.Allows(auth.ServicePort, "Metrics", "") {
			s.logRefusal(c, "Metrics", auth.ServiceStatus)
			err = fmt.Errorf("%w: client %s (roles: %s) may not read /metrics: it needs the %s role",
				messages.ErrPermissionDenied, c.principal.String(), c.grant.Role(), auth.ServiceStatus.String())
		}
	}
	if err != nil {
		// Prometheus reads the HTTP status: a refusal is 403, with the
		// ACI error as its body.
		s.writeReply(ctx, aci.FormatXML, &aci.Reply{Action: "METRICS", Err: aci.ErrorFor("METRICS", err, s.cfg.Now())})
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		return "denied"
	}
	s.cfg.Metrics.Serve(ctx)
	return "success"
}

// writePanicReply answers a request whose handler panicked with the error
// reply r in format f. Should encoding in f panic too (the panic may have
// come from that encoder), it falls back to XML, whose error encoding is
// the simplest and is tested against the schema.
func (s *Server) writePanicReply(ctx *fasthttp.RequestCtx, f aci.Format, r *aci.Reply) {
	if f != aci.FormatXML {
		ok := func() (ok bool) {
			defer func() {
				if p := recover(); p != nil {
					s.log.Error("encoding the panic reply panicked; answering in XML", "format", f, "panic", p)
				}
			}()
			ctx.Response.Reset()
			s.writeReply(ctx, f, r)
			return true
		}()
		if ok {
			return
		}
	}
	ctx.Response.Reset()
	s.writeReply(ctx, aci.FormatXML, r)
}

// writeActions sends an <actions> reply. It reports whether the reply
// was refused instead (setReply).
func (s *Server) writeActions(ctx *fasthttp.RequestCtx, req *aci.Request, statuses []*messages.ActionStatus) bool {
	now := s.cfg.Now()
	if req.Format != aci.FormatXML {
		nodes := make([]aci.Node, len(statuses))
		for i, st := range statuses {
			nodes[i] = aci.ActionNode(st, now)
		}
		return s.writeReply(ctx, req.Format, &aci.Reply{Action: req.Action, Data: []aci.Node{aci.Container("actions", nodes...)}})
	}
	bp := s.bufs.Get().(*[]byte)
	out := aci.AppendActionsXML((*bp)[:0], req.Action, statuses, now)
	ctx.SetContentType(aci.ContentTypeXML)
	return s.setReply(ctx, req.Action, req.Format, bp, out)
}

// entryLister is a queue that hands out the list entries of ended actions
// encoded (queue.Queue.ListEntries): a list in XML is then written from
// them, and only its other actions are encoded here. The queue's
// Config.ListEntry must be ListEntry, so that both write the same bytes.
type entryLister interface {
	ListEntries(ctx context.Context, f *messages.ListActions) ([]queue.ListEntry, error)
}

// ListEntry is the queue's Config.ListEntry for a front end on the real
// clock (Config.Now unset): an ended action's <action> element as a list
// in XML shows it, in the local time zone. ListEntryAt is the same for a
// front end with another clock.
func ListEntry(dst []byte, st *messages.ActionStatus) []byte {
	return aci.AppendActionXML(dst, st, time.Now())
}

// ListEntryAt is the queue's Config.ListEntry for a front end whose
// Config.Now is now: its entries show times in now's time zone, as every
// other entry of the list it writes does. (With ListEntry under a front
// end with another clock, the ended actions of a list would show their
// times in the local zone and the others in the clock's.)
func ListEntryAt(now func() time.Time) queue.ListEncoder {
	return func(dst []byte, st *messages.ActionStatus) []byte {
		return aci.AppendActionXML(dst, st, now())
	}
}

// writeEntries sends an <actions> reply in XML: the encoded entries
// copied as they are, the statuses encoded as writeActions encodes them.
// It reports whether the reply was refused instead (setReply).
func (s *Server) writeEntries(ctx *fasthttp.RequestCtx, req *aci.Request, entries []queue.ListEntry) bool {
	now := s.cfg.Now()
	bp := s.bufs.Get().(*[]byte)
	b := aci.AppendActionsHead((*bp)[:0], req.Action, len(entries))
	ctx.SetContentType(aci.ContentTypeXML)
	// Into a buffer of the server's own, which a large reply is sent from
	// (setReply), compressed or not.
	for _, e := range entries {
		if e.Encoded != "" {
			b = append(b, e.Encoded...)
			continue
		}
		b = aci.AppendActionXML(b, e.Status, now)
	}
	b = aci.AppendActionsTail(b, len(entries))
	return s.setReply(ctx, req.Action, req.Format, bp, b)
}

func (s *Server) replyError(ctx *fasthttp.RequestCtx, req *aci.Request, err error) {
	action, format := "", aci.FormatXML
	if req != nil {
		action, format = req.Action, req.Format
	}
	if errors.Is(err, messages.ErrInternal) || errors.Is(err, messages.ErrTimeout) {
		s.log.Warn("request failed", "action", action, "err", err)
	}
	s.writeReply(ctx, format, &aci.Reply{Action: action, Err: aci.ErrorFor(action, err, s.cfg.Now())})
}

// writeReply sends r in format f; it reports whether it was refused
// instead (setReply).
func (s *Server) writeReply(ctx *fasthttp.RequestCtx, f aci.Format, r *aci.Reply) bool {
	bp := s.bufs.Get().(*[]byte)
	out, ct := aci.Encode((*bp)[:0], f, r)
	ctx.SetContentType(ct)
	return s.setReply(ctx, r.Action, f, bp, out)
}

// putBuf gives back a buffer of s.bufs whose bytes are now out: small ones
// are reused.
func (s *Server) putBuf(bp *[]byte, out []byte) {
	if cap(out) <= 1<<20 {
		*bp = out[:0]
		s.bufs.Put(bp)
	}
}

// heldReplyMin is the smallest reply (as sent: compressed, when it is)
// that send sends from a buffer of the server's own, instead of copying it
// into fasthttp's response, and counts against the client's [Server]
// MaxReplyBytesPerClient.
const heldReplyMin = 64 << 10

// replyEncoding returns the content coding compressLarge gives the reply
// to ctx's request (when it is large enough and its type compressible):
// the first the client accepts of br, gzip, deflate and zstd, as
// fasthttp's compressing handler picks it; "" when none.
func replyEncoding(ctx *fasthttp.RequestCtx) string {
	h := &ctx.Request.Header
	switch {
	case h.HasAcceptEncoding("br"):
		return "br"
	case h.HasAcceptEncoding("gzip"):
		return "gzip"
	case h.HasAcceptEncoding("deflate"):
		return "deflate"
	case h.HasAcceptEncoding("zstd"):
		return "zstd"
	}
	return ""
}

// compressibleType reports whether fasthttp's compressing handler
// compresses a reply of content type ct (its isCompressibleContentType):
// a View's image or archive is sent as it is.
func compressibleType(ct string) bool {
	for _, p := range []string{"text/", "application/", "image/svg", "image/x-icon", "font/", "multipart/"} {
		if strings.HasPrefix(ct, p) {
			return true
		}
	}
	return false
}

// encode returns a reply's body as it will be sent: out itself (held in
// *bp from s.bufs, or bp nil when out is not the server's: a View's
// document), or, when it is large enough to be held (heldReplyMin) and
// the client accepts a content coding, out compressed into a buffer of
// s.bufs (out's given back) and that coding. Compressed here, at the
// levels compressLarge uses, the reply is held compressed and counted at
// its compressed size; compressed by compressLarge, it would be copied
// into fasthttp's response and counted nowhere.
func (s *Server) encode(ctx *fasthttp.RequestCtx, bp *[]byte, out []byte) (*[]byte, []byte, string) {
	if len(out) < heldReplyMin {
		return bp, out, ""
	}
	enc := replyEncoding(ctx)
	if enc == "" {
		return bp, out, ""
	}
	zp := s.bufs.Get().(*[]byte)
	z := (*zp)[:0]
	switch enc {
	case "br":
		z = fasthttp.AppendBrotliBytesLevel(z, out, fasthttp.CompressBrotliBestSpeed)
	case "gzip":
		z = fasthttp.AppendGzipBytesLevel(z, out, fasthttp.CompressBestSpeed)
	case "deflate":
		z = fasthttp.AppendDeflateBytesLevel(z, out, fasthttp.CompressBestSpeed)
	case "zstd":
		z = fasthttp.AppendZstdBytesLevel(z, out, fasthttp.CompressBestSpeed)
	}
	if bp != nil {
		s.putBuf(bp, out)
	}
	return zp, z, enc
}

// setReply makes out, held in *bp (from s.bufs), the body of the reply to
// action in format f (compressed when the client accepts it: encode), and
// takes bp back; should the client's budget refuse it (send), the reply
// is that error instead, and setReply reports true.
func (s *Server) setReply(ctx *fasthttp.RequestCtx, action string, f aci.Format, bp *[]byte, out []byte) bool {
	bp, out, enc := s.encode(ctx, bp, out)
	if err := s.send(ctx, bp, out, enc); err != nil {
		s.writeReply(ctx, f, &aci.Reply{Action: action, Err: aci.ErrorFor(action, err, s.cfg.Now())})
		return true
	}
	return false
}

// send makes out the body of the reply to ctx, in content coding enc (""
// for none); out is held in *bp from s.bufs, which send takes back, or bp
// is nil when out is not the server's (a View's document, which is not
// copied).
//
// A reply of heldReplyMin bytes or more is not copied into fasthttp's
// response, which would keep a buffer of its size (doubled as it grew)
// with the connection for as long as it stays open, idle or not: it is
// sent from out (replyStream), which goes back once written. Until then
// it counts against the client's [Server] MaxReplyBytesPerClient,
// whatever it is (a list, a View's document) and whether compressed or
// not: a reply that would take the client past it while others of the
// client's wait is refused (ErrClientLimit, returned with nothing set),
// so that a client that sends requests and never reads the replies holds
// that much at most, or one reply when one alone is larger, not a reply
// per connection for WriteTimeout. A smaller reply is copied and not
// counted: a connection holds one reply at a time (fasthttp reads the
// next request once the reply is written), so those of a client's
// connections hold at most MaxConnectionsPerClient times heldReplyMin.
func (s *Server) send(ctx *fasthttp.RequestCtx, bp *[]byte, out []byte, enc string) error {
	if len(out) < heldReplyMin {
		setEncoding(ctx, enc)
		ctx.SetBody(out) // copies
		if bp != nil {
			s.putBuf(bp, out)
		}
		return nil
	}
	c := connClient(ctx.Conn())
	n := int64(len(out))
	if limit := int64(s.cfg.MaxReplyBytesPerClient); c != nil && limit > 0 {
		// A reply is refused only while the client has others waiting:
		// one reply larger than the budget alone (a TaskList of
		// thousands of tasks, a list under a raised MaxListResults) is
		// still sent, or a client that reads every reply at once could
		// never have it. The client then holds at most the budget or
		// one reply, whichever is larger.
		if held := c.replyBytes.Add(n); held > limit && held > n {
			c.replyBytes.Add(-n)
			if bp != nil {
				s.putBuf(bp, out)
			}
			return fmt.Errorf("%w: client %s has %d bytes of replies not yet sent, and this one has %d: more than [Server] MaxReplyBytesPerClient (%d bytes) allows; read the replies it waits for, or page the list (MaxResults, Start)",
				messages.ErrClientLimit, clientName(c.prefix), held-n, n, limit)
		}
	} else {
		c = nil
	}
	setEncoding(ctx, enc)
	ctx.Response.SetBodyStream(&replyStream{Reader: bytes.NewReader(out), s: s, bp: bp, out: out, client: c}, len(out))
	return nil
}

// setEncoding marks the reply to ctx as in content coding enc ("" for
// none), as fasthttp's compressing handler does; compressLarge then leaves
// it as it is.
func setEncoding(ctx *fasthttp.RequestCtx, enc string) {
	if enc == "" {
		return
	}
	ctx.Response.Header.SetContentEncoding(enc)
	ctx.Response.Header.Set(fasthttp.HeaderVary, fasthttp.HeaderAcceptEncoding)
}

// replyStream is a reply send sends from its own buffer: fasthttp closes
// it once the reply is written, or failed to be.
type replyStream struct {
	*bytes.Reader
	s      *Server
	bp     *[]byte // out's buffer of s.bufs; nil when out is not the server's
	out    []byte
	client *clientCount // counted against, when not nil
	once   sync.Once
}

func (r *replyStream) Close() error {
	r.once.Do(func() {
		if r.client != nil {
			r.client.replyBytes.Add(-int64(len(r.out)))
		}
		r.Reader = nil
		if r.bp != nil {
			r.s.putBuf(r.bp, r.out)
		}
	})
	return nil
}

// unreadable answers a request fasthttp could not read (its request line
// and headers: too large, or not HTTP), as transportError does, and counts
// it in the metrics as a failure: it reaches no handler, whose accounting
// every other reply goes through. Its action is "other": fasthttp keeps
// nothing of a request line it could not read with its headers. It is
// timed from here, as a handler times a request from its call: fasthttp
// sets no request time (ctx.Time is zero) for one it could not read.
func (s *Server) unreadable(ctx *fasthttp.RequestCtx, err error) {
	start := time.Now()
	s.transportError(ctx, err)
	if s.cfg.Metrics != nil && !s.unguarded {
		s.cfg.Metrics.Request(s.cfg.Port, "other", "failure", time.Since(start))
	}
}

// transportError answers requests fasthttp could not read (too large,
// malformed HTTP) with an ACI error, still as HTTP 200 when it can. The
// reply and the log say what kind of problem it was, never what the
// request held: fasthttp's errors quote the raw header bytes, which carry
// Authorization and Cookie headers.
func (s *Server) transportError(ctx *fasthttp.RequestCtx, err error) {
	// The request line may say the action and ResponseFormat (a body
	// refused for its size): the reply names the action and comes in that
	// format, as every other error does.
	action, format := s.uriRequest(ctx.Request.Header.RequestURI())
	var problem error
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		limit, name := s.bodyLimit(action)
		problem = fmt.Errorf("%w: the request body is larger than %s (%d bytes)", messages.ErrTooLarge, name, limit)
	case errors.As(err, &small):
		problem = fmt.Errorf("%w: the request line and headers are larger than the server reads (%d KiB); send long parameters in a POST body",
			messages.ErrTooLarge, readBufferSize>>10)
	default:
		problem = fmt.Errorf("%w: %s", messages.ErrBadRequest, transportProblem(err))
	}
	if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
		lingerOnClose(ctx) // what follows the part read is unread
	}
	s.log.Debug("unreadable request", "problem", problem, "client", ctx.RemoteIP().String())
	s.writeReply(ctx, format, &aci.Reply{Action: action, Err: aci.ErrorFor(action, problem, s.cfg.Now())})
}

// readBufferSize bounds a request's line and headers: long GET query
// strings (InsertXML, filters) fit; longer ones are ERRORREQUESTTOOLARGE.
const readBufferSize = 16 << 10

// readBody returns the request's body: read from its stream (fasthttp's
// StreamRequestBody) as its bytes arrive, at most the body limit of the
// action the request line names ([Server] MaxRequestBytes when it names
// none, or Fetch). A body announced larger than that is refused without
// reading it (fasthttp.ErrBodyTooLarge, answered as transportError
// answers it); a body read from its stream is in a pooled buffer that the
// caller gives back with putBody once nothing uses it. Reading as the
// bytes arrive is the point: without streaming, fasthttp allocated the
// whole announced Content-Length (up to 64 MiB for a Fetch) as soon as the
// headers were read, before any byte of the body came and before any role
// was checked, so that a client with no role holding many connections
// open, each with a short header announcing a large body, made the server
// hold that much memory for each until ReadTimeout.
func (s *Server) readBody(ctx *fasthttp.RequestCtx) ([]byte, error) {
	if ctx.Request.Header.Peek(tooLargeHeader) != nil {
		return nil, fasthttp.ErrBodyTooLarge // announced so (HeaderReceived)
	}
	if !ctx.Request.IsBodyStream() {
		return nil, nil // no body, or one set in full (the benchmarks)
	}
	n := ctx.Request.Header.ContentLength()
	limit := s.cfg.MaxRequestBytes
	if n < 0 || n > controlBodyBytes {
		// Chunked, or larger than any action but Fetch takes: which
		// action the request line names decides.
		limit, _ = s.bodyLimit(s.uriAction(ctx.Request.Header.RequestURI()))
	}
	if n > limit {
		return nil, fasthttp.ErrBodyTooLarge
	}
	bp := s.bodies.Get().(*[]byte)
	b := (*bp)[:0]
	*bp = nil
	s.bodies.Put(bp)
	want := limit // the most it may hold
	if n >= 0 {
		want = n
	}
	r := ctx.RequestBodyStream()
	for {
		if len(b) == cap(b) {
			// Grow as the bytes come, doubling, never past what it may
			// hold and one byte (which tells a body too large, or lets
			// the stream say it ended).
			b = slices.Grow(b, min(max(cap(b), 4096), want+1-len(b)))
		}
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if len(b) > limit {
			return b, fasthttp.ErrBodyTooLarge
		}
		if err == io.EOF {
			if n >= 0 && len(b) < n {
				// fasthttp's request stream ends a body cut short by
				// the client with io.EOF, not an error.
				return b, io.ErrUnexpectedEOF
			}
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// tooLargeHeader marks a request whose announced body HeaderReceived
// refused: readBody answers it ERRORREQUESTTOOLARGE. A client that sends
// it itself only has its own request refused.
const tooLargeHeader = "X-Connector-Body-Too-Large"

// putBody gives back a body readBody returned: small buffers are reused.
func (s *Server) putBody(b []byte) {
	if s.poisonBodies.Load() {
		clear(b)
	}
	if cap(b) > 1<<20 {
		return
	}
	bp := s.bodies.Get().(*[]byte)
	*bp = b[:0]
	s.bodies.Put(bp)
}

// controlBodyBytes is the largest body of an action other than Fetch (1
// MiB, or [Server] MaxRequestBytes when smaller): their parameters are a
// few names and values.
const controlBodyBytes = 1 << 20

// bodyLimit returns the body limit of an action (upper case; "" when not
// known yet) and how an error names it.
func (s *Server) bodyLimit(action string) (int, string) {
	if action == "" || action == "FETCH" || s.cfg.MaxRequestBytes <= controlBodyBytes {
		return s.cfg.MaxRequestBytes, "[Server] MaxRequestBytes"
	}
	return controlBodyBytes, "the 1 MiB that actions other than Fetch accept"
}

// uriAction returns the action a request line names ("" when it names
// none, or it is in the body).
func (s *Server) uriAction(uri []byte) string {
	action, _ := s.uriRequest(uri)
	return action
}

// uriRequest returns the action a request line names ("" when it names
// none, or it is in the body) and the reply format its ResponseFormat asks
// for (XML when it asks for none, or for one this server does not have).
func (s *Server) uriRequest(uri []byte) (string, aci.Format) {
	r, _ := aci.ParseLimited([]byte("GET"), uri, nil, nil, aci.Limits{MaxParams: s.cfg.MaxRequestParameters})
	if r == nil {
		return "", aci.FormatXML
	}
	return r.Action, r.Format
}

// transportProblem describes a transport error without quoting the
// request.
func transportProblem(err error) string {
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &timeout) && timeout.Timeout():
		return "the request was not received within [Server] ReadTimeout"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection ended in the middle of the request"
	}
	var chunk fasthttp.ErrBrokenChunk
	if errors.As(err, &chunk) {
		return "the chunked request body is malformed"
	}
	return "the request is not well-formed HTTP"
}

// record sends a request's entry to the request log: it started at start
// and took elapsed.
func (s *Server) record(ctx *fasthttp.RequestCtx, req *aci.Request, status string, start time.Time, elapsed time.Duration) {
	if s.cfg.RequestLogSize == 0 {
		return
	}
	action := ""
	if req != nil {
		action = s.loggedAction(req.Action)
	}
	client, _ := netip.AddrFromSlice(ctx.RemoteIP())
	e := s.logEntries.get()
	if req != nil {
		e.text = s.appendRequestText(e.text[:0], req)
	}
	e.action, e.client, e.status, e.conn = action, client.Unmap(), status, ctx.ConnID()
	e.unixMs, e.duration = start.UnixMilli(), float64(elapsed.Microseconds())/1000
	s.cfg.System.Root.Send(s.reqlog, e)
}

// loggedAction returns action as the request log keeps it: the route
// table's own string for an action it serves, else a copy of its first
// maxLogged bytes. The parsed action shares the memory of the request's
// whole text (aci.Request), up to MaxRequestBytes, which an entry would
// keep for as long as it stays in the ring (RequestLogSize requests); and
// the name of an action the server does not answer may itself be that
// long (action= and the body), from any client.
func (s *Server) loggedAction(action string) string {
	if a, ok := s.actionKeys[action]; ok {
		return a
	}
	return strings.Clone(head(action, maxLogged))
}

// Port returns the port Serve listens on (useful with port 0).
func (s *Server) Port() int { return int(s.port.Load()) }

// SetListener records ln as the listener Serve will answer on, so that Port
// (and GetStatus's aciport) reports its port before Serve has started: the
// service port, which may be served first, answers GetStatus with the ACI
// port's reply (Config.ACI). Serve calls it too.
func (s *Server) SetListener(ln net.Listener) {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.port.Store(int32(a.Port))
	}
}

// slogPrintf is fasthttp's logger. Failed TLS handshakes (a client with an
// old protocol, without the client certificate the port requires, or one
// that stopped, reset or closed half-way: tlsListener reports them) are
// counted, and logged with fasthttp's other TLS errors at most once a
// minute with the number since the last line, so that a scanner cannot
// flood the log.
//
// fasthttp's line for a connection whose request headers it could not read
// is not logged: transportError answered that request with an ACI error and
// logged it at debug level ("unreadable request") without its text, where
// fasthttp's quotes the header line it could not parse (an Authorization
// header that lost its colon, token included) and comes once per
// connection. Its other connection errors are logged at most once a minute
// too.
type slogPrintf struct {
	l       *slog.Logger
	metrics Metrics
	tls     logLimit // TLS handshakes and connections
	conns   logLimit // other connection errors
}

// logLimit is the state of a line logged at most once a minute.
type logLimit struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

func (p *slogPrintf) Printf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	switch {
	case strings.Contains(msg, "tls: "):
		p.limited(&p.tls, "TLS connection failed", "refused_since_last_line", "err", msg)
	case strings.HasPrefix(format, "error when serving connection"):
		if strings.Contains(msg, "error when reading request headers") {
			return // answered and logged by transportError
		}
		p.limited(&p.conns, "connection failed", "failed_since_last_line", "err", msg)
	default:
		p.l.Warn(msg)
	}
}

// handshakeFailed counts and logs a TLS handshake that did not complete.
func (p *slogPrintf) handshakeFailed(remote net.Addr, err error) {
	if p.metrics != nil {
		p.metrics.TLSHandshakeFailed()
	}
	p.limited(&p.tls, "TLS handshake refused", "refused_since_last_line", "client", remote.String(), "err", err.Error())
}

// limited logs at most one line a minute of ll, with the number of lines
// left out since the last one (under the key missedKey).
func (p *slogPrintf) limited(ll *logLimit, msg, missedKey string, args ...any) {
	ll.mu.Lock()
	now := time.Now()
	if now.Sub(ll.last) < time.Minute {
		ll.missed++
		ll.mu.Unlock()
		return
	}
	missed := ll.missed
	ll.last, ll.missed = now, 0
	ll.mu.Unlock()
	p.l.Warn(msg, append(args, missedKey, missed)...)
}

// compressMin is the smallest reply body compressed when the client accepts
// it. A reply that fits in one TCP segment (a token, one action's status,
// an error: 300–900 bytes) reaches the client no sooner compressed, and
// compressing it cost 5–6 % of a node's CPU per submit in the cluster
// benchmark, whose Go client asks for gzip as net/http does by default.
const compressMin = 1400

// compressLarge answers with h's reply, compressed (brotli, gzip, deflate or
// zstd, as the client accepts, at fasthttp's fastest levels) when its body
// is at least compressMin bytes. A part of a document (206, a View with
// Range) is never compressed: its Content-Range gives offsets in the
// document's bytes, which a compressed body would not match (RFC 9110
// §14: a range is of the representation, content coding included), as
// nginx's gzip leaves partial replies alone.
func compressLarge(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	// fasthttp compresses only inside its handler wrapper: wrapped around a
	// handler that does nothing, it compresses the reply already written.
	compress := fasthttp.CompressHandlerBrotliLevel(func(*fasthttp.RequestCtx) {}, fasthttp.CompressBrotliBestSpeed, fasthttp.CompressBestSpeed)
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		if ctx.Response.StatusCode() == fasthttp.StatusPartialContent {
			return
		}
		if ctx.Response.IsBodyStream() || len(ctx.Response.Body()) >= compressMin {
			compress(ctx)
		}
	}
}
