package extract

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// textPDF is a one-page PDF showing text in Helvetica, with the document
// information dictionary info.
func textPDF(info, text string) []byte {
	content := fmt.Sprintf("BT /F1 24 Tf 72 700 Td (%s) Tj ET", text)
	return buildPDF("/Info 6 0 R ",
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		info)
}

// pdftotext writes a metadata value as it is, line breaks included: an
// author, subject or keywords of more than one line (an abstract as the
// subject) spans lines of its -htmlmeta head, and was lost.
func TestPDFMetadataOfSeveralLines(t *testing.T) {
	requirePDFToText(t)
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: textPDF(`<< /Title (Report) /Author (Ann Smith\nBob Jones)`+
		` /Subject (An abstract\nof two lines) /Keywords (zebra,\nmeadow) /CreationDate (D:20230115103000+05'30') >>`, "Hello world")})
	require.NoError(t, err)
	assert.Equal(t, "Hello world", d.Text)
	assert.Equal(t, "Report", d.Title)
	assert.Equal(t, "Ann Smith Bob Jones", d.Author)
	assert.Equal(t, "An abstract of two lines", d.Subject)
	assert.Equal(t, "zebra, meadow", d.Keywords)
	assert.True(t, d.Created.Equal(time.Date(2023, 1, 15, 5, 0, 0, 0, time.UTC)), "%s", d.Created)
}

// pagesPDF is a PDF of n pages, page i showing "Page i".
func pagesPDF(n int) []byte {
	objs := []string{"<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
	kids := ""
	for i := 1; i <= n; i++ {
		content := fmt.Sprintf("BT /F1 24 Tf 72 700 Td (Page %d) Tj ET", i)
		objs = append(objs, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 3 0 R >> >> >>", len(objs)+2),
			fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
		kids += fmt.Sprintf("%d 0 R ", len(objs)-1)
	}
	objs[1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, n)
	return buildPDF("", objs...)
}

// A PDF of exactly ExtractMaxPages pages was read whole but marked
// EXTRACT_TRUNCATED: pdftotext was asked for MaxPages pages, so reading
// that many said nothing of a next one. It is asked for one more, which
// tells, and whose text is dropped.
func TestPDFMaxPagesTruncatesOnlyLongerDocuments(t *testing.T) {
	requirePDFToText(t)
	pdf := pagesPDF(3)
	d, err := newX(t, Limits{MaxPages: 3}).Extract(context.Background(), Input{Data: pdf})
	require.NoError(t, err)
	assert.False(t, d.Truncated)
	assert.Equal(t, 3, d.Pages)
	assert.Equal(t, "Page 1\n\nPage 2\n\nPage 3", d.Text)

	d, err = newX(t, Limits{MaxPages: 2}).Extract(context.Background(), Input{Data: pdf})
	require.NoError(t, err)
	assert.True(t, d.Truncated)
	assert.Equal(t, 3, d.Pages, "the document's pages, not the pages read (TestPDFPagesOfACutDocument)")
	assert.Equal(t, "Page 1\n\nPage 2", d.Text)
}

// longPagesPDF is a PDF of n pages, each showing lines lines of text.
func longPagesPDF(n, lines int) []byte {
	objs := []string{"<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
	kids := ""
	for i := 1; i <= n; i++ {
		var content strings.Builder
		content.WriteString("BT /F1 8 Tf 20 780 Td 9 TL ")
		for l := 0; l < lines; l++ {
			fmt.Fprintf(&content, "(Page %d line %d: the zebra crossed the meadow at dawn, again and again) ' ", i, l)
		}
		content.WriteString("ET")
		objs = append(objs, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 3 0 R >> >> >>", len(objs)+2),
			fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", content.Len(), content.String()))
		kids += fmt.Sprintf("%d 0 R ", len(objs)-1)
	}
	objs[1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, n)
	return buildPDF("", objs...)
}

// PAGE_COUNT of a PDF whose text was cut (ExtractMaxTextBytes,
// ExtractMaxPages) was the number of pages read: a 40-page report cut
// after a few pages said it had 11, and one cut by ExtractMaxPages=2 said
// 2, where an Office document says its own page count whatever is cut.
// Pages is the document's page count (pdfinfo's), the pages read only
// when that cannot be had.
func TestPDFPagesOfACutDocument(t *testing.T) {
	requirePDFToText(t)
	pdf := longPagesPDF(40, 80) // about 7 KB of text a page
	d, err := newX(t, Limits{MaxTextBytes: 1000}).Extract(context.Background(), Input{Data: pdf})
	require.NoError(t, err)
	assert.True(t, d.Truncated)
	assert.LessOrEqual(t, len(d.Text), 1000)
	assert.Equal(t, 40, d.Pages)

	d, err = newX(t, Limits{}).Extract(context.Background(), Input{Data: pdf})
	require.NoError(t, err)
	assert.False(t, d.Truncated)
	assert.Equal(t, 40, d.Pages)
}

// xmpPDF is a one-page PDF showing "Hello" whose catalog's metadata
// stream (XMP) holds the RDF description desc, and whose document
// information dictionary is info ("" for none).
func xmpPDF(info, desc string) []byte {
	xmp := `<?xpacket begin="` + "\ufeff" + `" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">` +
		`<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""` +
		` xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:pdf="http://ns.adobe.com/pdf/1.3/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"` +
		desc + `</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>`
	content := "BT /F1 24 Tf 72 700 Td (Hello) Tj ET"
	trailer, objs := "", []string{
		"<< /Type /Catalog /Pages 2 0 R /Metadata 6 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		fmt.Sprintf("<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n%s\nendstream", len(xmp), xmp),
	}
	if info != "" {
		trailer, objs = "/Info 7 0 R ", append(objs, info)
	}
	return buildPDF(trailer, objs...)
}

// PDF 2.0 deprecates the document information dictionary: a PDF written
// so (and many PDF/A writers) has its title, author, description,
// keywords and dates in the XMP metadata stream of its catalog only,
// which pdftotext does not read: it had no title, no AUTHOR, no
// SUBJECT... A PDF whose information dictionary gives neither a title
// nor an author takes them, and the other fields it lacks, from its
// XMP; one whose dictionary gives them keeps them.
func TestPDFMetadataFromXMP(t *testing.T) {
	requirePDFToText(t)
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: xmpPDF("", ` xmp:ModifyDate="2024-02-01T08:00:00Z">`+
		`<dc:creator><rdf:Seq><rdf:li>Ann Smith</rdf:li><rdf:li>Bob &amp; Co</rdf:li></rdf:Seq></dc:creator>`+
		`<dc:title><rdf:Alt><rdf:li xml:lang="fr">Titre</rdf:li><rdf:li xml:lang="x-default">XMP title</rdf:li></rdf:Alt></dc:title>`+
		`<dc:description><rdf:Alt><rdf:li xml:lang="x-default">An abstract</rdf:li></rdf:Alt></dc:description>`+
		`<pdf:Keywords>zebra, meadow</pdf:Keywords><xmp:CreateDate>2023-01-15T10:30:00+05:30</xmp:CreateDate>`)})
	require.NoError(t, err)
	assert.Equal(t, "Hello", d.Text)
	assert.Equal(t, "XMP title", d.Title)
	assert.Equal(t, "Ann Smith, Bob & Co", d.Author)
	assert.Equal(t, "An abstract", d.Subject)
	assert.Equal(t, "zebra, meadow", d.Keywords)
	assert.True(t, d.Created.Equal(time.Date(2023, 1, 15, 5, 0, 0, 0, time.UTC)), "%s", d.Created)
	assert.True(t, d.Modified.Equal(time.Date(2024, 2, 1, 8, 0, 0, 0, time.UTC)), "%s", d.Modified)

	d, err = x.Extract(context.Background(), Input{Data: xmpPDF(`<< /Title (Info title) /Author (Info Author) >>`,
		`><dc:creator><rdf:Seq><rdf:li>XMP Author</rdf:li></rdf:Seq></dc:creator><pdf:Keywords>xmp words</pdf:Keywords>`)})
	require.NoError(t, err)
	assert.Equal(t, "Info title", d.Title)
	assert.Equal(t, "Info Author", d.Author)
}
