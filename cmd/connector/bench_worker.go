package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/connectorhq/connector/loadgen"
)

// SecretEnv names the environment variable that holds the secret shared
// by a bench coordinator and its load generators.
const SecretEnv = "CONNECTOR_BENCH_SECRET"

// benchWorkerMain runs `connector bench worker`: a load generator that
// sends its share of the runs a coordinator (`connector bench -workers`)
// plans, until Ctrl-C. docs/bench-harness.md, "Several load generators".
func benchWorkerMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connector bench worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7071", "address to serve plans on (beyond loopback it needs a secret)")
	secretFile := fs.String("secret-file", "", "file holding the secret a coordinator must send (default: $"+SecretEnv+")")
	allowRemote := fs.Bool("allow-remote", false, "allow a plan to load a target that is not a loopback address (the coordinator must allow it too)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: connector bench worker [-listen ADDR] [-secret-file FILE] [-allow-remote]\n\n"+
			"Serves as one load generator of distributed runs: a coordinator (connector bench -workers ADDR,...)\n"+
			"sends it its share of the load and merges what it measured.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	secret, err := readSecret(*secretFile)
	if err != nil {
		fmt.Fprintf(stderr, "connector bench worker: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "connector bench worker: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	if err := loadgen.ServeWorker(ctx, ln, loadgen.WorkerOptions{Secret: secret, AllowRemote: *allowRemote, Logger: log}); err != nil {
		fmt.Fprintf(stderr, "connector bench worker: %v\n", err)
		if errors.Is(err, loadgen.ErrInvalidConfig) {
			return 2
		}
		return 1
	}
	return 0
}

// readSecret reads the shared secret from path, else from the
// environment; "" when neither has one. The secret is never printed.
func readSecret(path string) (string, error) {
	if path == "" {
		return os.Getenv(SecretEnv), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("-secret-file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("-secret-file %s is empty", path)
	}
	return s, nil
}
