package httpd

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A document View returns as it is (NoACI) comes from a crawled site, a
// mailbox or a service: opened in a browser on the ACI port's origin, its
// scripts could send actions with Sec-Fetch-Site: same-origin. It is
// served sandboxed (an opaque origin, no scripts) and never sniffed.
func TestViewDocumentIsSandboxed(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	resp, body := e.get(t, "/action=View&Identifier=doc1")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "<html>hello world</html>", string(body))
	require.Equal(t, "sandbox", resp.Header.Get("Content-Security-Policy"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
}
