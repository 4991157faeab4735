package webfetch

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// basicGuard wraps a handler in HTTP Basic authentication with user
// and pass (realm "intranet").
func basicGuard(user, pass string) func(http.HandlerFunc) http.HandlerFunc {
	return func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="intranet"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
}

// TestBasicAuthSiteRendersItsScripts: on a site behind HTTP Basic
// authentication (BasicAuthUsername, BasicAuthPassword), the rendered
// page's own requests (its scripts, fetch()) are answered too, so the
// text and links they bring are indexed; the credentials go to the
// task's origins only (another origin that asks for them gets nothing)
// and appear in no document.
func TestBasicAuthSiteRendersItsScripts(t *testing.T) {
	t.Parallel()
	const user, pass = "crawler", "b4sic-S3cret"
	other := newSite(t)
	var mu sync.Mutex
	var otherAuth []string
	other.handle("/probe.js", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		otherAuth = append(otherAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="other"`)
		http.Error(w, "who are you", http.StatusUnauthorized)
	})
	s := newSite(t)
	guard := basicGuard(user, pass)
	s.handle("/", guard(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<html><head><title>Home</title></head><body><p id="news">loading</p>
<script src="/app.js"></script>
<script src="%s/probe.js"></script>
<script>fetch("/api/news").then(function (r) { return r.text() }).then(function (t) { document.getElementById("news").textContent = t })</script>
</body></html>`, other.URL)
	}))
	s.handle("/app.js", guard(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write([]byte(`var a = document.createElement("a"); a.href = "/second"; a.textContent = "second page"; document.body.appendChild(a);`))
	}))
	s.handle("/api/news", guard(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("members-only news"))
	}))
	s.handle("/second", guard(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<html><head><title>Second</title></head><body><p>second page text</p></body></html>`))
	}))

	b := setup(t, taskConfig(s.URL+"/", "Depth=2", "BasicAuthUsername="+user, "BasicAuthPassword="+pass))
	job := b.sync(t, "ConfigSection", "MyTask")
	home := b.target.doc(s.URL + "/")
	require.NotNil(t, home, "delivered: %v", b.target.refs())
	assert.Contains(t, home.Content, "members-only news", "the page's fetch() carried the credentials")
	require.NotNil(t, b.target.doc(s.URL+"/second"), "the link the page's script adds is followed: %v", b.target.refs())
	assert.Equal(t, cnt{Seen: 2, Added: 2}, countsOf(job, "MYTASK"))
	mu.Lock()
	assert.NotEmpty(t, otherAuth, "the other origin was asked")
	for _, a := range otherAuth {
		assert.Empty(t, a, "no credentials to another origin")
	}
	mu.Unlock()
	for _, ref := range b.target.refs() {
		d := b.target.doc(ref)
		assert.NotContains(t, d.Content, pass)
		for _, f := range d.Fields {
			assert.NotContains(t, f.Value, pass, f.Name)
		}
	}
}

// TestFormLoginBehindBasicAuth: a site whose every page, its login page
// included, is behind HTTP Basic authentication and a form login: the
// login answers the site's challenge with the task's credentials (the
// crawl's origins only), and the crawl then renders the pages behind
// both.
func TestFormLoginBehindBasicAuth(t *testing.T) {
	t.Parallel()
	const user, pass = "crawler", "b4sic-S3cret"
	s := newSite(t)
	guard := basicGuard(user, pass)
	s.handle("/login", guard(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<html><body><form method="post" action="/session"><input name="username"><input type="password" name="pw"><button id="go" type="submit">Log in</button></form></body></html>`))
	}))
	s.handle("/session", guard(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("pw") != password {
			http.Redirect(w, r, "/login?failed=1", http.StatusSeeOther)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "valid", Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	}))
	s.handle("/home", guard(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("sid"); err != nil || c.Value != "valid" {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<html><head><title>Home</title></head><body><div id="logout">members-only home</div></body></html>`))
	}))

	b := setup(t, taskConfig(s.URL+"/home", "BasicAuthUsername="+user, "BasicAuthPassword="+pass,
		"LoginUrl="+s.URL+"/login", "LoginUsername=crawler", "LoginPassword="+password,
		"LoginSubmit=#go", "LoginSuccessSelector=#logout", "RenderDeadline=10s"))
	job, _, err := b.run(t, "Synchronize", params("ConfigSection", "MyTask"))
	require.NoError(t, err)
	home := b.target.doc(s.URL + "/home")
	require.NotNil(t, home, "delivered: %v", b.target.refs())
	assert.Contains(t, home.Content, "members-only home")
	assert.Equal(t, cnt{Seen: 1, Added: 1}, countsOf(job, "MYTASK"))
}
