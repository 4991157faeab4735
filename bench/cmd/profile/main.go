// Command profile runs the whole connector in process (server.Start with
// the bench module's no-op repository, so no crawl cost) under one
// loadgen scenario and writes a CPU profile, to find where a request's
// time goes when a goal is missed. The load generator runs in the same
// process: read the profile with a focus on the server's packages, e.g.
//
//	go run ./cmd/profile -scenario status -store durable -o out/status.prof
//	go tool pprof -top -focus 'connector/(transport|actors|store|server)' out/status.prof
//
// Throughput printed here is not comparable with httpbench (client and
// server share one process and the profiler runs). With -loadgen BIN the
// load comes from "BIN bench" in a child process instead, so the profile
// holds the server alone, as httpbench runs it:
//
//	go run ./cmd/profile -scenario status -store memory -loadgen ../bin/connector -o out/status.prof
//
// -allocs FILE also writes the allocation profile of the run (with -loadgen,
// the server's alone; startup included): go tool pprof -sample_index=alloc_space.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"time"

	"github.com/connectorhq/connector/bench/internal/benchrepo"
	"github.com/connectorhq/connector/bench/internal/result"
	benchserver "github.com/connectorhq/connector/bench/internal/server"
	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/loadgen"
	"github.com/connectorhq/connector/server"
)

func main() {
	scenario := flag.String("scenario", "status", "loadgen scenario: submit, status, status-list, mixed")
	storeKind := flag.String("store", "durable", "durable or memory")
	dur := flag.Duration("dur", 10*time.Second, "load duration")
	conc := flag.Int("conc", 32, "connections")
	outPath := flag.String("o", "out/cpu.prof", "CPU profile file")
	loadgenBin := flag.String("loadgen", "", "drive the load with \"BIN bench\" in a child process (e.g. ../bin/connector)")
	running := flag.Bool("running", false, "submit: leave the queue running (actions start as they arrive) instead of pausing it")
	allocsPath := flag.String("allocs", "", "also write the allocation profile of the run to this file (with -loadgen: the server's alone)")
	realRepo := flag.Bool("http", false, "the HTTP connector's repository and httpbench's configuration (Identifiers of task EMPTY, 4 threads) instead of the no-op repository")
	flag.Parse()
	if err := run(*scenario, *storeKind, *dur, *conc, *outPath, *allocsPath, *loadgenBin, *realRepo, *running); err != nil {
		result.Fatal("profile", err)
	}
}

func run(scenario, storeKind string, dur time.Duration, conc int, outPath, allocsPath, loadgenBin string, realRepo, running bool) error {
	dir, err := os.MkdirTemp("", "profile-")
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer os.RemoveAll(dir)
	text := fmt.Sprintf("[Server]\nHost=127.0.0.1\nDataDirectory=%s\n[Actions]\nMaximumQueueSize=5000000\nUseInMemoryDatastore=%t\n[Logging]\nLogLevel=warn\n[Ingestion]\nEnableIngestion=false\n",
		dir, storeKind == "memory")
	fetchAction, params := benchrepo.FetchAction, "TaskSections="+benchrepo.Task
	if realRepo {
		text = benchserver.Connector{Dir: dir, InMemory: storeKind == "memory"}.Config(0)
		fetchAction, params = "Identifiers", "ConfigSection=EMPTY"
	}
	var conn *fetch.Descriptor
	var cfg *config.Config
	if realRepo {
		cfg, conn, err = connectors.Builtin.Parse("profile.cfg", []byte(text))
	} else {
		cfg, err = config.Parse("profile.cfg", []byte(text), nil)
	}
	if err != nil {
		return err
	}
	opts := server.Options{
		Port:       0,
		LogOutput:  os.Stderr,
		Repository: func(server.Deps) (fetch.Repository, error) { return benchrepo.New(benchrepo.Options{}), nil },
	}
	if realRepo {
		opts.Repository, opts.Connector = nil, conn
	}
	srv, err := server.Start(cfg, opts)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	target := "http://" + srv.Addr().String()
	lc := loadgen.Config{Target: target, Scenario: loadgen.Scenario(scenario), Duration: dur, Concurrency: conc,
		FetchAction: fetchAction, Params: params, Filter: "State=Finished&Sort-By=finish-time&MaxResults=100"}
	if scenario == string(loadgen.ScenarioStatusList) {
		// Fill the retained history first, outside the profile.
		if _, err := loadgen.Run(context.Background(), loadgen.Config{Target: target, Scenario: loadgen.ScenarioMixed,
			Requests: 10000, Duration: 5 * time.Minute, Concurrency: conc, FetchAction: fetchAction,
			Params: params}); err != nil {
			return err
		}
	}
	if scenario == string(loadgen.ScenarioSubmit) && !running {
		if _, err := srv.Queue().Pause(context.Background()); err != nil {
			return err
		}
	}
	f, err := os.Create(outPath)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if loadgenBin != "" {
		err := external(loadgenBin, lc)
		pprof.StopCPUProfile()
		if err != nil {
			return err
		}
		if err := writeAllocs(allocsPath); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "profile: %s/%s: server profile in %s\n", scenario, storeKind, outPath)
		return nil
	}
	rep, err := loadgen.Run(context.Background(), lc)
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	if err := writeAllocs(allocsPath); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "profile: %s/%s: %.0f operations/s, p99 %d µs, passed %t; profile in %s\n",
		scenario, storeKind, rep.Operations.PerSecond, rep.OperationLatency.P99Us, rep.Passed, outPath)
	return nil
}

// writeAllocs writes the allocation profile so far to path ("": none).
func writeAllocs(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("profile: allocation profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// external runs the load of lc with "bin bench" in a child process and
// prints its report.
func external(bin string, lc loadgen.Config) error {
	cmd := exec.Command(bin, "bench", "-scenario", string(lc.Scenario), "-duration", lc.Duration.String(),
		"-concurrency", fmt.Sprint(lc.Concurrency), "-fetchaction", lc.FetchAction, "-params", lc.Params, "-filter", lc.Filter,
		"-quiet", lc.Target)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("profile: %s bench: %w", bin, err)
	}
	return nil
}
