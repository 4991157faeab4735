// Command extractbench compares text extractors on a corpus of real
// documents (bench/extract-corpus.sh builds it from Debian packages) and
// writes the "Text extraction" section of RESULTS.md.
//
// For every document family (pdf, docx, xlsx, pptx, odt, ods, odp, rtf,
// html) it runs each candidate on each document in a process of its own:
// Debian tools directly, Go libraries through this binary re-executed with
// -child (so that a library's panic, hang or memory use is confined to
// that process, and measured). Per candidate and family it reports:
//
//   - quality: token-level F1 of the candidate's text against the reference
//     text (bench/extract-refs.sh: pdftotext for PDFs, LibreOffice for the
//     office formats and HTML), per document, mean and median over the
//     documents whose reference is not empty; a failed document scores 0.
//     Tokens are the maximal runs of Unicode letters and digits, lower-
//     cased; F1 compares them as multisets (order is not scored). Documents
//     whose reference has fewer than 20 tokens are not scored (templates
//     whose rendering is a date and a slide number). For PDFs
//     the F1 against mutool (MuPDF) is given too, so that pdftotext has a
//     score against an independent extractor;
//   - failures: documents the candidate failed on (error, crash, timeout
//     of 60 s, empty text where the reference has text);
//   - speed: pages per second (PDF; pages from pdfinfo) and MB of input per
//     second, as the sum of per-document times (median over -runs runs;
//     libraries: extraction time inside the child, excluding process start
//     and library initialisation; tools: the whole process, which is their
//     real per-document cost), and as a ratio to the family's reference
//     tool measured in the same run (median of the per-run ratios);
//   - memory: peak resident set size of the process per document (median
//     and maximum over the documents), from wait4.
//
// Usage (from bench/, after the two scripts): go run ./cmd/extractbench
// -corpus out/extract-corpus -runs 3 -results RESULTS.md
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/connectorhq/connector/extract"
)

type candidate struct {
	name     string
	families []string
	tool     func(file string) []string // command line of a Debian tool; nil for a library
	lib      func(ctx context.Context, data []byte, file string) (string, error)
	note     string
}

var candidates = []candidate{
	{name: "pdftotext", families: []string{"pdf"}, note: "poppler-utils 22.12, Debian tool (reference)",
		tool: func(f string) []string { return []string{"pdftotext", "-enc", "UTF-8", "-q", f, "-"} }},
	{name: "mutool", families: []string{"pdf"}, note: "mupdf-tools 1.21, Debian tool (`mutool draw -F txt`)",
		tool: func(f string) []string { return []string{"mutool", "draw", "-q", "-F", "txt", "-o", "-", f} }},
	{name: "ours", families: []string{"pdf", "docx", "xlsx", "pptx", "odt", "ods", "odp", "rtf", "html"},
		note: "package extract (PDF: pdftotext in a limited child process)", lib: ours},
	{name: "ledongthuc/pdf", families: []string{"pdf"}, note: "pure Go", lib: ledongthuc},
	{name: "dslipak/pdf", families: []string{"pdf"}, note: "pure Go (fork of ledongthuc/pdf)", lib: dslipak},
	{name: "rsc.io/pdf", families: []string{"-pdf"}, note: "pure Go, text runs of Page.Content; not in the full runs (0.04–0.09 MB/s: hours for the corpus); on 4 PDFs it scored F1 0.445 at 2–4 pages/s", lib: rscPDF},
	{name: "go-pdfium", families: []string{"pdf"}, note: "PDFium compiled to WebAssembly, run by wazero (pure Go)", lib: pdfiumText},
	{name: "docx2txt", families: []string{"docx"}, note: "Debian tool (Perl)",
		tool: func(f string) []string { return []string{"docx2txt", f, "-"} }},
	{name: "odt2txt", families: []string{"odt", "ods", "odp"}, note: "Debian tool",
		tool: func(f string) []string { return []string{"odt2txt", "--encoding=UTF-8", f} }},
	{name: "unrtf", families: []string{"rtf"}, note: "Debian tool (`unrtf --text`)",
		tool: func(f string) []string { return []string{"unrtf", "--text", "--quiet", f} }},
	{name: "lu4p/cat", families: []string{"docx", "odt", "rtf"}, note: "pure Go", lib: lu4pCat},
	{name: "excelize", families: []string{"xlsx"}, note: "pure Go (xuri/excelize v2)", lib: excelizeText},
	{name: "xlsxreader", families: []string{"xlsx"}, note: "pure Go (thedatashed/xlsxreader)", lib: xlsxreaderText},
}

// reference is each family's speed reference (a tool, measured in the same
// run); "ours" where no other extractor exists.
var reference = map[string]string{
	"pdf": "pdftotext", "docx": "docx2txt", "odt": "odt2txt", "ods": "odt2txt", "odp": "odt2txt",
	"rtf": "unrtf", "xlsx": "excelize", "pptx": "ours", "html": "ours",
}

var families = []string{"pdf", "docx", "xlsx", "pptx", "odt", "ods", "odp", "rtf", "html"}

const docTimeout = 60 * time.Second

func main() {
	child := flag.String("child", "", "internal: run library candidate NAME on -file")
	file := flag.String("file", "", "internal: the document for -child")
	corpus := flag.String("corpus", "out/extract-corpus", "corpus folder (extract-corpus.sh, extract-refs.sh)")
	runs := flag.Int("runs", 3, "timed runs per candidate and document")
	only := flag.String("only", "", "comma-separated families (default all)")
	limit := flag.Int("limit", 0, "at most this many documents per family (0: all)")
	pdfEvery := flag.Int("pdf-every", 1, "take every Nth PDF of the corpus (the PDF family is large)")
	results := flag.String("results", "", "RESULTS.md to update (its Text extraction section); empty: print")
	summary := flag.String("summary", "", "JSON summary file")
	workdir := flag.String("work", "out/extract-work", "folder for the candidates' texts")
	flag.Parse()
	if *child != "" {
		os.Exit(runChild(*child, *file))
	}
	fams := families
	if *only != "" {
		fams = strings.Split(*only, ",")
	}
	if err := run(*corpus, *workdir, fams, *runs, *limit, *pdfEvery, *results, *summary); err != nil {
		fmt.Fprintln(os.Stderr, "extractbench:", err)
		os.Exit(1)
	}
}

// childResult is what a -child run prints.
type childResult struct {
	OK  bool   `json:"ok"`
	Err string `json:"err,omitempty"`
	NS  int64  `json:"ns"`
}

func runChild(name, file string) int {
	var c *candidate
	for i := range candidates {
		if candidates[i].name == name {
			c = &candidates[i]
		}
	}
	if c == nil || c.lib == nil {
		fmt.Fprintln(os.Stderr, "no library candidate", name)
		return 2
	}
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := initLib(name); err != nil {
		json.NewEncoder(os.Stderr).Encode(childResult{Err: "init: " + err.Error()})
		return 1
	}
	runtime.GC()
	// Libraries that ignore ctx are stopped by the clock.
	time.AfterFunc(docTimeout, func() {
		json.NewEncoder(os.Stderr).Encode(childResult{Err: "timeout", NS: docTimeout.Nanoseconds()})
		os.Exit(0)
	})
	ctx, cancel := context.WithTimeout(context.Background(), docTimeout)
	defer cancel()
	start := time.Now()
	var text string
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		text, err = c.lib(ctx, data, file)
	}()
	ns := time.Since(start).Nanoseconds()
	res := childResult{OK: err == nil, NS: ns}
	if err != nil {
		res.Err = err.Error()
	}
	os.Stdout.WriteString(text)
	json.NewEncoder(os.Stderr).Encode(res)
	return 0
}

// outcome is one candidate's run on one document.
type outcome struct {
	ok     bool
	err    string
	text   []byte
	ns     int64
	maxRSS int64 // bytes
}

func measure(self string, c *candidate, file string) outcome {
	var argv []string
	if c.tool != nil {
		argv = c.tool(file)
	} else {
		argv = []string{self, "-child", c.name, "-file", file}
	}
	// GNU time reports the peak RSS of the candidate's process (from wait4
	// in a small C process: a child of this Go process would inherit this
	// process's high-water mark across exec).
	rssFile, err := os.CreateTemp("", "extractbench-rss")
	if err != nil {
		return outcome{err: err.Error()}
	}
	rssFile.Close()
	defer os.Remove(rssFile.Name())
	argv = append([]string{"/usr/bin/time", "-f", "%M", "-o", rssFile.Name()}, argv...)
	ctx, cancel := context.WithTimeout(context.Background(), docTimeout+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// The candidate runs under GNU time: on timeout kill the whole process
	// group, not just time.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start).Nanoseconds()
	o := outcome{text: stdout.Bytes(), ns: wall}
	if b, rerr := os.ReadFile(rssFile.Name()); rerr == nil {
		l := strings.Split(strings.TrimSpace(string(b)), "\n")
		if kb, perr := strconv.ParseInt(strings.TrimSpace(l[len(l)-1]), 10, 64); perr == nil {
			o.maxRSS = kb * 1024
		}
	}
	switch {
	case ctx.Err() != nil:
		o.err = "timeout"
		return o
	case c.tool != nil && err != nil:
		o.err = firstLine(err.Error() + ": " + stderr.String())
		return o
	case c.tool != nil:
		o.ok = true
		if c.name == "unrtf" {
			o.text = stripUnrtfHeader(o.text)
		}
		return o
	}
	// A library: the last stderr line is the child's JSON.
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	var cr childResult
	if err != nil || json.Unmarshal([]byte(lines[len(lines)-1]), &cr) != nil {
		o.err = firstLine(fmt.Sprint("crashed: ", err, ": ", lastLines(stderr.String(), 3)))
		return o
	}
	o.ok, o.err, o.ns = cr.OK, cr.Err, cr.NS
	return o
}

// stripUnrtfHeader drops unrtf's "### ..." comment lines and its header
// block (up to the "-----------------" line).
func stripUnrtfHeader(b []byte) []byte {
	s := string(b)
	if i := strings.Index(s, "-----------------\n"); i >= 0 {
		s = s[i+18:]
	}
	return []byte(s)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// doc is one corpus document.
type doc struct {
	family, path, name string
	bytes              int64
	pages              int
	ref                []byte
	hasRef             bool
}

func loadCorpus(dir string, fams []string, limit, pdfEvery int) ([]*doc, error) {
	var docs []*doc
	for _, fam := range fams {
		files, err := filepath.Glob(filepath.Join(dir, fam, "*."+fam))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		if fam == "pdf" && pdfEvery > 1 {
			var keep []string
			for i, f := range files {
				if i%pdfEvery == 0 {
					keep = append(keep, f)
				}
			}
			files = keep
		}
		if limit > 0 && len(files) > limit {
			files = files[:limit]
		}
		for _, f := range files {
			st, err := os.Stat(f)
			if err != nil {
				return nil, err
			}
			d := &doc{family: fam, path: f, name: filepath.Base(f), bytes: st.Size()}
			base := strings.TrimSuffix(d.name, "."+fam)
			if ref, err := os.ReadFile(filepath.Join(dir, "ref", fam, base+".txt")); err == nil {
				d.ref, d.hasRef = ref, scorable(tokens(ref))
			}
			if fam == "pdf" {
				d.pages = pdfPages(f)
			}
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no documents in %s (run extract-corpus.sh first)", dir)
	}
	return docs, nil
}

func pdfPages(f string) int {
	out, err := exec.Command("pdfinfo", f).Output()
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// minRefTokens: a reference with fewer tokens is not scored. Office
// templates render a date and a slide number and little else, and such a
// reference says more about the renderer's fields than about the text.
const minRefTokens = 20

func scorable(t map[string]int) bool {
	n := 0
	for _, c := range t {
		n += c
	}
	return n >= minRefTokens
}

// tokens splits text into lower-case runs of letters and digits.
func tokens(b []byte) map[string]int {
	m := map[string]int{}
	for _, f := range strings.FieldsFunc(string(bytes.ToValidUTF8(b, nil)), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		m[strings.ToLower(f)]++
	}
	return m
}

// f1 is the multiset token F1 of got against want.
func f1(got, want map[string]int) float64 {
	ng, nw, common := 0, 0, 0
	for _, n := range got {
		ng += n
	}
	for t, n := range want {
		nw += n
		common += min(n, got[t])
	}
	if ng == 0 || nw == 0 || common == 0 {
		return 0
	}
	p, r := float64(common)/float64(ng), float64(common)/float64(nw)
	return 2 * p * r / (p + r)
}

// row is one candidate's figures on one family.
type row struct {
	Family, Candidate, Note string
	Docs, Failures, Scored  int
	FailureExamples         []string
	MeanF1, MedianF1        float64
	MeanF1Alt, MedianF1Alt  float64 // PDFs: against mutool
	PagesPerSec, MBPerSec   float64 // medians over runs
	RatioToRef              float64 // median over runs of (docs/s ÷ reference docs/s)
	MedianRSSMiB, MaxRSSMiB float64
	RunSeconds              []float64
	Pages                   int
	Bytes                   int64
	Reference               string
}

func run(dir, work string, fams []string, runs, limit, pdfEvery int, results, summary string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	docs, err := loadCorpus(dir, fams, limit, pdfEvery)
	if err != nil {
		return err
	}
	start := time.Now()
	byFam := map[string][]*doc{}
	for _, d := range docs {
		byFam[d.family] = append(byFam[d.family], d)
	}
	var rows []*row
	for _, fam := range fams {
		fdocs := byFam[fam]
		if len(fdocs) == 0 {
			continue
		}
		var cands []*candidate
		for i := range candidates {
			for _, f := range candidates[i].families {
				if f == fam {
					cands = append(cands, &candidates[i])
				}
			}
		}
		// times[cand][run] = total seconds over the family's documents.
		times := map[string][]float64{}
		outs := map[string][]outcome{} // first run's outcome per document
		for r := 0; r < runs; r++ {
			// Rotate the candidates' order each run.
			order := append(cands[r%len(cands):], cands[:r%len(cands)]...)
			for _, c := range order {
				total := int64(0)
				for i, d := range fdocs {
					o := measure(self, c, d.path)
					total += o.ns
					if r == 0 {
						outs[c.name] = append(outs[c.name], o)
					} else if !o.ok && outs[c.name][i].ok {
						outs[c.name][i] = o
					}
				}
				times[c.name] = append(times[c.name], float64(total)/1e9)
				fmt.Fprintf(os.Stderr, "extractbench: %s %s run %d: %.2fs\n", fam, c.name, r+1, float64(total)/1e9)
			}
		}
		pages, size := 0, int64(0)
		for _, d := range fdocs {
			pages += d.pages
			size += d.bytes
		}
		alt := outs["mutool"]
		for _, c := range cands {
			rw := &row{Family: fam, Candidate: c.name, Note: c.note, Docs: len(fdocs), Pages: pages, Bytes: size,
				Reference: reference[fam], RunSeconds: times[c.name]}
			var f1s, alts, rss []float64
			for i, d := range fdocs {
				o := outs[c.name][i]
				rss = append(rss, float64(o.maxRSS)/(1<<20))
				failed := !o.ok || (d.hasRef && len(tokens(o.text)) == 0)
				if failed {
					rw.Failures++
					if len(rw.FailureExamples) < 3 {
						why := o.err
						if why == "" {
							why = "no text"
						}
						rw.FailureExamples = append(rw.FailureExamples, d.name+": "+why)
					}
				}
				saveText(work, fam, c.name, d.name, o.text)
				got := tokens(o.text)
				if d.hasRef {
					v := 0.0
					if !failed {
						v = f1(got, tokens(d.ref))
					}
					f1s = append(f1s, v)
				}
				if fam == "pdf" && alt != nil && alt[i].ok {
					want := tokens(alt[i].text)
					if len(want) > 0 {
						v := 0.0
						if !failed {
							v = f1(got, want)
						}
						alts = append(alts, v)
					}
				}
			}
			rw.MeanF1, rw.MedianF1, rw.Scored = mean(f1s), median(f1s), len(f1s)
			rw.MeanF1Alt, rw.MedianF1Alt = mean(alts), median(alts)
			rw.MedianRSSMiB, rw.MaxRSSMiB = median(rss), maxOf(rss)
			var pps, mbs, ratios []float64
			for r, s := range times[c.name] {
				if s <= 0 {
					continue
				}
				pps = append(pps, float64(pages)/s)
				mbs = append(mbs, float64(size)/(1<<20)/s)
				if ref := times[reference[fam]]; r < len(ref) && ref[r] > 0 {
					ratios = append(ratios, ref[r]/s)
				}
			}
			rw.PagesPerSec, rw.MBPerSec, rw.RatioToRef = median(pps), median(mbs), median(ratios)
			rows = append(rows, rw)
		}
	}
	md := render(rows, docs, runs, time.Since(start))
	if summary != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		if err := os.WriteFile(summary, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if results == "" {
		fmt.Print(md)
		return nil
	}
	return updateResults(results, md)
}

func saveText(work, fam, cand, name string, text []byte) {
	dir := filepath.Join(work, fam, strings.ReplaceAll(cand, "/", "_"))
	if os.MkdirAll(dir, 0o755) == nil {
		_ = os.WriteFile(filepath.Join(dir, name+".txt"), text, 0o644)
	}
}

const (
	beginMark = "<!-- BEGIN extract section generated by bench/extract.sh (bench/cmd/extractbench): do not edit by hand -->"
	endMark   = "<!-- END extract section -->"
)

func render(rows []*row, docs []*doc, runs int, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintln(&b, beginMark)
	counts := map[string]int{}
	for _, d := range docs {
		counts[d.family]++
	}
	var parts []string
	for _, f := range families {
		if counts[f] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", f, counts[f]))
		}
	}
	fmt.Fprintf(&b, "_Generated by `bench/extract.sh` on %s (took %s); machine: %d CPUs, %s; corpus: %s documents (%s); runs: %d per candidate and document, candidate order rotated each run; go %s._\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH,
		strconv.Itoa(len(docs)), strings.Join(parts, ", "), runs, strings.TrimPrefix(runtime.Version(), "go"))
	if bi, ok := debug.ReadBuildInfo(); ok {
		var mods []string
		for _, m := range bi.Deps {
			switch m.Path {
			case "github.com/ledongthuc/pdf", "github.com/dslipak/pdf", "rsc.io/pdf", "github.com/klippa-app/go-pdfium",
				"github.com/lu4p/cat", "github.com/xuri/excelize/v2", "github.com/thedatashed/xlsxreader", "github.com/tetratelabs/wazero":
				mods = append(mods, m.Path+" "+m.Version)
			}
		}
		fmt.Fprintf(&b, "_Go libraries: %s._\n\n", strings.Join(mods, ", "))
	}
	fmt.Fprintln(&b, "| family | candidate | F1 vs reference, mean (median) over the documents scored | failures | pages/s | MB/s | speed ÷ reference | peak RSS per document, median (max) |")
	fmt.Fprintln(&b, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		pps := "–"
		if r.Family == "pdf" {
			pps = fmt.Sprintf("%.0f", r.PagesPerSec)
		}
		f1s := fmt.Sprintf("%.3f (%.3f), %d scored", r.MeanF1, r.MedianF1, r.Scored)
		if r.Family == "pdf" {
			f1s += fmt.Sprintf("; vs mutool %.3f (%.3f)", r.MeanF1Alt, r.MedianF1Alt)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d / %d | %s | %.2f | %.2f (÷ %s) | %.1f MiB (%.1f MiB) |\n",
			r.Family, r.Candidate, f1s, r.Failures, r.Docs, pps, r.MBPerSec, r.RatioToRef, r.Reference, r.MedianRSSMiB, r.MaxRSSMiB)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Failures (first three per candidate):")
	fmt.Fprintln(&b)
	for _, r := range rows {
		if r.Failures > 0 {
			fmt.Fprintf(&b, "- %s, %s: %s\n", r.Family, r.Candidate, strings.Join(r.FailureExamples, "; "))
		}
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Candidates:")
	fmt.Fprintln(&b)
	seen := map[string]bool{}
	for _, c := range candidates {
		if !seen[c.name] {
			seen[c.name] = true
			fmt.Fprintf(&b, "- %s: %s\n", c.name, c.note)
		}
	}
	fmt.Fprintln(&b, endMark)
	return b.String()
}

func updateResults(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i >= 0 && j > i {
		s = s[:i] + strings.TrimSuffix(section, "\n") + s[j+len(endMark):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n## Text extraction\n\n" + section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// ours is package extract, as the connector runs it.
func ours(ctx context.Context, data []byte, file string) (string, error) {
	x, err := extract.New(extract.Config{Limits: extract.Limits{Timeout: docTimeout}})
	if err != nil {
		return "", err
	}
	d, err := x.Extract(ctx, extract.Input{Data: data, Name: file})
	if err != nil {
		return "", err
	}
	return d.Text, nil
}
