package extract

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// odfPackage is an OpenDocument package of that type whose content.xml
// has body inside office:body.
func odfPackage(t *testing.T, mimetype, body string) []byte {
	t.Helper()
	return zipOf(t,
		"mimetype", mimetype,
		"content.xml", `<?xml version="1.0" encoding="UTF-8"?><office:document-content`+
			` xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"`+
			` xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/"`+
			` office:version="1.3"><office:body>`+body+`</office:body></office:document-content>`,
		"META-INF/manifest.xml", `<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>`)
}

// zipOf is a zip archive of the members named and given in turn.
func zipOf(t *testing.T, nameData ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i+1 < len(nameData); i += 2 {
		w, err := zw.Create(nameData[i])
		require.NoError(t, err)
		_, err = io.WriteString(w, nameData[i+1])
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// A footnote and a comment are written inside the paragraph they are
// anchored in (LibreOffice writes them so). Their text went out where they
// stood: the note's number glued to the word before it ("meadow1"), the
// note's first word glued to that, the comment glued to the word before
// it, and the paragraph's own text cut in two. They now follow the
// paragraph, each on a line of its own, and the note's number is left out.
func TestODFNotesAndCommentsFollowTheirParagraph(t *testing.T) {
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: odfPackage(t, "application/vnd.oasis.opendocument.text", `<office:text>`+
		`<text:p>The meadow<text:note text:id="ftn1" text:note-class="footnote"><text:note-citation>1</text:note-citation>`+
		`<text:note-body><text:p>A footnote.</text:p></text:note-body></text:note> was green<office:annotation office:name="c1">`+
		`<dc:creator>Ann</dc:creator><dc:date>2024-05-01T10:00:00</dc:date><text:p>Check this.</text:p></office:annotation>`+
		`ish<office:annotation-end office:name="c1"/> today.</text:p>`+
		`<text:p>Next paragraph.</text:p></office:text>`)})
	require.NoError(t, err)
	assert.Equal(t, "The meadow was greenish today.\nA footnote.\nCheck this.\nNext paragraph.", d.Text)

	// In a spreadsheet, a cell's comment follows the table, whose rows
	// keep their cells.
	d, err = x.Extract(context.Background(), Input{Data: odfPackage(t, "application/vnd.oasis.opendocument.spreadsheet", `<office:spreadsheet>`+
		`<table:table table:name="S"><table:table-row><table:table-cell><office:annotation><dc:creator>Ann</dc:creator>`+
		`<text:p>Why?</text:p></office:annotation><text:p>a</text:p></table:table-cell><table:table-cell><text:p>b</text:p>`+
		`</table:table-cell></table:table-row></table:table></office:spreadsheet>`)})
	require.NoError(t, err)
	assert.Equal(t, "S\na\tb\n\nWhy?", d.Text)
}

// A text box or a shape with text is written inside a run of the
// paragraph it is anchored in: its first paragraph ran into the word
// before the anchor ("BeforeBoxed"). Its text starts a line of its own.
func TestODFTextBoxStartsALine(t *testing.T) {
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: odfPackage(t, "application/vnd.oasis.opendocument.text",
		`<office:text xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"><text:p>Before<draw:frame draw:name="F1">`+
			`<draw:text-box><text:p>Boxed words</text:p></draw:text-box></draw:frame> after<draw:custom-shape><text:p>Shape text</text:p>`+
			`</draw:custom-shape> end.</text:p></office:text>`)})
	require.NoError(t, err)
	assert.Equal(t, "Before\nBoxed words\n\nafter\nShape text\n\nend.", d.Text)
}

// A zip package whose member near its start is a PDF stored uncompressed
// (a picture LibreOffice keeps as a PDF, stored after the mimetype) holds
// "%PDF-" in its first kilobyte: it was taken for a PDF with junk before
// its header, and the document's own text was lost (the picture's
// extracted instead, or a pdftotext failure). Bytes that start as a zip
// are a zip.
func TestZipHoldingAStoredPDFIsNotAPDF(t *testing.T) {
	type member struct {
		name, data string
		method     uint16
	}
	build := func(members ...member) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, m := range members {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: m.method})
			require.NoError(t, err)
			_, err = io.WriteString(w, m.data)
			require.NoError(t, err)
		}
		require.NoError(t, zw.Close())
		return buf.Bytes()
	}
	pdf := member{"Pictures/10000000000000C8000000C8D5C3B2A1.pdf", string(hugePagesPDF()), zip.Store}
	odt := build(member{"mimetype", "application/vnd.oasis.opendocument.text", zip.Store}, pdf,
		member{"content.xml", `<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"` +
			` xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text><text:p>The real text.</text:p>` +
			`</office:text></office:body></office:document-content>`, zip.Deflate},
		member{"META-INF/manifest.xml", `<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>`, zip.Deflate})
	require.Equal(t, ODT, Detect(Input{Data: odt, Name: "report.odt"}))
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: odt})
	require.NoError(t, err)
	assert.Equal(t, "The real text.", d.Text)

	// A zip of stored PDFs is an archive, not a PDF.
	assert.Equal(t, Format(""), Detect(Input{Data: build(pdf), ContentType: "application/zip"}))
}

// An OpenDocument package without a mimetype member is told by its
// manifest, which Detect read with no bound on nesting: a zip of 1.4 KB
// whose manifest nests a million elements made Detect (which the HTTP
// connector calls on its fetch workers, outside any extraction deadline)
// allocate 64 MB and spend seconds of CPU, per document. The root entry
// is a child of the manifest's root: reading stops past a few levels.
func TestODFManifestNestingBounded(t *testing.T) {
	deep := `<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">` +
		strings.Repeat("<a>", (1<<20-200)/3)
	data := zipOf(t, "content.xml", "<x/>", "META-INF/manifest.xml", deep)
	allocs := testing.AllocsPerRun(1, func() {
		assert.Equal(t, Format(""), Detect(Input{Data: data}))
	})
	assert.Less(t, allocs, 10_000.0, "allocations of Detect for a %d-byte zip", len(data))

	// A real manifest, root entry after a deeper one, still tells the
	// format.
	good := zipOf(t, "content.xml", "<x/>", "META-INF/manifest.xml",
		`<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">`+
			`<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">`+
			`<manifest:encryption-data><manifest:algorithm/></manifest:encryption-data></manifest:file-entry>`+
			`<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>`+
			`</manifest:manifest>`)
	assert.Equal(t, ODS, Detect(Input{Data: good}))
}

// A comment (office:annotation) holds its author's initials and may hold
// its date as written (meta:creator-initials, meta:date-string: ODF 1.3,
// which LibreOffice writes) before its text. They were read as the
// comment's text, glued to its first word ("ASCheck this."): the author's
// name and date were left out, not the initials.
func TestODFCommentInitialsLeftOut(t *testing.T) {
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: odfPackage(t, "application/vnd.oasis.opendocument.text", `<office:text>`+
		`<text:p>The meadow<office:annotation office:name="c1" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0">`+
		`<dc:creator>Ann Smith</dc:creator><dc:date>2024-05-01T10:00:00</dc:date><meta:date-string>05/01/2024, 10:00</meta:date-string>`+
		`<meta:creator-initials>AS</meta:creator-initials><text:p>Check this.</text:p></office:annotation> today.</text:p></office:text>`)})
	require.NoError(t, err)
	assert.Equal(t, "The meadow today.\nCheck this.", d.Text)
}

// An image's or a shape's alternative text (svg:title, svg:desc, which
// LibreOffice writes from an object's Text Alternative and Description)
// was read as text of the paragraph the object is anchored in, glued to
// the word before it ("BeforeLogoCompany logo"). It is left out, as
// HTML's alt text is; the shape's own text is not.
func TestODFAlternativeTextLeftOut(t *testing.T) {
	const ns = ` xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"`
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: odfPackage(t, "application/vnd.oasis.opendocument.text", `<office:text>`+
		`<text:p>Before<draw:frame`+ns+`><draw:image/><svg:title>Logo</svg:title><svg:desc>Company logo in blue</svg:desc></draw:frame> after.</text:p>`+
		`<text:p>Second<draw:custom-shape`+ns+`><svg:title>Arrow</svg:title><text:p>Shape text</text:p></draw:custom-shape> end.</text:p>`+
		`<text:p>Title field: <text:title>Report</text:title></text:p></office:text>`)})
	require.NoError(t, err)
	assert.Equal(t, "Before\nafter.\nSecond\nShape text\n\nend.\nTitle field: Report", d.Text)
}

// An image or an object can be embedded in content.xml itself, in base64
// (office:binary-data in draw:image or draw:object-ole, instead of a file
// of the package). Its base64 was indexed as text, glued to the
// paragraph the image is anchored in: one word of thousands of letters.
// It is left out.
func TestODFEmbeddedBinaryDataLeftOut(t *testing.T) {
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: odfPackage(t, "application/vnd.oasis.opendocument.text", `<office:text>`+
		`<text:p>Picture<draw:frame xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"><draw:image><office:binary-data>`+
		`iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==`+
		`</office:binary-data></draw:image></draw:frame> after.</text:p></office:text>`)})
	require.NoError(t, err)
	assert.Equal(t, "Picture\nafter.", d.Text)
}

// A numbered heading or list item may hold its formatted number
// (text:number, ODF 1.2 5.1.1, for readers that do not number) before
// its text. The number was glued to the first word ("2.1Introduction"),
// which a search then missed. It is a word of its own.
func TestODFHeadingNumberIsAWord(t *testing.T) {
	d, err := newX(t, Limits{}).Extract(context.Background(), Input{Data: odfPackage(t, "application/vnd.oasis.opendocument.text", `<office:text>`+
		`<text:h text:outline-level="2"><text:number>2.1</text:number>Introduction</text:h>`+
		`<text:list><text:list-item><text:number>a)</text:number><text:p>First item</text:p></text:list-item></text:list></office:text>`)})
	require.NoError(t, err)
	assert.Equal(t, "2.1 Introduction\na) First item", d.Text)
}
