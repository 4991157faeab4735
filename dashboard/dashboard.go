// Package dashboard is the queue dashboard: one embedded page (HTML, CSS
// and JavaScript; no build step) that the ACI port serves at IDOL Admin's
// place, action=Admin. The page is a client of the ordinary ACI actions
// (QueueInfo QueueStatus and GetStatus, Progress, ShowPermissions, the
// queue controls, and GetVersion for when the server started), in ResponseFormat=simplejson, so every call it makes is
// checked by the roles like any other request: a client without the Admin
// role sees the queue read-only, without buttons.
//
// It never inserts text as markup: every value it shows goes through
// textContent.
package dashboard

import (
	"embed"
	"strings"
)

//go:embed assets
var assets embed.FS

// File returns an asset of the page by name ("" is the page itself:
// index.html; app.js, app.css), with its content type; ok is false for
// any other name.
func File(name string) (body []byte, contentType string, ok bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	var ct string
	switch name {
	case "", "index.html":
		name, ct = "index.html", "text/html; charset=utf-8"
	case "app.js":
		ct = "text/javascript; charset=utf-8"
	case "app.css":
		ct = "text/css; charset=utf-8"
	default:
		return nil, "", false
	}
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		return nil, "", false
	}
	return b, ct, true
}

// Files are the names File serves, besides the page.
var Files = []string{"app.js", "app.css"}
