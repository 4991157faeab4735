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
// 8288), or "". Parameter values may be quoted strings, with \ escapes: a
// ";" or "," inside one (a title, say) is text, never a parameter or link
// of its own; and only the first rel of a link counts (RFC 8288, 3.3).
func NextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for v != "" {
			var target, rel string
			var ok bool
			target, rel, ok, v = cutLink(v)
			if !ok {
				continue
			}
			for _, r := range strings.Fields(rel) {
				if strings.EqualFold(r, "next") {
					return target
				}
			}
		}
	}
	return ""
}

// cutLink reads the first link of a Link header value v: its <target>
// (ok when there is one), its first rel parameter, unquoted, and the rest
// of v after the comma that ends the link.
func cutLink(v string) (target, rel string, ok bool, rest string) {
	v = strings.TrimLeft(v, " \t")
	if strings.HasPrefix(v, "<") {
		if end := strings.IndexByte(v, '>'); end > 0 {
			target, v, ok = v[1:end], v[end+1:], true
		}
	}
	seenRel := false
	for {
		var name, val string
		var sep byte
		name, val, sep, v = cutParam(v)
		if !seenRel && strings.EqualFold(name, "rel") {
			rel, seenRel = val, true
		}
		if sep != ';' {
			return target, rel, ok, v
		}
	}
}

// cutParam reads v up to its first ';' or ',' outside a quoted string (sep;
// 0 at the end of v) as a parameter name[=value], the value unquoted, and
// returns what follows sep.
func cutParam(v string) (name, val string, sep byte, rest string) {
	var b strings.Builder
	quoted, named := false, false
	for i := 0; i < len(v) && sep == 0; i++ {
		c := v[i]
		switch {
		case quoted && c == '\\' && i+1 < len(v):
			i++
			b.WriteByte(v[i])
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ';' || c == ','):
			sep, rest = c, v[i+1:]
		case !quoted && c == '=' && !named:
			name, named = b.String(), true
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	if !named {
		return strings.TrimSpace(b.String()), "", sep, rest
	}
	return strings.TrimSpace(name), strings.TrimSpace(b.String()), sep, rest
}

// Page is one page of a list: its items and the URL of the next page ("" after
// the last), absolute or relative to this page's URL.
type Page[T any] struct {
	Items []T
	Next  string
}

// Walk reads a list page by page, one page ahead: get fetches a page, and
// while each works on its items the next page is already being fetched.
// each returns stop to end early. A next page that is not on the
// service's origin (ErrOrigin: the credentials would go with it) or that
// was already read (ErrPageLoop: a page linking to itself, or a cycle)
// ends the walk with an error, after the items of the page that links to
// it; so do maxEmptyPages pages in a row without items that each link to
// a next one (ErrEmptyPages: endless distinct links would otherwise page
// until the task is stopped). first, when relative, is under the
// client's base URL (Client.Resolve); a relative next page is resolved
// against the URL of the page that names it (RFC 8288 section 3.2, RFC
// 3986 section 5): </v1/items?cursor=c> from https://host/v1/items is
// https://host/v1/items?cursor=c, not under the base path again. A panic in get, which runs on a goroutine
// of Walk's, is raised again on the caller's goroutine when its page is
// reached (a page fetched ahead and not used drops it).
func Walk[T any](ctx context.Context, c *Client, first string, get func(ctx context.Context, u string) (Page[T], error), each func(items []T) (stop bool, err error)) error {
	seen := map[string]bool{}
	// check returns the absolute URL of u, relative to the page from
	// (nil: the first page, relative to the base URL).
	check := func(from *url.URL, u string) (*url.URL, error) {
		var abs *url.URL
		var err error
		if from == nil {
			abs, err = c.Resolve(u)
		} else if abs, err = url.Parse(u); err == nil {
			abs = from.ResolveReference(abs)
		} else {
			err = fmt.Errorf("%s: next page %q is not a URL", c.opt.Service, secret.RedactURLs(u))
		}
		if err != nil {
			return nil, err
		}
		if !c.SameOrigin(abs) {
			return nil, fmt.Errorf("%s: next page %s: %w", c.opt.Service, secret.RedactURLs(abs.String()), ErrOrigin)
		}
		key := canonical(abs)
		if seen[key] {
			return nil, fmt.Errorf("%s: next page %s: %w", c.opt.Service, secret.RedactURLs(abs.String()), ErrPageLoop)
		}
		seen[key] = true
		return abs, nil
	}
	type fetched struct {
		p        Page[T]
		err      error
		panicked any // what get panicked with, raised again by the caller
	}
	fetch := func(ctx context.Context, u string) <-chan fetched {
		ch := make(chan fetched, 1)
		go func() {
			// A panic here would end the process: it is raised again
			// on Walk's goroutine (the action's worker, whose recovery
			// makes it the action's Error).
			defer func() {
				if r := recover(); r != nil {
					ch <- fetched{panicked: r}
				}
			}()
			p, err := get(ctx, u)
			ch <- fetched{p: p, err: err}
		}()
		return ch
	}
	u, err := check(nil, first)
	if err != nil {
		return err
	}
	cur, curCancel := fetch(ctx, u.String()), func() {}
	empty := 0 // pages without items in a row
	for {
		f := <-cur
		curCancel() // its fetch is done: release its context
		if f.panicked != nil {
			panic(f.panicked)
		}
		if f.err != nil {
			return f.err
		}
		var next <-chan fetched
		var nextErr error
		var nu *url.URL // next's URL
		cancel := func() {}
		if len(f.p.Items) == 0 {
			empty++
		} else {
			empty = 0
		}
		if f.p.Next != "" && empty >= maxEmptyPages {
			nextErr = fmt.Errorf("%s: %d pages in a row: %w", c.opt.Service, empty, ErrEmptyPages)
		} else if f.p.Next != "" {
			if nu, nextErr = check(u, f.p.Next); nextErr == nil {
				var nctx context.Context
				nctx, cancel = context.WithCancel(ctx)
				next = fetch(nctx, nu.String())
			}
		}
		stop, err := each(f.p.Items)
		if err != nil || stop || next == nil {
			cancel()
			if next != nil {
				<-next // the prefetch ends with its context
			}
			if err != nil || stop {
				return err
			}
			return nextErr
		}
		cur, curCancel, u = next, cancel, nu
	}
}

// maxEmptyPages is the most pages without items in a row that Walk
// follows: a service may skip over filtered items with an empty page or
// a few, not with a hundred.
const maxEmptyPages = 100

// canonical is a URL with its query parameters sorted, so that a page
// linking to itself with its parameters in another order is recognised. A
// query that does not decode as a form (";" separators, a bad % escape)
// is kept as it is: decoding would drop the parameters it refuses, and
// distinct pages would read as one.
func canonical(u *url.URL) string {
	c := *u
	if q, err := url.ParseQuery(u.RawQuery); err == nil {
		c.RawQuery = q.Encode()
	}
	c.Fragment = ""
	c.Host = strings.ToLower(c.Host)
	c.Scheme = strings.ToLower(c.Scheme)
	return c.String()
}
