// Package extract turns documents into text and metadata for indexing:
// PDF, Office Open XML (docx, xlsx, pptx), OpenDocument (odt, ods, odp),
// RTF, HTML and plain text. It is a library of its own so that every
// connector (web pages, mail attachments, files) extracts the same way.
//
//	x, err := extract.New(extract.Config{Limits: extract.Limits{Timeout: 30 * time.Second}})
//	doc, err := x.Extract(ctx, extract.Input{Data: body, ContentType: ct, Name: url})
//	// doc.Text, doc.Title, doc.Author, doc.Pages, ...
//
// # Detection
//
// Detect decides the format from the bytes first (PDF header, RTF header,
// the members of a zip package), then the declared media type, then the
// extension (see Detect).
//
// # Bounds
//
// Every extraction is bounded (Limits): input size, output text size (cut,
// not failed), wall-clock time, memory and PDF pages. Office, OpenDocument,
// RTF, HTML and text are parsed in process by streaming code of this
// package (encoding/xml over archive/zip, a tokenizer for RTF), which
// checks the deadline as it reads and counts every uncompressed byte, and
// what it keeps to look values up in, against the memory limit, so a zip
// bomb stops at the limit; a panic is
// recovered and reported as ErrMalformed. PDFs are read by pdftotext in a
// separate process with an address-space limit, a CPU limit and a
// deadline (pdf.go). Failures are *Error values wrapping one of the
// sentinels ErrUnsupported, ErrTooLarge, ErrTimeout, ErrLimit,
// ErrMalformed, ErrEncrypted or ErrUnavailable.
//
// # Choice of extractors
//
// The choice was measured on documents from Debian packages against
// reference extractors (bench/cmd/extractbench; figures and method in
// bench/RESULTS.md, "Text extraction"; docs/extraction.md summarises).
package extract
