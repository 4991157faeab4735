package browser

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestServiceWorkersCannotRegister: a service worker is a target of its
// own whose script and requests the tab's request interception never
// sees, so a page (in a secure context: https, or http on localhost)
// must not register one, from its own document or from an about:blank
// sub-frame: else the worker fetches what the request policy forbids.
func TestServiceWorkersCannotRegister(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.handle("/secret", "text/plain", "x")
	s.handle("/sw.js", "text/javascript", `fetch("/secret")`)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	pageURL := "http://localhost:" + port + "/p" // a secure context
	p := newPool(t, Config{Tabs: 1})
	for name, register := range map[string]string{
		"page":   `navigator.serviceWorker.register("/sw.js")`,
		"iframe": `(function () { var f = document.createElement("iframe"); document.body.appendChild(f); return f.contentWindow.navigator.serviceWorker.register("/sw.js") })()`,
	} {
		body := `<html><body><p id="out"></p><script>
Promise.resolve().then(function () { return ` + register + ` }).then(function () { document.getElementById("out").textContent = "registered" }, function (e) { document.getElementById("out").textContent = "refused: " + e });
</script></body></html>`
		pg := render(t, p, pageURL, body, RenderOptions{WaitSelector: "#out:not(:empty)", Deadline: 10 * time.Second,
			Subresources: Subresources{CantHave: regexp.MustCompile(`/secret`)}})
		assert.Contains(t, pg.Text, "refused", name)
		assert.Zero(t, s.hitsOf("/sw.js"), "%s: no service worker script was fetched", name)
		assert.Zero(t, s.hitsOf("/secret"), "%s: CantHave holds", name)
	}
}
