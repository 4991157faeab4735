package restsync

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/connectorhq/connector/secret"
)

// NextLink returns the URL of the Link header's rel="next" target (RFC
// 8288), or "".
func NextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range splitLinks(v) {
			part = strings.TrimSpace(part)
			if !strings.HasPrefix(part, "<") {
				continue
			}
			end := strings.IndexByte(part, '>')
			if end < 0 {
				continue
			}
			target := part[1:end]
			for _, p := range strings.Split(part[end+1:], ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}

// splitLinks splits a Link header value at the commas between links (not
// those inside <...> or quotes).
func splitLinks(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' && depth == 0:
			quoted = !quoted
		case c == '<' && !quoted:
			depth++
		case c == '>' && !quoted && depth > 0:
			depth--
		case c == ',' && depth == 0 && !quoted:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// Pages follows a chain of pages: page is called with each page's URL and
// returns the next one ("" after the last). A next page that is not on the
// service's origin (ErrOrigin: the credentials would go with it) or that
// was already read (ErrPageLoop: a page linking to itself, or a cycle)
// ends the chain with an error; so does maxPages pages (0: no limit).
func (c *Client) Pages(ctx context.Context, first string, maxPages int, page func(ctx context.Context, u string) (next string, err error)) error {
	seen := map[string]bool{}
	u := first
	for n := 1; u != ""; n++ {
		abs, err := c.Resolve(u)
		if err != nil {
			return err
		}
		if !c.SameOrigin(abs) {
			return fmt.Errorf("%s: next page %s: %w", c.opt.Service, secret.RedactURLs(abs.String()), ErrOrigin)
		}
		key := canonical(abs)
		if seen[key] {
			return fmt.Errorf("%s: next page %s: %w", c.opt.Service, secret.RedactURLs(abs.String()), ErrPageLoop)
		}
		if maxPages > 0 && n > maxPages {
			return fmt.Errorf("%s: more than %d pages from %s: %w", c.opt.Service, maxPages, secret.RedactURLs(first), ErrPageLoop)
		}
		seen[key] = true
		if u, err = page(ctx, abs.String()); err != nil {
			return err
		}
	}
	return nil
}

// canonical is a URL with its query parameters sorted, so that a page
// linking to itself with its parameters in another order is recognised.
func canonical(u *url.URL) string {
	c := *u
	c.RawQuery = u.Query().Encode()
	c.Fragment = ""
	c.Host = strings.ToLower(c.Host)
	c.Scheme = strings.ToLower(c.Scheme)
	return c.String()
}
