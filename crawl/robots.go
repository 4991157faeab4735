package crawl

import (
	"context"
	"strings"
	"sync"
	"unicode"

	"github.com/jimsmart/grobotstxt"
)

// robotsRules are the rules of one robots.txt that concern one agent.
//
// The file is tokenised once by grobotstxt's parser (Google's line syntax:
// typo-tolerant keys, missing colons, BOMs, 16 KiB line cut, pattern
// escaping). Group selection follows grobotstxt's RobotsMatcher exactly
// (it is path-independent, so it is done once here instead of once per URL
// as RobotsMatcher.AgentAllowed would): rules of groups naming the agent are
// "specific", rules of "*" groups are "global", and if any group names the
// agent, global rules are ignored. Matching a path uses grobotstxt.Matches
// with the longest-match rule (allow wins ties) and Google's index.html
// special case, as RobotsMatcher does.
type robotsRules struct {
	specific, global []robotsRule
	everSeenSpecific bool
	disallowAll      bool     // robots.txt unavailable: nothing is allowed
	sitemaps         []string // Sitemap: lines (at most maxRobotsSitemaps)
}

// maxRobotsSitemaps bounds the Sitemap: lines kept from one robots.txt.
const maxRobotsSitemaps = 100

type robotsRule struct {
	pattern string
	alt     string // Allow ".../index.htm*" also tries ".../$"
	allow   bool
}

// allowAll is the rule set of a host without robots.txt.
var allowAll = &robotsRules{}

// disallowAllRules is the rule set of a host whose robots.txt is
// unavailable.
var disallowAllRules = &robotsRules{disallowAll: true}

// parseRobots reads a robots.txt body for agent (a product token).
//
// The body's percent-encodings are upper-cased first (upperEscapes), as
// Google's parser does to a rule's: grobotstxt's own upper-casing clears
// bit 0x20 of both hex digits, which turns a digit into a control
// character, so that a rule written "Disallow: /a%2fb" became "/a%\x12Fb"
// and matched nothing. Upper-cased before, the rules reach it with
// nothing to change. (The hex digits of an encoding are case-insensitive,
// RFC 3986 2.1, so a Sitemap: URL means the same upper-cased.)
func parseRobots(body, agent string) *robotsRules {
	c := &robotsCollector{agent: agent, rules: &robotsRules{}}
	grobotstxt.Parse(upperEscapes(body), c)
	return c.rules
}

// allowed reports whether path (path, params and query, starting with '/')
// may be fetched.
func (r *robotsRules) allowed(path string) bool {
	if r.disallowAll {
		return false
	}
	if allow, disallow := matchRules(r.specific, path); allow > 0 || disallow > 0 {
		return disallow <= allow
	}
	if r.everSeenSpecific {
		// A group names the agent but has no matching (non-empty) rule.
		return true
	}
	if allow, disallow := matchRules(r.global, path); allow > 0 || disallow > 0 {
		return disallow <= allow
	}
	return true
}

// matchRules returns the priorities (matched pattern lengths; -1 for none)
// of the best allow and disallow rules for path.
func matchRules(rules []robotsRule, path string) (allow, disallow int) {
	allow, disallow = -1, -1
	for i := range rules {
		rl := &rules[i]
		p := -1
		if grobotstxt.Matches(path, rl.pattern) {
			p = len(rl.pattern)
		} else if rl.alt != "" && grobotstxt.Matches(path, rl.alt) {
			p = len(rl.alt)
		}
		if rl.allow {
			allow = max(allow, p)
		} else {
			disallow = max(disallow, p)
		}
	}
	return allow, disallow
}

// robotsCollector is a grobotstxt.ParseHandler that keeps the rules of the
// groups that apply to one agent. Its state machine is RobotsMatcher's
// (robots_cc.go HandleUserAgent / HandleAllow / HandleDisallow).
type robotsCollector struct {
	agent                                   string
	rules                                   *robotsRules
	seenGlobal, seenSpecific, seenSeparator bool
}

func (c *robotsCollector) HandleRobotsStart() {
	c.rules = &robotsRules{}
	c.seenGlobal, c.seenSpecific, c.seenSeparator = false, false, false
}

func (c *robotsCollector) HandleRobotsEnd() {}

func (c *robotsCollector) HandleUserAgent(_ int, ua string) {
	if c.seenSeparator {
		c.seenSpecific, c.seenGlobal, c.seenSeparator = false, false, false
	}
	// Google: "*" followed by a space and more is still the global agent.
	if len(ua) >= 1 && ua[0] == '*' && (len(ua) == 1 || unicode.IsSpace(rune(ua[1]))) {
		c.seenGlobal = true
		return
	}
	if c.agent != "" && strings.EqualFold(productToken(ua), c.agent) {
		c.rules.everSeenSpecific = true
		c.seenSpecific = true
	}
}

func (c *robotsCollector) HandleAllow(_ int, value string) { c.add(value, true) }

func (c *robotsCollector) HandleDisallow(_ int, value string) { c.add(value, false) }

func (c *robotsCollector) add(value string, allow bool) {
	if !c.seenGlobal && !c.seenSpecific {
		return // rule outside any group
	}
	c.seenSeparator = true
	rl := robotsRule{pattern: value, allow: allow}
	if allow {
		// Google: an allowed ".../index.htm[l]" also allows ".../".
		if slash := strings.LastIndexByte(value, '/'); slash >= 0 && strings.HasPrefix(value[slash:], "/index.htm") {
			rl.alt = value[:slash+1] + "$"
		}
	}
	if c.seenSpecific {
		c.rules.specific = append(c.rules.specific, rl)
	} else {
		c.rules.global = append(c.rules.global, rl)
	}
}

func (c *robotsCollector) HandleSitemap(_ int, value string) {
	if v := strings.TrimSpace(value); v != "" && len(c.rules.sitemaps) < maxRobotsSitemaps {
		c.rules.sitemaps = append(c.rules.sitemaps, v)
	}
}

func (c *robotsCollector) HandleUnknownAction(int, string, string) {}

// robotsCache holds one rule set per origin (scheme://host:port) for the
// life of a crawl. The first worker to need an origin's robots.txt fetches
// it; the others wait for that fetch.
type robotsCache struct {
	mu sync.Mutex
	m  map[string]*robotsEntry
}

type robotsEntry struct {
	done  chan struct{} // closed when rules and cause are set
	rules *robotsRules
	cause error // why robots.txt was unavailable, for ErrRobotsUnavailable
}

// get returns the rules of origin, calling load (at most once per origin
// while it succeeds) to fetch them. load returns ok=false when the crawl
// was cancelled mid-fetch: the entry is then dropped so that nobody keeps
// a half-made verdict, and get returns the context's cause.
func (rc *robotsCache) get(ctx context.Context, origin string, load func() (rules *robotsRules, cause error, ok bool)) (*robotsEntry, error) {
	rc.mu.Lock()
	if rc.m == nil {
		rc.m = make(map[string]*robotsEntry)
	}
	e, found := rc.m[origin]
	if !found {
		e = &robotsEntry{done: make(chan struct{})}
		rc.m[origin] = e
	}
	rc.mu.Unlock()

	if found {
		select {
		case <-e.done:
			if e.rules == nil {
				return nil, context.Cause(ctx)
			}
			return e, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}

	rules, cause, ok := load()
	if !ok {
		rc.mu.Lock()
		delete(rc.m, origin)
		rc.mu.Unlock()
		close(e.done)
		return nil, context.Cause(ctx)
	}
	e.rules, e.cause = rules, cause
	close(e.done)
	return e, nil
}
