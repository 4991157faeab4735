package netguard

import (
	"net/url"
	"strings"
)

// Origin is u's origin as the connector compares it where credentials are
// scoped to origins (BasicAuth): lower-case scheme://host:port, the port
// made explicit (80 for http, 443 for https).
func Origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}
