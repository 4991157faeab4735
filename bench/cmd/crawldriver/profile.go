package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// profileReport is what the report shows of the engine's CPU profile.
type profileReport struct {
	path    string
	total   string             // "Total samples = ..." line
	cum     map[string]float64 // function → cumulative % of all samples
	flatTop []string           // the first lines of `go tool pprof -top`
}

// costCentre is one row of the profile table: a label and the functions
// whose cumulative shares are added (they must not call each other).
type costCentre struct {
	label string
	fns   []string
}

const crawlPkg = "github.com/connectorhq/connector/crawl."

// costCentres are the rows of the profile table. Nested rows ("of which")
// are part of the row above; the allocation and scheduler rows overlap
// every other row.
var costCentres = []costCentre{
	{"Fetch workers, everything a page costs on its worker goroutine (`crawl.(*worker).process`)", []string{crawlPkg + "(*worker).process"}},
	{"… HTML parsing: tokenizer, title, text, meta, link hrefs (`crawl.parseHTMLWith`)", []string{crawlPkg + "parseHTMLWith"}},
	{"… … of which the x/net/html tokenizer (`Tokenizer.Next`)", []string{"golang.org/x/net/html.(*Tokenizer).Next"}},
	{"… … of which building the visible text (`textBuilder.add`)", []string{crawlPkg + "(*textBuilder).add"}},
	{"… link resolution and normalisation (`crawl.(*worker).resolveWith`)", []string{crawlPkg + "(*worker).resolveWith"}},
	{"… … of which the WHATWG URL parser (`whatwg-url Parser.BasicParser`)", []string{"github.com/nlnwa/whatwg-url/url.(*parser).BasicParser"}},
	{"… … … of which bitset copies inside it (`bitset.(*BitSet).Clone`)", []string{"github.com/bits-and-blooms/bitset.(*BitSet).Clone"}},
	{"… HTTP request and body read (`crawl.(*worker).get`)", []string{crawlPkg + "(*worker).get"}},
	{"… SHA-256 of each body (`sha256.Sum256`)", []string{"crypto/sha256.Sum256"}},
	{"net/http connection goroutines (`persistConn.readLoop` + `writeLoop`)", []string{"net/http.(*persistConn).readLoop", "net/http.(*persistConn).writeLoop"}},
	{"Garbage collector, background marking (`runtime.gcBgMarkWorker`)", []string{"runtime.gcBgMarkWorker"}},
	{"Returning freed memory to the OS (`runtime.bgscavenge`: madvise)", []string{"runtime.bgscavenge"}},
	{"Allocation, all callers (`runtime.mallocgc`; overlaps the rows above)", []string{"runtime.mallocgc"}},
	{"Goroutine scheduling (`runtime.schedule`)", []string{"runtime.schedule"}},
}

// readProfile runs `go tool pprof` on the profile of binary.
func readProfile(binary, prof string) (*profileReport, error) {
	cum, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", binary, prof).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -top -cum %s: %w", prof, err)
	}
	flat, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=20", binary, prof).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -top %s: %w", prof, err)
	}
	p := &profileReport{cum: map[string]float64{}}
	sc := bufio.NewScanner(bytes.NewReader(cum))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "Total samples") {
			p.total = strings.TrimSpace(l)
			continue
		}
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasSuffix(f[4], "%") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err != nil {
			continue
		}
		p.cum[strings.TrimSuffix(strings.Join(f[5:], " "), " (inline)")] = v
	}
	if len(p.cum) == 0 {
		return nil, fmt.Errorf("go tool pprof -top -cum %s: no function lines", prof)
	}
	in := false
	sc = bufio.NewScanner(bytes.NewReader(flat))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(l), "flat") {
			in = true
		}
		if in {
			p.flatTop = append(p.flatTop, l)
		}
	}
	return p, nil
}

// share is the cumulative share of the centre's functions, and whether
// any of them was in the profile.
func (p *profileReport) share(c costCentre) (float64, bool) {
	var sum float64
	found := false
	for _, fn := range c.fns {
		if v, ok := p.cum[fn]; ok {
			sum += v
			found = true
		}
	}
	return sum, found
}

// heapSite is one allocation site of a heap profile.
type heapSite struct {
	fn    string
	bytes float64 // in use at the profile's moment
}

// readHeapTop returns the allocation sites holding the most memory (own
// allocations, inuse_space) in a heap profile of binary.
func readHeapTop(binary, prof string, n int) ([]heapSite, error) {
	out, err := exec.Command("go", "tool", "pprof", "-sample_index=inuse_space", "-top", fmt.Sprintf("-nodecount=%d", n), binary, prof).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -top %s: %w", prof, err)
	}
	var sites []heapSite
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") {
			continue
		}
		b, ok := parseSize(f[0])
		if !ok || b == 0 {
			continue
		}
		sites = append(sites, heapSite{fn: strings.TrimSuffix(strings.Join(f[5:], " "), " (inline)"), bytes: b})
	}
	if len(sites) == 0 {
		return nil, fmt.Errorf("go tool pprof -top %s: no allocation sites", prof)
	}
	return sites, nil
}

// parseSize reads pprof's sizes: "41.36MB", "512kB", "0".
func parseSize(s string) (float64, bool) {
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f * u.mult, err == nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}
