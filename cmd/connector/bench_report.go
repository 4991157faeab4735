package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/connectorhq/connector/loadgen"
)

// benchReportMain runs `connector bench report [-o FILE.html] RUN.json`:
// the HTML report of a run from its JSON (what -report writes during the
// run), so that a run kept as JSON can be looked at later.
func benchReportMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connector bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the page to this file (default: standard output)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: connector bench report [-o FILE.html] RUN.json\n\n"+
			"Writes the self-contained HTML report (charts, tables) of a run saved with -json.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		switch {
		case flagAfterArgs(fs.Args()) != "":
			fmt.Fprintln(stderr, flagAfterArgsError("connector bench report", flagAfterArgs(fs.Args())))
		case fs.NArg() == 0:
			fmt.Fprintln(stderr, "connector bench report: no RUN.json given")
		default:
			fmt.Fprintf(stderr, "connector bench report: one RUN.json expected, got %q\n", fs.Args())
		}
		fs.Usage()
		return 2
	}
	rep, err := readReport(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "connector bench report: %v\n", err)
		return 1
	}
	w := stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintf(stderr, "connector bench report: %v\n", err)
			return 1
		}
		w = f
	}
	err = loadgen.WriteHTML(w, rep)
	if f != nil {
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		fmt.Fprintf(stderr, "connector bench report: %v\n", err)
		return 1
	}
	return 0
}

// readReport reads a run's JSON report from path.
func readReport(path string) (*loadgen.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep, err := loadgen.ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}
