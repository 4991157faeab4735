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

	"github.com/connectorhq/connector/internal/htmlcharset"
)

// parseHTMLReference is parseHTML as it was before its fast path over
// raw tag names (crawl 2026-12-05): the differential tests hold the two
// equal. It extracts title, visible text, links and metadata from an HTML
// body. The body is decoded to UTF-8 first (Content-Type charset, BOM or
// <meta charset> prescan, as browsers do). agent is the robots product
// token: <meta name="agent"> counts like <meta name="robots">.
func parseHTMLReference(body []byte, contentType, agent string) htmlDoc {
	var r io.Reader = bytes.NewReader(htmlcharset.TrimBOM(body)) // a byte order mark is no text
	if enc, name, _ := charset.DetermineEncoding(body, contentType); name != "utf-8" {
		r = transform.NewReader(r, enc.NewDecoder())
	}
	z := html.NewTokenizer(r)

	var (
		doc          htmlDoc
		text         = refTextBuilder{b: make([]byte, 0, len(body)/2)}
		title        refTextBuilder
		rawTag       string // skip/title tag whose raw text comes next
		templates    int    // depth of <template>
		foreign      int    // depth of <svg>/<math>
		haveBase     bool
		haveTitle    bool
		haveCanon    bool
		httpEquivLng string
		reading      bool // in a ruby's reading, as parseHTML
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
			if templates == 0 && !reading {
				text.add(z.Text())
			}

		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			rawTag = ""
			if tt == html.SelfClosingTagToken {
				z.NextIsNotRawText() // <script src="a.js"/> is empty
			}
			nameB, hasAttr := z.TagName()
			name := string(nameB)
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
				case "rt", "rp", "rtc", "ruby":
					reading = false
				}
				if !inlineTags[name] {
					text.space()
					reading = false
				}
				continue
			}
			if !inlineTags[name] {
				text.space()
				reading = false
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
			case "rt", "rp", "rtc":
				reading = tt == html.StartTagToken
				continue
			case "rb":
				reading = false
				continue
			}
			if !hasAttr || templates > 0 || foreign > 0 {
				continue
			}
			switch name {
			case "a", "area":
				if v, ok := refAttr(z, "href"); ok {
					doc.links = append(doc.links, v)
				}
			case "frame", "iframe":
				if v, ok := refAttr(z, "src"); ok {
					doc.links = append(doc.links, v)
				}
			case "base":
				if v, ok := refAttr(z, "href"); ok && !haveBase {
					doc.base, haveBase = v, true
				}
			case "html":
				if v, ok := refAttr(z, "lang"); ok && doc.lang == "" {
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

// refTextBuilder is textBuilder before its fast path; it collects text with whitespace runs collapsed to one space
// and no leading or trailing space.
type refTextBuilder struct {
	b       []byte
	pending bool
}

func (t *refTextBuilder) space() { t.pending = true }

func (t *refTextBuilder) add(s []byte) {
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
		case r == softHyphen: // left out, as parseHTML leaves it out
		default:
			t.flush()
			t.b = append(t.b, s[i:i+n]...)
		}
		i += n
	}
}

func (t *refTextBuilder) flush() {
	if t.pending && len(t.b) > 0 {
		t.b = append(t.b, ' ')
	}
	t.pending = false
}

func (t *refTextBuilder) String() string { return string(t.b) }

// skipTextTags and inlineTags are parseHTMLReference's tag sets.
var skipTextTags = map[string]bool{
	"script": true, "style": true, "noscript": true, "iframe": true,
	"noembed": true, "noframes": true, "title": true,
}

var inlineTags = map[string]bool{
	"a": true, "abbr": true, "b": true, "bdi": true, "bdo": true, "big": true,
	"cite": true, "code": true, "data": true, "del": true, "dfn": true,
	"em": true, "font": true, "i": true, "ins": true, "kbd": true,
	"label": true, "mark": true, "q": true, "s": true, "samp": true,
	"small": true, "span": true, "strike": true, "strong": true, "sub": true,
	"sup": true, "time": true, "tt": true, "u": true, "var": true, "wbr": true,
	"nobr": true, "ruby": true, "rt": true, "rp": true, "rtc": true, "rb": true,
}

// refAttr returns the value of the attribute key of the current tag, read
// through Tokenizer.TagAttr (attr as it was before rawAttrValues).
func refAttr(z *html.Tokenizer, key string) (string, bool) {
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
