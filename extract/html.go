package extract

import (
	"bytes"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"

	"github.com/connectorhq/connector/internal/htmlcharset"
)

// htmlDoc extracts an HTML document: its visible text (outside script,
// style, noscript, template, title and the head, and a ruby's reading,
// <rt> and <rp>), a line per block
// element, the line breaks of <pre> kept, table cells separated by tabs
// (a block or a line break of <pre> inside a cell is a space); the title
// from the first <title> (the text of the others is neither title nor
// visible); author, description and keywords from <meta name=...>; the
// language from <html lang> (or XHTML's xml:lang). The charset comes
// from a BOM, contentType, then an XML declaration (XHTML's <?xml ...
// encoding="..."?>, htmlcharset.XMLDeclaration), then <meta charset> (the WHATWG
// sniffing of golang.org/x/net/html/charset, and past the 1024 bytes it
// reads, in the head, as Chromium: htmlcharset.Meta), else UTF-8 when the
// document is valid UTF-8 (the sniffing looks at its first kilobyte
// only, and says Windows-1252 when that is ASCII), else Windows-1252: as
// the crawl reads pages (crawl's utf8Guess).
func htmlDoc(x *extraction, data []byte, contentType string, doc *Document) error {
	enc, name, certain := charset.DetermineEncoding(data, contentType)
	if !certain {
		if e, n := htmlcharset.XMLDeclaration(data); e != nil {
			enc, name, certain = e, n, true
		} else if e, n := htmlcharset.Meta(data); e != nil {
			enc, name = e, n // a <meta charset> past the first KiB, in the head
		}
	}
	var r io.Reader = bytes.NewReader(htmlcharset.TrimBOM(data))
	if enc != encoding.Nop && !(!certain && name == "windows-1252" && !isASCII(data) && utf8.Valid(data)) {
		r = transform.NewReader(r, enc.NewDecoder())
	}
	out := x.out
	z := html.NewTokenizer(r)
	z.SetMaxBuf(0)
	skip, inTitle := 0, false
	// pre: open <pre> elements, whose line breaks are the text's;
	// preStart: one was just opened (a line break right after its start
	// tag is not part of it, HTML's parsing rule).
	pre, preStart := 0, false
	titled := false // the first <title> was read: the others are not the title, nor visible
	// reading: inside a ruby's reading (<rt>, <rtc>) or its parentheses
	// for browsers without ruby (<rp>), which are left out, as a docx's
	// and an odt's are; </rt> may be omitted, so the next <rb>, </rp>,
	// </rtc> or </ruby> ends it too, and so does a block's start or end
	// or a table cell's (where the HTML parser closes a ruby left open).
	reading := false
	var title strings.Builder
	// tables: per open <table>, the cells of its current row so far (a
	// separator goes between two cells, none before a row's first) and
	// whether a cell is open, in which a block is a space, not a line.
	// Tables nested deeper than htmlMaxTables count as the deepest one
	// (deep: how many are open past it).
	type table struct {
		cells  int
		inCell bool
	}
	var tables []table
	deep := 0
	// block ends a line, or, inside a table's cell, a word.
	block := func(tag string) {
		if n := len(tables); n > 0 && tables[n-1].inCell && !htmlTableBlock[tag] {
			out.space()
		} else {
			out.newline()
		}
	}
	for !out.full() {
		if err := x.check(); err != nil {
			return err
		}
		tt := z.Next()
		newPre := preStart
		preStart = false
		switch tt {
		case html.ErrorToken:
			setHTMLTitle(doc, title.String())
			return nil
		case html.StartTagToken, html.SelfClosingTagToken:
			if tt == html.SelfClosingTagToken {
				// <script src="a.js"/>, <title/>: empty, as XHTML writes
				// them, not raw text up to a closing tag of their name
				// (the tokenizer's reading).
				z.NextIsNotRawText()
			}
			name, hasAttr := z.TagName()
			tag := string(name)
			switch tag {
			case "script", "style", "noscript", "template", "iframe", "noembed", "noframes", "svg", "math":
				if tt == html.StartTagToken {
					skip++
				}
			case "title":
				if tt == html.StartTagToken && skip == 0 {
					inTitle = true
				}
			case "meta":
				if hasAttr {
					htmlMeta(z, doc)
				}
			case "html":
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					// XHTML's xml:lang (alone in XHTML 1.1, where lang is
					// gone), unless lang says otherwise.
					if string(k) == "lang" || string(k) == "xml:lang" && doc.Language == "" {
						doc.Language = string(v)
					}
				}
			case "td", "th":
				reading = false
				if len(tables) == 0 {
					tables = append(tables, table{}) // a cell outside any table
				}
				t := &tables[len(tables)-1]
				if t.cells > 0 {
					out.tab()
				}
				t.cells++
				t.inCell = true
			case "rt", "rp", "rtc":
				reading = tt == html.StartTagToken
			case "rb":
				reading = false
			case "img":
				// alt text is not indexed: it is usually decoration.
			default:
				if htmlBlock[tag] {
					block(tag)
					reading = false
				}
				if tag == "pre" && tt == html.StartTagToken {
					pre++
					preStart = true
				}
				switch {
				case tt == html.SelfClosingTagToken:
				case tag == "table" && len(tables) < htmlMaxTables:
					tables = append(tables, table{})
				case tag == "table":
					deep++
				case tag == "tr" && len(tables) > 0:
					tables[len(tables)-1] = table{}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			switch tag {
			case "script", "style", "noscript", "template", "iframe", "noembed", "noframes", "svg", "math":
				if skip > 0 {
					skip--
				}
			case "title":
				titled = titled || inTitle
				inTitle = false
			case "td", "th":
				reading = false
				if len(tables) > 0 {
					tables[len(tables)-1].inCell = false
				}
			case "rt", "rp", "rtc", "ruby":
				reading = false
			default:
				if tag == "table" {
					if deep > 0 {
						deep--
					} else if len(tables) > 0 {
						tables = tables[:len(tables)-1]
					}
				}
				if tag == "pre" && pre > 0 {
					pre--
				}
				if htmlBlock[tag] {
					block(tag)
					reading = false
				}
			}
		case html.TextToken:
			t := string(z.Text())
			if inTitle {
				if !titled {
					title.WriteString(t)
				}
				continue
			}
			if skip > 0 || reading {
				continue
			}
			if n := len(tables); pre > 0 && (n == 0 || !tables[n-1].inCell) {
				// Preformatted text keeps its lines (not inside a table's
				// cell, where a line break is a space).
				if newPre {
					t = strings.TrimPrefix(strings.TrimPrefix(t, "\r"), "\n")
				}
				out.WriteString(t)
				continue
			}
			// A space at either end, ASCII or not (&nbsp; between two
			// inline elements), separates this text from its neighbours'.
			if r, _ := utf8.DecodeRuneInString(t); unicode.IsSpace(r) {
				out.space()
			}
			for i, w := range strings.Fields(t) {
				if i > 0 {
					out.space()
				}
				out.WriteString(w)
			}
			if r, _ := utf8.DecodeLastRuneInString(t); unicode.IsSpace(r) {
				out.space()
			}
		}
	}
	setHTMLTitle(doc, title.String())
	return nil
}

// setHTMLTitle gives doc the page's <title>, else keeps the title of
// <meta name="dc.title"> (htmlMeta).
func setHTMLTitle(doc *Document, title string) {
	if strings.TrimSpace(title) != "" || doc.Title == "" {
		doc.Title = title
	}
}

func htmlMeta(z *html.Tokenizer, doc *Document) {
	var name, content string
	for more := true; more; {
		var k, v []byte
		k, v, more = z.TagAttr()
		switch string(k) {
		case "name":
			name = strings.ToLower(string(v))
		case "content":
			content = string(v)
		}
	}
	switch name {
	case "author":
		doc.Author = content
	case "description":
		doc.Description = content
	case "keywords":
		doc.Keywords = content
	case "dc.title":
		doc.Title = content // a <title> replaces it (setHTMLTitle)
	}
}

// htmlMaxTables bounds the tables whose rows are told apart when nested.
const htmlMaxTables = 100

// htmlTableBlock are the blocks of a table's structure: they end lines
// also inside a cell (a table nested in it).
var htmlTableBlock = map[string]bool{"table": true, "tr": true, "thead": true, "tbody": true, "tfoot": true, "caption": true}

var htmlBlock = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`address article aside blockquote body br caption center dd details dialog dir div dl dt
		fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hgroup hr legend li listing main menu nav ol p
		plaintext pre search section summary table tbody tfoot thead tr ul option xmp`) {
		htmlBlock[t] = true
	}
}
