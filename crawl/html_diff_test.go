package crawl

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// htmlPieces are fragments the differential tests assemble into
// documents: tag names in every case, end tags with junk, self-closing
// forms, raw text elements, foreign content, entities, NULs, non-ASCII
// and invalid UTF-8, attributes without values or quotes.
var htmlPieces = []string{
	"<!doctype html>", "<html lang=en>", "<HTML LANG='de'>", "<head>", "</head>", "<body>", "</BODY>",
	"<title>", "</title>", "<TITLE >", "</TITLE >", "<TiTlE/>", "Some  text ", " more\ttext\n", "&amp;&lt;&nbsp;&eacute;&#x41;",
	"<a href=x.html>", "<A HREF=\"Y.html\">", "</a>", "</A >", "<a/href=z>", "<a href>", "<a name=n>", "<a\x00>", "<a\x00 href=q>",
	"<area href=/area>", "<frame src=f>", "<iframe src=i>", "</iframe>", "<IFRAME SRC='I2'>", "<iframe/>",
	"<base href=/b/>", "<BASE HREF=/c/>", "<link rel=canonical href=/can>", "<LINK REL='Canonical' HREF='/CAN'>", "<link>",
	"<meta name=robots content=noindex>", "<META NAME=ROBOTS CONTENT='nofollow'>", "<meta name=description content=d>",
	"<meta http-equiv=content-language content='fr, de'>", "<meta name=connector content=none>", "<meta>",
	"<script>var a = '<a href=s>';</script>", "<SCRIPT>x</SCRIPT>", "<style>p{}</style>", "<noscript><a href=ns>n</a></noscript>",
	"<noembed>e</noembed>", "<noframes>f</noframes>", "<template><a href=t>t</a>", "</template>", "<TEMPLATE>", "</Template>",
	"<svg>", "</svg>", "<SVG><title>st</title>", "<math>", "</MATH>", "<b>", "</b>", "<B>", "</b >", "<span>", "</span>", "<SpAn>",
	"<p>", "</p>", "<div>", "</div>", "<br/>", "<br>", "<wbr>", "<nobr>", "<ruby>", "<rt>", "</rt>", "<rp>", "</RP>", "<rtc>", "</rtc>", "<rb>", "</ruby>", "<rt/>", "<verylongtagname>", "</verylongtagname>",
	"<blockquote>", "<noframesx>", "<titlex>", "<scriptx>", "<a-b>", "<é>", "<x:y>", "\xff\xfe", "café ", "Ver&shy;si\u00adcherung", "\u3000wide\u3000space",
	"<!-- comment <a href=c> -->", "<![CDATA[x]]>", "<textarea>typed</textarea>", "<", ">", "</", "</>", "< a>",
	"<a href='rel/../x?y=1#z'>", "<a\thref=tab>", "<a\nhref=nl>", "<a\fhref=ff>", "<a\rhref=cr>",
	// Attributes as rawAttrValues splits them: duplicates, case, '=' first
	// in a name, spaces around '=', quotes inside values, values that
	// TagAttr unescapes or converts (&, CR, NUL), '/' between attributes.
	"<a href=1 HREF=2>", "<a HREF='u1' href=u2>", "<a class=c href=h2>", "<a =href=eq href=after>", "<a href = 'sp' >",
	"<a href=\"x'y\">", "<a href='a\"b'>", "<a href=\"a&amp;b\">", "<a href=a&lt;b>", "<a href='l1\r\nl2'>", "<a href=n\x00ul>",
	"<a hr\x00ef=nk href=ok>", "<a href=x/>", "<a href=/y/ >", "<a/ href=s1>", "<a href/ x=1>", "<a href= >", "<a href=>",
	"<a href='q>r'>", "<a\x00href=z>", "<a title='&amp;' href=t1>", "<frame SRC=\"F2\" src=f3>", "<html LANG=' en-GB '>",
	"<base HREF='/d/' href=/e/>", "<link href=/h1 rel='alternate canonical'>", "<meta content=c1 content=c2 name=n1 NAME=n2>",
	"<meta property=og:title content='t&amp;t'>", "<meta name=x content>", "<a href=\"unterminated>", "<a href='also",
	// Text that addRaw must hand to Tokenizer.Text: a '&' or a NUL
	// anywhere in a long run of words, after white space, at its end.
	"plain words and more words &amp; then some more words", "some long words here and AT&amp;T", "fish & chips",
	"a run of words with a nul\x00 inside it", "\x00lead", "tail&", "  &lt;spaced&gt;  words  ",
}

func randomDoc(r *rand.Rand) string {
	var b strings.Builder
	for range 1 + r.IntN(60) {
		b.WriteString(htmlPieces[r.IntN(len(htmlPieces))])
	}
	return b.String()
}

// TestParseHTMLMatchesReference: parseHTML (raw tag names, run-copying
// text builder) extracts exactly what parseHTMLReference (through
// Tokenizer.TagName, byte by byte) does.
func TestParseHTMLMatchesReference(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	docs := append([]string{}, htmlPieces...)
	for range 5000 {
		docs = append(docs, randomDoc(r))
	}
	for _, d := range docs {
		for _, ct := range []string{"text/html", "text/html; charset=iso-8859-1"} {
			want := parseHTMLReference([]byte(d), ct, "connector")
			got := parseHTML([]byte(d), ct, "connector")
			require.Equal(t, want, got, "document %q, Content-Type %q", d, ct)
		}
	}
}

// FuzzParseHTMLMatchesReference is TestParseHTMLMatchesReference over
// fuzzed documents.
func FuzzParseHTMLMatchesReference(f *testing.F) {
	for _, p := range htmlPieces {
		f.Add([]byte(p), "text/html")
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		want := parseHTMLReference(body, contentType, "connector")
		got := parseHTML(body, contentType, "connector")
		require.Equal(t, want, got)
	})
}

func TestLookupTagLongestName(t *testing.T) {
	t.Parallel()
	for name := range knownTags {
		require.LessOrEqual(t, len(name), maxKnownTag, name)
		require.Equal(t, knownTags[name], lookupTag([]byte("<"+strings.ToUpper(name)+">")), name)
	}
}

// TestTextBuilderMatchesReference: textBuilder (eight bytes at a time
// over visible ASCII and single spaces) collapses white space exactly as
// refTextBuilder (byte by byte) does, over runs that put spaces, control
// bytes, DEL, non-ASCII and invalid UTF-8 at every offset of a word.
func TestTextBuilderMatchesReference(t *testing.T) {
	t.Parallel()
	pieces := []string{"a", "b", "Z", "!", "~", " ", " ", " ", "  ", "\t", "\n", "\r\n", "\f", "\v", "\x01", "\x1f", "\x7f",
		"é", "\u00a0", "\u3000", "\xff", "\xe2\x82", "words and more words", "0123456789abcdef", "&", "\x00", "AT&T and more"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var in []byte
		for range r.IntN(40) {
			in = append(in, pieces[r.IntN(len(pieces))]...)
		}
		var got textBuilder
		var want refTextBuilder
		// In two calls, split anywhere, with a word boundary in between
		// half of the time.
		k := r.IntN(len(in) + 1)
		got.add(in[:k])
		want.add(in[:k])
		if r.IntN(2) == 0 {
			got.space()
			want.space()
		}
		got.add(in[k:])
		want.add(in[k:])
		require.Equal(t, want.String(), got.String(), "input %q split at %d", in, k)
	}
}
