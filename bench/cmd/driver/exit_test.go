package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	err := run(c)
	if err == nil {
		t.Fatal("run returned nil after its only step failed: make bench would exit 0")
	}
	if !strings.Contains(err.Error(), "1 of 1 step run") || !strings.Contains(err.Error(), "floors") {
		t.Errorf("error %q does not say how many steps failed and which", err)
	}
	b, rerr := os.ReadFile(filepath.Join(out, "summary.json"))
	if rerr != nil {
		t.Fatalf("the summary was not written before the failure was reported: %v", rerr)
	}
	if !strings.Contains(string(b), "the disk went away") {
		t.Errorf("the summary does not carry the step's failure:\n%s", b)
	}
}
