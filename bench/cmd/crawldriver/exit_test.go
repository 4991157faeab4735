package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/connectorhq/connector/bench/internal/resulttest"
)

// A crawl benchmark in which a program failed ends in an error (crawldriver
// exits 1), after it has written the summary with the failure in it. It
// printed "N failures" and exited 0, so crawl.sh, make bench and the smoke
// run (make -C bench quick) went on as if every crawl had run.
func TestFailedRunFailsTheReport(t *testing.T) {
	out := t.TempDir()
	d := &driver{c: config{out: out, concs: []int{4}}, raw: filepath.Join(out, "raw"), res: runs{},
		m:     &meta{Started: time.Now().UTC(), Finished: time.Now().UTC()},
		fails: []failure{{Key: "colly c4", Iter: 1, Err: "colly: exit status 1: the site went away"}}}
	resulttest.FailureReported(t, d.report(), filepath.Join(out, "crawl-summary.json"), "the site went away", "colly c4 (run 2)")
}
