package crawl

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/transform"

	"github.com/connectorhq/connector/internal/htmlcharset"
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

// Tag flags.
const (
	// tagSkipText: the content is not visible text. The tokenizer reads
	// it as one raw text token (template excepted, which is tracked by
	// depth).
	tagSkipText = 1 << iota
	// tagInline: the tag does not separate words: "fo<b>o</b>" is "foo".
	// Every other tag boundary is a word boundary.
	tagInline
)

// tagInfo is what parseHTML knows of a tag name.
type tagInfo struct {
	name  string // lower case; "" for a tag parseHTML does not look into
	flags uint8
}

// knownTags maps the lower-case names of the tags whose flags are set or
// whose attributes parseHTML reads to their tagInfo. Any other tag
// separates words and is otherwise ignored.
var knownTags = func() map[string]tagInfo {
	m := make(map[string]tagInfo)
	for _, t := range strings.Fields(`script style noscript iframe noembed noframes title`) {
		m[t] = tagInfo{flags: tagSkipText}
	}
	for _, t := range strings.Fields(`a abbr b bdi bdo big cite code data del dfn em font i ins kbd
		label mark q s samp small span strike strong sub sup time tt u var wbr nobr ruby rt rp rtc rb`) {
		m[t] = tagInfo{flags: tagInline}
	}
	for _, t := range strings.Fields(`a area frame iframe base html link meta template svg math title ruby rt rp rtc rb`) {
		e := m[t]
		e.name = t
		m[t] = e
	}
	return m
}()

// maxKnownTag is the length of the longest name in knownTags.
const maxKnownTag = 8

// tagTable is knownTags as an open-addressing table keyed by the name
// packed into a uint64 (names are at most 8 bytes), so that a lookup
// hashes one word instead of a string.
var tagTable = func() (t [256]struct {
	key  uint64
	info tagInfo
}) {
	for name, info := range knownTags {
		k := packTag([]byte(name))
		i := tagSlot(k)
		for t[i].key != 0 {
			i = (i + 1) % uint64(len(t))
		}
		t[i].key, t[i].info = k, info
	}
	return t
}()

func packTag(name []byte) uint64 {
	var k uint64
	for _, c := range name {
		k = k<<8 | uint64(c)
	}
	return k
}

func tagSlot(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> 56 }

// lookupTag reads the tag name of a start or end tag token from its raw
// bytes ("<NAME ...", "</NAME ...") the way the tokenizer delimits it, and
// looks it up in knownTags (ASCII case-insensitively, as the tokenizer
// lower-cases). It costs no allocation, where Tokenizer.TagName copies
// the name.
func lookupTag(raw []byte) tagInfo {
	i := 1 // past '<'
	if i < len(raw) && raw[i] == '/' {
		i++
	}
	var k uint64
	n := 0
	for ; i < len(raw); i++ {
		c := raw[i]
		if c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '/' || c == '>' {
			break
		}
		if n == maxKnownTag || c == 0 {
			return tagInfo{}
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k = k<<8 | uint64(c)
		n++
	}
	if k == 0 {
		return tagInfo{}
	}
	for j := tagSlot(k); ; j = (j + 1) % uint64(len(tagTable)) {
		switch tagTable[j].key {
		case k:
			return tagTable[j].info
		case 0:
			return tagInfo{}
		}
	}
}

// parseHTML extracts title, visible text, links and metadata from an HTML
// body. The body is decoded to UTF-8 first (Content-Type charset, BOM,
// an XML declaration's encoding or <meta charset> prescan, as browsers
// do, and a <meta charset> of the
// head past the 1024 bytes the prescan reads, as Chromium does:
// htmlcharset.Meta; see utf8Guess for a body neither declares). agent is the robots product token: <meta
// name="agent"> counts like <meta name="robots">.
func parseHTML(body []byte, contentType, agent string) htmlDoc {
	var scratch []byte
	return parseHTMLWith(body, contentType, agent, &scratch, nil)
}

// parseHTMLWith is parseHTML building the text in *scratch, which it
// keeps for the next call (a worker's, so that each page's text is not
// built in a buffer of its own; buffers past maxScratchText are not
// kept).
//
// The links are appended to links[:0] (a worker's buffer too: their
// strings are the document's, the slice is not).
func parseHTMLWith(body []byte, contentType, agent string, scratch *[]byte, links []string) htmlDoc {
	var r io.Reader = bytes.NewReader(htmlcharset.TrimBOM(body))
	if !declaredUTF8(body, contentType) {
		enc, name, certain := charset.DetermineEncoding(body, contentType)
		if !certain {
			if e, n := htmlcharset.XMLDeclaration(body); e != nil {
				enc, name, certain = e, n, true // XHTML's, as Chromium reads it
			} else if e, n := htmlcharset.Meta(body); e != nil {
				enc, name = e, n // a <meta charset> past the first KiB, in the head
			}
		}
		if name != "utf-8" && !utf8Guess(body, name, certain) {
			r = transform.NewReader(r, enc.NewDecoder())
		}
	}
	z := html.NewTokenizer(r)

	var (
		doc          htmlDoc
		text         textBuilder
		title        textBuilder
		rawTag       string // skip/title tag whose raw text comes next
		templates    int    // depth of <template>
		foreign      int    // depth of <svg>/<math>
		haveBase     bool
		haveTitle    bool
		haveCanon    bool
		httpEquivLng string
		// reading: inside a ruby's reading (<rt>, <rtc>) or its
		// parentheses (<rp>), left out as package extract leaves them
		// out; </rt> may be omitted, so the next <rb>, </rp>, </rtc>,
		// </ruby> or a tag that separates words ends it too.
		reading bool
	)
	text.b = (*scratch)[:0]
	doc.links = links[:0]
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			doc.text = text.String()
			if cap(text.b) <= maxScratchText {
				*scratch = text.b[:0]
			} else {
				*scratch = nil
			}
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
				// Text is the raw bytes with "\r\n" and "\r" made "\n",
				// entities decoded and, in raw text, NULs made U+FFFD. The
				// builder collapses "\r" like "\n", so without a '&' or a
				// NUL the raw bytes give the same text, without Text's
				// passes over them. addRaw meets a '&' or a NUL as it goes;
				// what it added is then taken back and Text added instead.
				n, pending := len(text.b), text.pending
				if !text.addRaw(z.Raw()) {
					text.b, text.pending = text.b[:n], pending
					text.add(z.Text())
				}
			}

		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			rawTag = ""
			if tt == html.SelfClosingTagToken {
				// <script src="a.js"/>, <title/>: empty, as XHTML writes
				// them, not raw text up to a closing tag of their name
				// (the tokenizer's reading).
				z.NextIsNotRawText()
			}
			info := lookupTag(z.Raw())
			name := info.name
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
				if info.flags&tagInline == 0 {
					text.space()
					reading = false
				}
				continue
			}
			if info.flags&tagInline == 0 {
				text.space()
				reading = false
			}
			if info.flags&tagSkipText != 0 && tt == html.StartTagToken {
				rawTag = "skip"
				if name == "title" {
					rawTag = "title"
				}
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
			if name == "" || templates > 0 || foreign > 0 {
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
				if haveBase {
					continue
				}
				if v, ok := attr(z, "href"); ok {
					doc.base, haveBase = v, true
				}
			case "html":
				if doc.lang != "" {
					continue
				}
				if v, ok := attr(z, "lang"); ok {
					doc.lang = strings.TrimSpace(v)
				}
			case "link":
				if haveCanon {
					continue
				}
				var v [2]string // rel, href
				var has [2]bool
				attrValues(z, linkAttrs[:], v[:], has[:])
				if hasToken(v[0], "canonical") && has[1] {
					doc.canonical, haveCanon = v[1], true
				}
			case "meta":
				var v [4]string // content, name, http-equiv, property
				var has [4]bool
				attrValues(z, metaAttrs[:], v[:], has[:])
				if !has[0] {
					continue
				}
				content := v[0]
				for i, k := range metaAttrs[1:] {
					key, ok := v[i+1], has[i+1]
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

// utf8Guess reports whether a body whose encoding the Content-Type header
// and a byte order mark left open (certain false), and that
// charset.DetermineEncoding guessed as windows-1252 (name), is read as
// UTF-8 instead: it is when the whole body is valid UTF-8 with a byte
// past ASCII. DetermineEncoding looks at the first 1024 bytes only, so an
// undeclared UTF-8 page (a bare "text/html", as nginx and Apache send it
// by default) whose first 1 KiB is ASCII, or whose <meta charset> comes
// later, became mojibake ("CrÃ¨me") where a browser, which guesses from
// the content and obeys a late <meta charset>, shows the text. Text in
// windows-1252 or Latin-1 past ASCII is almost never valid UTF-8.
func utf8Guess(body []byte, name string, certain bool) bool {
	if certain || name != "windows-1252" {
		return false
	}
	ascii := true
	for _, c := range body {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	return !ascii && utf8.Valid(body)
}

// declaredUTF8 reports, for the usual Content-Type of UTF-8 pages, that
// charset.DetermineEncoding would answer UTF-8 (a UTF-16 byte order mark
// excepted, which wins over the header), without its parameter map and
// encoding lookup.
func declaredUTF8(body []byte, contentType string) bool {
	switch contentType {
	case "text/html; charset=utf-8", "text/html; charset=UTF-8":
		return !bytes.HasPrefix(body, []byte("\xfe\xff")) && !bytes.HasPrefix(body, []byte("\xff\xfe"))
	}
	return false
}

// attr returns the value of the attribute key of the current start tag.
func attr(z *html.Tokenizer, key string) (string, bool) {
	keys := [1]string{key}
	var v [1]string
	var has [1]bool
	attrValues(z, keys[:], v[:], has[:])
	return v[0], has[0]
}

// The attributes parseHTML reads from <link> and <meta>.
var (
	linkAttrs = [2]string{"rel", "href"}
	metaAttrs = [4]string{"content", "name", "http-equiv", "property"}
)

// attrValues sets v[i] to the value of the current start tag's first
// attribute named keys[i] (lower case), and has[i] when there is one (as a
// map of the attributes, first occurrence winning, would; without building
// one per tag).
func attrValues(z *html.Tokenizer, keys, v []string, has []bool) {
	if rawAttrValues(z.Raw(), keys, v, has) {
		return
	}
	clear(v)
	clear(has)
	for {
		k, val, more := z.TagAttr()
		for i, key := range keys {
			if !has[i] && string(k) == key {
				v[i], has[i] = string(val), true
				break
			}
		}
		if !more {
			return
		}
	}
}

// rawAttrValues is attrValues read from the raw bytes of a start tag
// ("<name attributes>", which the tokenizer has delimited): it splits the
// attributes exactly as the tokenizer's readTag does, and takes a value as
// it stands when it holds no '&', CR or NUL (which TagAttr would unescape,
// convert or replace). It reports false, leaving v and has partly set, when
// a wanted value holds one of them: the caller then asks the tokenizer.
// TagAttr copies every key and value it passes over (twice); this copies
// only the values wanted.
func rawAttrValues(raw []byte, keys, v []string, has []bool) bool {
	n := len(raw)
	i := 1      // past '<'; the first byte of the name is a letter
	for i < n { // the tag name (readTagName)
		c := raw[i]
		if isTagSpace(c) {
			i++
			break
		}
		if c == '/' || c == '>' {
			break
		}
		i++
	}
	i = skipTagSpace(raw, i)
	for i < n && raw[i] != '>' {
		// The key (readTagAttrKey): a '=' first is part of it.
		ks := i
		for i < n {
			c := raw[i]
			if (c == '=' && i != ks) || isTagSpace(c) || c == '/' || c == '>' {
				break
			}
			i++
		}
		ke := i
		// The value (readTagAttrVal).
		vs, ve := i, i
		i = skipTagSpace(raw, i)
		if i < n {
			switch c := raw[i]; {
			case c == '/':
				i++
			case c == '=':
				i = skipTagSpace(raw, i+1)
				if i >= n {
					break
				}
				switch q := raw[i]; q {
				case '>':
				case '\'', '"':
					i++
					vs = i
					for i < n && raw[i] != q {
						i++
					}
					ve = i
					if i < n {
						i++
					}
				default:
					vs = i
					for i < n && !isTagSpace(raw[i]) && raw[i] != '>' {
						i++
					}
					ve = i
					if i < n && raw[i] != '>' {
						i++ // the white space ending it is consumed
					}
				}
			}
		}
		if ks != ke {
			for j, k := range keys {
				if !has[j] && asciiLowerEqual(raw[ks:ke], k) {
					val := raw[vs:ve]
					for _, c := range val {
						if c == '&' || c == '\r' || c == 0 {
							return false
						}
					}
					v[j], has[j] = string(val), true
					break
				}
			}
		}
		i = skipTagSpace(raw, i)
	}
	return true
}

// isTagSpace reports the white space of the tokenizer's tags.
func isTagSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f'
}

func skipTagSpace(raw []byte, i int) int {
	for i < len(raw) && isTagSpace(raw[i]) {
		i++
	}
	return i
}

// asciiLowerEqual reports whether b with A-Z lowered (as the tokenizer
// lowers attribute names) is lower.
func asciiLowerEqual(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
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

// textClass sorts bytes for textBuilder.add: visible ASCII, the ASCII
// white space it collapses, the bytes of non-ASCII characters, and '&'
// and NUL (visible, but raw text holding them is not text: addRaw).
const (
	classVisible = iota
	classSpace
	classNonASCII
	classRef
)

var textClass = func() (t [256]uint8) {
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = classNonASCII
	}
	t['&'], t[0] = classRef, classRef
	for _, c := range []byte{' ', '\t', '\n', '\r', '\f', '\v'} {
		t[c] = classSpace
	}
	return t
}()

func (t *textBuilder) add(s []byte) { t.addText(s, false) }

// addRaw adds the raw bytes of a text token, unless they hold a '&' or a
// NUL (which Tokenizer.Text would decode or replace): it then returns
// false, having added part of s.
func (t *textBuilder) addRaw(s []byte) bool { return t.addText(s, true) }

func (t *textBuilder) addText(s []byte, raw bool) bool {
	for i := 0; i < len(s); {
		switch textClass[s[i]] {
		case classRef:
			if raw {
				return false
			}
			t.flush()
			t.b = append(t.b, s[i])
			i++
		case classSpace:
			t.pending = true
			i++
			for i < len(s) && textClass[s[i]] == classSpace {
				i++
			}
		case classVisible:
			// A run of visible ASCII words separated by single spaces
			// is already collapsed: it is copied in one go.
			j := i + 1
			for {
				j = visibleWords(s, j)
				for j < len(s) && textClass[s[j]] == classVisible {
					j++
				}
				if j+1 < len(s) && s[j] == ' ' && textClass[s[j+1]] == classVisible {
					j += 2
					continue
				}
				break
			}
			t.flush()
			t.b = append(t.b, s[i:j]...)
			i = j
		default:
			r, n := utf8.DecodeRune(s[i:])
			switch {
			case unicode.IsSpace(r):
				t.pending = true
			case r == utf8.RuneError && n == 1:
				t.flush() // invalid UTF-8: U+FFFD, as a browser shows it
				t.b = utf8.AppendRune(t.b, utf8.RuneError)
			case r == softHyphen:
				// Where a word may break across lines: not seen unless it
				// breaks there, and no part of the word searched for.
			default:
				t.flush()
				t.b = append(t.b, s[i:i+n]...)
			}
			i += n
		}
	}
	return true
}

// visibleWords skips, eight bytes at a time, from j (just past a visible
// byte) over visible ASCII bytes and single spaces each followed by one:
// text textBuilder.add copies as it stands. It stops at the first eight
// bytes that might hold anything else (a byte below 0x20 or above 0x7f,
// a '&', two spaces in a row, a space last), which add then reads byte by
// byte.
func visibleWords(s []byte, j int) int {
	const (
		lo = 0x0101010101010101
		hi = 0x8080808080808080
	)
	for j+8 <= len(s) {
		x := binary.LittleEndian.Uint64(s[j:])
		if ((x-0x20*lo)|x)&hi != 0 {
			return j // a byte below 0x20 or not ASCII
		}
		if a := x ^ '&'*lo; (a-lo)&^a&hi != 0 {
			return j // a '&'
		}
		z := x ^ 0x20*lo
		sp := (z - lo) &^ z & hi // every space (and maybe a '!' after one)
		if sp&(sp>>8) != 0 || sp>>63 != 0 {
			return j // two spaces in a row, or a space last
		}
		j += 8
	}
	return j
}

// softHyphen (&shy;) is left out of the text, as package extract leaves
// it out.
const softHyphen = '\u00ad'

func (t *textBuilder) flush() {
	if t.pending && len(t.b) > 0 {
		t.b = append(t.b, ' ')
	}
	t.pending = false
}

func (t *textBuilder) String() string { return string(t.b) }

// maxScratchText is the largest text buffer a worker keeps for its next
// page.
const maxScratchText = 256 << 10

// textBufs keeps the text buffers of workers that ended for the workers
// of later crawls, which would otherwise grow theirs again from nothing
// (a few doublings up to the largest page's text, in every worker of
// every crawl).
var textBufs sync.Pool

func getTextBuf() []byte {
	if b, ok := textBufs.Get().(*[]byte); ok {
		return *b
	}
	return nil
}

func putTextBuf(b []byte) {
	if cap(b) > 0 && cap(b) <= maxScratchText {
		b = b[:0]
		textBufs.Put(&b)
	}
}
