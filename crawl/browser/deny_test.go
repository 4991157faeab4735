package browser

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/netguard"
)

// TestDenyListAppliesToSubresources: with Config.Deny, the browser's own
// requests never reach a denied address: a subresource URL naming a
// denied address is refused in the tab, one whose host name resolves to
// a denied address ("localhost" → 127.0.0.1) is refused by the proxy, a
// script's fetch() too; the same page without a deny list loads them all
// (the control).
func TestDenyListAppliesToSubresources(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.handle("/by-ip.js", "text/javascript", `document.body.setAttribute("data-ip", "loaded")`)
	s.handle("/by-name.js", "text/javascript", `document.body.setAttribute("data-name", "loaded")`)
	s.mux.HandleFunc("/data.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // fetched from the page's origin, another one
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"x":1}`))
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	byName := "http://localhost:" + port
	page := `<html><body><p id="out">start</p>
<script src="` + s.URL + `/by-ip.js"></script>
<script src="` + byName + `/by-name.js"></script>
<script>fetch("` + byName + `/data.json").then(function(r){return r.text()}).then(function(t){document.getElementById("out").textContent="fetched "+t}, function(){document.getElementById("out").textContent="fetch refused"})</script>
</body></html>`
	// The page is fulfilled from its bytes: its own address is never
	// dialled (a denied one included).
	pageURL := s.URL + "/page"

	deny, err := netguard.Parse([]string{"127.0.0.0/8", "::1"})
	require.NoError(t, err)
	p := newPool(t, Config{Tabs: 1, Deny: deny})
	pg := render(t, p, pageURL, page, RenderOptions{})
	assert.Contains(t, pg.Text, "fetch refused")
	assert.NotContains(t, pg.HTML, `data-ip="loaded"`)
	assert.NotContains(t, pg.HTML, `data-name="loaded"`)
	assert.Equal(t, 1, pg.Requests.Denied, "the address in the URL is refused in the tab")
	assert.Zero(t, s.hitsOf("/by-ip.js")+s.hitsOf("/by-name.js")+s.hitsOf("/data.json"), "nothing reached the denied address")
	assert.GreaterOrEqual(t, p.Stats().ProxyDenied, uint64(2), "the names resolving to it are refused by the proxy")

	// The control: a deny list that does not cover the site, so the
	// requests go through the proxy (which resolves "localhost" itself)
	// and load.
	other, err := netguard.Parse([]string{"192.0.2.0/24"})
	require.NoError(t, err)
	open := newPool(t, Config{Tabs: 1, Deny: other})
	pg = render(t, open, pageURL, page, RenderOptions{})
	assert.Contains(t, pg.Text, `fetched {"x":1}`)
	assert.Contains(t, pg.HTML, `data-ip="loaded"`)
	assert.Contains(t, pg.HTML, `data-name="loaded"`)
	assert.Equal(t, 1, s.hitsOf("/by-ip.js"))
}
