package crawl

import (
	"bytes"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/transform"
)

// htmlDoc is what the crawl extracts from an HTML document. URLs are raw
// attribute values; the crawl resolves them.
type htmlDoc struct {
	title     string
	text      string
	base      string   // first <base href>
	links     []string // a/area href, frame/iframe src, in order
	canonical string   // first <link rel=canonical href>
	meta      map[string][]string
	lang      string // <html lang>, else <meta http-equiv=content-language>
	robots    RobotsFlags
}

// skipTextTags hold content that is not visible text. The tokenizer reads
// their content as one raw text token (template excepted, which is tracked
// by depth).
var skipTextTags = map[string]bool{
	"script": true, "style": true, "noscript": true, "iframe": true,
	"noembed": true, "noframes": true, "title": true,
}

// inlineTags do not separate words: "fo<b>o</b>" is "foo". Every other tag
// boundary is a word boundary.
var inlineTags = map[string]bool{
	"a": true, "abbr": true, "b": true, "bdi": true, "bdo": true, "big": true,
	"cite": true, "code": true, "data": true, "del": true, "dfn": true,
	"em": true, "font": true, "i": true, "ins": true, "kbd": true,
	"label": true, "mark": true, "q": true, "s": true, "samp": true,
	"small": true, "span": true, "strike": true, "strong": true, "sub": true,
	"sup": true, "time": true, "tt": true, "u": true, "var": true, "wbr": true,
	"nobr": true, "ruby": true, "rt": true, "rp": true,
}

// parseHTML extracts title, visible text, links and metadata from an HTML
// body. The body is decoded to UTF-8 first (Content-Type charset, BOM or
// <meta charset> prescan, as browsers do). agent is the robots product
// token: <meta name="agent"> counts like <meta name="robots">.
func parseHTML(body []byte, contentType, agent string) htmlDoc {
	var r io.Reader = bytes.NewReader(body)
	if enc, name, _ := charset.DetermineEncoding(body, contentType); name != "utf-8" {
		r = transform.NewReader(r, enc.NewDecoder())
	}
	z := html.NewTokenizer(r)

	var (
		doc          htmlDoc
		text         = textBuilder{b: make([]byte, 0, len(body)/2)}
		title        textBuilder
		rawTag       string // skip/title tag whose raw text comes next
		templates    int    // depth of <template>
		foreign      int    // depth of <svg>/<math>
		haveBase     bool
		haveTitle    bool
		haveCanon    bool
		httpEquivLng string
	)
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			doc.text = text.String()
			doc.title = title.String()
			if doc.lang == "" {
				doc.lang = httpEquivLng
			}
			return doc

		case html.TextToken:
			if rawTag != "" {
				if rawTag == "title" && !haveTitle && foreign == 0 {
					title.add(z.Text())
					haveTitle = true
				}
				continue
			}
			if templates == 0 {
				text.add(z.Text())
			}

		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			rawTag = ""
			nameB, hasAttr := z.TagName()
			name := tagName(nameB)
			if tt == html.EndTagToken {
				switch name {
				case "template":
					if templates > 0 {
						templates--
					}
				case "svg", "math":
					if foreign > 0 {
						foreign--
					}
				}
				if !inlineTags[name] {
					text.space()
				}
				continue
			}
			if !inlineTags[name] {
				text.space()
			}
			if skipTextTags[name] && tt == html.StartTagToken {
				rawTag = name
			}
			switch name {
			case "template":
				if tt == html.StartTagToken {
					templates++
				}
				continue
			case "svg", "math":
				if tt == html.StartTagToken {
					foreign++
				}
				continue
			}
			if !hasAttr || templates > 0 || foreign > 0 {
				continue
			}
			switch name {
			case "a", "area":
				if v, ok := attr(z, "href"); ok {
					doc.links = append(doc.links, v)
				}
			case "frame", "iframe":
				if v, ok := attr(z, "src"); ok {
					doc.links = append(doc.links, v)
				}
			case "base":
				if v, ok := attr(z, "href"); ok && !haveBase {
					doc.base, haveBase = v, true
				}
			case "html":
				if v, ok := attr(z, "lang"); ok && doc.lang == "" {
					doc.lang = strings.TrimSpace(v)
				}
			case "link":
				attrs := attrMap(z)
				if !haveCanon && hasToken(attrs["rel"], "canonical") {
					if h, ok := attrs["href"]; ok {
						doc.canonical, haveCanon = h, true
					}
				}
			case "meta":
				attrs := attrMap(z)
				content, hasContent := attrs["content"]
				if !hasContent {
					continue
				}
				for _, k := range [...]string{"name", "http-equiv", "property"} {
					key, ok := attrs[k]
					if !ok {
						continue
					}
					key = strings.ToLower(strings.TrimSpace(key))
					if key == "" {
						continue
					}
					if doc.meta == nil {
						doc.meta = make(map[string][]string)
					}
					doc.meta[key] = append(doc.meta[key], content)
					switch {
					case k == "name" && (key == "robots" || strings.EqualFold(key, agent)):
						doc.robots = doc.robots.merge(parseRobotsDirectives(content))
					case k == "http-equiv" && key == "content-language" && httpEquivLng == "":
						lang, _, _ := strings.Cut(content, ",")
						httpEquivLng = strings.TrimSpace(lang)
					}
				}
			}
		}
	}
}

// knownTags interns tag names so that the common ones cost no allocation
// (a map index with string(b) does not allocate).
var knownTags = func() map[string]string {
	m := make(map[string]string)
	for _, t := range strings.Fields(`a abbr address area article aside b base bdi bdo blockquote body br
		button caption cite code col colgroup data dd del details dfn dialog div dl dt em embed
		fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6 head header hr
		html i iframe img input ins kbd label legend li link main map mark math menu meta nav
		noembed noframes noscript object ol optgroup option p param picture pre q rp rt ruby s
		samp script section select small source span strike strong style sub summary sup svg
		table tbody td template textarea tfoot th thead time title tr tt u ul var video wbr`) {
		m[t] = t
	}
	return m
}()

// tagName returns the tag name as a string, interned when it is common.
func tagName(b []byte) string {
	if s, ok := knownTags[string(b)]; ok {
		return s
	}
	return string(b)
}

// attr returns the value of the attribute key of the current tag.
func attr(z *html.Tokenizer, key string) (string, bool) {
	for {
		k, v, more := z.TagAttr()
		if string(k) == key {
			return string(v), true
		}
		if !more {
			return "", false
		}
	}
}

// attrMap returns the current tag's attributes (first occurrence wins).
func attrMap(z *html.Tokenizer) map[string]string {
	m := make(map[string]string, 4)
	for {
		k, v, more := z.TagAttr()
		if _, dup := m[string(k)]; !dup && len(k) > 0 {
			m[string(k)] = string(v)
		}
		if !more {
			return m
		}
	}
}

// hasToken reports whether the space-separated list s holds tok
// (ASCII case-insensitive), as for rel="...".
func hasToken(s, tok string) bool {
	for _, f := range strings.Fields(s) {
		if strings.EqualFold(f, tok) {
			return true
		}
	}
	return false
}

func (f RobotsFlags) merge(g RobotsFlags) RobotsFlags {
	return RobotsFlags{NoIndex: f.NoIndex || g.NoIndex, NoFollow: f.NoFollow || g.NoFollow}
}

// parseRobotsDirectives reads a robots meta content or X-Robots-Tag rule
// list: "noindex, nofollow", "none", ...
func parseRobotsDirectives(s string) RobotsFlags {
	var f RobotsFlags
	for _, d := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		switch strings.ToLower(d) {
		case "noindex":
			f.NoIndex = true
		case "nofollow":
			f.NoFollow = true
		case "none":
			f.NoIndex, f.NoFollow = true, true
		}
	}
	return f
}

// robotsTagDirectives are X-Robots-Tag directive names that carry a value
// after a colon, so that "unavailable_after: ..." is not read as a user
// agent prefix.
var robotsTagDirectives = map[string]bool{
	"unavailable_after": true, "max-snippet": true, "max-image-preview": true,
	"max-video-preview": true,
}

// parseXRobotsTag reads X-Robots-Tag header values. A value may start with
// a user agent ("otherbot: noindex"), in which case it applies only when
// that is agent.
func parseXRobotsTag(values []string, agent string) RobotsFlags {
	var f RobotsFlags
	for _, v := range values {
		if prefix, rest, ok := strings.Cut(v, ":"); ok {
			p := strings.TrimSpace(prefix)
			if p != "" && productToken(p) == p && !robotsTagDirectives[strings.ToLower(p)] {
				if !strings.EqualFold(p, agent) {
					continue
				}
				v = rest
			}
		}
		f = f.merge(parseRobotsDirectives(v))
	}
	return f
}

// textBuilder collects text with whitespace runs collapsed to one space
// and no leading or trailing space.
type textBuilder struct {
	b       []byte
	pending bool
}

func (t *textBuilder) space() { t.pending = true }

func (t *textBuilder) add(s []byte) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch c {
			case ' ', '\t', '\n', '\r', '\f', '\v':
				t.pending = true
				continue
			}
			t.flush()
			t.b = append(t.b, c)
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		switch {
		case unicode.IsSpace(r):
			t.pending = true
		case r == utf8.RuneError && n == 1:
			t.flush() // invalid UTF-8: U+FFFD, as a browser shows it
			t.b = utf8.AppendRune(t.b, utf8.RuneError)
		default:
			t.flush()
			t.b = append(t.b, s[i:i+n]...)
		}
		i += n
	}
}

func (t *textBuilder) flush() {
	if t.pending && len(t.b) > 0 {
		t.b = append(t.b, ' ')
	}
	t.pending = false
}

func (t *textBuilder) String() string { return string(t.b) }
