package extract

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A CSV, Markdown, JSON or calendar file (a mail attachment, a file given
// to Insert) was "format not supported": no text was indexed, though the
// docs said plain text is decoded. RFC 2046 (4.1.4) reads a text subtype a
// reader does not know as text/plain, and JSON is text (RFC 8259): they
// are plain text now, by media type or, when none is given (or only
// application/octet-stream), by extension. A "%PDF-" in such a text does
// not make it a PDF.
func TestTextSubtypesAreText(t *testing.T) {
	x := newX(t, Limits{})
	for _, in := range []Input{
		{Data: []byte("name,city\nAda,London\n"), ContentType: "text/csv; charset=utf-8"},
		{Data: []byte("# Title\n\nSome *words*.\n"), ContentType: "text/markdown"},
		{Data: []byte("BEGIN:VCALENDAR\nSUMMARY:Review\nEND:VCALENDAR\n"), ContentType: "text/calendar; method=REQUEST"},
		{Data: []byte(`{"name": "Ada", "note": "%PDF-1.4 is a header"}`), ContentType: "application/json"},
		{Data: []byte(`{"type": "Feature"}`), ContentType: "application/geo+json"},
		{Data: []byte("caf\xe9,1\n"), ContentType: "text/csv; charset=iso-8859-1"},
		{Data: []byte("name,city\n"), Name: "people.csv"},
		{Data: []byte("# Read me\n"), ContentType: "application/octet-stream", Name: "README.md"},
		{Data: []byte(`[1, 2]`), Name: "https://example.com/data.json?v=2"},
	} {
		assert.Equal(t, Text, Detect(in), "%s %s", in.ContentType, in.Name)
		d, err := x.Extract(context.Background(), in)
		require.NoError(t, err, "%s %s", in.ContentType, in.Name)
		assert.Equal(t, strings.TrimSpace(DecodeText(in.Data, in.ContentType)), d.Text)
		assert.NotEmpty(t, d.Text)
	}
	// Not text: still none of the formats.
	for _, in := range []Input{
		{Data: []byte{0x89, 'P', 'N', 'G'}, ContentType: "image/png"},
		{Data: []byte("GIF89a"), ContentType: "image/svg+xml"},
		{Data: []byte{0, 1, 2}, ContentType: "application/octet-stream", Name: "blob.bin"},
	} {
		assert.Equal(t, Format(""), Detect(in), in.ContentType)
	}
}
