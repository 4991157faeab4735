package restsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/secret"
)

// File is a downloaded file.
type File struct {
	// Data is the content; nil when TooLarge.
	Data []byte
	// Size is the file's size in bytes: len(Data), or what
	// Content-Length announced for a file too large to read (-1 when
	// unknown).
	Size        int64
	ContentType string // media type, without parameters; "" when not given
	Charset     string // the charset parameter of Content-Type, "" when not given
	FileName    string // from Content-Disposition, "" when not given
	// TooLarge: the file is larger than the limit and was not read.
	TooLarge bool
}

// Download GETs u and reads its body, at most limit bytes. A file larger
// than that (by its Content-Length, or once more than limit bytes have
// come) is not read further: its connection is dropped and the File says
// TooLarge with what the headers said, so a file of any size costs at
// most limit bytes of memory. A body that breaks off is read again (up to
// MaxAttempts).
func (c *Client) Download(ctx context.Context, u string, limit int64) (*File, error) {
	backoff := c.opt.Backoff
	for attempt := 1; ; attempt++ {
		f, err := c.download(ctx, u, limit)
		if err == nil || ctx.Err() != nil || attempt >= c.opt.MaxAttempts || !errors.Is(err, ErrBadResponse) {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return f, err
		}
		c.retries.Add(1)
		if serr := c.opt.Sleep(ctx, backoff); serr != nil {
			return nil, serr
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (c *Client) download(ctx context.Context, u string, limit int64) (*File, error) {
	resp, err := c.Do(ctx, &Request{URL: u})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	f := &File{Size: resp.ContentLength, FileName: DispositionName(resp.Header.Get("Content-Disposition"))}
	f.ContentType, f.Charset = mediaType(resp.Header.Get("Content-Type"))
	if resp.ContentLength > limit {
		f.TooLarge = true
		return f, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: GET %s: %w: %w", c.opt.Service, secret.RedactURLs(resp.Request.URL.String()), ErrBadResponse, err)
	}
	if int64(len(data)) > limit {
		f.TooLarge, f.Size = true, -1
		if resp.ContentLength > 0 {
			f.Size = resp.ContentLength
		}
		return f, nil
	}
	f.Data, f.Size = data, int64(len(data))
	return f, nil
}

// mediaType returns the media type of a Content-Type and its charset
// parameter.
func mediaType(ct string) (mt, charset string) {
	if ct == "" {
		return "", ""
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", ""
	}
	return mt, params["charset"]
}

// DispositionName returns the file name a Content-Disposition header gives
// (filename*, else filename), without any folder part; "" when none.
func DispositionName(v string) string {
	if v == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(v)
	name := ""
	if err == nil {
		name = params["filename"]
	} else if i := strings.Index(strings.ToLower(v), "filename="); i >= 0 {
		// A malformed header: take the bare value.
		name = strings.Trim(strings.TrimSpace(strings.SplitN(v[i+len("filename="):], ";", 2)[0]), `"`)
	}
	name = strings.ReplaceAll(name, `\`, "/")
	name = path.Base(name)
	if name == "." || name == "/" {
		return ""
	}
	return strings.ToValidUTF8(name, "")
}

// ContentLength formats a size for a document field ("" when unknown).
func ContentLength(n int64) string {
	if n < 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// FetchHeader sends a HEAD request for u and returns the response's
// header (for a file's name, type and size without its content).
func (c *Client) FetchHeader(ctx context.Context, u string) (http.Header, error) {
	resp, err := c.Do(ctx, &Request{Method: http.MethodHead, URL: u})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp.Header, nil
}

// FileContent fills doc from a downloaded file, as the REST connectors
// index files: its text (when extractText, through x) and its bytes as the
// Source; a file too large to read gets FILE_TOO_LARGE, one the extractor
// fails on EXTRACT_ERROR (not one of a format without text to extract,
// an image or an archive: ErrUnsupported), a cut text TEXT_TRUNCATED
// (through add). name is the file's name, a hint to the extractor.
func FileContent(ctx context.Context, x *extract.Extractor, extractText bool, file *File, name string, doc *ingest.Document, add func(name, value string)) {
	switch {
	case file.TooLarge:
		add("FILE_TOO_LARGE", "true")
	case extractText:
		ct := file.ContentType
		if file.Charset != "" { // a text file is in the charset it was sent in
			if withCS := mime.FormatMediaType(ct, map[string]string{"charset": file.Charset}); withCS != "" {
				ct = withCS
			}
		}
		d, err := x.Extract(ctx, extract.Input{Data: file.Data, ContentType: ct, Name: name})
		switch {
		case errors.Is(err, extract.ErrUnsupported):
			// Not a document format: no text, and nothing failed.
		case err != nil:
			add("EXTRACT_ERROR", err.Error())
		default:
			doc.Content = d.Text
			if d.Truncated {
				add("TEXT_TRUNCATED", "true")
			}
		}
		doc.Source = file.Data
	default:
		doc.Source = file.Data
	}
}
