package crawl

import (
	"crypto/sha256"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html/charset"
)

func TestParseHTML(t *testing.T) {
	t.Parallel()
	const doc = `<!DOCTYPE html>
<html lang="en-GB"><head>
<title>  The   Title &amp; more </title>
<base href="/docs/">
<link rel="stylesheet" href="/style.css">
<link rel="Alternate CANONICAL" href="/canonical">
<link rel="canonical" href="/second-canonical">
<meta name="description" content="first">
<meta name="Description" content="second">
<meta property="og:title" content="OG">
<meta http-equiv="content-language" content="fr, de">
<meta charset="utf-8">
<style>body { color: red }</style>
<script>var hidden = "<a href='/in-script'>";</script>
</head>
<body>
<h1>Heading</h1><p>First&nbsp;para with <b>bo</b>ld and <a href="page1.html">a link</a>.</p>
<p>Second
   para</p><div>x</div><div>y</div>
<noscript>no script text <a href="/in-noscript">n</a></noscript>
<template><p>template text</p><a href="/in-template">t</a></template>
<svg><title>svg title</title><a href="/in-svg">s</a></svg>
<ul><li>one</li><li>two</li></ul>
<area href="/area" alt="a"><iframe src="/frame">fallback</iframe>
<a href="mailto:a@b.c">mail</a><a name="anchor-without-href">x</a>
<a href="page1.html">duplicate</a><textarea>typed</textarea>
</body></html>`
	d := parseHTML([]byte(doc), "text/html", "mybot")
	require.Equal(t, "The Title & more", d.title)
	require.Equal(t, "Heading First para with bold and a link. Second para x y s one two mailx duplicate typed", d.text)
	require.Equal(t, "/docs/", d.base)
	require.Equal(t, []string{"page1.html", "/area", "/frame", "mailto:a@b.c", "page1.html"}, d.links)
	require.Equal(t, "/canonical", d.canonical)
	require.Equal(t, []string{"first", "second"}, d.meta["description"])
	require.Equal(t, []string{"OG"}, d.meta["og:title"])
	require.Equal(t, []string{"fr, de"}, d.meta["content-language"])
	require.NotContains(t, d.meta, "charset")
	require.Equal(t, "en-GB", d.lang)
	require.Equal(t, RobotsFlags{}, d.robots)
}

// An element written self-closed as XHTML writes an empty one
// (<script src="a.js"/>, <title/>) opened raw text for the tokenizer, as
// <script> does: the rest of the page, up to a closing tag of that name
// (to its end, without one), was one text. The page's text was its
// markup, and its links were not followed: an XHTML site whose pages load
// a script so was crawled no further than its first page. The element is
// empty; what follows it is read as markup.
func TestParseHTMLSelfClosedRawTextElements(t *testing.T) {
	t.Parallel()
	d := parseHTML([]byte(`<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head>`+
		`<title>Home</title><script type="text/javascript" src="/a.js"/><style type="text/css"/></head>`+
		`<body><p>Visible text.</p><a href="/next.xhtml">next</a><iframe src="/frame"/><p>After.</p></body></html>`),
		"application/xhtml+xml", "mybot")
	require.Equal(t, "Home", d.title)
	require.Equal(t, "Visible text. next After.", d.text)
	require.Equal(t, []string{"/next.xhtml", "/frame"}, d.links)
	d = parseHTML([]byte(`<html><head><title/><meta name="description" content="d"/></head><body><p>Text.</p></body></html>`),
		"application/xhtml+xml", "mybot")
	require.Equal(t, "", d.title)
	require.Equal(t, "Text.", d.text)
	require.Equal(t, []string{"d"}, d.meta["description"])
}

func TestParseHTMLLangFallback(t *testing.T) {
	t.Parallel()
	d := parseHTML([]byte(`<html><head><meta http-equiv="Content-Language" content="fr, de"></head></html>`), "text/html", "x")
	require.Equal(t, "fr", d.lang)
	d = parseHTML([]byte(`<p>nothing</p>`), "text/html", "x")
	require.Equal(t, "", d.lang)
}

func TestParseHTMLCharsets(t *testing.T) {
	t.Parallel()
	// "café" in ISO-8859-1, declared by the Content-Type header.
	d := parseHTML([]byte("<title>caf\xe9</title><p>na\xefve</p>"), "text/html; charset=iso-8859-1", "x")
	require.Equal(t, "café", d.title)
	require.Equal(t, "naïve", d.text)
	// Declared in the document.
	d = parseHTML([]byte("<meta charset=\"windows-1252\"><p>\x93quoted\x94</p>"), "text/html", "x")
	require.Equal(t, "\u201cquoted\u201d", d.text)
	// UTF-8 stays as is.
	d = parseHTML([]byte("<p>日本語</p>"), "text/html; charset=utf-8", "x")
	require.Equal(t, "日本語", d.text)

	// Undeclared UTF-8 (a bare "text/html", as nginx and Apache send
	// by default, and no <meta charset> in the first 1024 bytes) whose
	// first non-ASCII byte comes after the 1024 bytes the prescan reads:
	// read as UTF-8, as a browser shows it, not as windows-1252
	// ("CrÃ¨me brÃ»lÃ©e").
	head := "<!doctype html><html><head><title>Menu</title><style>" + strings.Repeat("p{margin:0}\n", 100) + "</style>"
	d = parseHTML([]byte(head+"</head><body><p>Crème brûlée</p></body></html>"), "text/html", "x")
	require.Equal(t, "Crème brûlée", d.text)
	// A <meta charset="utf-8"> past those 1024 bytes, which a browser
	// also obeys.
	d = parseHTML([]byte(head+`<meta charset="utf-8"></head><body><p>Crème brûlée</p></body></html>`), "text/html", "x")
	require.Equal(t, "Crème brûlée", d.text)
	// Windows-1252 bytes that are not UTF-8 stay windows-1252.
	d = parseHTML([]byte(head+"</head><body><p>Cr\xe8me br\xfbl\xe9e</p></body></html>"), "text/html", "x")
	require.Equal(t, "Crème brûlée", d.text)
	// A charset the Content-Type header gives is obeyed.
	d = parseHTML([]byte(head+"</head><body><p>Crème</p></body></html>"), "text/html; charset=windows-1252", "x")
	require.Equal(t, "CrÃ¨me", d.text)
}

func TestTextBuilder(t *testing.T) {
	t.Parallel()
	var b textBuilder
	b.add([]byte("  a \t\n b\u00a0\u2003c  "))
	b.space()
	b.space()
	b.add([]byte("d"))
	b.space()
	require.Equal(t, "a b c d", b.String())
}

// TestPageFields checks every Page field on a crawled page.
func TestPageFields(t *testing.T) {
	t.Parallel()
	const body = `<html><head><title>Fields</title><base href="/base/dir/">
<link rel="canonical" href="../canon#frag"></head>
<body><p>Hello <i>world</i></p><a href="rel">r</a><a href="/abs?q=1#x">a</a><a href="HTTP://OTHER.example:80/x">o</a><a href="javascript:go()">j</a></body></html>`
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("ETag", `"e1"`)
		w.Header().Set("Last-Modified", "Tue, 03 Jan 2006 15:04:05 GMT")
		w.Header().Set("Content-Language", "de")
		w.Header().Set("X-Unrelated", "dropped")
		_, _ = io.WriteString(w, body)
	})
	s := newSite(t, mux)
	before := time.Now()
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 0})
	require.NoError(t, r.err)
	p := r.page(t, s.URL+"/")
	require.Equal(t, s.URL+"/", p.URL)
	require.Equal(t, s.URL+"/", p.FinalURL)
	require.Equal(t, s.URL+"/base/canon", p.CanonicalURL)
	require.Equal(t, http.StatusOK, p.Status)
	require.False(t, p.NotModified)
	require.Equal(t, "text/html", p.MediaType)
	require.Equal(t, body, string(p.Body))
	require.Equal(t, sha256.Sum256([]byte(body)), p.Hash())
	require.Equal(t, "Fields", p.Title)
	require.Equal(t, "Hello world raoj", p.Text, "adjacent inline elements render without spaces")
	require.Equal(t, []string{s.URL + "/base/dir/rel", s.URL + "/abs?q=1", "http://other.example/x"}, p.Links)
	require.Equal(t, "de", p.Lang, "from the header when the document says nothing")
	require.Equal(t, `"e1"`, p.Header.Get("ETag"))
	require.Equal(t, "Tue, 03 Jan 2006 15:04:05 GMT", p.Header.Get("Last-Modified"))
	require.Equal(t, "de", p.Header.Get("Content-Language"))
	require.Equal(t, "text/html; charset=utf-8", p.Header.Get("Content-Type"))
	require.Empty(t, p.Header.Get("X-Unrelated"))
	require.Equal(t, 0, p.Depth)
	require.Empty(t, p.Parent)
	require.False(t, p.FetchedAt.Before(before))
	require.Equal(t, Prior{ETag: `"e1"`, LastModified: "Tue, 03 Jan 2006 15:04:05 GMT", Links: p.Links}, p.Prior())
	// Every distinct link was recorded: the page, 3 http links and the
	// javascript: URL (skipped for its scheme).
	require.Equal(t, int64(5), r.stats.URLsDiscovered)
	require.Equal(t, int64(1), r.stats.Skipped.Scheme)
	require.Equal(t, int64(3), r.stats.Skipped.Depth)
}

// TestMediaTypeFastPath: the Content-Type values mediaType answers without
// mime.ParseMediaType get what it would say, and others still go through it.
func TestMediaTypeFastPath(t *testing.T) {
	for _, ct := range []string{"text/html", "text/html; charset=utf-8", "text/html; charset=UTF-8"} {
		want, _, err := mime.ParseMediaType(ct)
		require.NoError(t, err)
		require.Equal(t, want, mediaType(ct), ct)
	}
	require.Equal(t, "text/html", mediaType("TEXT/HTML; Charset=\"utf-8\""))
	require.Equal(t, "application/xhtml+xml", mediaType("application/xhtml+xml;charset=utf-8"))
	require.Equal(t, "text/plain", mediaType("text/plain; broken"))
	require.Empty(t, mediaType(""))
}

// TestDeclaredUTF8: where declaredUTF8 skips charset.DetermineEncoding,
// that would have answered UTF-8.
func TestDeclaredUTF8(t *testing.T) {
	for _, ct := range []string{"text/html; charset=utf-8", "text/html; charset=UTF-8", "text/html", "text/html; charset=iso-8859-1", "text/plain; charset=utf-8", ""} {
		for _, body := range []string{"", "<p>x", "\xef\xbb\xbf<p>x", "\xfe\xff\x00<", "\xff\xfe<\x00", "<meta charset=iso-8859-1><p>caf\xe9"} {
			if declaredUTF8([]byte(body), ct) {
				_, name, _ := charset.DetermineEncoding([]byte(body), ct)
				require.Equal(t, "utf-8", name, "Content-Type %q, body %q", ct, body)
			}
		}
	}
	require.True(t, declaredUTF8([]byte("<meta charset=iso-8859-1>"), "text/html; charset=utf-8"), "the header wins over <meta>")
	require.False(t, declaredUTF8([]byte("\xff\xfe<\x00"), "text/html; charset=utf-8"), "a UTF-16 BOM wins over the header")
}

// A <meta charset> past the first 1024 bytes of a page, after a long
// <style>, <script> or comment of its head, was not looked for (the
// prescan of golang.org/x/net/html/charset reads 1024 bytes, as the
// WHATWG's does): a page in windows-1251 whose server sends a bare
// "text/html" came out as windows-1252 ("Ïðèâåò"). Chromium looks on
// through the head (every tag of the first 1024 bytes, then until a tag
// that has no place in a head), and shows "Привет"; so does the crawl.
// A <meta> in the body past those bytes is not obeyed, by either.
func TestParseHTMLLateMetaCharsetInTheHead(t *testing.T) {
	t.Parallel()
	const hello = "\xcf\xf0\xe8\xe2\xe5\xf2 caf\xe9" // "Привет cafй" in windows-1251
	style := "<style>/* " + strings.Repeat("x", 1100) + " */</style>"
	for _, c := range []struct{ page, want string }{
		{"<html><head><title>T</title>" + style + `<meta charset="windows-1251"></head><body><p>` + hello + "</p></body></html>", "Привет cafй"},
		{"<html><head><!-- " + strings.Repeat("z", 1100) + ` --><meta charset="windows-1251"></head><p>` + hello, "Привет cafй"},
		{"<head><script>var s = '" + strings.Repeat("y", 1100) + "';</script><link rel=stylesheet href=a.css>" +
			`<meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><p>` + hello, "Привет cafй"},
		// The body started: too late.
		{"<html><head><title>T</title></head><body><p>" + strings.Repeat("y", 1100) + `</p><meta charset="windows-1251"><p>` + hello, "Ïðèâåò café"},
		{style + `<div></div><meta charset="windows-1251"><p>` + hello, "Ïðèâåò café"},
		// In the first 1024 bytes, anywhere, as before.
		{`<p>x</p><meta charset="windows-1251"><p>` + hello + style, "Привет cafй"},
	} {
		d := parseHTML([]byte(c.page), "text/html", "x")
		require.Contains(t, d.text, c.want, "%.60q", c.page)
		if c.want == "Привет cafй" {
			require.Equal(t, parseHTML([]byte(c.page), "text/html; charset=windows-1251", "x"), d, "%.60q", c.page)
		}
	}
}

// A ruby's reading (furigana, <rt>) and its parentheses for browsers
// without ruby (<rp>) were read as text glued to the base text:
// "漢字(かんじ)", so that a search for the word as written missed the
// page. They are left out, as package extract leaves them out of HTML
// documents (and docx and odt), also when </rt> is omitted; a reading
// left open ends with its paragraph (any tag that separates words), not
// with the page. <rb> and <rtc> do not separate words.
func TestParseHTMLRubyReadingLeftOut(t *testing.T) {
	t.Parallel()
	for page, want := range map[string]string{
		`<p>Word <ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby> here</p>`:            "Word 漢字 here",
		`<p>Word <ruby>漢<rt>かん<rt>extra</ruby>字 here</p>`:                             "Word 漢字 here",
		`<p><ruby><rb>東</rb><rb>京</rb><rtc><rt>とう</rt><rt>きょう</rt></rtc></ruby>都</p>`: "東京都",
		`<p>Word <ruby>漢<rt>かん</p><p>Next</p><div>More</div>`:                         "Word 漢 Next More",
		`<p>a<rt>b</p><p>c</p><ul><li>d<rp>(<li>e</ul>`:                               "a c d e",
		`<p>Word <ruby>漢<rt>かん<span>ji</span></ruby>字 <b>here</b></p>`:                "Word 漢字 here",
	} {
		require.Equal(t, want, parseHTML([]byte(page), "text/html; charset=utf-8", "x").text, page)
	}
}

// A page that starts with a byte order mark (what Windows editors and
// many IIS sites write) had U+FEFF as the first character of its text,
// glued to its first word ("\ufeffWelcome"), which a search for that
// word then missed. A browser reads the mark as the charset and drops
// it (WHATWG "decode"); so does the crawl, in UTF-8 and UTF-16.
func TestParseHTMLByteOrderMarkIsNotText(t *testing.T) {
	t.Parallel()
	page := "Welcome <b>home</b><p>Next"
	for _, ct := range []string{"text/html", "text/html; charset=utf-8", "text/html; charset=iso-8859-1"} {
		require.Equal(t, "Welcome home Next", parseHTML([]byte("\xef\xbb\xbf"+page), ct, "x").text, ct)
		require.Equal(t, "Welcome home Next", parseHTML(append([]byte("\xff\xfe"), utf16LE(page)...), ct, "x").text, ct)
	}
	d := parseHTML([]byte("\xef\xbb\xbf<!doctype html><title>T</title><p>Welcome"), "text/html", "x")
	require.Equal(t, "Welcome", d.text)
	require.Equal(t, "T", d.title)
}

// utf16LE is s in UTF-16, little-endian, without a byte order mark.
func utf16LE(s string) []byte {
	var b []byte
	for _, r := range utf16.Encode([]rune(s)) {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// A soft hyphen (&shy;, U+00AD: where a word may break across lines,
// which German and Dutch sites and hyphenating CMS write into long words)
// is invisible, but it stayed in the text, inside the word: a search for
// "Versicherung" missed "Ver&shy;si&shy;che&shy;rung". It is dropped, in
// the text and the title, as package extract drops it.
func TestParseHTMLSoftHyphenDropped(t *testing.T) {
	t.Parallel()
	d := parseHTML([]byte("<title>Ver&shy;sicherung</title><p>Ver&shy;si&shy;che&shy;rung und Ver\u00adsicherung &shy; ja</p>"), "text/html; charset=utf-8", "x")
	require.Equal(t, "Versicherung", d.title)
	require.Equal(t, "Versicherung und Versicherung ja", d.text)
}

// An XHTML page says its charset in its XML declaration (<?xml
// version="1.0" encoding="windows-1251"?>), which Chromium obeys in a
// page served as text/html too, and package extract obeys: the crawl
// read such a page as windows-1252 ("Ïðèâåò"). It reads it as declared,
// also in UTF-16 without a byte order mark; a Content-Type charset still
// comes first.
func TestParseHTMLXMLDeclarationCharset(t *testing.T) {
	t.Parallel()
	page := "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" " +
		"\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\"><html xmlns=\"http://www.w3.org/1999/xhtml\"><head>" +
		"<title>\xcf\xf0\xe8\xe2\xe5\xf2</title></head><body><p>\xcf\xf0\xe8\xe2\xe5\xf2 caf\xe9</p></body></html>"
	d := parseHTML([]byte(page), "text/html", "x")
	require.Equal(t, "Привет", d.title)
	require.Equal(t, "Привет cafй", d.text)
	require.Equal(t, "Ïðèâåò café", parseHTML([]byte(page), "text/html; charset=windows-1252", "x").text)
	d = parseHTML(utf16LE(`<?xml version="1.0" encoding="UTF-16"?><html><p>Привет</p></html>`), "application/xhtml+xml", "x")
	require.Equal(t, "Привет", d.text)
}
