package browser

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestIntranetPageLoadsItsSubresources: a page named by a host name
// whose server is on a private or loopback address (an intranet) loads
// its own scripts and data when the deny list is empty, as it does with
// one (the browser then goes through the deny list's proxy). The page is
// given to the browser as bytes, with no address of its own, so
// Chromium's Local Network Access checks took it for a public page and
// refused every request it made to the intranet: the page was read
// without what its scripts write. [Security] DeniedAddresses is the
// connector's rule for what the browser may reach. The browser maps
// intranet.test to 127.0.0.1 (--host-resolver-rules).
func TestIntranetPageLoadsItsSubresources(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.handle("/app.js", "text/javascript", `document.getElementById("out").textContent = "from the script"`)
	s.handle("/data.json", "application/json", `{"news":"from the API"}`)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	origin := "http://intranet.test:" + port
	page := `<html><body><p id="out">served</p><p id="api">no data</p>
<script src="/app.js"></script>
<script>fetch("/data.json").then(function (r) { return r.json() }).then(function (d) { document.getElementById("api").textContent = d.news })</script>
</body></html>`
	p := newPool(t, Config{Tabs: 1, ExtraFlags: []string{"--host-resolver-rules=MAP intranet.test 127.0.0.1"}})
	pg := render(t, p, origin+"/page", page, RenderOptions{})
	assert.Contains(t, pg.Text, "from the script")
	assert.Contains(t, pg.Text, "from the API")
	assert.Equal(t, 1, s.hitsOf("/app.js"))
	assert.Equal(t, 1, s.hitsOf("/data.json"))
}
