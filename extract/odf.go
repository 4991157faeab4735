package extract

import (
	"archive/zip"
	"encoding/xml"
	"strconv"
	"strings"
)

// OpenDocument (ISO/IEC 26300): content.xml and meta.xml of a zip package.
// Paragraphs and headings (text:p, text:h) go on lines of their own,
// text:s on spaces, text:tab on tabs, text:line-break on line breaks, the
// text of a text box or a shape from a line of its own;
// table cells are separated by tabs and rows end lines (a cell repeated by
// table:number-columns-repeated is that many cells, at most a sheet's
// 16,384 columns: a run of empty cells keeps the columns after it in
// place, and writes nothing at a row's end; a row repeated by
// table:number-rows-repeated is that many rows, at most a sheet's
// 1,048,576, an empty one none). Each sheet (ods) starts with its name;
// each slide (odp) with its text, then its speaker notes. Deleted tracked
// changes, annotations' metadata (author, initials, date), the
// alternative text of images and shapes (svg:title, svg:desc: as HTML's
// alt text, not indexed), images and objects embedded in base64
// (office:binary-data), a ruby's reading (text:ruby-text: the base text
// stays) and the document's forms are left out.
// Footnotes, endnotes and comments (text:note, office:annotation), written
// inside the paragraph they are anchored in, follow that paragraph (or the
// table it is in), each on lines of their own, so that neither the
// paragraph nor the note runs into the other; a note's number
// (text:note-citation) is left out. The number of a heading or a list
// item written with it (text:number) is a word of its own.
func odf(x *extraction, f Format, data []byte, doc *Document) error {
	a, err := openArchive(x, data)
	if err != nil {
		return err
	}
	if a.files["META-INF/manifest.xml"] != nil {
		encrypted := false
		err := a.walkXML("META-INF/manifest.xml", func(_ *xml.Decoder, t xml.Token) error {
			if se, ok := t.(xml.StartElement); ok && se.Name.Local == "encryption-data" {
				encrypted = true
				return errStop
			}
			return nil
		})
		if err != nil {
			return err
		}
		if encrypted {
			return ErrEncrypted
		}
	}
	if err := odfMeta(a, doc); err != nil {
		return err
	}
	if a.files["content.xml"] == nil {
		// A styles-only package (LibreOffice writes templates so): no text.
		if a.files["styles.xml"] == nil && a.files["meta.xml"] == nil {
			return malformed("content.xml is missing")
		}
		return nil
	}
	metaPages := doc.Pages
	doc.Pages = 0
	body := x.out
	// notes collects the text of notes and comments (aside > 0) until the
	// paragraph or table they are in ends.
	notes := newTextBuilder(x.limits.MaxTextBytes)
	aside := 0
	flushNotes := func() {
		if s := notes.String(); s != "" {
			body.block(s)
			notes = newTextBuilder(x.limits.MaxTextBytes)
		}
	}
	skip := 0
	inBody := false
	var cells tableCells
	// runs: per open table, the repeats of its current cell and where the
	// body's text was when it began (its text is written once per repeat).
	type cellRun struct{ n, mark int }
	runs := []cellRun{}
	// rows: per open table, the repeats of its current row
	// (table:number-rows-repeated) and where the body's text was when it
	// began (a row of text is written once per repeat, an empty one not
	// at all).
	rows := []cellRun{}
	err = a.walkXML("content.xml", func(_ *xml.Decoder, t xml.Token) error {
		out := body
		if aside > 0 {
			out = notes
		}
		switch t := t.(type) {
		case xml.StartElement:
			if skip > 0 {
				skip++
				return nil
			}
			switch t.Name.Local {
			case "body":
				inBody = true
			case "note-citation":
				skip = 1
			case "note-body", "annotation":
				aside++
			case "tracked-changes", "forms", "sequence-decls", "variable-decls", "user-field-decls",
				"named-expressions", "database-ranges", "scripts", "font-face-decls",
				"automatic-styles", "bookmark-ref-placeholder",
				"binary-data", // an image or object embedded in base64
				"ruby-text":   // a ruby's reading (furigana), above its base text
				skip = 1
			case "creator", "date":
				if t.Name.Space == dcNS { // an annotation's author and date
					skip = 1
				}
			case "creator-initials", "date-string": // an annotation's author's initials, its date as written
				skip = 1
			case "title", "desc":
				if t.Name.Space == svgNS { // an image's or a shape's alternative text
					skip = 1
				}
			case "s":
				n, err := strconv.Atoi(attrNS(t, "c"))
				if err != nil || n < 1 {
					n = 1
				}
				out.WriteString(strings.Repeat(" ", min(n, 100)))
			case "tab":
				out.WriteString("\t")
			case "line-break", "text-box", "custom-shape":
				// A text box or a shape: its text starts a line, also when
				// it is anchored in a paragraph.
				out.newline()
			case "table":
				if f == ODS && len(cells) == 0 {
					doc.Pages++
					out.newline()
					out.WriteString(attrNS(t, "name"))
					out.newline()
				}
				cells.open()
				runs = append(runs, cellRun{})
				rows = append(rows, cellRun{})
			case "table-row":
				cells.row()
				if len(rows) > 0 {
					n, err := strconv.Atoi(attrNS(t, "number-rows-repeated"))
					if err != nil || n < 1 || aside > 0 {
						n = 1
					}
					rows[len(rows)-1] = cellRun{n: min(n, odsMaxRow), mark: body.b.Len()}
				}
			case "table-cell", "covered-table-cell":
				if len(cells) > 0 {
					cells.cell(out)
					n, err := strconv.Atoi(attrNS(t, "number-columns-repeated"))
					if err != nil || n < 1 || aside > 0 {
						n = 1
					}
					runs[len(runs)-1] = cellRun{n: min(n, xlsxMaxColumn), mark: body.b.Len()}
				}
			case "page":
				if f == ODP {
					doc.Pages++
				}
				out.newline()
			}
		case xml.EndElement:
			if skip > 0 {
				skip--
				return nil
			}
			switch t.Name.Local {
			case "note-body", "annotation":
				aside--
			case "p", "h":
				if len(cells) == 0 || aside > 0 {
					out.newline()
					if aside == 0 {
						flushNotes()
					}
				} else {
					out.space()
				}
			case "table":
				if len(cells) > 0 {
					cells.close()
					runs = runs[:len(runs)-1]
					rows = rows[:len(rows)-1]
				}
				out.newline()
				if len(cells) == 0 && aside == 0 {
					flushNotes()
				}
			case "table-cell", "covered-table-cell":
				if len(runs) == 0 || runs[len(runs)-1].n < 2 {
					break
				}
				run := runs[len(runs)-1]
				runs[len(runs)-1].n = 1
				text := ""
				if body.b.Len() > run.mark { // its separators, then its text
					text = strings.TrimLeft(body.b.String()[run.mark:], "\t\n ")
				}
				if text == "" {
					body.tabs(run.n - 1)
					break
				}
				for i := 1; i < run.n && !body.full(); i++ {
					body.tab()
					body.WriteString(text)
				}
			case "table-row":
				out.newline()
				if len(rows) == 0 || rows[len(rows)-1].n < 2 {
					break
				}
				run := rows[len(rows)-1]
				rows[len(rows)-1].n = 1
				text := ""
				if body.b.Len() > run.mark {
					text = strings.TrimLeft(body.b.String()[run.mark:], "\n")
				}
				for i := 1; i < run.n && text != "" && !body.full(); i++ {
					body.WriteString(text)
					body.newline()
				}
			case "frame", "custom-shape":
				out.newline()
			case "number":
				if t.Name.Space == textNS { // a heading's or list item's number, before its text
					out.space()
				}
			}
		case xml.CharData:
			if inBody && skip == 0 {
				out.WriteString(strings.ReplaceAll(string(t), "\n", " "))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	flushNotes()
	if f == ODT {
		doc.Pages = metaPages
	}
	return nil
}

// odsMaxRow is the last row of a sheet (1,048,576).
const odsMaxRow = 1 << 20

// odfMeta reads meta.xml. Pages is set from meta:document-statistic's
// page-count.
func odfMeta(a *archive, doc *Document) error {
	var cur string
	var initial, creator string
	var keywords []string
	err := a.walkXML("meta.xml", func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			cur = t.Name.Local
			if cur == "document-statistic" {
				if n, err := strconv.Atoi(attrNS(t, "page-count")); err == nil && n > 0 {
					doc.Pages = n
				}
			}
			if cur == "keyword" {
				keywords = append(keywords, "")
			}
		case xml.EndElement:
			cur = ""
		case xml.CharData:
			v := string(t)
			switch cur {
			case "title":
				doc.Title += v
			case "initial-creator":
				initial += v
			case "creator":
				creator += v
			case "subject":
				doc.Subject += v
			case "description":
				doc.Description += v
			case "language":
				doc.Language += v
			case "keyword":
				keywords[len(keywords)-1] += v
			case "creation-date":
				doc.Created = parseTime(v)
			case "date":
				doc.Modified = parseTime(v)
			}
		}
		return nil
	})
	doc.Author = initial
	if strings.TrimSpace(doc.Author) == "" {
		doc.Author = creator
	}
	doc.Keywords = strings.Join(keywords, ", ")
	return err
}

const dcNS = "http://purl.org/dc/elements/1.1/"

// textNS is OpenDocument's namespace of text elements.
const textNS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"

// svgNS is OpenDocument's namespace of SVG-compatible elements.
const svgNS = "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"

// attrNS returns the value of an attribute by local name.
func attrNS(se xml.StartElement, local string) string { return attr(se, local) }

// manifestMaxDepth bounds the nesting of elements read in a manifest.
const manifestMaxDepth = 16

// odfByManifest tells an OpenDocument package without a mimetype member by
// its manifest's root entry.
func odfByManifest(zr *zip.Reader) Format {
	for _, f := range zr.File {
		if f.Name != "META-INF/manifest.xml" || f.UncompressedSize64 > 1<<20 {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return ""
		}
		defer rc.Close()
		d := xml.NewDecoder(&tagGuard{r: rc, name: f.Name})
		depth := 0
		for {
			t, err := d.Token()
			if err != nil {
				return ""
			}
			if _, ok := t.(xml.EndElement); ok {
				depth--
			}
			se, ok := t.(xml.StartElement)
			if !ok {
				continue
			}
			// The decoder keeps every open element: a manifest of a
			// million nested ones (a few kilobytes of zip) would take
			// tens of megabytes. Entries are the root's children, their
			// encryption data a few levels below.
			if depth++; depth > manifestMaxDepth {
				return ""
			}
			if se.Name.Local != "file-entry" || attr(se, "full-path") != "/" {
				continue
			}
			switch strings.TrimSuffix(attr(se, "media-type"), "-template") {
			case "application/vnd.oasis.opendocument.text":
				return ODT
			case "application/vnd.oasis.opendocument.spreadsheet":
				return ODS
			case "application/vnd.oasis.opendocument.presentation":
				return ODP
			}
			return ""
		}
	}
	return ""
}
