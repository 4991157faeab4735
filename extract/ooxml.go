package extract

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"io"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Office Open XML (ECMA-376): a zip package of XML parts.
//
//   - docx: word/document.xml, then footnotes, endnotes and comments
//     (word/comments.xml, without their authors); paragraphs
//     (w:p) on lines of their own, table cells (w:tc) separated by tabs,
//     w:tab as a tab, w:br/w:cr as line breaks, a text box's paragraphs
//     (w:txbxContent) and a legacy WordArt's text (the string of its
//     v:textpath) on lines of their own; deleted revisions
//     (w:delText), the old place of moved text (w:moveFrom) and field
//     instructions (w:instrText) are left out, as is a ruby's reading
//     (w:rt: the base text stays); the text of a SmartArt diagram (its
//     data part) and an imported part
//     (w:altChunk: HTML, RTF or plain text) where it stands.
//
// Content given in several forms (mc:AlternateContent: a text box as a
// DrawingML shape and as its VML fallback) is read in its first form
// only (walkXML).
//   - xlsx: each sheet in workbook order, its name on a line, then a line
//     per row with the cells' values separated by tabs, each in the column
//     its reference gives (empty cells, which have no element, keep their
//     tabs) (shared strings, inline strings, formula results, their
//     _xHHHH_ escapes decoded, numbers as stored), then its comments, a
//     line per comment.
//   - pptx: each slide in presentation order, a line per paragraph (a:p;
//     a line per table row, its cells separated by tabs), then the text of
//     its SmartArt diagrams (their data parts), then its speaker notes,
//     then its comments (ppt/comments/, without their authors).
//
// Metadata: the core properties (docProps/core.xml, or where the
// package's relationships say: title, creator, subject, keywords,
// description, language, created, modified) and the extended ones
// (docProps/app.xml: pages, slides); for xlsx, Pages is the number of
// sheets.
func ooxml(x *extraction, f Format, data []byte, doc *Document) error {
	if bytes.HasPrefix(data, cfbMagic) {
		// Office encrypts a package with a password into an OLE compound
		// file whose directory names the stream EncryptedPackage.
		if bytes.Contains(data, utf16LE("EncryptedPackage")) {
			return ErrEncrypted
		}
		return malformed("an OLE compound file (a binary Office document?), not Office Open XML")
	}
	a, err := openArchive(x, data)
	if err != nil {
		return err
	}
	if err := coreProps(a, doc); err != nil {
		return err
	}
	switch f {
	case DOCX:
		return docx(a, doc)
	case XLSX:
		return xlsx(a, doc)
	default:
		return pptx(a, doc)
	}
}

// utf16LE is s (ASCII) in UTF-16LE, as an OLE directory names streams.
func utf16LE(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, s[i], 0)
	}
	return b
}

// coreProps reads the core properties (docProps/core.xml) and the
// extended ones (docProps/app.xml): the parts the package's relationships
// (_rels/.rels) name, which are elsewhere in a package written with .NET's
// System.IO.Packaging (the Open XML SDK's: the core properties in
// package/services/metadata/core-properties/<id>.psmdcp).
func coreProps(a *archive, doc *Document) error {
	core, app := "docProps/core.xml", "docProps/app.xml"
	for _, p := range []struct {
		part *string
		typ  string
	}{{&core, "core-properties"}, {&app, "extended-properties"}} {
		target, err := a.relOfType("_rels/.rels", "", p.typ)
		if err != nil {
			return err
		}
		if a.files[target] != nil {
			*p.part = target
		}
	}
	var cur string
	err := a.walkXML(core, func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			cur = t.Name.Local
		case xml.EndElement:
			cur = ""
		case xml.CharData:
			v := string(t)
			switch cur {
			case "title":
				doc.Title += v
			case "creator":
				doc.Author += v
			case "subject":
				doc.Subject += v
			case "keywords":
				doc.Keywords += v
			case "description":
				doc.Description += v
			case "language":
				doc.Language += v
			case "created":
				doc.Created = parseTime(v)
			case "modified":
				doc.Modified = parseTime(v)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.walkXML(app, func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			cur = t.Name.Local
		case xml.EndElement:
			cur = ""
		case xml.CharData:
			if cur == "Pages" || cur == "Slides" {
				if n, err := strconv.Atoi(strings.TrimSpace(string(t))); err == nil && n > 0 {
					doc.Pages = n
				}
			}
		}
		return nil
	})
}

func parseTime(v string) time.Time {
	v = strings.TrimSpace(v)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999", "2006-01-02",
		"2006-01-02T15:04Z07:00", "2006-01-02T15:04"} { // the last two: XMP's dates without seconds
		if t, err := time.Parse(layout, v); err == nil {
			return t
		}
	}
	return time.Time{}
}

func docx(a *archive, doc *Document) error {
	if a.files["word/document.xml"] == nil {
		return malformed("word/document.xml is missing")
	}
	for _, part := range []string{"word/document.xml", "word/footnotes.xml", "word/endnotes.xml", "word/comments.xml"} {
		if err := wordPart(a, part); err != nil {
			return err
		}
	}
	return nil
}

// wordPart writes the text of a WordprocessingML part.
func wordPart(a *archive, name string) error {
	out := a.x.out
	inText, skip := false, 0
	var cells tableCells
	// breakLine ends a paragraph: a line, or a space in a table's cell.
	breakLine := func() {
		if len(cells) == 0 {
			out.newline()
		} else {
			out.space()
		}
	}
	// rel returns the target of the part's relationship named by the
	// attribute local (of a namespace) of se, or "" (the relationships are
	// read once, at the first element that names one).
	var rels map[string]string
	rel := func(se xml.StartElement, local string) (string, error) {
		if rels == nil {
			dir, file := path.Split(name)
			var err error
			if rels, err = a.relTargets(dir+"_rels/"+file+".rels", strings.TrimSuffix(dir, "/")); err != nil {
				return "", err
			}
		}
		for _, at := range se.Attr {
			if at.Name.Local == local && at.Name.Space != "" {
				return rels[at.Value], nil
			}
		}
		return "", nil
	}
	return a.walkXML(name, func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "t":
				inText = true
			case "altChunk", "relIds":
				if skip > 0 || t.Name.Local == "relIds" && t.Name.Space != dgmNS {
					break
				}
				// An imported part (altChunk), or a SmartArt diagram,
				// whose text is in its data part (relIds' dm), as in a
				// slide.
				ref := "id"
				if t.Name.Local == "relIds" {
					ref = "dm"
				}
				target, err := rel(t, ref)
				if target == "" || err != nil {
					return err
				}
				breakLine()
				if t.Name.Local == "altChunk" {
					err = altChunk(a, target)
				} else {
					err = drawingPart(a, target)
				}
				if err != nil {
					return err
				}
				breakLine()
			case "delText", "instrText", "delInstrText", "moveFrom": // moveFrom: a move's old place
				skip++
			case "rt": // a ruby's reading (furigana), above its base text
				skip++
			case "tabs": // a paragraph's tab stops: their w:tab are not tabs
				skip++
			case "tab":
				if skip == 0 {
					out.WriteString("\t")
				}
			case "br", "cr":
				out.newline()
			case "noBreakHyphen":
				out.WriteString("-")
			case "txbxContent":
				// A text box's paragraphs, inside a run of the paragraph
				// it is anchored in.
				breakLine()
			case "textpath":
				// Legacy WordArt (a VML shape): its text is the string of
				// its text path, a line of its own as a text box's.
				if s := attr(t, "string"); s != "" && skip == 0 && (t.Name.Space == vmlNS || t.Name.Space == "v") {
					breakLine()
					out.WriteString(s)
					breakLine()
				}
			case "tbl":
				cells.open()
			case "tr":
				out.newline()
				cells.row()
			case "tc":
				cells.cell(out)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = false
			case "delText", "instrText", "delInstrText", "moveFrom", "tabs", "rt":
				skip--
			case "p": // also the last of a text box's: the box ends a line
				breakLine()
			case "tbl":
				cells.close()
				out.newline()
			case "tr":
				out.newline()
			}
		case xml.CharData:
			if inText && skip == 0 {
				out.WriteString(string(t))
			}
		}
		return nil
	})
}

// altChunk writes the text of an imported part (w:altChunk: content kept
// in another format until Word opens the document, what the Open XML
// SDK's HTML import writes): HTML, RTF or plain text, told by its
// extension, else by its bytes. A chunk that cannot be read is left out;
// the deadline and the memory limit are not.
func altChunk(a *archive, part string) error {
	rc, err := a.open(part)
	if rc == nil || err != nil {
		return err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err == nil {
		err = a.keep(part, int64(len(data)))
	}
	if err == nil {
		var doc Document
		switch f := byExtension[strings.ToLower(path.Ext(part))]; {
		case f == HTML || f == "" && Detect(Input{Data: data}) == HTML:
			err = htmlDoc(a.x, data, "", &doc)
		case f == RTF || f == "" && Detect(Input{Data: data}) == RTF:
			err = rtf(a.x, data, &doc)
		case f == Text:
			a.x.out.WriteString(DecodeText(data, ""))
		}
	}
	if err != nil && (errors.Is(err, ErrLimit) || a.x.ctx.Err() != nil) {
		return err
	}
	return nil
}

func xlsx(a *archive, doc *Document) error {
	if a.files["xl/workbook.xml"] == nil {
		return malformed("xl/workbook.xml is missing")
	}
	rels, err := a.relTargets("xl/_rels/workbook.xml.rels", "xl")
	if err != nil {
		return err
	}
	type sheet struct{ name, part string }
	var sheets []sheet
	err = a.walkXML("xl/workbook.xml", func(_ *xml.Decoder, t xml.Token) error {
		if se, ok := t.(xml.StartElement); ok && se.Name.Local == "sheet" {
			id := ""
			for _, at := range se.Attr {
				if at.Name.Local == "id" && at.Name.Space != "" {
					id = at.Value
				}
			}
			if p := rels[id]; p != "" {
				sheets = append(sheets, sheet{attr(se, "name"), p})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The shared strings part is the one the workbook's relationships
	// name (some producers call it xl/SharedStrings.xml).
	sst, err := a.relOfType("xl/_rels/workbook.xml.rels", "xl", "sharedStrings")
	if err != nil {
		return err
	}
	if a.files[sst] == nil {
		sst = "xl/sharedStrings.xml"
	}
	shared, err := sharedStrings(a, sst)
	if err != nil {
		return err
	}
	doc.Pages = len(sheets)
	out := a.x.out
	for _, sh := range sheets {
		if out.full() {
			break
		}
		out.newline()
		out.WriteString(sh.name)
		out.newline()
		if err := worksheet(a, sh.part, shared); err != nil {
			return err
		}
		if err := sheetComments(a, sh.part); err != nil {
			return err
		}
	}
	return nil
}

// sheetComments writes the comments of a worksheet, a line per comment,
// after its rows: its threaded comments (Excel 365) when it has any,
// else its notes (legacy comments, which Excel also writes for each
// threaded comment, with a notice for older versions around its text).
func sheetComments(a *archive, sheet string) error {
	dir, file := path.Split(sheet)
	rels, base := dir+"_rels/"+file+".rels", strings.TrimSuffix(dir, "/")
	part, err := a.relOfType(rels, base, "threadedComment")
	if part == "" && err == nil {
		part, err = a.relOfType(rels, base, "comments")
	}
	if part == "" || err != nil {
		return err
	}
	out := a.x.out
	out.newline()
	inText, inT, inRPh := 0, 0, 0
	return a.walkXML(part, func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "text":
				inText++
			case "t":
				inT++
			case "rPh":
				inRPh++
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "text":
				inText--
			case "t":
				inT--
			case "rPh":
				inRPh--
			case "comment", "threadedComment":
				out.newline()
			}
		case xml.CharData:
			if inText > 0 && inRPh == 0 && (inT > 0 || len(bytes.TrimSpace(t)) > 0) {
				out.WriteString(strings.Map(cellSpace, unescapeXstring(strings.ReplaceAll(string(t), "\r\n", "\n"))))
			}
		}
		return nil
	})
}

// sharedStrings reads the shared strings part (xl/sharedStrings.xml, as
// Excel names it). What the table keeps counts
// against the archive's budget as the bytes read do (archive.keep): a
// table of millions of empty strings (<si/>, 5 bytes each, a few hundred
// kilobytes of zip) would otherwise hold more memory than it read.
func sharedStrings(a *archive, part string) (*stringTable, error) {
	out := &stringTable{}
	inT, inRPh := false, 0
	start := 0
	err := a.walkXML(part, func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "si":
				out.text = out.text[:start]
			case "t":
				inT = true
			case "rPh": // phonetic runs: not part of the value
				inRPh++
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "si":
				if err := a.keep(part, int64(len(out.text)-start)+stringTableEntry); err != nil {
					return err
				}
				out.ends = append(out.ends, len(out.text))
				start = len(out.text)
			case "t":
				inT = false
			case "rPh":
				inRPh--
			}
		case xml.CharData:
			if inT && inRPh == 0 {
				out.text = append(out.text, t...)
			}
		}
		return nil
	})
	out.text = out.text[:start]
	return out, err
}

// stringTable is a workbook's shared strings: their text end to end and
// where each ends (no string header, and no pointer for the collector to
// follow, per string).
type stringTable struct {
	text []byte
	ends []int
}

// stringTableEntry is what a string costs the table besides its text.
const stringTableEntry = 8

// get returns string i ("", false when there is none).
func (s *stringTable) get(i int) (string, bool) {
	if i < 0 || i >= len(s.ends) {
		return "", false
	}
	start := 0
	if i > 0 {
		start = s.ends[i-1]
	}
	return string(s.text[start:s.ends[i]]), true
}

// xlsxMaxColumn is the last column of a worksheet (XFD).
const xlsxMaxColumn = 16384

// cellColumn returns the column of a cell reference ("C7": 2), or -1
// when ref is none.
func cellColumn(ref string) int {
	col := 0
	for i := 0; i < len(ref); i++ {
		c := ref[i] | 0x20
		if c < 'a' || c > 'z' {
			if i == 0 {
				return -1
			}
			break
		}
		col = col*26 + int(c-'a'+1)
		if col > xlsxMaxColumn {
			return -1
		}
	}
	return col - 1
}

func worksheet(a *archive, part string, shared *stringTable) error {
	out := a.x.out
	var typ string
	var val strings.Builder
	inV, inIs, inT := false, false, false
	// col is the column of the cell being read (0 for A), last that of
	// the one before it in the row (-1 at the row's start), written the
	// column the row's text has reached: Excel writes no element for an
	// empty cell, so the reference (r="C7") says where a cell is, and
	// the separators of the cells skipped are written with it.
	col, last, written := 0, -1, 0
	return a.walkXML(part, func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "row":
				last, written = -1, 0
			case "c":
				typ = attr(t, "t")
				val.Reset()
				col = cellColumn(attr(t, "r"))
				if col <= last {
					col = last + 1 // no reference (or out of order): the next cell
				}
				last = col
			case "v":
				inV = true
			case "is":
				inIs = true
			case "t":
				inT = true
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "v":
				inV = false
			case "is":
				inIs = false
			case "t":
				inT = false
			case "c":
				v := val.String()
				switch typ {
				case "s":
					i, err := strconv.Atoi(strings.TrimSpace(v))
					if err != nil {
						i = -1 // not an index: no string
					}
					v, _ = shared.get(i)
				case "b":
					if strings.TrimSpace(v) == "1" {
						v = "TRUE"
					} else {
						v = "FALSE"
					}
				}
				if typ == "s" || typ == "inlineStr" || typ == "str" {
					v = unescapeXstring(v)
				}
				if v == "" {
					return nil
				}
				out.tabs(col - written)
				written = col
				out.WriteString(strings.Map(cellSpace, strings.ReplaceAll(v, "\r\n", "\n")))
			case "row":
				out.newline()
			}
		case xml.CharData:
			if inV || (inIs && inT) {
				val.Write(t)
			}
		}
		return nil
	})
}

// unescapeXstring decodes the escapes of a SpreadsheetML string
// (ECMA-376 part 1, 22.9.2.19 ST_Xstring): _xHHHH_ is the UTF-16 code
// unit HHHH, how Excel writes the characters XML cannot carry (a
// carriage return of a cell's line break is _x000D_), and _x005F_ a "_"
// that is not an escape's.
func unescapeXstring(s string) string {
	i := strings.Index(s, "_x")
	if i < 0 {
		return s
	}
	var b strings.Builder
	var units []uint16
	flush := func() {
		b.WriteString(string(utf16.Decode(units)))
		units = units[:0]
	}
	for i >= 0 {
		u, err := strconv.ParseUint(s[i+2:min(len(s), i+6)], 16, 16)
		if err != nil || len(s) < i+7 || s[i+6] != '_' {
			flush()
			b.WriteString(s[:i+1])
			s = s[i+1:]
		} else {
			if i > 0 {
				flush()
				b.WriteString(s[:i])
			}
			units = append(units, uint16(u))
			s = s[i+7:]
		}
		i = strings.Index(s, "_x")
	}
	flush()
	b.WriteString(s)
	return b.String()
}

// cellSpace makes a line break, tab or other control character of a
// cell's value a space: cells are separated by tabs and rows by lines.
func cellSpace(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return ' '
	}
	return r
}

func pptx(a *archive, doc *Document) error {
	if a.files["ppt/presentation.xml"] == nil {
		return malformed("ppt/presentation.xml is missing")
	}
	rels, err := a.relTargets("ppt/_rels/presentation.xml.rels", "ppt")
	if err != nil {
		return err
	}
	var slides []string
	err = a.walkXML("ppt/presentation.xml", func(_ *xml.Decoder, t xml.Token) error {
		if se, ok := t.(xml.StartElement); ok && se.Name.Local == "sldId" {
			for _, at := range se.Attr {
				if at.Name.Local == "id" && at.Name.Space != "" {
					if p := rels[at.Value]; p != "" {
						slides = append(slides, p)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(slides) == 0 {
		// No slide list: take the slide parts in numeric order.
		for name := range a.files {
			if strings.HasPrefix(name, "ppt/slides/slide") && strings.HasSuffix(name, ".xml") {
				slides = append(slides, name)
			}
		}
		sort.Slice(slides, func(i, j int) bool { return partNumber(slides[i]) < partNumber(slides[j]) })
	}
	doc.Pages = len(slides)
	for _, s := range slides {
		if a.x.out.full() {
			break
		}
		if err := drawingPart(a, s); err != nil {
			return err
		}
		// The text of its SmartArt diagrams (their data parts: the
		// slide holds none of it), then its speaker notes (its
		// notesSlide), then its comments, each in part order.
		dir, file := path.Split(s)
		srels, err := a.relTargets(dir+"_rels/"+file+".rels", strings.TrimSuffix(dir, "/"))
		if err != nil {
			return err
		}
		targets := make([]string, 0, len(srels))
		for _, target := range srels {
			targets = append(targets, target)
		}
		slices.SortFunc(targets, func(x, y string) int {
			return cmp.Or(cmp.Compare(partNumber(x), partNumber(y)), strings.Compare(x, y))
		})
		for _, prefix := range []string{"ppt/diagrams/data", "ppt/notesSlides/", "ppt/comments/"} {
			for _, target := range targets {
				if strings.HasPrefix(target, prefix) {
					if err := drawingPart(a, target); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// drawingPart writes the text of a PresentationML part: a line per a:p
// (and per p:text, a comment's text, in a comments part). Slide-number
// and date fields of notes pages are left out.
func drawingPart(a *archive, name string) error {
	out := a.x.out
	inT, skip := false, false // skip: inside a slide-number or date field (fields do not nest)
	var cells tableCells
	out.newline()
	return a.walkXML(name, func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "t", "text":
				inT = true
			case "fld":
				typ := attr(t, "type")
				skip = typ == "slidenum" || strings.HasPrefix(typ, "datetime")
			case "br":
				out.newline()
			case "tbl":
				cells.open()
			case "tr":
				out.newline()
				cells.row()
			case "tc":
				cells.cell(out)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inT = false
			case "text":
				inT = false
				out.newline()
			case "fld":
				skip = false
			case "p":
				// A line per paragraph; in a table's cell, a space.
				if len(cells) == 0 {
					out.newline()
				} else {
					out.space()
				}
			case "tbl":
				cells.close()
				out.newline()
			case "tr":
				out.newline()
			}
		case xml.CharData:
			if inT && !skip {
				out.WriteString(string(t))
			}
		}
		return nil
	})
}

// dgmNS is the namespace of DrawingML diagrams (SmartArt).
const dgmNS = "http://schemas.openxmlformats.org/drawingml/2006/diagram"

// vmlNS is the namespace of VML, the drawings of Office 2003 that docx
// keeps for legacy shapes (and as mc:Fallback of newer ones).
const vmlNS = "urn:schemas-microsoft-com:vml"

// partNumber is the number at the end of a part name ("slide12.xml": 12).
func partNumber(name string) int {
	name = strings.TrimSuffix(path.Base(name), path.Ext(name))
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(name[i:])
	return n
}
