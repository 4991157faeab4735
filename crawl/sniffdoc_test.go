package crawl

import (
	"archive/zip"
	"bytes"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func testdoc(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../extract/testdata/" + name)
	require.NoError(t, err)
	return b
}

// A PDF or an Office file that a server sends as
// application/octet-stream (a download script, an S3 bucket's default,
// Content-Disposition: attachment) or as application/zip (a server that
// does not know the Office types) was never delivered: the crawl refused
// the type before reading a byte, though the extractor tells these
// formats by their bytes. A generic type is now decided by the body: the
// first kilobyte says whether it may be a document (anything else is
// refused without reading on), the whole body which one it is; a page
// without Content-Type holding a docx is a docx, not application/zip.
func TestGenericTypesSniffedForDocuments(t *testing.T) {
	t.Parallel()
	pdf, docx, rtf := testdoc(t, "hello.pdf"), testdoc(t, "hello.docx"), testdoc(t, "hello.rtf")
	var plainZip bytes.Buffer
	zw := zip.NewWriter(&plainZip)
	w, err := zw.Create("photos/cat.jpg")
	require.NoError(t, err)
	_, _ = w.Write([]byte("not a document"))
	require.NoError(t, zw.Close())

	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("root", "/download?id=1", "/download?id=2", "/download?id=3",
			"/bucket/deck", "/old/report.docx", "/untyped", "/archive", "/blob", "/pdfonly"))
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("id") {
		case "1":
			serve("application/octet-stream", pdf)(w, r)
		case "2":
			serve("application/force-download", rtf)(w, r)
		case "3":
			serve("application/octet-stream; name=report.docx", docx)(w, r)
		}
	})
	mux.HandleFunc("/bucket/deck", serve("binary/octet-stream", docx))
	mux.HandleFunc("/old/report.docx", serve("application/zip", docx))
	mux.HandleFunc("/untyped", serve("", docx))
	mux.HandleFunc("/archive", serve("application/octet-stream", plainZip.Bytes()))
	mux.HandleFunc("/pdfonly", serve("application/octet-stream", docx))
	var blobBytes atomic.Int64
	mux.HandleFunc("/blob", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < 20_000; i++ { // 20 MB: more than loopback buffers hold
			n, err := w.Write(make([]byte, 1000))
			blobBytes.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	s := newSite(t, mux)
	docxType := "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1})
	require.NoError(t, r.err)
	for u, want := range map[string]string{
		"/download?id=1":   "application/pdf",
		"/download?id=2":   "application/rtf",
		"/download?id=3":   docxType,
		"/bucket/deck":     docxType,
		"/old/report.docx": docxType,
		"/untyped":         docxType,
	} {
		p := r.page(t, s.URL+u)
		require.Equal(t, want, p.MediaType, u)
		require.NotEmpty(t, p.Body, u)
	}
	require.ErrorIs(t, r.errFor(s.URL+"/archive"), ErrContentType, "a zip that is no document")
	require.ErrorContains(t, r.errFor(s.URL+"/archive"), "application/octet-stream, sniffed no document")
	require.ErrorIs(t, r.errFor(s.URL+"/blob"), ErrContentType)
	require.Less(t, blobBytes.Load(), int64(20_000_000), "a body that is no document is not downloaded")

	// Only the types allowed: a docx sent as octet-stream is not a PDF.
	r = run(t, Config{StartURLs: []string{s.URL + "/pdfonly"}, AllowedContentTypes: []string{"application/pdf"}})
	require.ErrorIs(t, r.errFor(s.URL+"/pdfonly"), ErrContentType)
}

// A PDF under one of its old names (application/x-pdf, application/acrobat)
// and an Office Open XML file under its binary predecessor's type (an
// .xlsx a server maps to application/vnd.ms-excel) were refused too: the
// body decides for those types as well, and a real old binary file (an
// OLE compound file) is still refused.
func TestDocumentAliasesSniffed(t *testing.T) {
	t.Parallel()
	pdf, xlsx := testdoc(t, "hello.pdf"), testdoc(t, "sheet.xlsx")
	ole := append([]byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), make([]byte, 2048)...)
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("root", "/a.pdf", "/b.pdf", "/c.xlsx", "/old.xls"))
	})
	mux.HandleFunc("/a.pdf", serve("application/x-pdf", pdf))
	mux.HandleFunc("/b.pdf", serve("application/acrobat", pdf))
	mux.HandleFunc("/c.xlsx", serve("application/vnd.ms-excel", xlsx))
	mux.HandleFunc("/old.xls", serve("application/vnd.ms-excel", ole))
	s := newSite(t, mux)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1})
	require.NoError(t, r.err)
	require.Equal(t, "application/pdf", r.page(t, s.URL+"/a.pdf").MediaType)
	require.Equal(t, "application/pdf", r.page(t, s.URL+"/b.pdf").MediaType)
	require.Equal(t, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", r.page(t, s.URL+"/c.xlsx").MediaType)
	require.ErrorIs(t, r.errFor(s.URL+"/old.xls"), ErrContentType)
}

// A zip of a generic type is a document only if its whole body says so;
// one larger than MaxPageSize cannot be read to tell, and is refused as
// its type (ErrContentType, which connectors skip), as it was before
// generic types were sniffed: taken for a document too large
// (ErrTooLarge), every big archive a site offers (a software release, a
// data set, served as application/zip or application/octet-stream) was an
// error of every run. A PDF, known from its head, too large is still
// ErrTooLarge, as one served as application/pdf is.
func TestGenericZipTooLargeIsRefusedAsItsType(t *testing.T) {
	t.Parallel()
	big := append([]byte("PK\x03\x04"), bytes.Repeat([]byte("z"), 2<<20)...)
	bigPDF := append(testdoc(t, "hello.pdf"), bytes.Repeat([]byte("%"), 2<<20)...)
	serve := func(ct string, body []byte, length bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			if !length {
				w.(http.Flusher).Flush() // chunked: no Content-Length
			}
			_, _ = w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("root", "/release.zip", "/data.bin", "/chunked.zip", "/big.pdf"))
	})
	mux.HandleFunc("/release.zip", serve("application/zip", big, true))
	mux.HandleFunc("/data.bin", serve("application/octet-stream", big, true))
	mux.HandleFunc("/chunked.zip", serve("application/x-zip-compressed", big, false))
	mux.HandleFunc("/big.pdf", serve("application/octet-stream", bigPDF, true))
	s := newSite(t, mux)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, MaxPageSize: 1 << 20})
	require.NoError(t, r.err)
	for _, u := range []string{"/release.zip", "/data.bin", "/chunked.zip"} {
		err := r.errFor(s.URL + u)
		require.ErrorIs(t, err, ErrContentType, u)
		require.NotErrorIs(t, err, ErrTooLarge, u)
	}
	require.ErrorIs(t, r.errFor(s.URL+"/big.pdf"), ErrTooLarge, "a PDF is known from its head")
}

// A PDF, docx or RTF file that a server sends as a web page or as text
// (text/plain is what Apache and many servers send for a file whose
// extension they do not know; a download script may say text/html) was
// read as what it claimed: its bytes went to the HTML parser or were
// decoded as text, and the index got their binary garbage as the page's
// text. The bytes decide, as they do for a generic type: such a body is
// the document it is (refused when its type is not allowed), and a page
// or text that only mentions "%PDF-" is what it says.
func TestDocumentsServedAsTextAreDocuments(t *testing.T) {
	t.Parallel()
	pdf, docx, rtf := testdoc(t, "hello.pdf"), testdoc(t, "hello.docx"), testdoc(t, "hello.rtf")
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("root", "/report", "/get?id=2", "/letter", "/notes.txt", "/about-pdf"))
	})
	mux.HandleFunc("/report", serve("text/plain", pdf))
	mux.HandleFunc("/get", serve("text/html; charset=utf-8", docx))
	mux.HandleFunc("/letter", serve("text/plain; charset=iso-8859-1", rtf))
	mux.HandleFunc("/notes.txt", serve("text/plain", []byte("A PDF starts with %PDF-1.7 and ends with %%EOF.\n")))
	mux.HandleFunc("/about-pdf", serve("text/html", []byte("<!doctype html><title>PDF</title><p>Files start with %PDF-1.4</p>")))
	s := newSite(t, mux)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1})
	require.NoError(t, r.err)
	for u, want := range map[string]string{
		"/report":    "application/pdf",
		"/get?id=2":  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"/letter":    "application/rtf",
		"/notes.txt": "text/plain",
		"/about-pdf": "text/html",
	} {
		p := r.page(t, s.URL+u)
		require.Equal(t, want, p.MediaType, u)
		require.NotEmpty(t, p.Body, u)
	}
	require.Empty(t, r.page(t, s.URL+"/get?id=2").Text, "a docx is not parsed as HTML")
	require.Equal(t, "PDF", r.page(t, s.URL+"/about-pdf").Title)

	// A document of a type the task does not allow is refused, whatever
	// its server calls it.
	r = run(t, Config{StartURLs: []string{s.URL + "/report"}, AllowedContentTypes: []string{"text/plain", "text/html"}})
	require.ErrorIs(t, r.errFor(s.URL+"/report"), ErrContentType)
	require.ErrorContains(t, r.errFor(s.URL+"/report"), "text/plain, sniffed application/pdf")
}

// serve answers body with the Content-Type ct (none when ct is empty).
func serve(ct string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct == "" {
			w.Header()["Content-Type"] = nil
		} else {
			w.Header().Set("Content-Type", ct)
		}
		_, _ = w.Write(body)
	}
}
