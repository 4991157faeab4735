package httpd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// textView is testRepo whose View of "page" is a large text document.
type textView struct {
	*testRepo
	content []byte
}

func (r textView) View(ctx context.Context, id string, p messages.Params) (*fetch.ViewResult, error) {
	if id != "page" {
		return r.testRepo.View(ctx, id, p)
	}
	return &fetch.ViewResult{Reference: "http://x/page", MimeType: "text/plain", Content: r.content}, nil
}

// TestViewRangeIsNeverCompressed: a View of part of a document
// (Range=bytes=a-b, HTTP 206) is sent as those bytes, uncompressed,
// whatever the client accepts, so that Content-Range describes the bytes
// sent. Before, a large range of a text document was sent gzip'd (or br)
// with a Content-Range counting uncompressed bytes: a client that resumes
// a download or assembles ranges (RFC 9110 §14: a range is of the
// representation, content coding included) got bytes that did not match
// the offsets it was told.
func TestViewRangeIsNeverCompressed(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 0; b.Len() < 64<<10; i++ {
		fmt.Fprintf(&b, "line %d of a text document that compresses well\n", i)
	}
	content := []byte(b.String())
	e := startWith(t, setup{repo: func(r *testRepo) fetch.Repository { return textView{r, content} }})
	for _, enc := range []string{"gzip", "br", "gzip, deflate, br, zstd"} {
		req, err := http.NewRequest("GET", e.base+"/action=View&Identifier=page&Range=bytes=100-20099", nil)
		require.NoError(t, err)
		req.Header.Set("Accept-Encoding", enc)
		resp, err := http.DefaultTransport.RoundTrip(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 206, resp.StatusCode, enc)
		require.Empty(t, resp.Header.Get("Content-Encoding"), "a 206 to a client accepting %q", enc)
		require.Equal(t, fmt.Sprintf("bytes 100-20099/%d", len(content)), resp.Header.Get("Content-Range"))
		require.Equal(t, content[100:20100], body, enc)
		// The whole document is still compressed for such a client.
		req, err = http.NewRequest("GET", e.base+"/action=View&Identifier=page", nil)
		require.NoError(t, err)
		req.Header.Set("Accept-Encoding", enc)
		resp, err = http.DefaultTransport.RoundTrip(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.NotEmpty(t, resp.Header.Get("Content-Encoding"), "the whole document to a client accepting %q", enc)
	}
}
