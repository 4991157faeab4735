package extract

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// workbook is an xlsx of one sheet whose cell A1 is shared string 0, and
// whose shared strings are head, unit repeated to about n bytes, tail.
func workbook(t *testing.T, head, unit, tail string, n int64) []byte {
	t.Helper()
	return bombZip(t, map[string]string{
		"xl/workbook.xml": `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">` +
			`<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>`,
		"xl/worksheets/sheet1.xml": `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` +
			`<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row></sheetData></worksheet>`,
	}, "xl/sharedStrings.xml",
		[]byte(`<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`+head), []byte(unit), []byte(tail+`</sst>`), n)
}

// The shared strings a workbook keeps count against the memory limit: a
// few hundred kilobytes of xlsx holding a table of millions of empty
// strings (<si/>, 5 bytes each) held 16 bytes of string header per
// string, and more as the slice grew, past the limit, before the archive
// budget was spent: 2.5 GiB of heap for a 256 MiB limit.
func TestXLSXSharedStringsCountAgainstMemory(t *testing.T) {
	const limit = 8 << 20
	bomb := workbook(t, "", "<si/>", "", limit*6/10)
	t.Logf("xlsx: %d bytes, %d empty shared strings", len(bomb), limit*6/10/5)
	// A million strings take 19–32 s to read under -race on a loaded
	// machine: past the default 30 s, the extraction timed out instead.
	x := newX(t, Limits{MaxMemoryBytes: limit, Timeout: 5 * time.Minute})
	_, err := x.Extract(context.Background(), Input{Data: bomb})
	require.ErrorIs(t, err, ErrLimit)
	assert.Contains(t, err.Error(), "xl/sharedStrings.xml")

	// A workbook of real strings well within the limit reads as before.
	d, err := x.Extract(context.Background(), Input{Data: workbook(t, "<si><t>first</t></si><si><r><t>sec</t></r><r><t>ond</t></r></si>",
		"<si><t>some words</t></si>", "", limit/4)})
	require.NoError(t, err)
	assert.Equal(t, "S\nfirst\tsecond", d.Text)
}

// docxPackage is a docx whose body (inside w:body) declares the w, mc,
// wps, v and a namespaces.
func docxPackage(t *testing.T, body string) []byte {
	t.Helper()
	return zipOf(t, "[Content_Types].xml", `<?xml version="1.0"?><Types/>`, "word/document.xml",
		`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document`+
			` xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`+
			` xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"`+
			` xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"`+
			` xmlns:v="urn:schemas-microsoft-com:vml" mc:Ignorable="w14"><w:body>`+body+`</w:body></w:document>`)
}

// Word writes a text box twice, as a DrawingML shape (mc:Choice) and as
// its VML fallback (mc:Fallback) for older readers: its text was indexed
// twice, the first copy glued to the word before the box. A reader takes
// one branch of an mc:AlternateContent; the box's text is on lines of its
// own.
func TestDOCXTextBoxOnce(t *testing.T) {
	box := `<w:txbxContent><w:p><w:r><w:t>Boxed words</w:t></w:r></w:p></w:txbxContent>`
	data := docxPackage(t, `<w:p><w:r><w:t>Before</w:t></w:r><w:r><mc:AlternateContent>`+
		`<mc:Choice Requires="wps"><w:drawing><wps:wsp><wps:txbx>`+box+`</wps:txbx></wps:wsp></w:drawing></mc:Choice>`+
		`<mc:Fallback><w:pict><v:shape><v:textbox>`+box+`</v:textbox></v:shape></w:pict></mc:Fallback>`+
		`</mc:AlternateContent></w:r><w:r><w:t xml:space="preserve"> after.</w:t></w:r></w:p><w:p><w:r><w:t>Next.</w:t></w:r></w:p>`)
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: data})
	require.NoError(t, err)
	assert.Equal(t, "Before\nBoxed words\nafter.\nNext.", d.Text)
}

// A paragraph's tab stops (w:tabs/w:tab in its properties) are layout,
// not tab characters: each wrote a tab, so a table whose cells set tab
// stops got an empty column per stop in its rows, and paragraphs that set
// them began with tabs.
func TestDOCXTabStopsAreNotTabs(t *testing.T) {
	stops := `<w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/><w:tab w:val="right" w:pos="9000"/></w:tabs></w:pPr>`
	data := docxPackage(t, `<w:p>`+stops+`<w:r><w:t>Name:</w:t></w:r><w:r><w:tab/><w:t>Ada</w:t></w:r></w:p>`+
		`<w:tbl><w:tr><w:tc><w:p>`+stops+`<w:r><w:t>a</w:t></w:r></w:p></w:tc><w:tc><w:p>`+stops+`<w:r><w:t>b</w:t></w:r></w:p></w:tc></w:tr></w:tbl>`)
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: data})
	require.NoError(t, err)
	assert.Equal(t, "Name:\tAda\n\na\tb", d.Text)
}

// A tracked move keeps the text at its old place in w:moveFrom, as w:t
// (ECMA-376 17.13.5.22), and at its new place in w:moveTo: the text of a
// move was indexed twice. Like a deletion, its old place is left out.
func TestDOCXTrackedMoveOnce(t *testing.T) {
	data := docxPackage(t, `<w:p><w:moveToRangeStart w:id="0" w:name="move1"/><w:moveTo w:id="1"><w:r><w:t>Some moved text.</w:t></w:r></w:moveTo>`+
		`<w:moveToRangeEnd w:id="0"/><w:r><w:t xml:space="preserve"> Some text.</w:t></w:r><w:moveFromRangeStart w:id="2" w:name="move1"/>`+
		`<w:moveFrom w:id="3"><w:r><w:t>Some moved text.</w:t></w:r></w:moveFrom><w:moveFromRangeEnd w:id="2"/></w:p>`+
		`<w:p><w:pPr><w:rPr><w:moveFrom w:id="4"/></w:rPr></w:pPr><w:r><w:t>Kept.</w:t></w:r></w:p>`)
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: data})
	require.NoError(t, err)
	assert.Equal(t, "Some moved text. Some text.\nKept.", d.Text)
}

// A package declared as an Office or OpenDocument document (by its media
// type, else its extension) whose zip is damaged (a truncated download,
// a copy cut short) or holds none of the format's parts is that format,
// and its extraction fails as ErrMalformed. It was "not supported", which
// mail attachments (and Webex and Objective files) take for a file
// without text: the damage went unreported.
func TestDamagedPackageIsMalformedNotUnsupported(t *testing.T) {
	const docxType = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	good := docxPackage(t, `<w:p><w:r><w:t>Hello</w:t></w:r></w:p>`)
	x := newX(t, Limits{})
	for _, tc := range []struct {
		in   Input
		want Format
	}{
		{Input{Data: good[:len(good)/2], ContentType: docxType}, DOCX},
		{Input{Data: good[:len(good)/2], Name: "https://example.com/files/report.docx?v=2"}, DOCX},
		{Input{Data: good[:len(good)/2], ContentType: "application/octet-stream", Name: "notes.odt"}, ODT},
		{Input{Data: zipOf(t, "a.txt", "x"), ContentType: "application/vnd.ms-excel.sheet.macroEnabled.12", Name: "book.xlsx"}, XLSX},
	} {
		require.Equal(t, tc.want, Detect(tc.in), "%s %s", tc.in.ContentType, tc.in.Name)
		_, err := x.Extract(context.Background(), tc.in)
		require.ErrorIs(t, err, ErrMalformed, "%s %s", tc.in.ContentType, tc.in.Name)
	}
	// A zip that claims no document format is none.
	for _, in := range []Input{
		{Data: zipOf(t, "META-INF/MANIFEST.MF", "Manifest-Version: 1.0"), ContentType: "application/java-archive", Name: "lib.jar"},
		{Data: zipOf(t, "a.txt", "x"), ContentType: "application/zip", Name: "files.zip"},
		{Data: good[:len(good)/2]},
	} {
		assert.Equal(t, Format(""), Detect(in), "%s %s", in.ContentType, in.Name)
	}
}

// The XML decoder keeps about 80 bytes per open element: a few
// kilobytes of zip inflating to millions of nested elements ("<a><a>...",
// three bytes each) made a 32 MiB budget hold 1.2 GiB of heap before
// it was spent. Nesting is bounded like RTF groups: deeper than
// xmlMaxDepth, the part is damaged, also inside a branch of an
// mc:AlternateContent that is skipped.
func TestXMLNestingBounded(t *testing.T) {
	x := newX(t, Limits{MaxMemoryBytes: 8 << 20})
	body := []byte(`<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"` +
		` xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>`)
	for _, head := range [][]byte{body, append(body, `<mc:AlternateContent><mc:Choice/><mc:Fallback>`...)} {
		bomb := bombZip(t, map[string]string{"[Content_Types].xml": `<Types/>`}, "word/document.xml", head, []byte("<a>"), nil, 6<<20)
		_, err := x.Extract(context.Background(), Input{Data: bomb})
		require.ErrorIs(t, err, ErrMalformed)
		assert.Contains(t, err.Error(), "nested deeper than")
	}

	// Real nesting (tables in tables, text boxes, content controls) is
	// far shallower.
	deep := strings.Repeat(`<w:sdt><w:sdtContent>`, 200) + `<w:p><w:r><w:t>Deep</w:t></w:r></w:p>` + strings.Repeat(`</w:sdtContent></w:sdt>`, 200)
	d, err := x.Extract(context.Background(), Input{Data: docxPackage(t, deep)})
	require.NoError(t, err)
	assert.Equal(t, "Deep", d.Text)
}

// The shared strings part is the one the workbook's relationships name
// (Type .../sharedStrings): some producers call it xl/SharedStrings.xml
// (xlrd and xlsxreader met such files), and every string cell of those
// workbooks came out empty, as the reader looked for
// xl/sharedStrings.xml only.
func TestXLSXSharedStringsFoundByRelationship(t *testing.T) {
	book := zipOf(t,
		"xl/workbook.xml", `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`+
			`<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`+
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>`+
			`<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="/xl/SharedStrings.xml"/>`+
			`</Relationships>`,
		"xl/worksheets/sheet1.xml", `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`+
			`<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><v>42</v></c><c r="C1" t="s"><v>1</v></c></row></sheetData></worksheet>`,
		"xl/SharedStrings.xml", `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>Name</t></si><si><t>City</t></si></sst>`)
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: book})
	require.NoError(t, err)
	assert.Equal(t, "S\nName\t42\tCity", d.Text)
}

// cfb is the start of an OLE compound file (what Office writes for a
// password-protected docx, xlsx or pptx, and for the old binary formats)
// whose directory names the streams given.
func cfb(streams ...string) []byte {
	b := append([]byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), make([]byte, 1016)...)
	for _, s := range streams {
		for _, r := range s {
			b = append(b, byte(r), 0)
		}
		b = append(b, make([]byte, 64-2*len(s))...)
	}
	return append(b, make([]byte, 512)...)
}

// Office saves a password-protected docx, xlsx or pptx as an OLE compound
// file holding the encrypted package (EncryptionInfo, EncryptedPackage),
// not as a zip, under the same name and media type. It was no format at
// all ("format not supported", which mail takes for a file without
// text): a user had no word that these documents were never indexed.
// They now fail as ErrEncrypted; an old binary file (.xls) under an
// Office Open XML name fails as damaged.
func TestEncryptedOfficeFileIsEncrypted(t *testing.T) {
	x := newX(t, Limits{})
	for _, in := range []Input{
		{Data: cfb("EncryptionInfo", "EncryptedPackage"), Name: "budget.xlsx"},
		{Data: cfb("EncryptionInfo", "EncryptedPackage"), ContentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{Data: cfb("\x06DataSpaces", "EncryptedPackage", "EncryptionInfo"), Name: "https://example.com/deck.pptx"},
	} {
		_, err := x.Extract(context.Background(), in)
		require.ErrorIs(t, err, ErrEncrypted, "%s %s", in.Name, in.ContentType)
	}
	_, err := x.Extract(context.Background(), Input{Data: cfb("Workbook", "\x05SummaryInformation"), Name: "old.xlsx"})
	require.ErrorIs(t, err, ErrMalformed)
	// Not declared as one: no format.
	assert.Equal(t, Format(""), Detect(Input{Data: cfb("WordDocument"), Name: "old.doc"}))
}

// A docx's comments (word/comments.xml, anchored in the body by
// w:commentReference) were left out, though an OpenDocument text's
// comments are indexed: the reviewer's words of the same document were
// found when it was saved as odt and not as docx. They follow the body,
// its footnotes and its endnotes, a line per paragraph, without their
// authors.
func TestDOCXComments(t *testing.T) {
	w := ` xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`
	data := zipOf(t, "word/document.xml", `<w:document`+w+`><w:body><w:p><w:commentRangeStart w:id="0"/>`+
		`<w:r><w:t>The zebra crossed.</w:t></w:r><w:commentRangeEnd w:id="0"/><w:r><w:commentReference w:id="0"/></w:r>`+
		`<w:r><w:footnoteReference w:id="1"/></w:r></w:p><w:p><w:r><w:t>Second paragraph.</w:t></w:r></w:p></w:body></w:document>`,
		"word/footnotes.xml", `<w:footnotes`+w+`><w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>`+
			`<w:footnote w:id="1"><w:p><w:r><w:footnoteRef/></w:r><w:r><w:t xml:space="preserve"> A footnote.</w:t></w:r></w:p></w:footnote></w:footnotes>`,
		"word/comments.xml", `<w:comments`+w+`><w:comment w:id="0" w:author="Ann Reviewer" w:date="2026-01-01T00:00:00Z" w:initials="AR">`+
			`<w:p><w:r><w:annotationRef/></w:r><w:r><w:t>Which zebra?</w:t></w:r></w:p><w:p><w:r><w:t>Check the source.</w:t></w:r></w:p></w:comment></w:comments>`)
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: data, Name: "review.docx"})
	require.NoError(t, err)
	assert.Equal(t, "The zebra crossed.\nSecond paragraph.\n\nA footnote.\nWhich zebra?\nCheck the source.", d.Text)
}

// bareDirectory is a zip of n central directory entries (nameless, with
// no data) whose end record gives their count as zip.NewReader checks it
// (modulo 65,536).
func bareDirectory(n int) []byte {
	entry := make([]byte, 46) // the shortest entry
	copy(entry, "PK\x01\x02")
	data := append([]byte("PK\x03\x04"), bytes.Repeat(entry, n)...)
	end := make([]byte, 22)
	copy(end, "PK\x05\x06")
	binary.LittleEndian.PutUint16(end[8:], uint16(n))
	binary.LittleEndian.PutUint16(end[10:], uint16(n))
	binary.LittleEndian.PutUint32(end[12:], uint32(n*len(entry)))
	binary.LittleEndian.PutUint32(end[16:], 4)
	return append(data, end...)
}

// An archive of more members than an extraction reads (a few megabytes of
// bare central directory entries) was read whole, by detection and again
// by the extractor, before its member count was looked at: zip.NewReader
// keeps a few hundred bytes per entry (16 MiB of entries took 165 MiB of
// heap, 64 MiB 661 MiB, whatever the memory limit). It is refused
// (ErrLimit) before it is read.
func TestZipOfTooManyMembersNotRead(t *testing.T) {
	data := bareDirectory(200_000)
	_, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err, "a zip as the reader sees it")
	x := newX(t, Limits{})
	in := Input{Data: data, Name: "many.docx"}
	allocs := testing.AllocsPerRun(1, func() {
		require.Equal(t, DOCX, Detect(in))
		_, err := x.Extract(context.Background(), in)
		require.ErrorIs(t, err, ErrLimit)
		require.ErrorContains(t, err, "archive members")
	})
	assert.Less(t, allocs, 1000.0, "allocations: the entries are not read")
	assert.Empty(t, Detect(Input{Data: data}), "undeclared: not a package")
}

// A package says where its core properties are in its relationships
// (_rels/.rels); docProps/core.xml is where Office puts them, but .NET's
// System.IO.Packaging (and so the Open XML SDK, which many report
// generators use) writes package/services/metadata/core-properties/
// <id>.psmdcp. Only docProps/core.xml was read: such a document had no
// title, author, dates... The relationships decide; without them the
// usual parts are read.
func TestOOXMLCorePropertiesWhereTheRelationshipsSay(t *testing.T) {
	const props = `<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"` +
		` xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/">` +
		`<dc:title>Quarterly report</dc:title><dc:creator>Ann Smith</dc:creator>` +
		`<dcterms:created>2024-03-01T10:00:00Z</dcterms:created></cp:coreProperties>`
	rels := `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
		`<Relationship Id="R1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/word/document.xml"/>` +
		`<Relationship Id="R2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"` +
		` Target="/package/services/metadata/core-properties/4c8e2f.psmdcp"/>` +
		`<Relationship Id="R3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="meta/app1.xml"/>` +
		`</Relationships>`
	const body = `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Text</w:t></w:r></w:p></w:body></w:document>`
	x := newX(t, Limits{})
	for name, data := range map[string][]byte{
		"System.IO.Packaging": zipOf(t, "[Content_Types].xml", `<Types/>`, "_rels/.rels", rels, "word/document.xml", body,
			"package/services/metadata/core-properties/4c8e2f.psmdcp", props, "meta/app1.xml", `<Properties><Pages>7</Pages></Properties>`),
		"Office": zipOf(t, "[Content_Types].xml", `<Types/>`, "word/document.xml", body,
			"docProps/core.xml", props, "docProps/app.xml", `<Properties><Pages>7</Pages></Properties>`),
	} {
		d, err := x.Extract(context.Background(), Input{Data: data})
		require.NoError(t, err, name)
		assert.Equal(t, "Text", d.Text, name)
		assert.Equal(t, "Quarterly report", d.Title, name)
		assert.Equal(t, "Ann Smith", d.Author, name)
		assert.Equal(t, 2024, d.Created.Year(), name)
		assert.Equal(t, 7, d.Pages, name)
	}
}

// Excel writes a character XML cannot carry as an escape of SpreadsheetML
// strings (ST_Xstring): a cell's line break typed or pasted as CR LF is
// "_x000D_" and a line feed, a literal "_x" sequence is escaped as
// "_x005F_x...". The escapes were indexed as they are: "Line1_x000D_" is
// no word a search for "Line1" finds. They are decoded in shared strings,
// inline strings and formula results; a line break or tab of a value is a
// space (tabs and lines separate cells and rows).
func TestXLSXStringEscapes(t *testing.T) {
	const ns = `xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"`
	data := zipOf(t,
		"xl/workbook.xml", `<workbook `+ns+` xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`+
			`<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`+
			`<Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>`,
		"xl/sharedStrings.xml", `<sst `+ns+`><si><t xml:space="preserve">Line1_x000D_`+"\n"+`Line2</t></si>`+
			`<si><r><t>Code _x005F_x000D_ is</t></r><r><t xml:space="preserve"> literal</t></r></si><si><t>Smile _xD83D__xDE00_</t></si></sst>`,
		"xl/worksheets/sheet1.xml", `<worksheet `+ns+`><sheetData><row r="1">`+
			`<c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c>`+
			`<c r="D1" t="inlineStr"><is><t>Tab_x0009_inside</t></is></c><c r="E1" t="str"><f>A1</f><v>Formula_x000D_result</v></c>`+
			`<c r="F1"><v>1.5</v></c></row></sheetData></worksheet>`)
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: data})
	require.NoError(t, err)
	assert.Equal(t, "S\nLine1 Line2\tCode _x000D_ is literal\tSmile \U0001F600\tTab inside\tFormula result\t1.5", d.Text)
}

// repeatDoc is a docx whose body is head, unit repeated to about n
// bytes, tail, then a run "after" ending the paragraph head opened.
func repeatDoc(t *testing.T, head, unit, tail string, n int64) []byte {
	const w = `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>`
	const end = `<w:r><w:t>after</w:t></w:r></w:p></w:body></w:document>`
	return bombZip(t, map[string]string{"[Content_Types].xml": `<Types/>`}, "word/document.xml",
		[]byte(w+head), []byte(unit), []byte(tail+end), n)
}

// The XML decoder holds the whole start tag it reads, about a hundred
// bytes per attribute: a part of one element of millions of attributes
// (` a=""`, or ` a`, which a decoder that is not strict reads as a="a")
// held twenty times the bytes read, past the memory limit, before the
// archive's budget was spent: a 25 KB docx took 385 MiB of heap and 10 s,
// a 100 KB one 1.5 GiB and the whole timeout. A tag of more than 64 KiB
// outside its values fails with ErrLimit before the decoder reads it,
// whatever quotes a comment before it holds; long values, comments and
// CDATA still read.
func TestXMLTagOfMillionsOfAttributes(t *testing.T) {
	doc := func(head, unit, tail string) []byte { return repeatDoc(t, head, unit, tail, 2<<20) }
	x := newX(t, Limits{})
	for name, data := range map[string][]byte{
		"valued":                  doc(`<w:p`, ` a=""`, `>`),
		"valueless":               doc(`<w:p`, ` a`, `>`),
		"values holding '>'":      doc(`<w:p`, ` a=">"`, `>`),
		"after a comment's quote": doc(`<!-- " --><w:p`, ` a`, `>`),
		"after a PI's quote":      doc(`<?pi ' ?><w:p`, ` b`, `>`),
	} {
		_, err := x.Extract(context.Background(), Input{Data: data})
		require.ErrorIs(t, err, ErrLimit, name)
		assert.ErrorContains(t, err, "word/document.xml", name)
	}
	for name, data := range map[string][]byte{
		"a long value":   doc(`<w:p w:path="`, `l 1 2 `, `">`),
		"a long comment": doc(`<w:p><!--`, `a b c=d `, `-->`),
		"a long CDATA":   doc(`<w:p><w:r><w:t><![CDATA[`, `a b c=d `, `]]></w:t></w:r>`),
	} {
		d, err := x.Extract(context.Background(), Input{Data: data})
		require.NoError(t, err, name)
		assert.True(t, strings.HasSuffix(d.Text, "after"), name)
	}
}

// A document built with the Open XML SDK's HTML (or RTF) import holds
// its content as an imported part, w:altChunk, which Word turns into
// paragraphs when it opens the document: report generators and web
// applications write docx files so. The chunks were not read: such a
// document, never opened in Word since, was delivered without its text.
// An HTML, RTF or plain-text chunk's text is where the chunk stands.
func TestDOCXAltChunk(t *testing.T) {
	const rels = `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
		`<Relationship Id="c1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/aFChunk" Target="afchunk1.dat"/>` +
		`<Relationship Id="c2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/aFChunk" Target="/word/chunks/part2.rtf"/>` +
		`<Relationship Id="c3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/aFChunk" Target="afchunk3.txt"/>` +
		`</Relationships>`
	data := zipOf(t, "[Content_Types].xml", `<Types/>`,
		"word/document.xml", `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`+
			` xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><w:body>`+
			`<w:p><w:r><w:t>Before</w:t></w:r></w:p><w:altChunk r:id="c1"/><w:altChunk r:id="c2"/>`+
			`<w:p><w:r><w:t>Between</w:t></w:r></w:p><w:altChunk r:id="c3"/><w:altChunk r:id="missing"/></w:body></w:document>`,
		"word/_rels/document.xml.rels", rels,
		"word/afchunk1.dat", `<html><head><title>Ignored</title></head><body><h1>Imported report</h1><p>Zebra count: 12</p></body></html>`,
		"word/chunks/part2.rtf", `{\rtf1\ansi Rich {\b meadow} text\par}`,
		"word/afchunk3.txt", "Plain chunk")
	doc, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: data})
	require.NoError(t, err)
	assert.Equal(t, "Before\n\nImported report\n\nZebra count: 12\n\nRich meadow text\n\nBetween\n\nPlain chunk", doc.Text)
	assert.Empty(t, doc.Title)
}

// A ruby (furigana: a reading in small type above Japanese or Chinese
// text) holds its reading and its base text. Both were read, glued
// together ("かんじ漢字" in a docx, "漢字かんじ" in an odt): the base word
// was no longer found as written. The base text is kept, the reading
// left out: the base is the text of the line.
func TestRubyReadingLeftOut(t *testing.T) {
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: docxPackage(t, `<w:p><w:r><w:t>Word </w:t></w:r><w:r><w:ruby><w:rubyPr/>`+
		`<w:rt><w:r><w:t>かんじ</w:t></w:r></w:rt><w:rubyBase><w:r><w:t>漢字</w:t></w:r></w:rubyBase></w:ruby></w:r></w:p>`)})
	require.NoError(t, err)
	assert.Equal(t, "Word 漢字", d.Text, "docx")
	d, err = x.Extract(context.Background(), Input{Data: odfPackage(t, "application/vnd.oasis.opendocument.text", `<office:text>`+
		`<text:p>Word <text:ruby><text:ruby-base>漢字</text:ruby-base><text:ruby-text>かんじ</text:ruby-text></text:ruby></text:p></office:text>`)})
	require.NoError(t, err)
	assert.Equal(t, "Word 漢字", d.Text, "odt")
}

// A worksheet's comments (notes, xl/commentsN.xml, and the threaded
// comments of Excel 365, xl/threadedComments/) were left out, though a
// docx's, a pptx's and an ods's comments are indexed. They follow the
// sheet's rows, a line per comment; of a sheet with threaded comments,
// those are read, not the notes Excel writes beside them for older
// versions (their text wrapped in a notice).
func TestXLSXComments(t *testing.T) {
	const ns = `xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"`
	book := func(sheetRels string, parts ...string) []byte {
		return zipOf(t, append([]string{
			"xl/workbook.xml", `<workbook ` + ns + ` xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">` +
				`<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`,
			"xl/_rels/workbook.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
				`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`,
			"xl/worksheets/sheet1.xml", `<worksheet ` + ns + `><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Total</t></is></c></row></sheetData></worksheet>`,
			"xl/worksheets/_rels/sheet1.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` + sheetRels + `</Relationships>`,
		}, parts...)...)
	}
	const legacy = `<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/comments" Target="../comments1.xml"/>`
	const threaded = `<Relationship Id="rId3" Type="http://schemas.microsoft.com/office/2017/10/relationships/threadedComment" Target="../threadedComments/threadedComment1.xml"/>`
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: book(legacy,
		"xl/comments1.xml", `<comments `+ns+`><authors><author>Ann</author></authors><commentList>`+
			`<comment ref="A1" authorId="0"><text><r><rPr><b/></rPr><t>Ann:</t></r><r><t xml:space="preserve">`+"\n"+`Check the total</t></r></text></comment>`+
			`<comment ref="B2" authorId="0"><text><t>Second note</t></text></comment></commentList></comments>`)})
	require.NoError(t, err)
	assert.Equal(t, "S\nTotal\n\nAnn: Check the total\nSecond note", d.Text)

	d, err = x.Extract(context.Background(), Input{Data: book(legacy+threaded,
		"xl/comments1.xml", `<comments `+ns+`><commentList><comment ref="A1" authorId="0"><text><t>[Threaded comment]`+
			` Your version of Excel allows you to read this threaded comment. Comment: Is this right?</t></text></comment></commentList></comments>`,
		"xl/threadedComments/threadedComment1.xml", `<ThreadedComments xmlns="http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments">`+
			`<threadedComment ref="A1" personId="{1}" id="{2}"><text>Is this right?</text></threadedComment>`+
			`<threadedComment ref="A1" personId="{3}" id="{4}" parentId="{2}"><text>Yes.</text></threadedComment></ThreadedComments>`)})
	require.NoError(t, err)
	assert.Equal(t, "S\nTotal\n\nIs this right?\nYes.", d.Text)
}

// A part of an Office or OpenDocument package written by a tool that put
// Latin-1 bytes, or a control character, into XML declared UTF-8 (report
// generators, exports of databases do) failed the whole document: Go's
// XML decoder refuses invalid UTF-8 and characters XML does not allow,
// and one such byte cost the document its text and metadata. A byte that
// is no UTF-8 becomes U+FFFD, as in plain text; a control character XML
// does not allow becomes a space; the rest of the document reads.
func TestOfficeXMLInvalidCharactersDoNotFailTheDocument(t *testing.T) {
	const props = `<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"` +
		` xmlns:dc="http://purl.org/dc/elements/1.1/">` + "<dc:title>Caf\xe9 menu</dc:title></cp:coreProperties>"
	assertOfficeTexts(t, map[string]officeCase{
		"docx, Latin-1": {data: zipOf(t, "[Content_Types].xml", `<Types/>`, "docProps/core.xml", props, "word/document.xml",
			`<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>`+
				"<w:p><w:r><w:t>Cr\xe8me br\xfbl\xe9e</w:t></w:r></w:p><w:p><w:r><w:t>Then \xe2 cut, control\x01char\x0bhere, \xef\xbf\xbf end</w:t></w:r></w:p>"+
				`</w:body></w:document>`),
			text: "Cr\uFFFDme br\uFFFDl\uFFFDe\nThen \uFFFD cut, control char here, \uFFFD end", title: "Caf\uFFFD menu"},
		"xlsx shared string": {data: sheetOfStrings(t, `<c r="A1" t="s"><v>0</v></c><c r="B1"><v>2</v></c>`,
			"<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><si><t>Z\xfcrich</t></si></sst>"),
			text: "S\nZ\uFFFDrich\t2"},
		"odt": {data: odfPackage(t, "application/vnd.oasis.opendocument.text", "<office:text><text:p>na\xefve</text:p><text:p>next</text:p></office:text>"),
			text: "na\uFFFDve\nnext"},
	})
}

// officeCase is a package and the text and title its extraction gives.
type officeCase struct {
	data        []byte
	text, title string
}

// assertOfficeTexts extracts each case's package and checks its text and
// title.
func assertOfficeTexts(t *testing.T, cases map[string]officeCase) {
	t.Helper()
	x := newX(t, Limits{})
	for name, c := range cases {
		d, err := x.Extract(context.Background(), Input{Data: c.data})
		require.NoError(t, err, name)
		assert.Equal(t, c.text, d.Text, name)
		assert.Equal(t, c.title, d.Title, name)
	}
}

// The replacements of xmlChars do not depend on where the reads of the
// part end (a sequence cut between two reads is whole again).
func TestXMLCharsAcrossReads(t *testing.T) {
	in := "<a>\u00e9t\u00e9 \xe9\xe8 \U0001F600\x01\x0b \uFFFE\xf0\x9f\x98</a>\u4e2d\xe4\xb8"
	const want = "<a>\u00e9t\u00e9 \uFFFD\uFFFD \U0001F600   \uFFFD\uFFFD\uFFFD\uFFFD</a>\u4e2d\uFFFD\uFFFD"
	for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
		grown := 0
		out, err := io.ReadAll(&xmlChars{r: r, grow: func(n int) error { grown += n; return nil }})
		require.NoError(t, err)
		assert.Equal(t, want, string(out))
		assert.Positive(t, grown)
	}
}

// The tag guard counted the bytes after a '<' inside a comment, a CDATA
// section or a processing instruction as a tag's: a part holding one
// (a comment quoting "a < b", a CDATA section of code) followed by more
// than 64 KiB before the next '>' failed with ErrLimit, though the
// decoder holds no tag there. They are skipped as the decoder skips
// them; a tag of millions of attributes after them is still refused,
// also after a CDATA section ending "]]]>".
func TestXMLLessThanInCommentOrCDATA(t *testing.T) {
	doc := func(head, unit, tail string) []byte { return repeatDoc(t, head, unit, tail, 1<<20) }
	x := newX(t, Limits{})
	for name, data := range map[string][]byte{
		"a comment":     doc(`<w:p><!-- a < b `, `words `, `-->`),
		"a CDATA":       doc(`<w:p><w:r><w:t><![CDATA[if (a < b) `, `c = d; `, `]]></w:t></w:r>`),
		"a PI":          doc(`<w:p><?pi a < b `, `words `, `?>`),
		"a comment, <!": doc(`<w:p><!-- <! `, `words `, `-->`),
	} {
		d, err := x.Extract(context.Background(), Input{Data: data})
		require.NoError(t, err, name)
		assert.True(t, strings.HasSuffix(d.Text, "after"), name)
	}
	for name, data := range map[string][]byte{
		"after a comment holding <": doc(`<!-- < --><w:p`, ` a`, `>`),
		"after ]]]>":                doc(`<w:p><w:r><w:t><![CDATA[x]]]></w:t></w:r><w:p`, ` a`, `>`),
		"after a PI's ??>":          doc(`<?pi <??><w:p`, ` a`, `>`),
	} {
		_, err := x.Extract(context.Background(), Input{Data: data})
		require.ErrorIs(t, err, ErrLimit, name)
	}
}

// The tag guard reads the same whatever its reads hold: a comment, a
// CDATA section or a processing instruction cut between two reads is
// still skipped, and a tag after it still counted.
func TestTagGuardAcrossReads(t *testing.T) {
	long := strings.Repeat("w ", xmlMaxTagBytes)
	for in, wantErr := range map[string]bool{
		"<a><!-- < " + long + "--></a>":                     false,
		"<a><![CDATA[ < " + long + "]]></a>":                false,
		"<a><?pi < " + long + "?></a>":                      false,
		"<a><!-- < -->< " + long + "></a>":                  true,
		"<a><![CDATA[x]]]><b " + long + "></a>":             true,
		"<a><?pi <??><b " + long + "></a>":                  true,
		"<a><!-- -- > <b " + long + "--></a>":               false,
		"<!DOCTYPE a [<!ENTITY e 'x'>]><a><b " + long + ">": true,
	} {
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
			_, err := io.ReadAll(&tagGuard{r: r, name: "p"})
			if wantErr {
				assert.ErrorIs(t, err, ErrLimit, "%.40q", in)
			} else {
				assert.NoError(t, err, "%.40q", in)
			}
		}
	}
}

// XML may be UTF-16 (with a byte order mark, or told by its declaration's
// bytes), or in the encoding its declaration names, and Office reads a
// part written so: a .NET generator writing with Encoding.Unicode, a
// Java or PHP library declaring ISO-8859-1. The decoder was given every
// part as UTF-8 whatever it said: such a document failed ("invalid
// UTF-8"). A part is decoded from what its byte order mark or its
// declaration says.
func TestOfficeXMLPartEncodings(t *testing.T) {
	const body = `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` +
		`<w:p><w:r><w:t>Crème brûlée, Привет</w:t></w:r></w:p></w:body></w:document>`
	x := newX(t, Limits{})
	for name, part := range map[string]string{
		"UTF-16LE with a BOM": "\xff\xfe" + string(utf16NoBOM(`<?xml version="1.0" encoding="utf-16"?>`+body, false)),
		"UTF-16BE with a BOM": "\xfe\xff" + string(utf16NoBOM(`<?xml version="1.0" encoding="utf-16"?>`+body, true)),
		"UTF-16LE, no BOM":    string(utf16NoBOM(`<?xml version="1.0" encoding="UTF-16"?>`+body, false)),
		"windows-1251":        `<?xml version="1.0" encoding="windows-1251"?>` + strings.ReplaceAll(strings.ReplaceAll(body, "Crème brûlée, ", ""), "Привет", "\xcf\xf0\xe8\xe2\xe5\xf2"),
	} {
		d, err := x.Extract(context.Background(), Input{Data: zipOf(t, "[Content_Types].xml", `<Types/>`, "word/document.xml", part)})
		require.NoError(t, err, name)
		want := "Crème brûlée, Привет"
		if name == "windows-1251" {
			want = "Привет"
		}
		assert.Equal(t, want, d.Text, name)
	}
	data := sheetOfStrings(t, `<c r="A1" t="s"><v>0</v></c>`,
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><si><t>Z\xfcrich</t></si></sst>")
	d, err := x.Extract(context.Background(), Input{Data: data})
	require.NoError(t, err)
	assert.Equal(t, "S\nZürich", d.Text)
}

// sheetOfStrings is an xlsx of one sheet, S, whose first row holds the
// cells given, with the shared strings part sst.
func sheetOfStrings(t *testing.T, cells, sst string) []byte {
	t.Helper()
	return zipOf(t,
		"xl/workbook.xml", `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`+
			`<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`+
			`<Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>`,
		"xl/worksheets/sheet1.xml", `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`+
			`<row r="1">`+cells+`</row></sheetData></worksheet>`,
		"xl/sharedStrings.xml", sst)
}

// A character reference to a character XML does not allow (&#1;, &#x1;,
// &#xB;, &#xFFFE;: what generators that escape control characters
// instead of dropping them write, such as .NET's XmlWriter without its
// character checks) failed the whole part, and with it the document, as
// the raw byte did before xmlChars: Go's decoder refuses the character
// it stands for. It now reads as the raw character does: a control
// character a space, U+FFFE and U+FFFF U+FFFD, in text and in attribute
// values (a sheet's name), whatever the reads of the part.
func TestOfficeXMLCharacterReferenceToAControlCharacter(t *testing.T) {
	assertOfficeTexts(t, map[string]officeCase{
		"docx": {data: docxPackage(t, `<w:p><w:r><w:t>one&#1;two&#x1;three&#xB;four&#0;five&#xFFFE;six&#65535;end</w:t></w:r></w:p>`+
			`<w:p w:rsidR="&#x1F;"><w:r><w:t>kept: &#9;&#xE9;&#x1F600; &#X1; &#1 &#; &#x; &#1x; &#x110000;</w:t></w:r></w:p>`),
			text: "one two three four five\uFFFDsix\uFFFDend\nkept: \t\u00e9\U0001F600 &#X1; &#1 &#; &#x; &#1x; &#x110000;"},
		"xlsx": {data: sheetOfStrings(t, `<c r="A1" t="s"><v>0</v></c>`,
			`<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>a&#x2;b</t></si></sst>`),
			text: "S\na b"},
		"ods sheet name": {data: odfPackage(t, "application/vnd.oasis.opendocument.spreadsheet", `<office:spreadsheet>`+
			`<table:table table:name="Q&#x3;1"><table:table-row><table:table-cell><text:p>c</text:p></table:table-cell>`+
			`</table:table-row></table:table></office:spreadsheet>`),
			text: "Q 1\nc"},
		"odt": {data: odfPackage(t, "application/vnd.oasis.opendocument.text", "<office:text><text:p>na&#8;ve</text:p></office:text>"),
			text: "na ve"},
	})

	// A reference of up to charRefMax bytes is read, a longer one (of
	// leading zeros) is not: the decoder still refuses it.
	in := "<a b='&#1;'>&#x1;&amp;&#xFFFF;&#" + strings.Repeat("0", 28) + "1;&#65;&#" + strings.Repeat("0", 29) + "1;</a>&#x1f"
	want := "<a b=' '> &amp;\uFFFD &#65;&#" + strings.Repeat("0", 29) + "1;</a>&#x1f"
	for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
		out, err := io.ReadAll(&xmlChars{r: r})
		require.NoError(t, err)
		assert.Equal(t, want, string(out))
	}
}

// Legacy WordArt in a docx (a VML shape of type 136, what Word writes in
// compatibility mode and for documents converted from .doc) keeps its
// text in the string attribute of its v:textpath: it was never read.
// It stands on a line of its own, as a text box's text does; the
// shape type's v:textpath, which has no string, writes nothing.
func TestDOCXLegacyWordArtText(t *testing.T) {
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: docxPackage(t, `<w:p><w:r><w:t>Before.</w:t></w:r><w:r><w:pict>`+
		`<v:shapetype id="_x0000_t136" coordsize="21600,21600" o:spt="136" xmlns:o="urn:schemas-microsoft-com:office:office">`+
		`<v:path textpathok="t"/><v:textpath on="t" fitshape="t"/></v:shapetype>`+
		`<v:shape id="WordArt1" type="#_x0000_t136" style="width:300pt;height:50pt"><v:fill color="red"/>`+
		`<v:textpath style="font-family:&quot;Arial Black&quot;;v-text-kern:t" trim="t" fitpath="t" string="Annual &amp; report"/>`+
		`</v:shape></w:pict></w:r><w:r><w:t>After.</w:t></w:r></w:p><w:p><w:r><w:t>Next.</w:t></w:r></w:p>`)})
	require.NoError(t, err)
	assert.Equal(t, "Before.\nAnnual & report\nAfter.\nNext.", d.Text)
}

// A package cut short (a download or copy interrupted) failed as "not a
// zip archive: zip: not a valid zip file", which a user reading
// EXTRACT_ERROR takes for a file that is no docx at all. Its zip
// directory, at the end of the file, is gone: the error says the file
// is truncated. Its parts are not salvaged: the directory says where
// they are.
func TestTruncatedPackageSaysTruncated(t *testing.T) {
	good := docxPackage(t, `<w:p><w:r><w:t>Hello</w:t></w:r></w:p>`)
	x := newX(t, Limits{})
	for _, cut := range []int{len(good) / 2, len(good) - 10, 40} {
		_, err := x.Extract(context.Background(), Input{Data: good[:cut], Name: "report.docx"})
		require.ErrorIs(t, err, ErrMalformed)
		assert.Contains(t, err.Error(), "truncated", "cut at %d", cut)
	}
	// A whole zip whose directory is damaged is damaged, not truncated.
	_, err := x.Extract(context.Background(), Input{Data: bytes.ReplaceAll(good, []byte("PK\x01\x02"), []byte("PK\x01\x09")), Name: "report.docx"})
	require.ErrorIs(t, err, ErrMalformed)
	assert.NotContains(t, err.Error(), "truncated")
}
