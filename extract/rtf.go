package extract

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
)

// RTF (Rich Text Format 1.9.1): a tokenizer of control words, control
// symbols, groups and text. Text of destinations that are not body text
// (font, colour and style tables, pictures, objects' data, field
// instructions, headers and footers, "\*" destinations a reader may
// ignore) is skipped; \info's \title, \author, \subject, \keywords and
// \doccomm become metadata. \par, \line, \sect and \page end lines, \tab
// and \cell write tabs (a cell's before the next cell's text only: a
// row's trailing empty cells write nothing), \row ends a line. A footnote (\footnote, written
// where its mark stands) follows its paragraph on lines of its own, and
// so does a comment (\annotation, without its author, \atnauthor); a
// text box's text (a shape's \shptxt) and a WordArt's (its shape's
// gtextUNICODE property) stand on lines of their own, the shape's other
// properties (\sp) are skipped. Characters: \'hh in the
// document's code page (\ansicpg, Windows-1252 by default; double-byte
// code pages 932, 936, 949 and 950 too, and 65001, UTF-8), as are 8-bit characters written
// as they are (in a double-byte code page, the byte after a lead byte is
// its second, whatever it is), \uN (with \ucN fallback characters
// skipped) and UTF-16 surrogate pairs. A run in a font whose character
// set is not ANSI or default (\fcharsetN or \cpgN in the font table:
// Cyrillic 204, Greek 161, Shift_JIS 128, ...) is in that charset's code
// page instead: WordPad writes text in another script so.
func rtf(x *extraction, data []byte, doc *Document) error {
	p := &rtfParser{x: x, data: data, doc: doc, enc: charmap.Windows1252}
	p.stack = append(p.stack, rtfState{uc: 1, font: -1})
	return p.run()
}

type rtfState struct {
	skip bool   // text of this group is not body text
	note bool   // text of this group is a footnote's (written after its paragraph)
	meta string // \info field being read ("title", ...), or ""
	uc   int    // fallback characters after \uN
	font int    // \fN of the text, -1 for the default font (\deff)
	// fonttbl: the group is (in) the font table, whose \fN define fonts.
	fonttbl bool
	// prop: the group is (in) a property of a shape of the body text
	// ({\sp{\sn name}{\sv value}}); wordArt: it is the value of a
	// WordArt's text (gtextUNICODE), which stands on a line of its own.
	prop, wordArt bool
}

type rtfParser struct {
	x     *extraction
	data  []byte
	pos   int
	doc   *Document
	stack []rtfState
	enc   encoding.Encoding
	lead  func(byte) bool // the lead bytes of a double-byte code page, or nil
	bytes []byte          // pending bytes of the code page (\'hh or 8-bit), decoded together
	trail bool            // the last of bytes is a lead byte: the next byte is its second
	notes *textBuilder    // footnotes of the current paragraph, or nil
	high  rune            // pending UTF-16 high surrogate
	skipN int             // fallback characters still to skip after \uN
	meta  map[string]*strings.Builder
	// fontCP: the code page of each font whose charset says one (the
	// others are in enc); deff the default font, defFont the one the font
	// table is defining.
	fontCP        map[int]int
	deff, defFont int
	// runEnc, runLead: enc and lead for the pending bytes (their font's).
	runEnc  encoding.Encoding
	runLead func(byte) bool
	// propName: the name (\sn) of the shape property last read.
	propName string
}

// rtfMaxFonts bounds the fonts whose code pages are kept.
const rtfMaxFonts = 10000

// rtfMaxDepth bounds group nesting (a hostile file of a million '{').
const rtfMaxDepth = 1000

// Destinations whose content is not text.
var rtfSkipDest = map[string]bool{
	"fonttbl": true, "colortbl": true, "stylesheet": true, "listtable": true, "listoverridetable": true,
	"revtbl": true, "rsidtbl": true, "generator": true, "pict": true, "objdata": true, "objclass": true,
	"fldinst": true, "header": true, "headerl": true, "headerr": true, "headerf": true, "footer": true,
	"footerl": true, "footerr": true, "footerf": true, "xmlnstbl": true, "themedata": true,
	"colorschememapping": true, "datastore": true, "latentstyles": true, "pgdsctbl": true, "info": true,
	"filetbl": true, "private": true, "bkmkstart": true, "bkmkend": true, "shpinst": true, "nonshppict": true,
	"template": true, "userprops": true, "operator": true, "company": true, "category": true,
	"manager": true, "comment": true, "hlinkbase": true, "xform": true, "docvar": true, "ftnsep": true,
	"ftnsepc": true, "ftncn": true, "aftnsep": true, "aftnsepc": true, "aftncn": true, "mmathPr": true,
	"wgrffmtfilter": true, "listtext": true, "pntext": true, "atnid": true, "atnauthor": true,
	"sp": true, // a shape's property (its text box's text is its \shptxt, a WordArt's its gtextUNICODE)
}

// \info fields kept as metadata.
var rtfMetaDest = map[string]bool{"title": true, "author": true, "subject": true, "keywords": true, "doccomm": true}

func (p *rtfParser) cur() *rtfState { return &p.stack[len(p.stack)-1] }

func (p *rtfParser) run() error {
	out := p.x.out
	ignorable := false // the group started with \*
	groupStart := false
	for p.pos < len(p.data) && !out.full() {
		if err := p.x.check(); err != nil {
			return err
		}
		c := p.data[p.pos]
		switch c {
		case '{':
			p.flushBytes()
			if len(p.stack) >= rtfMaxDepth {
				return malformed("groups nested deeper than %d", rtfMaxDepth)
			}
			p.stack = append(p.stack, *p.cur())
			p.cur().meta = ""
			p.pos++
			groupStart, ignorable = true, false
			p.skipN = 0
			continue
		case '}':
			p.flushBytes()
			if len(p.stack) > 1 {
				if p.cur().wordArt {
					p.par()
				}
				p.stack = p.stack[:len(p.stack)-1]
			}
			p.pos++
			groupStart = false
			p.skipN = 0
			continue
		case '\\':
			word, param, hasParam, sym := p.controlWord()
			if sym != 0 {
				p.symbol(sym)
				groupStart = false
				continue
			}
			if word == "*" {
				ignorable = true
				continue
			}
			if groupStart {
				groupStart = false
				switch {
				case rtfMetaDest[word] && p.inInfo():
					p.cur().meta = word
					continue
				case word == "annotation" && !p.cur().skip:
					// A comment, where it is anchored: after its
					// paragraph, as a footnote (its author, \atnauthor, is
					// skipped).
					p.flushBytes()
					p.cur().note = true
					p.noteOut().newline()
					continue
				case word == "footnote" && !ignorable:
					p.flushBytes()
					p.cur().note = true
					p.noteOut().newline() // a note starts a line (after the one before it)
					continue
				case word == "shpinst" && !p.cur().skip:
					// A shape ({\shp{\*\shpinst ...}}): not text but its
					// text box's \shptxt, whose text stands on lines of
					// its own; its properties (\sp) are skipped.
					continue
				case word == "shptxt" && !p.cur().skip:
					p.flushBytes()
					p.par()
					continue
				case word == "sp" && !p.cur().skip:
					p.cur().skip, p.cur().prop = true, true
					p.propName = ""
					continue
				case word == "sn" && p.cur().prop:
					// The name is plain: what stands up to the group's end.
					end := bytes.IndexAny(p.data[p.pos:], "{}\\")
					if end < 0 {
						end = len(p.data) - p.pos
					}
					p.propName = strings.TrimSpace(string(p.data[p.pos : p.pos+end]))
					continue
				case word == "sv" && p.cur().prop && p.propName == "gtextUNICODE":
					p.flushBytes()
					p.cur().skip, p.cur().wordArt = false, true
					p.par()
					continue
				case rtfSkipDest[word] || ignorable:
					p.flushBytes()
					p.cur().skip = true
					p.cur().fonttbl = word == "fonttbl"
					if word == "info" {
						p.cur().meta = "info"
					}
					continue
				}
			}
			p.word(word, param, hasParam)
		case '\r', '\n':
			p.pos++
		default:
			groupStart = false
			p.pos++
			if p.skipN > 0 {
				p.skipN--
				continue
			}
			if c >= 0x80 || p.trail {
				p.codeByte(c)
				continue
			}
			p.flushBytes()
			p.char(rune(c))
		}
	}
	p.flushBytes()
	p.flushNotes()
	if p.meta != nil {
		get := func(k string) string {
			if b := p.meta[k]; b != nil {
				return b.String()
			}
			return ""
		}
		p.doc.Title, p.doc.Author, p.doc.Subject = get("title"), get("author"), get("subject")
		p.doc.Keywords, p.doc.Description = get("keywords"), get("doccomm")
	}
	return nil
}

// inInfo reports whether the current group is inside \info.
func (p *rtfParser) inInfo() bool {
	for i := len(p.stack) - 2; i >= 0; i-- {
		if p.stack[i].meta == "info" {
			return true
		}
	}
	return false
}

// controlWord reads the control word or symbol at p.pos ('\\'). sym is
// the symbol character for a control symbol.
func (p *rtfParser) controlWord() (word string, param int, hasParam bool, sym byte) {
	p.pos++ // '\\'
	if p.pos >= len(p.data) {
		return "", 0, false, 0
	}
	c := p.data[p.pos]
	if !isASCIILetter(c) {
		p.pos++
		if c == '*' {
			return "*", 0, false, 0
		}
		if c == '\'' {
			return "'", 0, false, '\''
		}
		return "", 0, false, c
	}
	start := p.pos
	for p.pos < len(p.data) && isASCIILetter(p.data[p.pos]) && p.pos-start < 32 {
		p.pos++
	}
	word = string(p.data[start:p.pos])
	ns := p.pos
	if p.pos < len(p.data) && p.data[p.pos] == '-' {
		p.pos++
	}
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' && p.pos-ns < 11 {
		p.pos++
	}
	if p.pos > ns && !(p.pos == ns+1 && p.data[ns] == '-') {
		n, err := strconv.Atoi(string(p.data[ns:p.pos]))
		if err == nil {
			param, hasParam = n, true
		}
	} else {
		p.pos = ns
	}
	if p.pos < len(p.data) && p.data[p.pos] == ' ' {
		p.pos++ // the delimiter space belongs to the control word
	}
	return word, param, hasParam, 0
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// symbol handles a control symbol.
func (p *rtfParser) symbol(c byte) {
	if c == '\'' {
		if p.pos+2 > len(p.data) {
			p.pos = len(p.data)
			return
		}
		b, err := strconv.ParseUint(string(p.data[p.pos:p.pos+2]), 16, 8)
		p.pos += 2
		if err != nil {
			return
		}
		if p.skipN > 0 {
			p.skipN--
			return
		}
		p.codeByte(byte(b))
		return
	}
	if p.skipN > 0 {
		p.skipN--
		return
	}
	if p.trail && (c == '\\' || c == '{' || c == '}') {
		p.codeByte(c) // the second byte of a double-byte character
		return
	}
	p.flushBytes()
	switch c {
	case '\\', '{', '}':
		p.char(rune(c))
	case '~':
		p.char('\u00a0')
	case '_':
		p.char('-')
	case '\n', '\r':
		p.par()
	case '\t':
		p.char('\t')
	}
}

// word handles a control word that is not a destination.
func (p *rtfParser) word(w string, param int, hasParam bool) {
	if w != "u" && p.skipN > 0 {
		p.skipN--
		return
	}
	p.flushBytes()
	switch w {
	case "ansicpg":
		if e := codePage(param); e != nil {
			p.enc, p.lead = e, leadBytes(param)
		}
	case "f":
		switch st := p.cur(); {
		case st.fonttbl:
			p.defFont = param
		case hasParam:
			st.font = param
		}
	case "fcharset", "cpg":
		cp := param
		if w == "fcharset" {
			cp = charsetCodePage(param)
		}
		if p.cur().fonttbl && codePage(cp) != nil && len(p.fontCP) < rtfMaxFonts {
			if p.fontCP == nil {
				p.fontCP = map[int]int{}
			}
			p.fontCP[p.defFont] = cp
		}
	case "deff":
		p.deff = param
	case "plain":
		p.cur().font = -1
	case "uc":
		if hasParam && param >= 0 && param < 10 {
			p.cur().uc = param
		}
	case "u":
		r := rune(param)
		if r < 0 {
			r += 65536
		}
		p.char(r)
		p.skipN = p.cur().uc
	case "par", "line", "sect", "page", "outlinelevel":
		if w != "outlinelevel" {
			p.par()
		}
	case "tab":
		p.char('\t')
	case "cell", "nestcell":
		p.high = 0
		p.separate(true)
	case "row", "nestrow":
		p.par()
	case "emdash":
		p.char('—')
	case "endash":
		p.char('–')
	case "bullet":
		p.char('•')
	case "lquote":
		p.char('‘')
	case "rquote":
		p.char('’')
	case "ldblquote":
		p.char('“')
	case "rdblquote":
		p.char('”')
	case "emspace", "enspace", "qmspace":
		p.char(' ')
	case "bin":
		if hasParam && param > 0 {
			p.pos = min(len(p.data), p.pos+param)
		}
	}
}

// codePage returns the decoder of a Windows code page, or nil.
func codePage(cp int) encoding.Encoding {
	switch cp {
	case 437:
		return charmap.CodePage437
	case 850:
		return charmap.CodePage850
	case 874:
		return charmap.Windows874
	case 932:
		return japanese.ShiftJIS
	case 936:
		return simplifiedchinese.GBK
	case 949:
		return korean.EUCKR
	case 950:
		return traditionalchinese.Big5
	case 1250:
		return charmap.Windows1250
	case 1251:
		return charmap.Windows1251
	case 1252:
		return charmap.Windows1252
	case 1253:
		return charmap.Windows1253
	case 1254:
		return charmap.Windows1254
	case 1255:
		return charmap.Windows1255
	case 1256:
		return charmap.Windows1256
	case 1257:
		return charmap.Windows1257
	case 1258:
		return charmap.Windows1258
	case 10000:
		return charmap.Macintosh
	case 65001: // what Windows set to UTF-8 as its ANSI code page writes
		return unicode.UTF8
	}
	return nil
}

// charsetCodePage returns the Windows code page of an RTF font charset
// (\fcharsetN, Windows' LOGFONT charsets), or 0 for ANSI, default,
// symbol, OEM and unknown ones, which are in the document's code page.
func charsetCodePage(cs int) int {
	switch cs {
	case 77:
		return 10000
	case 128:
		return 932
	case 129:
		return 949
	case 134:
		return 936
	case 136:
		return 950
	case 161:
		return 1253
	case 162:
		return 1254
	case 163:
		return 1258
	case 177:
		return 1255
	case 178:
		return 1256
	case 186:
		return 1257
	case 204:
		return 1251
	case 222:
		return 874
	case 238:
		return 1250
	}
	return 0
}

// leadBytes returns the test of a lead byte of a double-byte code page,
// nil for the others.
func leadBytes(cp int) func(byte) bool {
	switch cp {
	case 932: // Shift_JIS: 0xA1–0xDF are half-width katakana
		return func(b byte) bool { return b >= 0x81 && b <= 0x9f || b >= 0xe0 && b <= 0xfc }
	case 936, 949, 950:
		return func(b byte) bool { return b >= 0x81 && b <= 0xfe }
	}
	return nil
}

// codeByte adds a byte of text in the code page.
func (p *rtfParser) codeByte(b byte) {
	if len(p.bytes) == 0 {
		p.runEnc, p.runLead = p.enc, p.lead
		font := p.cur().font
		if font < 0 {
			font = p.deff
		}
		if cp, ok := p.fontCP[font]; ok {
			p.runEnc, p.runLead = codePage(cp), leadBytes(cp)
		}
	}
	p.bytes = append(p.bytes, b)
	p.trail = !p.trail && p.runLead != nil && p.runLead(b)
	if len(p.bytes) >= 4096 && !p.trail && (p.runEnc != unicode.UTF8 || incompleteTail(p.bytes) == 0) {
		p.flushBytes() // at a character's end: a long run is decoded in parts
	}
}

// flushBytes decodes the pending bytes of the code page.
func (p *rtfParser) flushBytes() {
	p.trail = false
	if len(p.bytes) == 0 {
		return
	}
	b, err := p.runEnc.NewDecoder().Bytes(p.bytes)
	if err != nil {
		b = bytes.ToValidUTF8(p.bytes, []byte("\uFFFD"))
	}
	p.bytes = p.bytes[:0]
	for _, r := range string(b) {
		p.char(r)
	}
}

// par ends a line (a paragraph's, a row's).
func (p *rtfParser) par() { p.separate(false) }

// separate ends a line, or a table's cell (cell), where the text of the
// current group goes (a space in a metadata field). A cell's separator
// from the next cell is written with the next text of the row, so that a
// row's trailing empty cells (the last cell's \cell included) write
// nothing.
func (p *rtfParser) separate(cell bool) {
	st := p.cur()
	switch {
	case st.meta != "" && st.meta != "info":
		p.metaText(" ")
		return
	case st.skip:
		return
	}
	out := p.x.out
	if st.note {
		out = p.noteOut()
	}
	if cell {
		out.tab()
		return
	}
	out.newline()
	if !st.note {
		p.flushNotes()
	}
}

// noteOut is where a footnote's text is collected until its paragraph
// ends.
func (p *rtfParser) noteOut() *textBuilder {
	if p.notes == nil {
		p.notes = newTextBuilder(p.x.limits.MaxTextBytes)
	}
	return p.notes
}

// flushNotes writes the footnotes collected, each on lines of its own.
func (p *rtfParser) flushNotes() {
	if p.notes == nil {
		return
	}
	p.x.out.block(p.notes.String())
	p.notes = nil
}

// char writes one character of text.
func (p *rtfParser) char(r rune) {
	if utf16.IsSurrogate(r) {
		if r < 0xdc00 {
			p.high = r
			return
		}
		if p.high != 0 {
			r = utf16.DecodeRune(p.high, r)
		}
		p.high = 0
	} else if p.high != 0 {
		p.high = 0
	}
	st := p.cur()
	if st.meta != "" && st.meta != "info" {
		p.metaText(string(r))
		return
	}
	if st.skip {
		return
	}
	out := p.x.out
	if st.note {
		out = p.noteOut()
	}
	out.WriteString(string(r))
}

func (p *rtfParser) metaText(s string) {
	if p.meta == nil {
		p.meta = map[string]*strings.Builder{}
	}
	k := p.cur().meta
	b := p.meta[k]
	if b == nil {
		b = &strings.Builder{}
		p.meta[k] = b
	}
	if b.Len() < 4096 {
		b.WriteString(s)
	}
}
