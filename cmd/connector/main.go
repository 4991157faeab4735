// Command connector is an ACI connector server: it speaks the ACI HTTP
// protocol of IDOL-style connectors, queues fetch actions and crawls web
// sites into an ingestion target.
//
//	connector [-config connector.cfg] [-port N]   run the server
//	connector bench [flags] URL                   load-test an ACI server
//	connector password [-config F | -keyfile F]   encrypt a password (stdin) for a secret setting
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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/httpfetch"
	"github.com/connectorhq/connector/server"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(benchMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "password" {
		os.Exit(passwordMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("connector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded default configuration)")
	port := fs.Int("port", -1, "ACI port, overriding [Server] Port (0: any free port)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: connector [-config FILE] [-port N]\n       connector bench -h\n       connector password -h\n\n")
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
	if *port > 65535 {
		fmt.Fprintf(stderr, "connector: -port %d is not a port number\n", *port)
		return 2
	}
	// The whole configuration is checked before the server creates
	// anything (its data folder, store, log file or ingestion folder).
	cfg, err := config.Load(*cfgPath, httpfetch.TaskKeys)
	if err == nil {
		err = httpfetch.Check(cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "connector: %v\n", err)
		return 1
	}
	srv, err := server.Start(cfg, server.Options{
		Port:      *port,
		LogOutput: stderr,
		Repository: func(d server.Deps) (fetch.Repository, error) {
			return httpfetch.New(httpfetch.Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger})
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "connector: %v\n", err)
		return 1
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var serveErr error
	select {
	case s := <-sig:
		fmt.Fprintf(stderr, "connector: %v received, shutting down (again to force)\n", s)
		go func() {
			<-sig
			fmt.Fprintln(stderr, "connector: forced exit")
			os.Exit(1)
		}()
	case serveErr = <-srv.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout+10*time.Second)
	defer cancel()
	if err := errors.Join(serveErr, srv.Shutdown(ctx)); err != nil {
		fmt.Fprintf(stderr, "connector: %v\n", err)
		return 1
	}
	return 0
}
