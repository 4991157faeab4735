// Package resulttest holds the checks the bench programs' tests share
// about how they write RESULTS.md and report failed runs.
package resulttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SpliceKeepsOtherSections checks that splice (a program's -results
// writer) adds its block, marked <!-- TAG:begin --> ... <!-- TAG:end -->,
// to a file without the markers (the QUICK runs' out/RESULTS.quick.md,
// which other steps write too) and then replaces it, keeping the rest of
// the file; and that it makes a file not there yet.
func SpliceKeepsOtherSections(t *testing.T, tag string, splice func(path, section string) error) {
	t.Helper()
	begin, end := "<!-- "+tag+":begin -->", "<!-- "+tag+":end -->"
	path := filepath.Join(t.TempDir(), "RESULTS.quick.md")
	if err := os.WriteFile(path, []byte("# Benchmark results\n\n## Crawl\n\ncrawl figures\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"first", "second"} {
		if err := splice(path, begin+"\n"+v+" figures\n"+end+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "crawl figures") || !strings.Contains(s, "second figures") ||
		strings.Contains(s, "first figures") || strings.Count(s, begin) != 1 {
		t.Errorf("after two splices:\n%s", s)
	}
	fresh := filepath.Join(t.TempDir(), "new.md")
	if err := splice(fresh, begin+"\nx\n"+end+"\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(fresh); !strings.Contains(string(b), begin+"\nx\n") {
		t.Errorf("new file: %q", b)
	}
}

// FailureReported checks what a driver returned (err) after a run in which
// something failed: an error, naming what failed (each of names), so that
// the program exits 1; and the summary at summary, written first, carrying
// the failure's text (cause).
func FailureReported(t *testing.T, err error, summary, cause string, names ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("nil after a failed run: the program, its script and make bench would exit 0")
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not name %q", err, n)
		}
	}
	b, rerr := os.ReadFile(summary)
	if rerr != nil {
		t.Fatalf("the summary was not written before the failure was reported: %v", rerr)
	}
	if !strings.Contains(string(b), cause) {
		t.Errorf("the summary does not carry the failure %q:\n%s", cause, b)
	}
}
