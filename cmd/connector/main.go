// Command connector is an ACI connector server: it speaks the ACI HTTP
// protocol of IDOL-style connectors, queues fetch actions and crawls web
// sites into an ingestion target.
//
//	connector [-config connector.cfg] [-port N]   run the server
//	connector -version                            print the version and exit
//	connector bench [flags] URL                   load-test an ACI server
//	connector password [-config F | -keyfile F]   encrypt a password (stdin) for a secret setting
//	connector oauth -config F [-task T]           authorize a mail or Webex task once with OAuth 2.0
//
// With no -config it runs on an embedded default configuration
// (127.0.0.1:7000, data in ./data).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/internal/cpuquota"
	"github.com/connectorhq/connector/internal/version"
	"github.com/connectorhq/connector/server"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(benchMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "password" {
		os.Exit(passwordMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "oauth" {
		os.Exit(oauthMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	keepSysmonAwake() // sysmon.go
	os.Exit(run(os.Args[1:], os.Stdout, &brokenPipe{w: os.Stderr}))
}

// about is what -h says the program is.
const about = `connector is an open-source ACI connector server. It speaks the ACI HTTP protocol of
IDOL-style connectors, so ACI clients and scripts work with it unchanged: they queue fetch
actions (/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask) and watch, cancel and
stop them with /action=QueueInfo. A Synchronize crawls web sites, with incremental state,
and delivers the documents to an ingestion target: IDX files, JSON Lines, or a CFS.

usage:
  connector [-config FILE] [-port N]   run the server (stop it with Ctrl-C or SIGTERM)
  connector -version                   print the version and exit
  connector bench -h                   the ACI load harness
  connector password -h                encrypt a password for a secret setting
  connector oauth -h                   authorize a Google Mail or Webex task once with OAuth 2.0

With no -config the server runs on an embedded default configuration: 127.0.0.1:7000, data
in ./data, one task MyTask crawling http://127.0.0.1:8000/. README.md and docs/ (in the
source, https://github.com/connectorhq/connector) describe the configuration and protocol.

flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded default configuration)")
	port := fs.Int("port", -1, "ACI port, overriding [Server] Port (0: any free port)")
	showVersion := fs.Bool("version", false, "print the version, source revision and build number, and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "connector: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String())
		return 0
	}
	// -1, the default, stands for "not given": a -port given is checked
	// whatever its value (-port -2 was otherwise ignored without a word).
	portGiven := false
	fs.Visit(func(f *flag.Flag) { portGiven = portGiven || f.Name == "port" })
	if portGiven && (*port < 0 || *port > 65535) {
		fmt.Fprintf(stderr, "connector: -port %d is not a port number (expected 0 to 65535; 0: any free port)\n", *port)
		return 2
	}
	// The whole configuration is checked before the server creates
	// anything (its data folder, store, log file or ingestion folder).
	cfg, conn, err := connectors.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "connector: %v\n", err)
		return 1
	}
	// Signals are caught before the server starts: it may serve requests
	// (and a client may ask it to stop) before Start returns here. One
	// goroutine reads them from then on, start-up included (which may take
	// a while: a store to recover or compact, a big queue to restore, a
	// cluster to join): the first asks for the shutdown (during start-up
	// it stops the start, at once where it restores the queue, else before
	// the next component; then it stops what had started), the next
	// forces the exit, whenever it comes.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// A write to standard error (the log, without [Logging] LogFile) or
	// standard output after their reader has gone (connector | head, a
	// supervisor that closed its pipe) fails with EPIPE instead of ending
	// the process: Go's default for descriptors 1 and 2 is to die of
	// SIGPIPE. Caught, not ignored: an ignored signal stays ignored in the
	// programs the server starts (pdftotext, the browser), a caught one
	// is reset to its default there. main's brokenPipe drops the log's
	// later writes.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	interrupted := make(chan struct{}) // closed on the first signal
	stopping := make(chan struct{})    // closed when the shutdown begins for another reason
	ended := make(chan struct{})       // closed when run returns
	defer close(ended)
	// Cancelled on the first signal: it stops a start-up in progress.
	startCtx, stopStart := context.WithCancel(context.Background())
	defer stopStart()
	go func() {
		var first time.Time
		select {
		case s := <-sig:
			fmt.Fprintf(stderr, "connector: %v received, shutting down (again to force)\n", s)
			first = time.Now()
			close(interrupted)
			stopStart()
		case <-stopping:
		case <-ended:
			return
		}
		for {
			select {
			case s := <-sig:
				// A signal right after the first is the same request
				// delivered twice, not a second one: timeout(1) sends its
				// SIGTERM to the process and then to its process group, a
				// wrapper script may forward the Ctrl-C the terminal sent
				// to the whole group already.
				if !first.IsZero() && time.Since(first) < sameRequest {
					fmt.Fprintf(stderr, "connector: %v received again within %s, taken for the same request (once more to force)\n", s, sameRequest)
					continue
				}
				fmt.Fprintln(stderr, "connector: forced exit")
				os.Exit(1)
			case <-ended:
				return
			}
		}
	}()
	srv, err := server.StartContext(startCtx, cfg, server.Options{
		Connector: conn,
		Port:      *port,
		LogOutput: stderr,
	})
	if errors.Is(err, server.ErrStartStopped) {
		// Asked to stop while it started: a clean stop, as after a
		// complete start (what had started is stopped; actions not
		// restored yet wait in the store for the next start).
		fmt.Fprintf(stderr, "connector: %v; stopped\n", err)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "connector: %v\n", err)
		return 1
	}
	// SIGHUP (logrotate's postrotate, a certificate tool's reload, or
	// the terminal closing) reopens the log file and reloads the ports'
	// TLS certificates; it no longer ends the process, as Go's default
	// did, without a word. One that came during start-up is handled now.
	go func() {
		for {
			select {
			case <-hup:
				srv.ReopenLog()
				srv.ReloadTLS()
			case <-ended:
				return
			}
		}
	}()
	// A process capped below one core (cgroup CPU quota) runs one P,
	// not the runtime's minimum of two (internal/cpuquota).
	quotaCtx, stopQuota := context.WithCancel(context.Background())
	defer stopQuota()
	go cpuquota.Keep(quotaCtx, srv.Logger())
	var serveErr error
	select {
	case <-interrupted:
	case <-srv.StopRequested():
		// The service port's Stop: the same shutdown as SIGTERM.
		fmt.Fprintln(stderr, "connector: Stop received on the service port, shutting down")
		close(stopping)
	case serveErr = <-srv.Done():
		close(stopping)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget(cfg.Server.ShutdownTimeout))
	defer cancel()
	if errors.Is(serveErr, server.ErrEvicted) {
		// The cluster dropped this node (paused or cut off longer than
		// its lease) and took its actions over: stop, and start again as
		// a new member.
		if err := srv.Shutdown(ctx); err != nil {
			fmt.Fprintf(stderr, "connector: %v\n", err)
		}
		fmt.Fprintf(stderr, "connector: %v; starting again to rejoin the cluster\n", serveErr)
		return rejoin(stderr)
	}
	if err := errors.Join(serveErr, srv.Shutdown(ctx)); err != nil {
		fmt.Fprintf(stderr, "connector: %v\n", err)
		return 1
	}
	return 0
}

// sameRequest is how soon after the signal that began the shutdown
// another one is taken for the same request delivered twice, not for the
// second that forces the exit.
const sameRequest = time.Second

// shutdownBudget is how long the whole shutdown may take: [Server]
// ShutdownTimeout for the running actions, and 10s more for the rest. A
// ShutdownTimeout near the largest Duration would overflow the sum into
// the past, and the queue would then stop without waiting for its running
// actions (they would be re-run at the next start, as after a crash): the
// sum stops at the largest Duration.
func shutdownBudget(actions time.Duration) time.Duration {
	if actions > math.MaxInt64-10*time.Second {
		return math.MaxInt64
	}
	return actions + 10*time.Second
}

// exitEvicted is the exit status of a node that was dropped from its
// cluster and could not start again by itself.
const exitEvicted = 3

// rejoin replaces the process with a fresh start of the same command (same
// PID, arguments and environment), which joins the cluster as a new
// member.
func rejoin(stderr io.Writer) int {
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, os.Environ())
	}
	fmt.Fprintf(stderr, "connector: cannot start again (%v); exiting with status %d for the supervisor to restart it\n", err, exitEvicted)
	return exitEvicted
}
