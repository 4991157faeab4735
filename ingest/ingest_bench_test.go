package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// benchDocs returns n documents of about 5 KB each, shaped like crawled
// pages: a handful of fields and ~4.5 KB of text with line breaks.
func benchDocs(n int) ([]*Document, int64) {
	para := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 10) + "\n"
	text := strings.Repeat(para, 10)
	docs := make([]*Document, n)
	var size int64
	for i := range docs {
		ref := fmt.Sprintf("http://127.0.0.1:8080/docs/section-%04d/page-%06d.html", i/50, i)
		docs[i] = &Document{
			Reference: ref,
			Fields: []Field{
				{Name: "AUTN_IDENTIFIER", Value: "PGlkIHM9Ik1ZVEFTSzEiIHI9Imh0dHA6Ly8xMjcuMC4wLjE6ODA4MC8iLz4="},
				{Name: FieldTitle, Value: fmt.Sprintf("Page %d of the documentation", i)},
				{Name: "URL", Value: ref},
				{Name: "CONTENTTYPE", Value: "text/html; charset=utf-8"},
				{Name: "LASTMODIFIED", Value: "Tue, 05 Nov 2024 10:00:00 GMT"},
			},
			Content: text,
		}
		size += int64(len(ref) + len(text) + 200)
	}
	return docs, size
}

// BenchmarkTargetAdd measures durable delivery of batches of 100 documents
// of ~5 KB (one fsynced file, or one fsynced append, per batch).
func BenchmarkTargetAdd(b *testing.B) {
	for _, typ := range []string{TypeIDX, TypeJSONL} {
		b.Run(typ, func(b *testing.B) {
			docs, size := benchDocs(100)
			tg, err := Open(Options{Type: typ, Directory: b.TempDir(), BatchSize: 100}, slog.New(slog.DiscardHandler))
			require.NoError(b, err)
			defer func() { _ = tg.Close() }()
			ctx := context.Background()
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if err := tg.Add(ctx, docs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(docs))/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

// BenchmarkWriteIDX measures the IDX encoder alone (no disk).
func BenchmarkWriteIDX(b *testing.B) {
	docs, size := benchDocs(100)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteIDX(io.Discard, docs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(docs))/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkReadIDX measures the IDX parser on the same batch.
func BenchmarkReadIDX(b *testing.B) {
	docs, _ := benchDocs(100)
	var buf bytes.Buffer
	require.NoError(b, WriteIDX(&buf, docs...))
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadIDX(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(docs))/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkCFSAdds measures building the Ingest request body for a batch.
func BenchmarkCFSAdds(b *testing.B) {
	docs, size := benchDocs(100)
	b.SetBytes(size)
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = appendAdds(buf[:0], docs)
	}
	b.ReportMetric(float64(b.N*len(docs))/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkCFSAdd measures Adds to a CFS that discards the request (on
// 127.0.0.1): "pages" is a batch of 100 documents of ~5 KB of text,
// "sources" 16 documents with a 1 MiB Source each. B/op is what the
// target allocates to send them; its peak memory is a few times the
// request body.
func BenchmarkCFSAdd(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, successReply)
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	require.NoError(b, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(b, err)
	pages, pagesSize := benchDocs(100)
	src := bytes.Repeat([]byte("%PDF-1.7 binary \x00\xff\xfe stream of a large file +/= "), (1<<20)/48)
	sources := make([]*Document, 16)
	for i := range sources {
		sources[i] = &Document{Reference: fmt.Sprintf("http://site/files/%04d.pdf", i), Fields: []Field{{Name: "CONTENTTYPE", Value: "application/pdf"}}, Source: src}
	}
	for _, bb := range []struct {
		name string
		docs []*Document
		size int64
	}{{"pages", pages, pagesSize}, {"sources", sources, int64(len(sources) * len(src))}} {
		b.Run(bb.name, func(b *testing.B) {
			tg, err := Open(Options{Type: TypeCFS, Host: u.Hostname(), Port: port, BatchSize: 100}, slog.New(slog.DiscardHandler))
			require.NoError(b, err)
			defer func() { _ = tg.Close() }()
			ctx := context.Background()
			b.SetBytes(bb.size)
			b.ReportAllocs()
			for b.Loop() {
				if err := tg.Add(ctx, bb.docs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
