package httpfetch

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
)

// TestDocsStateEveryTaskKeyRange: every task key that takes a whole
// number within bounds states them in docs/connectors/http.md, as
// "LO to HI" in its row, and start-up takes both bounds and refuses a
// value just outside them. On main Depth, MaxPages, ExtractMaxTextBytes,
// ExtractMaxPages, ScheduleRepeatSecs and ScheduleCycles left them out.
func TestDocsStateEveryTaskKeyRange(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/connectors/http.md")
	require.NoError(t, err)
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			key, _, _ := strings.Cut(rest, "`")
			rows[key] = strings.ReplaceAll(line, "`", "")
		}
	}
	for _, k := range []struct {
		key    string
		lo, hi int64
	}{
		{"Depth", -1, 2147483647},
		{"MaxPages", 0, 2147483647},
		{"Concurrency", 1, 256},
		{"MaxRedirects", 0, 100},
		{"ExtractThreads", 1, 64},
		{"ExtractMaxTextBytes", 1, 2147483647},
		{"ExtractMaxPages", 1, 2147483647},
		{"ScheduleRepeatSecs", 1, 2147483647},
		{"ScheduleCycles", -1, 2147483647},
	} {
		check := func(v int64) error {
			text := fmt.Sprintf("[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\nScheduleRepeatSecs=60\n%s=%d\n", k.key, v)
			if k.key == "ScheduleRepeatSecs" {
				text = fmt.Sprintf("[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n%s=%d\n", k.key, v)
			}
			cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
			if err != nil {
				return err
			}
			return Check(cfg)
		}
		assert.NoError(t, check(k.lo), "%s=%d", k.key, k.lo)
		assert.NoError(t, check(k.hi), "%s=%d", k.key, k.hi)
		assert.Error(t, check(k.lo-1), "%s=%d", k.key, k.lo-1)
		assert.Error(t, check(k.hi+1), "%s=%d", k.key, k.hi+1)
		if assert.Contains(t, rows, k.key) {
			assert.Contains(t, rows[k.key], fmt.Sprintf("%d to %d", k.lo, k.hi), "%s: its row does not state its range", k.key)
		}
	}
}
