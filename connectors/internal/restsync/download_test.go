package restsync

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/ingest"
)

// A file of a format that has no text to extract (a screenshot posted to
// a Webex space, a zip archive in Objective) is delivered with its bytes
// and no EXTRACT_ERROR, as a mail attachment is: every such file carried
// EXTRACT_ERROR "extract: format not supported", which reads as a failed
// extraction to whoever looks for documents whose text could not be read.
// A document that fails (a damaged docx) still gets it.
func TestFileContentUnsupportedFormatIsNoError(t *testing.T) {
	x, err := extract.New(extract.Config{})
	require.NoError(t, err)
	for _, tc := range []struct {
		file      File
		name      string
		wantError bool
	}{
		{File{Data: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), ContentType: "image/png"}, "screenshot.png", false},
		{File{Data: []byte("PK\x05\x06" + string(make([]byte, 18))), ContentType: "application/zip"}, "archive.zip", false},
		{File{Data: []byte("hello"), ContentType: "text/plain"}, "a.txt", false},
		{File{Data: []byte("PK\x03\x04 cut short"), ContentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}, "report.docx", true},
	} {
		var doc ingest.Document
		fields := map[string]string{}
		FileContent(context.Background(), x, true, &tc.file, tc.name, &doc, func(name, value string) { fields[name] = value })
		_, has := fields["EXTRACT_ERROR"]
		assert.Equal(t, tc.wantError, has, "%s: %v", tc.name, fields)
		assert.Equal(t, tc.file.Data, doc.Source, tc.name)
	}
}
