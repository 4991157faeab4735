package crawl

import (
	"strings"
	"testing"

	"github.com/jimsmart/grobotstxt"
)

// FuzzRobots: any robots.txt parses without panicking, and for simple
// paths the crawl's verdict equals grobotstxt's own matcher.
func FuzzRobots(f *testing.F) {
	f.Add("User-agent: *\nDisallow: /private\nAllow: /private/ok\n", "FooBot", "/private/x")
	f.Add("user-agent: FooBot\nallow: /index.html\ndisallow: /\n", "foobot", "/")
	f.Add("User-agent: FooBot Bar\nDisallow: /*.php$\n", "FooBot", "/a.php")
	f.Fuzz(func(t *testing.T, body, agent, path string) {
		if agent == "" || productToken(agent) != agent {
			return
		}
		path = "/" + strings.Map(func(r rune) rune {
			if r < 128 && (r == '/' || r == '.' || r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
				return r
			}
			return -1
		}, path)
		got := parseRobots(body, agent).allowed(path)
		want := grobotstxt.AgentAllowed(body, agent, "http://example.com"+path)
		if got != want {
			t.Fatalf("robots %q agent %q path %q: crawl says %v, grobotstxt %v", body, agent, path, got, want)
		}
	})
}
