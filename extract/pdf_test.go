package extract

import (
	"context"
	"fmt"
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
