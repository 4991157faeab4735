package extract

import (
	"context"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// A no-break space (&nbsp;, what Outlook and many editors put between
// inline elements) or any other Unicode space at the edge of a text
// separates words like an ASCII space: only ASCII spaces did, so "Name"
// and "Smith" of <b>Name</b>&nbsp;Smith ran together into "NameSmith".
func TestHTMLUnicodeSpaceBetweenElements(t *testing.T) {
	x := newX(t, Limits{})
	for page, want := range map[string]string{
		`<p><b>Name</b>&nbsp;Smith</p>`:                                   "Name Smith",
		`<p>Hello&nbsp;<b>world</b></p>`:                                  "Hello world",
		`<p><span>Kind</span><span>&nbsp;</span><span>regards</span></p>`: "Kind regards",
		`<p>a<b>&#x2003;em</b>&#x3000;ideographic</p>`:                    "a em ideographic",
		`<p>in&nbsp;one&nbsp;text</p>`:                                    "in one text",
	} {
		d, err := x.Extract(context.Background(), Input{Data: []byte(page), ContentType: "text/html; charset=utf-8"})
		require.NoError(t, err)
		assert.Equal(t, want, d.Text, page)
	}
}

// An HTML file in UTF-8 that declares no charset (a page saved or
// exported without <meta charset>, given to Insert or mailed) and whose
// first kilobyte is ASCII was read as Windows-1252, the WHATWG default
// once the first 1024 bytes tell nothing: "café" further down was indexed
// as "cafÃ©". The crawl already reads such a page as UTF-8 when the whole
// of it is valid UTF-8 (crawl's utf8Guess); extraction does the same, and
// Windows-1252 text stays Windows-1252.
func TestHTMLUTF8BeyondTheFirstKilobyte(t *testing.T) {
	x := newX(t, Limits{})
	pad := "<html><body><p>" + strings.Repeat("word ", 250) + "</p>"
	for _, tc := range []struct{ page, ct, want string }{
		{pad + "<p>caf\xc3\xa9</p>", "text/html", "café"},
		{pad + "<p>caf\xc3\xa9</p>", "", "café"},
		{pad + "<p>caf\xe9</p>", "text/html", "café"},
		{"<p>caf\xc3\xa9</p>" + pad, "text/html", "word"},
		// A declared charset is obeyed.
		{pad + "<p>caf\xc3\xa9</p>", "text/html; charset=iso-8859-1", "cafÃ©"},
	} {
		d, err := x.Extract(context.Background(), Input{Data: []byte(tc.page), ContentType: tc.ct, Name: "page.html"})
		require.NoError(t, err)
		assert.True(t, strings.HasSuffix(d.Text, tc.want), "%q: ...%q", tc.ct, d.Text[max(0, len(d.Text)-20):])
		if tc.want == "word" {
			assert.True(t, strings.HasPrefix(d.Text, "café"), "%q", d.Text[:10])
		}
	}
}

// Word and Outlook write every table cell's text in a paragraph
// (<td><p class=MsoNormal>...</p></td>), as do many generated pages: each
// paragraph ended the line, so a mail's table came out one cell per line,
// its columns lost, and a cell's second line separated from its first.
// Inside a cell, a block (a paragraph, a line break, a list item) is a
// space, as in a docx cell; rows still end lines.
func TestHTMLBlocksInsideTableCells(t *testing.T) {
	page := `<html><body><p>Totals:</p><table class=MsoNormalTable><tr><td><p class=MsoNormal>Region</p></td>` +
		`<td><p class=MsoNormal>Q1</p></td></tr><tr><td><p class=MsoNormal>North</p><p class=MsoNormal>(est.)</p></td>` +
		`<td><div>7<br>units</div></td></tr></table><p>Thanks</p></body></html>`
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: []byte(page), ContentType: "text/html; charset=utf-8"})
	require.NoError(t, err)
	assert.Equal(t, "Totals:\nRegion\tQ1\nNorth (est.)\t7 units\nThanks", strings.ReplaceAll(d.Text, "\n\n", "\n"))
}

// An element written self-closed as XHTML writes an empty one
// (<script src="a.js"/>, <title/>) opened raw text for the tokenizer, as
// for <script>: everything after it up to a closing tag of its name (to
// the end of a file that has none) was one text, which went out as the
// page's text, markup, script code and all. It is empty: what follows it
// is read as markup.
func TestHTMLSelfClosedRawTextElements(t *testing.T) {
	x := newX(t, Limits{})
	for page, want := range map[string]string{
		`<html xmlns="http://www.w3.org/1999/xhtml"><head><title>T</title><script type="text/javascript" src="a.js"/></head>` +
			`<body><p>Visible text.</p></body></html>`: "Visible text.",
		`<head><script src="a.js"/><script>var hidden = 1;</script></head><body><p>Shown.</p></body>`: "Shown.",
		`<head><style type="text/css"/></head><body><p>One.</p><p>Two.</p></body>`:                    "One.\n\nTwo.",
		`<body><p>Before.</p><iframe src="x.html"/><p>After.</p></body>`:                              "Before.\n\nAfter.",
		`<body><p>Form:</p><textarea name="a"/><p>Below.</p></body>`:                                  "Form:\n\nBelow.",
	} {
		d, err := x.Extract(context.Background(), Input{Data: []byte(page), ContentType: "application/xhtml+xml"})
		require.NoError(t, err)
		assert.Equal(t, want, d.Text, page)
	}
	d, err := x.Extract(context.Background(), Input{Data: []byte(`<html><head><title/><meta name="author" content="Ada"/></head><body><p>Text.</p></body></html>`), ContentType: "application/xhtml+xml"})
	require.NoError(t, err)
	assert.Equal(t, "Text.", d.Text)
	assert.Equal(t, "Ada", d.Author)
	assert.Empty(t, d.Title)
}

// A page with two <title> elements (a template and a plugin that both
// write one) has the first as its title, as browsers and the crawl have
// it: their texts ran together ("Home | ShopHome | Shop").
func TestHTMLFirstTitle(t *testing.T) {
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: []byte(`<html><head><title>Home | Shop</title><meta charset="utf-8">` +
		`<title>Home | Shop</title></head><body><p>Welcome.</p><title>In body</title></body></html>`), ContentType: "text/html"})
	require.NoError(t, err)
	assert.Equal(t, "Home | Shop", d.Title)
	assert.Equal(t, "Welcome.", d.Text)
}

// The line breaks of preformatted text (<pre>: a plain-text mail body as
// mail programs wrap it in HTML, a listing, an address) are the text's:
// they were read as spaces, like the line breaks of the HTML source, so
// every line of it ran into one. The line break right after <pre> is not
// part of it (HTML's parsing rule); in a table's cell a line break is
// still a space.
func TestHTMLPreKeepsItsLines(t *testing.T) {
	assertTexts(t, "text/html; charset=utf-8", map[string]string{
		"<p>Before</p><pre>\nName: Ann\r\nTown: Oslo\n\n<b>Bold</b> line\n</pre><p>After</p>": "Before\n\nName: Ann\nTown: Oslo\n\nBold line\n\nAfter",
		"Text<pre>\nfirst\nsecond</pre>":                                 "Text\nfirst\nsecond",
		"Text<pre><b>\n</b>first</pre>":                                  "Text\n\nfirst",
		"<p>a\nb</p><pre>c\nd</pre><p>e\nf</p>":                          "a b\n\nc\nd\n\ne f",
		"<table><tr><td><pre>one\ntwo</pre></td><td>x</td></tr></table>": "one two\tx",
	})
}

// assertTexts extracts each document of cases, declared as contentType,
// and checks its text.
func assertTexts(t *testing.T, contentType string, cases map[string]string) {
	t.Helper()
	x := newX(t, Limits{})
	for data, want := range cases {
		d, err := x.Extract(context.Background(), Input{Data: []byte(data), ContentType: contentType})
		require.NoError(t, err, "%q", data)
		assert.Equal(t, want, d.Text, "%q", data)
	}
}

// utf16NoBOM is s in UTF-16 (little-endian or big-endian), without a byte
// order mark.
func utf16NoBOM(s string, bigEndian bool) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}

// An XHTML document says its charset in its XML declaration (<?xml
// version="1.0" encoding="windows-1251"?>), which XML readers obey. It
// was not looked at: a Cyrillic, Central European or Japanese XHTML file
// without <meta charset> was read as Windows-1252 ("Ïðèâåò" for
// "Привет"), and one in UTF-16 without a byte order mark as bytes, its
// markup and NULs indexed as text. A Content-Type charset or a BOM still
// comes first; a declaration of UTF-8 on bytes that are not changes
// nothing (Windows-1252, as before).
func TestXHTMLEncodingOfTheXMLDeclaration(t *testing.T) {
	x := newX(t, Limits{})
	page := func(enc, body string) string {
		return `<?xml version="1.0" encoding="` + enc + `"?>` + "\n" +
			`<html xmlns="http://www.w3.org/1999/xhtml"><head><title>T</title></head><body><p>` + body + `</p></body></html>`
	}
	encode := func(e encoding.Encoding, s string) string {
		out, err := e.NewEncoder().String(s)
		require.NoError(t, err)
		return out
	}
	for _, tc := range []struct {
		name, ctype string
		data        []byte
		want        string
	}{
		{"windows-1251", "application/xhtml+xml", []byte(page("windows-1251", encode(charmap.Windows1251, "Привет мир"))), "Привет мир"},
		{"ISO-8859-2, single quotes", "", []byte(strings.Replace(page("ISO-8859-2", encode(charmap.ISO8859_2, "Łódź")), `encoding="ISO-8859-2"`, `encoding = 'ISO-8859-2'`, 1)), "Łódź"},
		{"Shift_JIS", "", []byte(page("Shift_JIS", encode(japanese.ShiftJIS, "日本語"))), "日本語"},
		{"UTF-16LE", "application/xhtml+xml", utf16NoBOM(page("UTF-16", "héllo wörld"), false), "héllo wörld"},
		{"UTF-16BE", "", utf16NoBOM(page("UTF-16", "héllo wörld"), true), "héllo wörld"},
		{"Content-Type first", "application/xhtml+xml; charset=iso-8859-5", []byte(page("windows-1251", encode(charmap.ISO8859_5, "Привет"))), "Привет"},
		{"UTF-8 declared, Latin-1 given", "", []byte(page("UTF-8", "caf\xe9")), "café"},
		{"UTF-8", "", []byte(page("utf-8", "Привет")), "Привет"},
	} {
		d, err := x.Extract(context.Background(), Input{Data: tc.data, ContentType: tc.ctype, Name: "page.xhtml"})
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, d.Text, tc.name)
		assert.Equal(t, "T", d.Title, tc.name)
	}
}

// Elements a browser lays out as blocks, as the HTML standard's rendering
// section says (center, which mail templates use, menu, dir, legend,
// hgroup, search, listing, xmp, plaintext), were read as inline: their
// text ran into the text around them ("IntroFooter").
func TestHTMLBlocksOfTheRenderingSection(t *testing.T) {
	cases := map[string]string{}
	for _, tag := range []string{"center", "menu", "dir", "legend", "hgroup", "search", "listing", "xmp"} {
		cases["<body>Intro<"+tag+">Middle</"+tag+">Outro</body>"] = "Intro\nMiddle\nOutro"
	}
	assertTexts(t, "text/html; charset=utf-8", cases)
}

// XHTML gives the language of a document in xml:lang (alone in XHTML
// 1.1, which has no lang attribute; EPUB chapters do so). Only lang was
// read: such a document had no LANGUAGE. lang wins when both are there.
func TestXHTMLXMLLang(t *testing.T) {
	x := newX(t, Limits{})
	for page, want := range map[string]string{
		`<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="de"><body><p>Hallo</p></body></html>`:              "de",
		`<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="de" lang="de-AT"><body><p>Hallo</p></body></html>`: "de-AT",
		`<html lang="fr" xml:lang="de"><body><p>Salut</p></body></html>`:                                         "fr",
	} {
		d, err := x.Extract(context.Background(), Input{Data: []byte(page), ContentType: "application/xhtml+xml"})
		require.NoError(t, err)
		assert.Equal(t, want, d.Language, page)
	}
}

// HTML's ruby (<ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>) holds
// the reading of its base text (furigana) in <rt> and, for browsers
// without ruby, parentheses in <rp>. Both were read as text, glued to
// the base ("漢字(かんじ)"), so that the word as written was not found; a
// docx's and an odt's rubies leave their reading out already. The
// reading and its parentheses are left out, also when </rt> is omitted,
// as HTML allows.
func TestHTMLRubyReadingLeftOut(t *testing.T) {
	assertTexts(t, "text/html; charset=utf-8", map[string]string{
		`<p>Word <ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby> here</p>`:            "Word 漢字 here",
		`<p>Word <ruby>漢<rt>かん<rt>extra</ruby>字 here</p>`:                             "Word 漢字 here",
		`<p><ruby><rb>東</rb><rb>京</rb><rtc><rt>とう</rt><rt>きょう</rt></rtc></ruby>都</p>`: "東京都",
	})
}

// A <meta charset> of the head past the first 1024 bytes (after a long
// <style>) is obeyed, as Chromium and the crawl obey it: a windows-1251
// mail or attachment came out as windows-1252 ("Ïðèâåò"). One in the
// body past those bytes is not.
func TestHTMLLateMetaCharsetInTheHead(t *testing.T) {
	style := "<style>/* " + strings.Repeat("x", 1100) + " */</style>"
	assertTexts(t, "text/html", map[string]string{
		"<html><head><title>T</title>" + style + `<meta charset="windows-1251"></head><body><p>` + "\xcf\xf0\xe8\xe2\xe5\xf2</p>": "Привет",
		"<html><head>" + style + `</head><body><p>` + "\xcf\xf0\xe8\xe2\xe5\xf2</p><meta charset=\"windows-1251\">":               "Ïðèâåò",
	})
}

// A reading left open (a <ruby> whose </ruby> is missing after an
// omitted </rt>, or an <rt> or <rp> outside any ruby) left out the whole
// rest of the document: only </rt>, </rp>, </rtc>, </ruby> or <rb> ended
// it. The end of a paragraph (any block's start or end, or a table
// cell's) ends it too, as the HTML parser closes the ruby there.
func TestHTMLRubyReadingLeftOpenEndsWithItsBlock(t *testing.T) {
	assertTexts(t, "text/html; charset=utf-8", map[string]string{
		`<p>Word <ruby>漢<rt>かん</p><p>Next</p><div>More</div>`:          "Word 漢\n\nNext\n\nMore",
		`<p>a<rt>b</p><p>c</p><ul><li>d<rp>(<li>e</ul>`:                "a\n\nc\n\nd\ne",
		`<table><tr><td>x<ruby>y<rt>z<td>w</table>`:                    "xy\tw",
		`<p>Word <ruby>漢<rt>かん<span>ji</span></ruby>字 <b>here</b></p>`: "Word 漢字 here",
	})
}

// An HTML document that starts with a byte order mark had U+FEFF as the
// first character of its text, glued to its first word ("\ufeffDear"),
// which a search for that word then missed; plain text drops it. The
// mark says the charset and is dropped, in UTF-8 and UTF-16, as a
// browser drops it.
func TestHTMLByteOrderMarkIsNotText(t *testing.T) {
	page := "Dear <b>Ann</b>,<p>Next"
	x := newX(t, Limits{})
	for _, ct := range []string{"text/html", "text/html; charset=windows-1252", ""} {
		for _, data := range [][]byte{
			[]byte("\xef\xbb\xbf" + page),
			append([]byte("\xff\xfe"), utf16NoBOM(page, false)...),
			append([]byte("\xfe\xff"), utf16NoBOM(page, true)...),
		} {
			d, err := x.Extract(context.Background(), Input{Data: data, ContentType: ct, Name: "mail.html"})
			require.NoError(t, err)
			assert.Equal(t, "Dear Ann,\nNext", d.Text, "%q %q", ct, data[:4])
		}
	}
}
