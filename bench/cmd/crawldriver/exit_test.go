package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	err := d.report()
	if err == nil {
		t.Fatal("report returned nil after a run failed: crawl.sh and make bench would exit 0")
	}
	if !strings.Contains(err.Error(), "colly c4") {
		t.Errorf("error %q does not name the failed run", err)
	}
	b, rerr := os.ReadFile(filepath.Join(out, "crawl-summary.json"))
	if rerr != nil {
		t.Fatalf("the summary was not written before the failure was reported: %v", rerr)
	}
	if !strings.Contains(string(b), "the site went away") {
		t.Errorf("the summary does not carry the failure:\n%s", b)
	}
}
