package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/loadgen"
)

// aciStub answers GetVersion and counts every action it is sent.
type aciStub struct {
	mu      sync.Mutex
	actions map[string]int
}

func startStub(t *testing.T) (*aciStub, string) {
	s := &aciStub{actions: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, _ := url.ParseQuery(strings.TrimPrefix(r.RequestURI, "/"))
		action := strings.ToUpper(q.Get("action"))
		s.mu.Lock()
		s.actions[action]++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		if action == "GETVERSION" {
			fmt.Fprint(w, `<autnresponse><action>GETVERSION</action><response>SUCCESS</response><responsedata><version>1.0</version><productname>stub</productname></responsedata></autnresponse>`)
			return
		}
		fmt.Fprint(w, `<autnresponse><action>FETCH</action><response>SUCCESS</response><responsedata><token>VE9L</token></responsedata></autnresponse>`)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *aciStub) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.actions {
		out[k] = v
	}
	return out
}

// With its defaults, bench sends only GetVersion (it queues nothing on a
// server someone is trying out), and it says what it will send, and
// where, before it starts.
func TestBenchDefaultQueuesNothing(t *testing.T) {
	t.Parallel()
	stub, base := startStub(t)
	var stdout, stderr bytes.Buffer
	code := benchMain([]string{"-duration", "200ms", base}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Zero(t, stub.counts()["FETCH"])
	require.Positive(t, stub.counts()["GETVERSION"])
	plan := stderr.String()
	require.Contains(t, plan, "target    "+base)
	require.Contains(t, plan, "each operation sends  GET /action=GetVersion")
	require.Contains(t, plan, "reads only: queues no action on the server")
	require.Less(t, strings.Index(plan, "reads only"), strings.Index(plan, "load started"), "the plan comes before the load")
	require.Contains(t, stdout.String(), "getversion")
}

// A scenario that queues actions is refused, with nothing sent, until
// -params names the task the actions run.
func TestBenchRefusesSubmitWithoutTask(t *testing.T) {
	t.Parallel()
	stub, base := startStub(t)
	for _, args := range [][]string{
		{"-scenario", "submit"},
		{"-scenario", "Mixed", "-params", "Depth=1"},
		{"-scenario", "status", "-params", "TaskSections="},
		{"-scenario", "status-list", "-prepare", "3"},
		{"-scenario", "stop"},
		{"-scenario", "cancel", "-fetchaction", "Collect"},
	} {
		var stdout, stderr bytes.Buffer
		code := benchMain(append(args, "-duration", "200ms", base), &stdout, &stderr)
		require.Equal(t, 2, code, "%v: %s", args, stderr.String())
		require.Contains(t, stderr.String(), "name the task it runs with -params", "%v", args)
	}
	require.Empty(t, stub.counts(), "nothing was sent")

	var stdout, stderr bytes.Buffer
	code := benchMain([]string{"-scenario", "submit", "-params", "TaskSections=Small", "-requests", "5", base}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Equal(t, 5, stub.counts()["FETCH"])
	require.Contains(t, stderr.String(), "each operation sends  GET /action=Fetch&FetchAction=Synchronize&TaskSections=Small")
	require.Contains(t, stderr.String(), "queues one Synchronize action on the server per operation (at most 5)")
}

// A zero -timeout, -poll or -interval is refused as a zero -duration is:
// loadgen.Config reads 0 as "the default", so -poll 0 (poll as fast as you
// can) polled every 10 ms, -timeout 0 (no timeout?) timed out at 10 s and
// -interval 0 made 1 s intervals where -interval 5ms is refused, each
// silently, the plan printing the default as if it had been asked for.
func TestBenchRefusesZeroDurations(t *testing.T) {
	t.Parallel()
	stub, base := startStub(t)
	for _, flag := range []string{"-timeout", "-poll", "-interval", "-duration"} {
		var stdout, stderr bytes.Buffer
		code := benchMain([]string{"-dry-run", "-scenario", "mixed", "-params", "TaskSections=Small", flag, "0", base}, &stdout, &stderr)
		require.Equal(t, 2, code, "%s 0: %s%s", flag, stdout.String(), stderr.String())
		require.Contains(t, stderr.String(), "connector bench: "+flag+" 0s: must be positive", flag)
		require.NotContains(t, stdout.String(), "dry run", flag)
	}
	require.Empty(t, stub.counts(), "nothing was sent")
}

func TestBenchDryRunSendsNothing(t *testing.T) {
	t.Parallel()
	stub, base := startStub(t)
	var stdout, stderr bytes.Buffer
	code := benchMain([]string{"-dry-run", "-scenario", "mixed", "-params", "ConfigSection=Small", "-rate", "20", "-duration", "3s", base}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Contains(t, stdout.String(), "at most 60)")
	require.Contains(t, stdout.String(), "dry run: nothing was sent")
	require.Empty(t, stub.counts())

	stdout.Reset()
	stderr.Reset()
	code = benchMain([]string{"-dry-run", "http://192.0.2.1:7000"}, &stdout, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "not a loopback address")
}

// Runs saved with -json compare side by side; -html writes the page; a
// group may be several files (a list or a pattern) and may be named.
func TestBenchCompare(t *testing.T) {
	t.Parallel()
	_, base := startStub(t)
	dir := t.TempDir()
	for _, name := range []string{"base-1", "base-2", "new-1"} {
		var stdout, stderr bytes.Buffer
		code := benchMain([]string{"-quiet", "-duration", "30s", "-requests", "200", "-json", filepath.Join(dir, name+".json"), base}, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
	}
	var stdout, stderr bytes.Buffer
	page := filepath.Join(dir, "cmp.html")
	code := benchMain([]string{"compare", "-html", page, filepath.Join(dir, "base-*.json"), "after=" + filepath.Join(dir, "new-1.json")}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	out := stdout.String()
	require.Contains(t, out, "base   2 run(s), baseline")
	require.Contains(t, out, "after  1 run(s), compared with base")
	require.Contains(t, out, "after/base")
	require.Contains(t, out, "getversion")
	require.Contains(t, out, "Mann-Whitney")
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	require.Contains(t, string(b), `<svg xmlns="http://www.w3.org/2000/svg" id="throughput"`)

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 2, benchMain([]string{"compare", filepath.Join(dir, "new-1.json")}, &stdout, &stderr), "one group")
	require.Equal(t, 1, benchMain([]string{"compare", filepath.Join(dir, "new-1.json"), filepath.Join(dir, "nope.json")}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "nope.json")

	// Rendering a saved run.
	stdout.Reset()
	require.Equal(t, 0, benchMain([]string{"report", filepath.Join(dir, "new-1.json")}, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), `id="percentiles"`)
}

// A workload file runs with -workload, its variables set with -set; the
// scenario flags conflict with it; a built-in scenario prints as one.
func TestBenchWorkloadFile(t *testing.T) {
	t.Parallel()
	stub, base := startStub(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "read.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`schema: connector-workload/1
name: read
vars:
  who: nobody
operations:
  - name: read
    steps:
      - name: hello
        request: action=GetVersion&Who={{who}}
`), 0o600))
	var stdout, stderr bytes.Buffer
	code := benchMain([]string{"-workload", path, "-set", "who=me", "-requests", "5", base}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Contains(t, stderr.String(), "operation read (1 in 1):  GET /action=GetVersion&Who=me")
	require.Contains(t, stdout.String(), "hello")
	require.Contains(t, stdout.String(), `workload read (`+path)
	require.Equal(t, 6, stub.counts()["GETVERSION"], "5 operations and the report's GetVersion")

	for _, args := range [][]string{
		{"-workload", path, "-scenario", "submit"},
		{"-workload", path, "-params", "TaskSections=x"},
		{"-set", "who=me"},
		{"-workload", filepath.Join(dir, "none.yaml")},
	} {
		stderr.Reset()
		require.Equal(t, 2, benchMain(append(args, base), &stdout, &stderr), "%v", args)
	}

	stdout.Reset()
	require.Equal(t, 0, benchMain([]string{"workload", "mixed"}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "schema: connector-workload/1")
	require.Equal(t, 2, benchMain([]string{"workload", "nope"}, &stdout, &stderr))
}

// Two `connector bench worker` processes on loopback send one run's load:
// the coordinator (this process) plans, they load, it merges and reports
// both; a worker stops on SIGTERM.
func TestBenchWorkersEndToEnd(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	stub, base := startStub(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("correct horse\n"), 0o600))
	var addrs []string
	for range 2 {
		cmd := exec.Command(bin, "bench", "worker", "-listen", "127.0.0.1:0", "-secret-file", secret)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		})
		line, err := bufio.NewReader(out).ReadString('\n')
		require.NoError(t, err)
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
		require.True(t, ok, line)
		addrs = append(addrs, addr)
	}
	var stdout, stderr bytes.Buffer
	jsonPath := filepath.Join(dir, "run.json")
	code := benchMain([]string{"-workers", strings.Join(addrs, ","), "-secret-file", secret, "-requests", "40",
		"-concurrency", "4", "-json", jsonPath, base}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Contains(t, stderr.String(), "generators 2 load generators send it")
	require.Equal(t, 41, stub.counts()["GETVERSION"], "40 operations from the generators and the coordinator's GetVersion")
	rep, err := readReport(jsonPath)
	require.NoError(t, err)
	require.Equal(t, int64(40), rep.Operations.OK)
	require.Len(t, rep.Generators, 2)
	require.Equal(t, int64(20), rep.Generators[0].Operations.OK)
	require.NotContains(t, stderr.String()+stdout.String(), "correct horse", "the secret is never printed")

	stderr.Reset()
	code = benchMain([]string{"-workers", addrs[0], "-requests", "4", base}, &stdout, &stderr)
	require.Equal(t, 1, code, "no secret: refused")
	require.Contains(t, stderr.String(), "HTTP 401")
}

// `connector bench -h` lists every subcommand, each with its usage as its
// own -h gives it: `worker`, which distributed runs need
// (docs/bench-harness.md), was missing, and compare's flags differed.
func TestBenchHelpListsEverySubcommand(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, benchMain([]string{"-h"}, &stdout, &stderr))
	help := stderr.String()
	for _, sub := range []string{"report", "compare", "workload", "worker"} {
		var subOut, subErr bytes.Buffer
		benchMain([]string{sub, "-h"}, &subOut, &subErr)
		usage, _, _ := strings.Cut(subErr.String()+subOut.String(), "\n")
		usage, ok := strings.CutPrefix(usage, "usage: ")
		require.True(t, ok, "bench %s -h begins with its usage", sub)
		usage, _, _ = strings.Cut(usage, ": ") // workload's says what it does after it
		require.Contains(t, help, usage, "bench -h lists %s as its -h does", sub)
	}
}

// bench compare renamed a repeated group name to name#2, name#3, ...
// without looking at the other names: a group named (or whose file was
// named) "run#2" and a second group "run" came out as two columns
// "run#2", and the ratio and verdict columns "run#2/run" could not be
// told apart. Every group now has a name of its own.
func TestBenchCompareGroupNamesAreUnique(t *testing.T) {
	t.Parallel()
	for _, names := range [][]string{
		{"run", "run", "run#2"},
		{"run#2", "run", "run"},
		{"run", "run#2", "run", "run"},
		{"a", "b", "a", "b", "a"},
	} {
		groups := make([]loadgen.CompareGroup, len(names))
		for i, n := range names {
			groups[i].Name = n
		}
		uniqueNames(groups)
		seen := map[string]bool{}
		for i, g := range groups {
			require.False(t, seen[g.Name], "%v: %q twice", names, g.Name)
			seen[g.Name] = true
			if i == slices.Index(names, names[i]) {
				require.Equal(t, names[i], g.Name, "%v: the first of a name keeps it", names)
			} else {
				require.True(t, strings.HasPrefix(g.Name, names[i]+"#"), "%v: %q", names, g.Name)
			}
		}
	}
}

// TestBenchCompareGroupNameKeepsWholeCharacters: the common prefix of a
// group's file names was cut byte by byte, so résumé-1.json and
// rèsumé-2.json made a group named "r\xc3", half a character, which the
// table and the JSON report showed as a replacement character.
func TestBenchCompareGroupNameKeepsWholeCharacters(t *testing.T) {
	t.Parallel()
	require.Equal(t, "r", groupName([]string{"résumé-1.json", "rèsumé-2.json"}, 0))
	require.Equal(t, "résumé", groupName([]string{"d/résumé-1.json", "résumé-2.json"}, 0))
	require.Equal(t, "B", groupName([]string{"é1.json", "è2.json"}, 1))
}
