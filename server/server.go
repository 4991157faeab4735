// Package server assembles the connector from its configuration: the
// store, the ingestion target, the repository, the fetch queue, the
// scheduler and the ACI front end, and shuts them down in a fixed order.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/cluster"
	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	buildinfo "github.com/connectorhq/connector/internal/version"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/metrics"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/pgstore"
	"github.com/connectorhq/connector/tlsconf"
	"github.com/connectorhq/connector/transport/httpd"
)

// Deps are what the server needs to build its repository. They are created
// by the server from the configuration and owned by it.
type Deps = fetch.Deps

// RepositoryFunc builds the repository.
type RepositoryFunc func(Deps) (fetch.Repository, error)

// Options are what the command line adds to the configuration.
type Options struct {
	// Connector is the connector the server runs; nil: the one the
	// configuration's [Connector] Type names (package connectors).
	Connector *fetch.Descriptor
	// Repository, when set, builds the repository instead of
	// Connector.New (tests run the server over a test double).
	Repository RepositoryFunc
	Port       int       // overrides [Server] Port when >= 0
	LogOutput  io.Writer // default os.Stderr (when [Logging] LogFile is empty)
	Version    string    // default: version.Version(), stamped at build time
	// TLSCheckInterval is how often the ports' certificate, key and CA
	// files are checked for a change (ReloadTLS); default a minute.
	TLSCheckInterval time.Duration
}

// Server is a running connector.
type Server struct {
	cfg    *config.Config
	log    *slog.Logger
	logOut io.Closer
	sys    *actor.ActorSystem
	st     store.Store
	target ingest.Target
	repo   fetch.Repository
	q      *queue.Queue // single node; nil in cluster mode
	api    queue.API    // the queue the front end and the scheduler use
	// stopQueue shuts the queue down (the single node's, or this node's
	// share of the cluster's).
	stopQueue func(context.Context) error
	node      *cluster.Node  // cluster mode: the membership
	shared    *pgstore.Store // cluster mode: the shared store (also st)
	left      chan struct{}  // closed when the node leaves the cluster
	leaveOnce sync.Once
	web       *httpd.Server
	svc       *httpd.Server // the service port; nil without [Service] ServicePort
	tls       []portTLS     // the ports' certificates, reloadable
	tlsMu     sync.Mutex    // one reload at a time (SIGHUP, the file check)
	metrics   *metrics.Metrics
	sched     *actor.PID
	repoAt    time.Time // when the repository was made (read its schedules)
	ln        net.Listener
	svcLn     net.Listener
	served    chan error
	stop      chan struct{} // closed by the service port's Stop
	stopped   sync.Once
	down      sync.Once
	downErr   error
	// started are the components whose start succeeded, in start order;
	// they stop in the reverse order (stopAll).
	started []component
}

// component is one part of a running server, started in the order of the
// list Start builds and stopped in the reverse order, by Shutdown or by a
// failed Start (river's startstop): the shutdown order is written once, as
// the start order read backwards. stop is nil for a component with nothing
// to stop, and runs only for one whose start succeeded.
type component struct {
	name  string
	start func() error
	stop  func(ctx context.Context) error
}

// Start builds and starts a server. On error everything started so far is
// stopped again: there is never a half-started server.
func Start(cfg *config.Config, opts Options) (*Server, error) {
	return StartContext(context.Background(), cfg, opts)
}

// ErrStartStopped is the error of a start that StartContext's context
// stopped (the process was asked to stop while it started): what had
// started is stopped again, cleanly; nothing is lost.
var ErrStartStopped = errors.New("server: start-up stopped on request")

// StartContext is Start, which stops early when ctx is done: before the
// next component starts, during the queue's restore of its stored
// actions, which may take long on a big queue (the actions it had not
// restored yet stay in the store as they were), and, for a cluster node,
// while it waits on etcd or the shared store (its join, key check and
// registration). The error then wraps ErrStartStopped.
func StartContext(ctx context.Context, cfg *config.Config, opts Options) (_ *Server, err error) {
	conn := opts.Connector
	if conn == nil {
		if conn, err = connectors.Lookup(cfg.Connector.Type); err != nil {
			return nil, &config.Error{File: cfg.Path, Section: "Connector", Key: "Type", Err: err}
		}
	}
	newRepo := opts.Repository
	if newRepo == nil {
		newRepo = conn.New
	}
	// Until the log is opened (after the listeners), nothing is logged.
	s := &Server{cfg: cfg, log: slog.New(slog.DiscardHandler), left: make(chan struct{}), served: make(chan error, 2), stop: make(chan struct{})}
	defer func() {
		if err != nil {
			switch {
			case errors.Is(err, ErrStartStopped):
				s.log.Info("start-up stopped on request; stopping what had started", "err", err)
			case s.logOut != nil:
				// The log file says why this start ended, not only
				// standard error: an operator reading the file would
				// otherwise find its last run's lines, or nothing.
				s.log.Error("start-up failed", "err", err)
			}
			s.abort()
		}
	}()
	// TLS first: a certificate that does not load stops start-up before
	// anything is created.
	tlsCfg, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	s.tls = tlsCfg.reload
	if err := checkKeyFile(cfg); err != nil {
		return nil, err
	}
	version := opts.Version
	if version == "" {
		version = buildinfo.Version()
	}
	port := cfg.Server.Port
	if opts.Port >= 0 {
		port = opts.Port
	}
	addr := net.JoinHostPort(cfg.Server.Host, strconv.Itoa(port))
	fds, ferr := raiseFDLimit()
	var (
		actualPort int
		maxConns   int
	)
	// The components in start order. Shutdown stops them in the reverse
	// order: the front ends (no new requests; those in flight finish), the
	// scheduler (nothing more is submitted), the queue (running actions
	// stop; the last changes are written), the actors, the connector's own
	// resources, the ingestion target, the store, the log, the listeners.
	comps := []component{
		{name: "listeners", start: func() (err error) {
			// First, so that a port in use stops start-up before anything
			// is created on disk, the log file included.
			if s.ln, err = net.Listen("tcp", addr); err != nil {
				if opts.Port >= 0 {
					return fmt.Errorf("server: listen on %s ([Server] Host and -port %d): %w", addr, opts.Port, err)
				}
				return listenError(cfg, "Server", "Port", addr, err)
			}
			actualPort = s.ln.Addr().(*net.TCPAddr).Port
			if cfg.Service.Enabled {
				saddr := net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Service.Port))
				if s.svcLn, err = net.Listen("tcp", saddr); err != nil {
					return listenError(cfg, "Service", "ServicePort", saddr, err)
				}
			}
			return nil
		}, stop: func(context.Context) error {
			// Closed by the front ends' Shutdown already, unless Start
			// failed before they served: closing again is harmless.
			if s.svcLn != nil {
				_ = s.svcLn.Close()
			}
			if s.ln != nil {
				_ = s.ln.Close()
			}
			return nil
		}},
		{name: "log", start: func() (err error) {
			if s.log, s.logOut, err = newLogger(cfg.Logging, opts.LogOutput); err != nil {
				s.log = slog.New(slog.DiscardHandler)
				return &config.Error{File: cfg.Path, Line: cfg.Line("Logging", "LogFile"), Section: "Logging", Key: "LogFile", Err: err}
			}
			if ferr != nil {
				s.log.Warn("could not raise the open file limit to its hard limit", "limit", fds, "err", ferr)
			}
			s.checkTLSValidity(time.Now())
			maxConns = connectionLimit(cfg, fds, s.log)
			s.ln = newConnLimiter(s.ln, maxConns, "[Server] MaxConnections", s.log.With("component", "httpd"))
			if s.svcLn != nil {
				// The service port is bounded too, and survives running
				// out of descriptors: unwrapped, fasthttp took an EMFILE
				// from Accept for a broken listener, and its Serve
				// returning stopped the whole server.
				s.svcLn = newConnLimiter(s.svcLn, cfg.Service.MaxConnections, "[Service] MaxConnections", s.log.With("component", "service"))
			}
			return nil
		}},
		// store, ingest and the repository tag their own log records (component=...)
		{name: "store", start: func() (err error) {
			if cfg.Actions.UseInMemoryDatastore {
				warnUnusedStore(cfg, s.log, "[Actions] UseInMemoryDatastore=true keeps everything in memory")
			}
			if s.st, err = store.Open(storeConfig(cfg, s.log)); err != nil {
				// The store's errors name its file; the key is where the
				// operator changes or checks it.
				return &config.Error{File: cfg.Path, Line: cfg.Line("Server", "DataDirectory"), Section: "Server", Key: "DataDirectory", Err: err}
			}
			return nil
		}, stop: func(context.Context) error {
			if err := s.st.Close(); err != nil {
				return fmt.Errorf("close the store: %w", err)
			}
			return nil
		}},
		{name: "ingestion target", start: func() (err error) {
			s.target, err = openTarget(cfg, tlsCfg.ingest, s.log)
			return err
		}, stop: func(ctx context.Context) error {
			if s.target == nil {
				return nil
			}
			// Close waits for the deliveries in progress: a CFS that does
			// not answer holds one for IngestTimeout per request, and a
			// stopped action's delivery has minutes of grace. Not past
			// the shutdown's deadline: that delivery fails, and the next
			// run sends it again.
			closed := make(chan error, 1)
			go func() { closed <- s.target.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					return fmt.Errorf("close the ingestion target: %w", err)
				}
				return nil
			case <-ctx.Done():
				return fmt.Errorf("close the ingestion target: a delivery in progress did not end in time (the next run sends it again): %w", context.Cause(ctx))
			}
		}},
		{name: "repository", start: func() (err error) {
			// The queue does not exist yet: its counts are read at scrape time.
			s.metrics = metrics.New(metrics.Options{Queue: "fetch", Version: version, Logger: s.log,
				QueueStatus: func(ctx context.Context) (*messages.QueueStatusReply, error) { return s.api.QueueStatus(ctx) }})
			s.repoAt = time.Now()
			if s.repo, err = newRepo(Deps{Config: cfg, Store: s.st, Target: s.metrics.Target(s.target), Logger: s.log,
				Crawled: s.metrics.Crawled}); err != nil {
				return err
			}
			s.metrics.SetFetchActions(s.repo.FetchActions())
			s.metrics.Connections(auth.ACIPort, s.ln.(*connLimiter).Open, maxConns)
			if s.svcLn != nil {
				s.metrics.Connections(auth.ServicePort, s.svcLn.(*connLimiter).Open, cfg.Service.MaxConnections)
			}
			return nil
		}, stop: func(context.Context) error {
			// The connector's own resources (fetch.Closer: the Web
			// connector's browser), once no action runs any more.
			if c, ok := s.repo.(fetch.Closer); ok {
				if err := c.Close(); err != nil {
					return fmt.Errorf("close the connector: %w", err)
				}
			}
			return nil
		}},
		{name: "actors", start: func() error {
			s.sys = actor.NewActorSystem(
				actor.WithLoggerFactory(func(sys *actor.ActorSystem) *slog.Logger {
					return slog.New(libHandler{h: s.log.Handler(), debug: cfg.Logging.Level == "debug"}).With("lib", "protoactor")
				}),
				actor.WithDeadLetterRequestLogging(false))
			return nil
		}, stop: func(context.Context) error {
			// In cluster mode, leaving the cluster (the "cluster"
			// component) has shut the actor system down already.
			if s.node == nil {
				s.sys.Shutdown()
			}
			return nil
		}},
		{name: "queue", start: func() (err error) {
			qcfg := queue.Config{
				Name:                   "fetch",
				Repository:             s.repo,
				TokenHost:              tokenHost(cfg.Server.Host),
				TokenPort:              actualPort,
				MaximumThreads:         cfg.Actions.MaximumThreads,
				MaximumQueueSize:       cfg.Actions.MaximumQueueSize,
				MaximumFinishedActions: cfg.Actions.MaximumFinishedActions,
				FinishedActionMaxAge:   cfg.Actions.FinishedActionMaxAge,
				StopTimeout:            cfg.Actions.StopTimeout,
				CommitDelay:            commitDelay(cfg.Actions.CommitDelay),
				OnRestart:              cfg.Actions.ProcessingOnRestart,
				Logger:                 s.log.With("component", "queue"),
				Observer:               s.metrics,
				// Ended actions keep their entry of a list encoded as
				// the ACI port writes it (docs/architecture.md).
				ListEntry: httpd.ListEntry,
			}
			if qcfg.MaximumFinishedActions == 0 {
				qcfg.MaximumFinishedActions = -1 // configured 0: keep none
			}
			if s.node != nil {
				return s.startClusterQueue(ctx, qcfg)
			}
			if !cfg.Actions.UseInMemoryDatastore {
				qcfg.Store = s.st
			}
			if s.q, err = queue.StartContext(ctx, s.sys, qcfg); err != nil {
				return err
			}
			s.api, s.stopQueue = s.q, s.q.Shutdown
			return nil
		}, stop: func(ctx context.Context) error {
			qctx, cancel := context.WithTimeout(ctx, s.cfg.Server.ShutdownTimeout)
			defer cancel()
			return s.stopQueue(qctx)
		}},
		{name: "scheduler", start: func() (err error) {
			if sc, ok := s.repo.(fetch.Scheduler); ok {
				var clu *clusterSched
				if s.node != nil {
					clu = &clusterSched{rank: clusterRank(s.node), turn: s.shared.Turn}
				}
				s.sched, err = startScheduler(s.sys, s.api, sc.Schedules(), s.repoAt, clu, s.log.With("component", "scheduler"))
			}
			return err
		}, stop: func(context.Context) error {
			if s.sched != nil {
				_ = s.sys.Root.StopFuture(s.sched).Wait()
			}
			return nil
		}},
		{name: "ACI port", start: func() (err error) {
			wd, _ := os.Getwd()
			configPath := cfg.Path
			if configPath != config.DefaultName {
				configPath, _ = filepath.Abs(configPath)
			}
			front := httpd.Config{
				System: s.sys, Queue: s.api, Repository: s.repo,
				Version:         httpd.Version{ProductType: conn.Product, Version: version, Revision: buildinfo.Revision(), Build: buildinfo.Build(), ConfigPath: configPath, Directory: wd},
				MaxRequestBytes: cfg.Server.MaxRequestBytes, ReadTimeout: cfg.Server.ReadTimeout,
				MaxRequestParameters: cfg.Server.MaxRequestParameters, MaxListResults: cfg.Actions.MaxListResults,
				WriteTimeout: cfg.Server.WriteTimeout, IdleTimeout: cfg.Server.IdleTimeout,
				RequestLogSize: requestLogSize(cfg.Server.RequestLogSize),
				Logger:         s.log,
				Policy:         cfg.Policy,
				AllowedHosts:   allowedHosts(cfg.Server),
				TLS:            tlsCfg.aci,
				Metrics:        s.metrics,

				MaxConnectionsPerClient: cfg.Server.MaxConnectionsPerClient,
				MaxReplyBytesPerClient:  cfg.Server.MaxReplyBytesPerClient,
			}
			if s.svcLn != nil {
				if a, ok := s.svcLn.Addr().(*net.TCPAddr); ok {
					front.ServicePort = a.Port
				}
			}
			if s.web, err = httpd.New(front); err != nil {
				return err
			}
			s.web.SetListener(s.ln)
			if s.svcLn != nil {
				svc := front
				svc.Port, svc.TLS, svc.RequestLogSize = auth.ServicePort, tlsCfg.service, -1
				svc.MaxConnectionsPerClient = cfg.Service.MaxConnectionsPerClient
				svc.Stop = s.requestStop
				svc.ACI = s.web
				scheme := "http"
				if tlsCfg.aci != nil {
					scheme = "https"
				}
				svc.DashboardURL = func(host string) string {
					if host == "" {
						host = tokenHost(cfg.Server.Host)
					}
					return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(actualPort)) + "/action=Admin"
				}
				if s.svc, err = httpd.New(svc); err != nil {
					return err
				}
				go func() { s.served <- s.svc.Serve(s.svcLn) }()
			}
			go func() { s.served <- s.web.Serve(s.ln) }()
			return nil
		}, stop: func(ctx context.Context) error {
			var errs []error
			if s.svc != nil {
				if err := s.svc.Shutdown(ctx); err != nil {
					errs = append(errs, fmt.Errorf("stop the service port: %w", err))
				}
			}
			if s.web != nil {
				if err := s.web.Shutdown(ctx); err != nil {
					errs = append(errs, fmt.Errorf("stop the ACI port: %w", err))
				}
			}
			return errors.Join(errs...)
		}},
	}
	if len(s.tls) > 0 {
		comps = append(comps, s.tlsWatcher(opts.TLSCheckInterval))
	}
	if cfg.Cluster.Enabled {
		comps = clusterComponents(ctx, s, cfg, comps)
	}
	for _, c := range comps {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w before its %s started", ErrStartStopped, c.name)
		}
		if err := c.start(); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w while its %s started: %w", ErrStartStopped, c.name, err)
			}
			return nil, err
		}
		s.log.Debug("started", "component", c.name)
		s.started = append(s.started, c)
	}
	warnIdentitiesUnused(s.log, cfg, tlsCfg)
	attrs := []any{"address", s.ln.Addr().String(), "tls", tlsCfg.aci != nil, "config", cfg.Path, "version", version,
		"store", s.st.Info().Path, "in_memory", s.st.Info().InMemory, "maximum_threads", cfg.Actions.MaximumThreads,
		"roles", rolesText(cfg), "max_connections", maxConns, "max_connections_per_client", cfg.Server.MaxConnectionsPerClient, "open_file_limit", fds}
	if s.svcLn != nil {
		attrs = append(attrs, "service_address", s.svcLn.Addr().String(), "service_tls", tlsCfg.service != nil,
			"service_max_connections", cfg.Service.MaxConnections, "service_max_connections_per_client", cfg.Service.MaxConnectionsPerClient)
	}
	s.log.Info("connector started", attrs...)
	return s, nil
}

// File descriptors kept for everything but the ACI port's connections:
// the store and its journal, the log, the ingestion target and the
// listener (the base), and each running action's crawl connections and
// files (per thread). The service port's connections ([Service]
// MaxConnections) are kept besides.
const (
	fdReserveBase      = 128
	fdReservePerThread = 64
)

// connectionLimit returns [Server] MaxConnections or, when it is 0, the
// open file limit less the reserve (at least a quarter of the limit), so
// that connections alone never exhaust the descriptors the rest of the
// server needs. A configured limit above that is kept, with a warning:
// the server then survives running out of descriptors (see connLimiter),
// but the store or a crawl may meet the shortage first.
func connectionLimit(cfg *config.Config, fds uint64, log *slog.Logger) int {
	reserve := uint64(fdReserveBase + fdReservePerThread*cfg.Actions.MaximumThreads)
	if cfg.Service.Enabled {
		reserve += uint64(cfg.Service.MaxConnections)
	}
	avail := uint64(1 << 24)
	if fds > 0 {
		avail = max(fds/4, 1)
		if fds > reserve {
			avail = max(avail, fds-reserve)
		}
	}
	if n := cfg.Server.MaxConnections; n > 0 {
		if fds > 0 && uint64(n) > avail {
			log.Warn("[Server] MaxConnections is more than the open file limit leaves for connections",
				"max_connections", n, "open_file_limit", fds, "kept_for_the_rest", reserve, "suggested", avail)
		}
		return n
	}
	return int(min(avail, 1<<24))
}

// requestStop is the service port's Stop: it asks the command to shut
// the server down, as SIGTERM does (StopRequested).
func (s *Server) requestStop() { s.stopped.Do(func() { close(s.stop) }) }

// ReopenLog opens [Logging] LogFile again by its path, for SIGHUP: after
// logrotate has moved the file away, the log goes on in a new one. It
// logs what it did, in the new file (or, if the file could not be opened,
// in the old one, with the reason); without a log file it logs that there
// is nothing to reopen.
func (s *Server) ReopenLog() {
	lf, ok := s.logOut.(*logFile)
	if !ok {
		s.log.Info("SIGHUP received: there is no log file to reopen ([Logging] LogFile is not set); ignored")
		return
	}
	if err := lf.reopen(); err != nil {
		s.log.Error("SIGHUP received: the log file could not be opened again; the log goes on in the file it was in", "file", lf.path, "err", err)
		return
	}
	s.log.Info("SIGHUP received: log file reopened", "file", lf.path)
}

// ReloadTLS reads the certificate, key and CA files of the ports' TLS
// sections again, for SIGHUP: each port serves a new pair from its next
// handshake on (connections already open keep theirs). A pair that does
// not load, does not match or has expired is refused with an error line
// naming the file, the line of the key and the section, and the port keeps
// serving the one it has. Without TLS on a port, it does nothing.
func (s *Server) ReloadTLS() { s.reloadTLS("SIGHUP received", false) }

// reloadTLS reloads the ports' TLS files (only those that changed since
// they were last read, with changed).
func (s *Server) reloadTLS(why string, changed bool) {
	s.tlsMu.Lock()
	defer s.tlsMu.Unlock()
	for _, p := range s.tls {
		if changed && !p.r.Changed() {
			continue
		}
		o := p.r.Section()
		leaf, err := p.r.Reload()
		if err != nil {
			cur := p.r.Current()
			s.log.Error(why+": new TLS certificate refused; the port keeps serving the one it has", "port", p.port,
				"err", tlsconf.ConfigError(s.cfg.Path, o, err).Error(), "serving", cur.Subject.String(), "serving_not_after", cur.NotAfter.UTC())
			continue
		}
		s.log.Info(why+": TLS certificate loaded", "port", p.port, "certificate", o.Certificate,
			"subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC())
	}
}

// checkTLSValidity logs an error for each port whose certificate, as
// loaded at start, has expired or is not valid yet: the port serves it
// (there is no other; SIGHUP or the periodic check takes a renewed one),
// but every client that checks certificates refuses it.
func (s *Server) checkTLSValidity(now time.Time) {
	for _, p := range s.tls {
		leaf := p.r.Current()
		msg := ""
		switch {
		case now.After(leaf.NotAfter):
			msg = "TLS certificate has expired: clients that check certificates refuse the port until it is renewed (SIGHUP, or within a minute of the change)"
		case now.Before(leaf.NotBefore):
			msg = "TLS certificate is not valid yet: clients that check certificates refuse the port until then"
		default:
			continue
		}
		s.log.Error(msg, "port", p.port, "certificate", p.r.Section().Certificate, "subject", leaf.Subject.String(),
			"not_before", leaf.NotBefore.UTC(), "not_after", leaf.NotAfter.UTC())
	}
}

// tlsWatcher checks the ports' TLS files every interval (a minute by
// default) and reloads those that changed: a certificate renewed in place
// is served without a SIGHUP.
func (s *Server) tlsWatcher(interval time.Duration) component {
	if interval <= 0 {
		interval = time.Minute
	}
	done, exited := make(chan struct{}), make(chan struct{})
	return component{name: "TLS certificate check", start: func() error {
		go func() {
			defer close(exited)
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					s.reloadTLS("a TLS file changed", true)
				case <-done:
					return
				}
			}
		}()
		return nil
	}, stop: func(context.Context) error {
		close(done)
		<-exited
		return nil
	}}
}

// Logger is the server's log ([Logging]).
func (s *Server) Logger() *slog.Logger { return s.log }

// StopRequested is closed when a client sent Stop to the service port: the
// command then shuts the server down exactly as on SIGTERM.
func (s *Server) StopRequested() <-chan struct{} { return s.stop }

// ServiceAddr is the address of the service port (nil without one).
func (s *Server) ServiceAddr() net.Addr {
	if s.svcLn == nil {
		return nil
	}
	return s.svcLn.Addr()
}

// Metrics is the server's metrics (for in-process use and tests).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

func rolesText(cfg *config.Config) string {
	if cfg.Policy == nil {
		return "IDOL defaults (Admin and ServiceControl from localhost only)"
	}
	return "[AuthorizationRoles]"
}

// requestLogSize maps [Server] RequestLogSize (0: keep none) to httpd's
// convention (0: default, negative: none).
func requestLogSize(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// Addr is the address the ACI port listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Queue is the fetch queue (for in-process use and tests); nil in cluster
// mode (API is the cluster's).
func (s *Server) Queue() *queue.Queue { return s.q }

// API is the queue the front end uses: the single node's, or the cluster's.
func (s *Server) API() queue.API { return s.api }

// Node is the server's cluster membership (nil outside cluster mode).
func (s *Server) Node() *cluster.Node { return s.node }

// Done delivers the front end's error if it stops serving on its own.
func (s *Server) Done() <-chan error { return s.served }

// Shutdown stops the server in a fixed order: stop accepting requests (and
// finish those in flight); stop the scheduler so it submits nothing more;
// stop running actions (they end as Stopped; queued ones stay queued) and
// write the queue's last changes; stop the actors; close the connector's
// own resources (fetch.Closer: the Web connector's browser); close the
// ingestion target; close the store. Each later step still runs if an earlier one
// fails or ctx runs out.
func (s *Server) Shutdown(ctx context.Context) error {
	s.down.Do(func() { s.downErr = s.shutdown(ctx) })
	return s.downErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.log.Info("connector stopping")
	err := s.stopAll(ctx)
	if err != nil {
		s.log.Error("connector stopped with errors", "err", err)
	} else {
		s.log.Info("connector stopped")
	}
	if s.logOut != nil {
		_ = s.logOut.Close()
	}
	return err
}

// stopAll stops the started components in the reverse of their start
// order. Each later one still stops if an earlier one fails or ctx runs
// out.
func (s *Server) stopAll(ctx context.Context) error {
	var errs []error
	for i := len(s.started) - 1; i >= 0; i-- {
		if c := s.started[i]; c.stop != nil {
			if err := c.stop(ctx); err != nil {
				errs = append(errs, err)
			}
			s.log.Debug("stopped", "component", c.name)
		}
	}
	s.started = nil
	return errors.Join(errs...)
}

// abort undoes a failed Start: what started stops, in reverse order.
func (s *Server) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.stopAll(ctx)
	if s.logOut != nil {
		_ = s.logOut.Close()
	}
}

// listenError is the configuration error of a port that cannot be
// listened on (addr): at [Server] Host when the host is the problem (an
// address that is not this machine's, a name that does not resolve:
// hostListenError), else at the port's key (section, key): in use, or
// below 1024 without the privilege to bind it.
func listenError(cfg *config.Config, section, key, addr string, err error) error {
	if hostListenError(err) {
		section, key = "Server", "Host"
	}
	return &config.Error{File: cfg.Path, Line: cfg.Line(section, key), Section: section, Key: key,
		Err: fmt.Errorf("listen on %s: %w", addr, err)}
}

// hostListenError reports whether a failed listen is its host's fault
// (an address that is not this machine's, EADDRNOTAVAIL, or a name that
// does not resolve), not its port's (in use, or privileged: EACCES).
func hostListenError(err error) bool {
	var dns *net.DNSError
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.As(err, &dns)
}

// warnUnusedStore warns when the data folder holds a durable store that
// this run does not use (why: in-memory mode, cluster mode): its queued
// actions do not run and its task datastores are not read, so the next
// Synchronize of each task starts over, until a run uses it again, which
// then runs the actions queued there. Switching modes over a data folder
// was otherwise silent.
func warnUnusedStore(cfg *config.Config, log *slog.Logger, why string) {
	path := filepath.Join(cfg.Server.DataDirectory, store.DefaultFile)
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return
	}
	log.Warn(why+": the durable store in the data folder is not used: its queued actions do not run, "+
		"and its tasks' records are not read (a Synchronize starts over), until a run without this setting uses it again",
		"file", path)
}

// storeDriver is the store engine [Actions] UseInMemoryDatastore asks for.
// storeConfig is the store's configuration: [Server] DataDirectory and
// [Actions] (the engine, compaction of the file).
func storeConfig(cfg *config.Config, log *slog.Logger) store.Config {
	a := cfg.Actions
	free := float64(a.CompactFreePercent) / 100
	if a.CompactFreePercent == 0 {
		free = -1 // never
	}
	return store.Config{
		Driver: storeDriver(cfg), Dir: cfg.Server.DataDirectory, Logger: log,
		CompactFreeFraction: free, CompactMinSize: int64(a.CompactMinimumSizeMB) << 20,
		CompactTimeout: a.CompactTimeout, CompactOpenTimeout: a.CompactStartTimeout,
	}
}

func storeDriver(cfg *config.Config) string {
	if cfg.Actions.UseInMemoryDatastore {
		return store.DriverMemory
	}
	return store.DriverBolt
}

func openTarget(cfg *config.Config, tlsConfig *tls.Config, log *slog.Logger) (ingest.Target, error) {
	in := cfg.Ingestion
	if !in.Enabled {
		return nil, nil
	}
	t, err := ingest.Open(ingest.Options{
		Type: in.Type, Directory: in.Directory, Host: in.Host, Port: in.Port, SSL: in.SSL,
		Timeout: in.Timeout, BatchSize: in.BatchSize, TLSConfig: tlsConfig,
	}, log) // the target tags its own records
	if errors.Is(err, ingest.ErrDisabled) {
		return nil, nil
	}
	if err != nil {
		// A setting the target refuses (IngestDirectory that cannot be
		// created, ...) is reported at its own line, as a configuration
		// error of the file: it was at the section's header, with the
		// key in the middle of the message.
		var pe *messages.ParamError
		if errors.As(err, &pe) && !pe.Missing {
			line := cfg.Line("Ingestion", pe.Name)
			if line == 0 {
				line = cfg.Line("Ingestion", "") // its default
			}
			return nil, &config.Error{File: cfg.Path, Line: line, Section: "Ingestion", Key: pe.Name,
				Err: fmt.Errorf("%q: %s", pe.Value, pe.Reason)}
		}
		return nil, &config.Error{File: cfg.Path, Line: cfg.Line("Ingestion", ""), Section: "Ingestion", Err: err}
	}
	return t, nil
}

// tokenHost is the host written into tokens: the bind address, or this
// machine's first non-loopback address when bound to every interface.
func tokenHost(host string) string {
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsUnspecified() {
		return host
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// commitDelay is queue.Config.CommitDelay for [Actions] CommitDelay, whose
// 0 means "never waits" (the queue's 0 is its default).
func commitDelay(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
