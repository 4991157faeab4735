package restsync

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/ingest"
	"github.com/stretchr/testify/require"
)

// A text file a service sends as "text/plain; charset=koi8-r" kept only
// its media type: extraction, without the charset, read it as
// Windows-1252 and indexed "ðÒÉ×ÅÔ" for "Привет". The charset goes with
// the file to the extractor.
func TestDownloadedTextInItsCharset(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=koi8-r")
		_, _ = w.Write([]byte("\xf0\xd2\xc9\xd7\xc5\xd4"))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil, &waits{})
	f, err := c.Download(context.Background(), "/notes", 1<<20)
	require.NoError(t, err)
	require.Equal(t, "text/plain", f.ContentType)
	x, err := extract.New(extract.Config{})
	require.NoError(t, err)
	doc := &ingest.Document{}
	FileContent(context.Background(), x, true, f, "notes.txt", doc, func(name, value string) { t.Errorf("%s=%s", name, value) })
	require.Equal(t, "Привет", doc.Content)
}
