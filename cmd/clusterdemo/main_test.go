package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDemoSynchronizeOutlastsAKillByHand checks the promise the demo makes
// (docs/cluster.md, "Try it in one command"): a Synchronize of MyTask runs
// long enough for a person to submit it, ask another node about it and kill
// its node with the printed PID while it runs, so that the take-over shows.
// A crawl reads a page only after the page that links to it, so however
// many pages it fetches at once it takes at least the site's longest chain
// of links from /p/0 times pageDelay. It was 101 × 20 ms: the action had
// finished (in 2.7 s) before the kill, and there was nothing to take over.
func TestDemoSynchronizeOutlastsAKillByHand(t *testing.T) {
	h := siteHandler(0)
	link := regexp.MustCompile(`href="(/p/\d+)"`)
	depth := map[string]int{"/p/0": 1}
	for level := []string{"/p/0"}; len(level) > 0; {
		var next []string
		for _, p := range level {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			require.Equal(t, http.StatusOK, rec.Code, p)
			for _, m := range link.FindAllStringSubmatch(rec.Body.String(), -1) {
				if _, seen := depth[m[1]]; !seen {
					depth[m[1]] = depth[p] + 1
					next = append(next, m[1])
				}
			}
		}
		level = next
	}
	require.Len(t, depth, 200, "the site's pages reached from /p/0")
	longest := 0
	for _, d := range depth {
		longest = max(longest, d)
	}
	least := time.Duration(longest) * pageDelay
	require.GreaterOrEqual(t, least, 20*time.Second,
		"a Synchronize of the demo site may end %v after it starts (%d pages in a chain, %v each): too soon to kill its node by hand", least, longest, pageDelay)
}
