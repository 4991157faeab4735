package browser

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testlog"
)

const testPassword = "S3cret-Pa55-wörd"

// loginSite is a site behind a login form built by a script, with a CSRF
// token in a cookie and a hidden field, a session cookie set on success
// and an API that needs it.
func loginSite(t *testing.T, method string) *site {
	s := newSite(t)
	s.mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("user") == "" {
			http.SetCookie(w, &http.Cookie{Name: "csrf", Value: "tok123", Path: "/"})
			fmt.Fprintf(w, `<html><body><div id="app"></div><script>
document.getElementById("app").innerHTML = '<form id="f" method="%s" action="/login">' +
  '<input id="user" name="user"><input type="password" name="password">' +
  '<input type="hidden" name="csrf" value="' + document.cookie.replace(/.*csrf=([^;]*).*/, "$1") + '">' +
  '<button id="go" type="submit">Log in</button></form>';
</script></body></html>`, method)
			return
		}
		_ = r.ParseForm()
		c, err := r.Cookie("csrf")
		if r.Form.Get("user") == "alice" && r.Form.Get("password") == testPassword && err == nil && c.Value == r.Form.Get("csrf") {
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "session-xyz", Path: "/", HttpOnly: true})
			http.Redirect(w, r, "/home", http.StatusSeeOther)
			return
		}
		w.Write([]byte(`<html><body><p class="error">Wrong user or password</p></body></html>`))
	})
	s.mux.HandleFunc("/home", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<html><body><script>setTimeout(function(){ var a = document.createElement("a"); a.id = "logout"; a.href = "/logout"; a.textContent = "Log out"; document.body.appendChild(a) }, 100)</script></body></html>`))
	})
	s.mux.HandleFunc("/api/me", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("sid"); err == nil && c.Value == "session-xyz" {
			w.Write([]byte("user alice"))
			return
		}
		w.Write([]byte("anonymous"))
	})
	return s
}

func login(s *site, password string) Login {
	return Login{
		URL: s.URL + "/login",
		Fields: []LoginField{
			{Selector: "#user", Value: "alice"},
			{Name: "password", Value: password, Secret: true},
		},
		Submit:          "#go",
		SuccessSelector: "#logout",
		Deadline:        10 * time.Second,
	}
}

func TestLoginReturnsTheSessionCookies(t *testing.T) {
	var logs testlog.Buffer
	p := newPool(t, Config{Tabs: 1, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	s := loginSite(t, "post")
	cookies, err := p.Login(context.Background(), login(s, testPassword))
	require.NoError(t, err)
	byName := map[string]*http.Cookie{}
	for _, c := range cookies {
		byName[c.Name] = c
	}
	require.Contains(t, byName, "sid")
	assert.Equal(t, "session-xyz", byName["sid"].Value)
	assert.True(t, byName["sid"].HttpOnly)
	assert.Equal(t, "127.0.0.1", byName["sid"].Domain)
	assert.Contains(t, byName, "csrf")

	// The cookies open the site to a render (and to any HTTP client).
	body := `<html><body><script>fetch("/api/me").then(r => r.text()).then(t => { document.body.textContent = t })</script></body></html>`
	pg := render(t, p, s.URL+"/private", body, RenderOptions{Cookies: cookies})
	assert.Equal(t, "user alice", strings.TrimSpace(pg.Text))
	req, _ := http.NewRequest("GET", s.URL+"/api/me", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()

	// By URL pattern instead of a selector.
	l := login(s, testPassword)
	l.SuccessSelector = ""
	l.SuccessURL = regexp.MustCompile(`/home$`)
	cookies, err = p.Login(context.Background(), l)
	require.NoError(t, err)
	assert.NotEmpty(t, cookies)

	// Without a submit element: the form of the last field is submitted.
	l = login(s, testPassword)
	l.Submit = ""
	_, err = p.Login(context.Background(), l)
	require.NoError(t, err)

	assert.NotContains(t, logs.String(), testPassword)
}

func TestLoginFailuresNameWhatFailedAndNeverThePassword(t *testing.T) {
	var logs testlog.Buffer
	p := newPool(t, Config{Tabs: 2, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	post := loginSite(t, "post")
	get := loginSite(t, "get") // the password ends up in the URL's query

	wrong := "Wrong-" + testPassword
	// The deadline bounds the whole login (load, typing, submit, check):
	// the failures must be the step's, not a slow load's under a loaded
	// machine (2 s failed once at load 40). The cases run two at a time,
	// one per tab.
	const failDeadline = 5 * time.Second
	cases := []struct {
		name string
		l    func() Login
		step string
		want []string
	}{
		{"wrong password", func() Login { l := login(post, wrong); l.Deadline = failDeadline; return l },
			"success", []string{`selector "#logout" present`, "not met within 5s", "/login"}},
		{"wrong password, GET form", func() Login { l := login(get, wrong); l.Deadline = failDeadline; return l },
			"success", []string{`selector "#logout" present`, "the page is at " + get.URL + "/login?…"}},
		{"wrong URL pattern", func() Login {
			l := login(post, testPassword)
			l.SuccessURL = regexp.MustCompile(`/dashboard`)
			l.Deadline = failDeadline
			return l
		}, "success", []string{`URL matching "/dashboard"`}},
		// A success check the login page meets before the form is
		// submitted held at once: a wrong password "logged in", and a
		// right one returned before the session's cookie was set.
		{"success URL the login page matches", func() Login {
			l := login(post, wrong)
			l.SuccessSelector = ""
			l.SuccessURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/.*`)
			return l
		}, "success", []string{`URL matching "http://127`, "already met by the login page " + post.URL + "/login before submitting"}},
		{"success selector the login page has", func() Login { l := login(post, testPassword); l.SuccessSelector = "form"; return l },
			"success", []string{`selector "form" present`, "already met by the login page"}},
		{"missing field", func() Login {
			l := login(post, testPassword)
			l.Fields[0].Selector = "#username"
			l.Deadline = failDeadline
			return l
		}, "field", []string{`field "#username" not found`}},
		{"missing submit", func() Login { l := login(post, testPassword); l.Submit = "#login-button"; return l },
			"submit", []string{`submit element "#login-button" not found`}},
		{"no success check", func() Login { l := login(post, testPassword); l.SuccessSelector = ""; return l },
			"config", []string{"no success check"}},
		{"page does not load", func() Login { l := login(post, testPassword); l.URL = "http://127.0.0.1:9/login"; return l },
			"load", []string{"loading the login page http://127.0.0.1:9/login"}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				_, err := p.Login(context.Background(), tc.l())
				require.Error(t, err)
				var le *LoginError
				require.ErrorAs(t, err, &le)
				assert.Equal(t, tc.step, le.Step, "%v", err)
				for _, w := range tc.want {
					assert.Contains(t, err.Error(), w)
				}
				assert.NotContains(t, err.Error(), testPassword)
				assert.NotContains(t, err.Error(), wrong)
				assert.NotContains(t, err.Error(), "S3cret")
			})
		}
	})
	assert.NotContains(t, logs.String(), "S3cret")
	// The GET form did send the password in a URL: the server saw it, our
	// errors and logs did not.
	assert.Positive(t, get.hitsOf("/login"))
}
