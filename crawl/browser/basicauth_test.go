package browser

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBasicAuthAnswersTheOriginsChallengesOnly: RenderOptions.BasicAuth
// answers the 401 of the page's requests to its origins; another origin
// that asks gets nothing, wrong credentials are given once (the request
// then gets its 401, the render does not loop), and a later render
// without credentials, in the same single-tab pool, sends none (the tab
// that held them in its HTTP auth cache was not reused).
func TestBasicAuthAnswersTheOriginsChallengesOnly(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string // Authorization headers received, by site and path
	guarded := func(s *site, name string) {
		s.mux.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = append(got, name+" "+r.Header.Get("Authorization"))
			mu.Unlock()
			w.Header().Set("Access-Control-Allow-Origin", "*")
			if u, p, ok := r.BasicAuth(); ok && u == "crawler" && p == "pa55" {
				_, _ = w.Write([]byte(name + " data"))
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="`+name+`"`)
			http.Error(w, name+" refused", http.StatusUnauthorized)
		})
	}
	own, other := newSite(t), newSite(t)
	guarded(own, "own")
	other.mux.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, "other "+r.Header.Get("Authorization"))
		mu.Unlock()
		// A credentialed cross-origin fetch: the browser may answer its
		// challenge.
		w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("WWW-Authenticate", `Basic realm="other"`)
		http.Error(w, "other refused", http.StatusUnauthorized)
	})
	// The other origin is named differently (localhost), so that it is
	// another origin than the page's.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	page := `<html><body><p id="a">-</p><p id="b">-</p><script>
function show(id, url) { fetch(url, { credentials: "include" }).then(function (r) { return r.text() }).then(function (t) { document.getElementById(id).textContent = t }) }
show("a", "/data"); show("b", "` + otherURL + `/data");
</script></body></html>`
	p := newPool(t, Config{Tabs: 1})
	creds := &BasicAuth{Username: "crawler", Password: "pa55", Origins: []string{own.URL + "/"}}

	pg := render(t, p, own.URL+"/page", page, RenderOptions{BasicAuth: creds})
	assert.Contains(t, pg.Text, "own data")
	assert.Contains(t, pg.Text, "other refused")

	wrong := *creds
	wrong.Password = "wrong"
	pg = render(t, p, own.URL+"/page", page, RenderOptions{BasicAuth: &wrong})
	assert.Contains(t, pg.Text, "own refused")
	assert.True(t, pg.Settled)

	pg = render(t, p, own.URL+"/page", page, RenderOptions{})
	assert.Contains(t, pg.Text, "own refused")

	mu.Lock()
	defer mu.Unlock()
	var ownWith, ownWithout, otherWith int
	for _, g := range got {
		switch {
		case strings.HasPrefix(g, "other ") && g != "other ":
			otherWith++
		case g == "own ":
			ownWithout++
		case strings.HasPrefix(g, "own "):
			ownWith++
		}
	}
	assert.Zero(t, otherWith, "no credentials to another origin: %q", got)
	// First render: challenged, then answered (2); second: challenged,
	// answered once with the wrong password (2); third: challenged only.
	assert.Equal(t, 2, ownWith, "%q", got)
	assert.Equal(t, 3, ownWithout, "the third render sent no credentials: %q", got)
	require.Equal(t, 3, p.Stats().TabsOpened, "a tab that gave credentials is not reused")
}
