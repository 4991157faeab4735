package browser

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A browser that stops answering (wedged, or stopped: SIGSTOP here) left
// every render waiting for ever: opening a tab and preparing one wait for
// the browser with no bound of their own (RenderOptions.Deadline starts
// after them), so the crawl, its task and the action never ended, and a
// login did not either. A browser that does not answer within
// Config.AnswerTimeout is now stopped (every process of it killed) as a
// dead one is, and the render is retried once in a new browser.
func TestHungBrowserIsStoppedAndTheRenderRetried(t *testing.T) {
	for name, cfg := range map[string]Config{
		"opening a tab":     {Tabs: 1, TabMaxPages: 1},
		"preparing its tab": {Tabs: 1},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.AnswerTimeout = 20 * time.Second
			p := newPool(t, cfg)
			s := newSite(t)
			render(t, p, s.URL+"/one", "<p>first</p>", RenderOptions{})
			p.mu.Lock()
			g := p.gen
			p.mu.Unlock()
			require.NoError(t, syscall.Kill(-g.pid, syscall.SIGSTOP), "stop the browser's whole process group")
			t.Cleanup(func() { _ = syscall.Kill(-g.pid, syscall.SIGCONT) })

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pg, err := p.Render(ctx, s.URL+"/two", []byte("<p>second</p>"), "text/html", RenderOptions{})
			require.NoError(t, err)
			assert.Equal(t, 2, pg.Attempts)
			assert.Contains(t, pg.Text, "second")
			st := p.Stats()
			assert.Equal(t, 1, st.Restarts)
			assert.NotEqual(t, g.pid, st.PID)
			waitZero(t, g.marker, g.pid, 30*time.Second)
			assert.NoDirExists(t, g.dir, "the hung browser's profile is removed")
		})
	}
}
