package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// memBodyLimit is [Server] MaxRequestBytes in TestRequestMemoryIsBounded;
// memGrowth is how many times it a single request may add to the
// process's peak resident memory. Measured (2 cores, Go 1.26): refused
// shapes 1.1 to 3 times; an accepted Insert at the element limit about
// 4.5 times; an accepted action with a body-sized parameter 6.7 to 9.4
// times, most of it the durable store writing the action's parameters
// again with each state change (queued, processing, finished); one with a
// body-sized Config fragment of empty lines 9.4 to 10.6 times, which
// has its own bound, configGrowth, above the others' measured spread (the
// body-sized parameter's cost plus the fragment's reading, which cost
// 43.5 times before the reader read a line at a time). A fragment is now
// at most 1 MiB of base64 (httpfetch's maxFragmentBytes): a body-sized one
// is refused before it is read, and one at that bound keeps configGrowth.
const (
	memBodyLimit = 4 << 20
	memGrowth    = 12
	configGrowth = 16
)

// vmHWM returns a process's peak resident set size (VmHWM) in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// TestRequestMemoryIsBounded is the regression test of issue 9 item 3
// ("one request can use about 100 times its size in memory"): it runs the
// real binary with [Server] MaxRequestBytes at 4 MiB and sends it, one per
// fresh process, the request shapes that cost the most memory per byte,
// each as large as it may be. None may raise the process's peak resident
// memory (VmHWM, read from /proc) by more than memGrowth times the body
// limit. Before the limits, the tiny-parameter bodies alone cost about 78
// bytes of allocation per byte.
func TestRequestMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := buildBinary(t)
	type shape struct {
		name        string
		path, ctype string
		body        func() []byte
		want        string // in the reply: SUCCESS, or an error code
		growth      int64  // its own bound, in place of memGrowth (0: memGrowth)
	}
	fill := func(unit string, n int) []byte { return bytes.Repeat([]byte(unit), n/len(unit)) }
	multipartOf := func(parts int, value string) (string, []byte) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		_ = w.WriteField("action", "Fetch")
		for i := 0; i < parts && b.Len() < memBodyLimit-1024; i++ {
			_ = w.WriteField("p", value)
		}
		_ = w.Close()
		return w.FormDataContentType(), b.Bytes()
	}
	mpType, mpBody := multipartOf(1<<30, "")
	insertXML := func() []byte {
		// As many elements as allowed (one per 256 bytes of the limit),
		// each as small as an Insert document can be: accepted, run and
		// delivered.
		unit := "<insert><reference>r</reference></insert>" // 2 elements
		xml := strings.Repeat(unit, memBodyLimit/256/2)
		return []byte("action=Fetch&FetchAction=Insert&ConfigSection=MyTask&InsertXML=" + url.QueryEscape(xml))
	}
	shapes := []shape{
		{"tiny form parameters", "/action=Fetch", "application/x-www-form-urlencoded", func() []byte { return fill("a&", memBodyLimit-64) }, "ERRORREQUESTTOOLARGE", 0},
		{"tiny parameters, action in the body", "/", "text/plain", func() []byte { return append([]byte("action=GetStatus\n"), fill("a\n", memBodyLimit-64)...) }, "ERRORREQUESTTOOLARGE", 0},
		{"empty multipart parts", "/", mpType, func() []byte { return mpBody }, "ERRORREQUESTTOOLARGE", 0},
		{"one large parameter, queued", "/", "application/x-www-form-urlencoded", func() []byte {
			return append([]byte("action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&Note="), fill("x", memBodyLimit-128)...)
		}, "SUCCESS", 0},
		{"tiny XML elements", "/", "application/x-www-form-urlencoded", func() []byte {
			return append([]byte("action=Fetch&FetchAction=Insert&ConfigSection=MyTask&InsertXML="), fill("%3Ca%2F%3E", memBodyLimit-128)...)
		}, "ERRORREQUESTTOOLARGE", 0},
		{"InsertXML at the element limit, run", "/", "application/x-www-form-urlencoded", insertXML, "SUCCESS", 0},
		{"Config fragment of empty lines", "/", "application/x-www-form-urlencoded", func() []byte {
			// base64 of line ends: "CgoK" is three LFs. Longer than a
			// fragment may be (1 MiB): refused before it is read.
			return append([]byte("action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask&Config="), fill("CgoK", memBodyLimit-128)...)
		}, "ERRORPARAMINVALID", 0},
		{"Config fragment of empty lines at its bound", "/", "application/x-www-form-urlencoded", func() []byte {
			return append([]byte("action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask&Config="), fill("CgoK", 1<<20)...)
		}, "SUCCESS", configGrowth},
		{"Config fragment of long names, unknown action", "/action=NoSuchAction", "application/x-www-form-urlencoded", func() []byte {
			// Refused whatever the client's roles, but the request log
			// redacts its Config, which reads it; a "did you mean" hint
			// compared the two names with a table of 4000 x 4000.
			frag := "[FetchTasks]\n0=" + strings.Repeat("a", 4000) + "\n[" + strings.Repeat("b", 4000) + "]\n"
			return []byte("Config=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(frag))))
		}, "ERRORNOTIMPLEMENTED", 0},
		{"MaxPageBytes override of 1 GiB", "/action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&MaxPageBytes=1073741824", "", func() []byte { return nil }, "ERRORPARAMINVALID", 0},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "connector.cfg")
			require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
MaxRequestBytes=%d
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=MyTask
[MyTask]
Url=http://127.0.0.1:9/
`, filepath.Join(dir, "data"), memBodyLimit, filepath.Join(dir, "out"))), 0o600))
			srv := startBinary(t, bin, cfg)
			pid := srv.cmd.Process.Pid
			client := &http.Client{Timeout: 60 * time.Second}
			do := func(method, path, ctype string, body []byte) string {
				req, err := http.NewRequest(method, srv.base+path, bytes.NewReader(body))
				require.NoError(t, err)
				if ctype != "" {
					req.Header.Set("Content-Type", ctype)
				}
				resp, err := client.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				return string(b)
			}
			// Warm up: every handler and the store have run once.
			do("GET", "/action=GetVersion", "", nil)
			do("GET", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus", "", nil)
			body := sh.body()
			before := vmHWM(t, pid)
			reply := do("POST", sh.path, sh.ctype, body)
			require.Contains(t, reply, sh.want, reply[:min(len(reply), 600)])
			if tok := between(reply, "<token>", "</token>"); tok != "" {
				testwait.For(t, 60*time.Second, func() bool {
					s := do("GET", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok), "", nil)
					return strings.Contains(s, "<status>Finished</status>") || strings.Contains(s, "<status>Error</status>")
				}, "the action ends")
			}
			grew := vmHWM(t, pid) - before
			t.Logf("%s: %d-byte request, peak RSS grew %.1f MiB (%.1f times the %d-byte body limit)",
				sh.name, len(body), float64(grew)/(1<<20), float64(grew)/memBodyLimit, memBodyLimit)
			limit := int64(memGrowth)
			if sh.growth != 0 {
				limit = sh.growth
			}
			require.LessOrEqual(t, grew, limit*memBodyLimit,
				"one request may add at most %d times [Server] MaxRequestBytes to the peak RSS", limit)
			require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
			require.NoError(t, srv.cmd.Wait())
		})
	}
}
