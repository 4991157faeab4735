package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectorhq/connector/bench/internal/resulttest"
)

// A run in which a step failed ends in an error (the driver exits 1), after
// it has written the summary and the results with the failure in them. It
// printed "N failures" and exited 0, so make bench, make -C bench quick
// (the smoke run that keeps the benches working) and any script after them
// went on as if every benchmark had run.
func TestFailedStepFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "floors"), []byte("#!/bin/sh\necho 'floors: the disk went away' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	c := config{bin: bin, connector: filepath.Join(dir, "no-connector"), work: filepath.Join(dir, "work"), out: out,
		results: "", runs: 1, heavyRuns: 1, quick: true, soak: time.Second, only: "floors"}
	resulttest.FailureReported(t, run(c), filepath.Join(out, "summary.json"), "the disk went away", "1 of 1 step run", "floors (run 1)")
}
