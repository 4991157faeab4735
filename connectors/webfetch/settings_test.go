package webfetch

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// TestQuietWindowNotShorterThanDeadlineIsRefused: without
// RenderWaitSelector a page is settled once the network has been quiet
// for RenderQuietWindow, and is read at RenderDeadline at the latest. A
// quiet window as long as the deadline (RenderDeadline=400ms with the
// default 500ms window, or RenderQuietWindow=1m) was taken: no page could
// ever settle, every page waited its whole deadline and was delivered
// RENDER_SETTLED=false. It is refused at start-up naming the key, file and
// line, and in a request naming the key.
func TestQuietWindowNotShorterThanDeadlineIsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		keys string
		bad  string // the key named; "" when accepted
		line int
	}{
		{keys: "RenderDeadline=400ms\n", bad: "RenderDeadline", line: 5},
		{keys: "RenderQuietWindow=1m\n", bad: "RenderQuietWindow", line: 5},
		{keys: "RenderDeadline=2s\nRenderQuietWindow=2s\n", bad: "RenderQuietWindow", line: 6},
		{keys: "RenderDeadline=400ms\nRenderWaitSelector=#ready\n"}, // the window is not used
		{keys: "RenderDeadline=2s\nRenderQuietWindow=1s\n"},
	} {
		text := "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n" + c.keys
		cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
		require.NoError(t, err)
		err = schema.Check(cfg)
		if c.bad == "" {
			assert.NoError(t, err, c.keys)
			continue
		}
		var ce *config.Error
		require.True(t, errors.As(err, &ce), "%s: %v", c.keys, err)
		assert.Equal(t, c.bad, ce.Key, c.keys)
		assert.Equal(t, "test.cfg", ce.File)
		assert.Equal(t, c.line, ce.Line, c.keys)
		assert.Contains(t, err.Error(), "RenderDeadline")
	}

	// A request's override is checked with the file's settings.
	b := setup(t, taskConfig("http://127.0.0.1:1/", "RenderDeadline=2s"))
	_, err := b.repo.Validate(fetch.ActionSynchronize, params("ConfigSection", "MyTask", "RenderDeadline", "300ms"))
	var pe *messages.ParamError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Name, "RenderDeadline")
	_, err = b.repo.Validate(fetch.ActionSynchronize, params("ConfigSection", "MyTask", "RenderDeadline", "300ms", "RenderQuietWindow", "100ms"))
	assert.NoError(t, err)
}

// TestLoginURLIsCheckedAtStartUp: a LoginUrl the browser cannot open
// ("https://" without a host) was taken at start-up and failed every
// run's login instead ("login URL is not an absolute http(s) URL"), and
// one with its scheme in capitals (HTTPS://, which the browser and the
// crawl read as https) was refused as "not an absolute http or https
// URL". The key is checked as the login reads it.
func TestLoginURLIsCheckedAtStartUp(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"https://sso.example.com/login":   true,
		"https://bücher.example/login":    true,
		"https://[::1]:8443/login":        true,
		"HTTPS://sso.example.com/login":   true,
		" Http://127.0.0.1:8080/login?x ": true,
		"https://":                        false,
		"https:///login":                  false,
		"https:login":                     false,
		"ftp://sso.example.com/login":     false,
		"/login":                          false,
		"https://exa mple.com/login":      false,
	} {
		text := "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\nLoginUrl=" + url + "\nLoginPassword=pw\nLoginSuccessSelector=#out\n"
		_, err := config.Parse("test.cfg", []byte(text), TaskKeys)
		if ok {
			assert.NoError(t, err, url)
			continue
		}
		var ce *config.Error
		if assert.True(t, errors.As(err, &ce), "%q: %v", url, err) {
			assert.Equal(t, "LoginUrl", ce.Key, url)
			assert.Equal(t, 5, ce.Line, url)
			assert.Contains(t, err.Error(), "must be an absolute http or https URL", url)
		}
	}
}

// TestRequestRefusedForAFileSettingQuotesItsValue: a request's override
// that makes a setting of the file wrong (RenderDeadline=500ms with the
// file's RenderQuietWindow=1s) is refused naming the file's key, with
// the file's value. On main the reply quoted an empty value, "invalid
// value "" for parameter [MyTask] RenderQuietWindow", as if the request
// had set the window empty.
func TestRequestRefusedForAFileSettingQuotesItsValue(t *testing.T) {
	t.Parallel()
	b := setup(t, taskConfig("http://127.0.0.1:1/", "RenderQuietWindow=1s"))
	_, err := b.repo.Validate(fetch.ActionSynchronize, params("ConfigSection", "MyTask", "RenderDeadline", "500ms"))
	var pe *messages.ParamError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "[MyTask] RenderQuietWindow", pe.Name)
	assert.Equal(t, "1s", pe.Value)
	assert.NotContains(t, err.Error(), `""`)
	assert.Contains(t, err.Error(), "RenderDeadline (500ms)")
}
