package browser

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noTabLeft waits until the pool has no tab, the browser lists no page
// target and runs no renderer process (the start-up tab is closed, so
// an idle browser has none).
func noTabLeft(t *testing.T, p *Pool, what string) {
	t.Helper()
	p.mu.Lock()
	g := p.gen
	p.mu.Unlock()
	require.NotNil(t, g, "the browser stays after a cancelled render")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 0, p.Stats().TabsOpen, what)
		targets, err := chromedp.Targets(g.ctx)
		assert.NoError(c, err)
		pages := 0
		for _, tg := range targets {
			if tg.Type == "page" {
				pages++
			}
		}
		assert.Equal(c, 0, pages, "page targets %s", what)
		assert.Equal(c, 0, renderers(p), "renderer processes %s", what)
	}, time.Minute, 20*time.Millisecond)
}

// TestCancelAtEveryStepOfTabCreationLeavesNoTab cancels a render at each
// step of the opening of its tab, then while it renders: every time, the
// tab is closed (target and browser context) and no renderer is left.
func TestCancelAtEveryStepOfTabCreationLeavesNoTab(t *testing.T) {
	p := newPool(t, Config{Tabs: 2})
	s, n := hangingSite(t)
	render(t, p, s.URL+"/warm", "<p>warm</p>", RenderOptions{TabsEndWithContext: true})
	noTabLeft(t, p, "after a render whose context ended")

	var cancelAt func(step int)
	newTabHook = func(step int) { cancelAt(step) }
	defer func() { newTabHook = nil }()
	for step := 0; step <= newTabSteps; step++ {
		t.Run(fmt.Sprintf("step %d", step), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cancelAt = func(at int) {
				if at == step {
					cancel()
				}
			}
			before := n.Load()
			done := make(chan error, 1)
			go func() {
				_, err := p.Render(ctx, s.URL+"/p", []byte(hangingPage), "text/html", RenderOptions{Deadline: time.Hour, TabsEndWithContext: true})
				done <- err
			}()
			if step == newTabSteps { // past the tab's creation: while the page renders
				require.Eventually(t, func() bool { return n.Load() > before }, time.Minute, 10*time.Millisecond)
				cancel()
			}
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(time.Minute):
				t.Fatal("the cancelled render did not return")
			}
			noTabLeft(t, p, fmt.Sprintf("after a cancel at step %d", step))
		})
	}
	// The pool is fine afterwards.
	pg := render(t, p, s.URL+"/ok", "<p>fine</p>", RenderOptions{})
	assert.Contains(t, pg.Text, "fine")
}

// TestIdleTabsEndWithTheirContext: a tab left idle by a render with
// TabsEndWithContext is reused while the context lives and closed when it
// ends; without the option it stays for the next render.
func TestIdleTabsEndWithTheirContext(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	s := newSite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 3; i++ {
		_, err := p.Render(ctx, fmt.Sprintf("%s/p%d", s.URL, i), []byte("<p>settles</p>"), "text/html", RenderOptions{TabsEndWithContext: true})
		require.NoError(t, err)
	}
	st := p.Stats()
	assert.Equal(t, 1, st.TabsOpened, "the tab is reused while the context lives")
	assert.Equal(t, 1, st.TabsOpen)
	assert.Positive(t, renderers(p), "the idle tab's renderer")
	cancel()
	noTabLeft(t, p, "after the context of the idle tab's render ended")

	render(t, p, s.URL+"/keep", "<p>kept</p>", RenderOptions{})
	assert.Equal(t, 1, p.Stats().TabsOpen, "without TabsEndWithContext the idle tab stays")
}
