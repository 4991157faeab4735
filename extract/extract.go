package extract

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectorhq/connector/internal/panics"
)

// Version is the version of the extraction's output. Connectors record it
// with every document they deliver and deliver again, once, on their next
// Synchronize, a document recorded under another version, so that a fix to
// extraction reaches what is already indexed without the source changing
// (docs/extraction.md, "Re-extraction after an upgrade").
//
// Bump it with any change that alters the text or fields extracted from a
// document already extracted (a fix or a new feature of a format, of
// detection, of the media types read as text), not with a change of speed,
// bounds or errors alone: every bump re-delivers every document of every
// task once.
//
// 1: text/* subtypes read as text, tables' empty and repeated cells,
// SmartArt, RTF font charsets, undeclared UTF-8 HTML, paragraphs in HTML
// cells, PAGE_COUNT of a cut PDF. Records without a version predate it.
// 2: docx and pptx comments, self-closed script, style, title... in HTML,
// the first of several HTML titles.
// 3: the line breaks of HTML's <pre>, the charset of XHTML's XML
// declaration, Office properties where the package's relationships say,
// OpenDocument's repeated rows, the _xHHHH_ escapes of xlsx strings,
// docx's imported parts (w:altChunk), OpenDocument comments without
// their author's initials, OpenDocument alternative text and base64
// images left out, OpenDocument heading numbers a word of their own,
// HTML's center, menu, legend... blocks, XHTML's xml:lang, rubies'
// readings left out, docx SmartArt, xlsx comments.
// 4: Office and OpenDocument parts in UTF-16 or another declared
// encoding, or holding bytes that are not UTF-8 or control characters
// XML does not allow, or a comment or CDATA section
// holding a '<' more than 64 KiB before its end (they failed the
// document); the XMP metadata of a PDF without document information;
// NUL bytes dropped from RTF's and HTML's text; RTF's code page 65001;
// text and HTML declared as an old binary Office format; RTF text boxes,
// RTF footnotes of one paragraph on lines of their own, RTF comments;
// HTML rubies' readings left out; RTF rows without trailing tabs.
// 5: Office and OpenDocument parts holding a character reference to a
// control character XML does not allow ("&#1;": they failed the document);
// HTML's <meta charset> in the head past its first 1024 bytes; HTML's
// byte order mark left out of the text; RTF WordArt, docx legacy WordArt;
// soft hyphens dropped from every format's text; an HTML ruby's reading
// left open ends with its block (it took the rest of the document).
const Version = 5

// Format is a document format the package extracts text from.
type Format string

// The formats. Their names are the keys of the ExtractFormats setting.
const (
	PDF  Format = "pdf"
	DOCX Format = "docx"
	XLSX Format = "xlsx"
	PPTX Format = "pptx"
	ODT  Format = "odt"
	ODS  Format = "ods"
	ODP  Format = "odp"
	RTF  Format = "rtf"
	HTML Format = "html"
	Text Format = "txt"
)

// Formats lists every format, in documentation order.
var Formats = []Format{PDF, DOCX, XLSX, PPTX, ODT, ODS, ODP, RTF, HTML, Text}

// ParseFormat returns the format named s (case-insensitive; "text" is
// also accepted for txt).
func ParseFormat(s string) (Format, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "text" {
		return Text, true
	}
	for _, f := range Formats {
		if string(f) == s {
			return f, true
		}
	}
	return "", false
}

// Defaults of Limits.
const (
	DefaultMaxInputBytes    = 64 << 20
	DefaultMaxTextBytes     = 16 << 20
	DefaultTimeout          = 30 * time.Second
	DefaultMaxMemoryBytes   = 1 << 30
	DefaultMaxPages         = 10_000
	DefaultMaxArchiveMember = 100_000
)

// Limits bound the work and memory of one extraction. Zero fields take the
// defaults above.
type Limits struct {
	// MaxInputBytes: a larger document is not read (ErrTooLarge).
	MaxInputBytes int64
	// MaxTextBytes: text beyond this many bytes is cut (Document.Truncated),
	// not an error.
	MaxTextBytes int
	// Timeout bounds one extraction (ErrTimeout).
	Timeout time.Duration
	// MaxMemoryBytes bounds memory: the address space of the PDF extractor
	// process, and the total uncompressed bytes read from the members of an
	// Office or OpenDocument archive plus what is kept of them to look
	// values up in (a workbook's shared strings) (past it: ErrLimit, which
	// is what a zip bomb gets).
	MaxMemoryBytes int64
	// MaxPages: pages of a PDF beyond this are left out (Truncated).
	MaxPages int
}

func (l Limits) withDefaults() Limits {
	if l.MaxInputBytes <= 0 {
		l.MaxInputBytes = DefaultMaxInputBytes
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = DefaultMaxTextBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxMemoryBytes <= 0 {
		l.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	if l.MaxPages <= 0 {
		l.MaxPages = DefaultMaxPages
	}
	return l
}

// Config configures an Extractor.
type Config struct {
	// Formats are the formats extracted; nil means all of Formats. A
	// document of another format is reported as ErrUnsupported.
	Formats []Format
	Limits  Limits
	// PDFToText is the pdftotext program (Debian package poppler-utils):
	// a path, or a name looked up in PATH. "" means "pdftotext". When it
	// cannot be found, PDFs fail with ErrUnavailable.
	PDFToText string
	// Logger receives a debug line per extraction. nil: discard.
	Logger *slog.Logger
}

// Input is one document to extract.
type Input struct {
	// Data is the whole document.
	Data []byte
	// ContentType is the Content-Type header or media type ("" when
	// unknown); its charset parameter is used for text and HTML.
	ContentType string
	// Name is a file name or URL whose extension helps detection ("" when
	// unknown).
	Name string
}

// Document is what Extract found.
type Document struct {
	Format Format
	// Text is the document's text, valid UTF-8 without NUL: paragraphs and rows on
	// lines of their own, table cells separated by tabs (an empty cell
	// keeps its place, trailing empty cells write nothing), at most
	// Limits.MaxTextBytes bytes.
	Text string
	// Truncated is set when Text was cut at MaxTextBytes or a PDF at
	// MaxPages.
	Truncated bool

	Title, Author, Subject, Keywords, Description, Language string
	Created, Modified                                       time.Time
	// Pages is the number of pages (PDF; Office and OpenDocument documents
	// when their metadata says), slides (pptx, odp) or sheets (xlsx, ods);
	// 0 when unknown. It is the document's, also when Text is cut: for a
	// cut PDF, pdfinfo's count (the pages read when pdfinfo cannot tell).
	Pages int
}

// Errors (matched with errors.Is on the *Error Extract returns).
var (
	// ErrUnsupported: the format is not one the Extractor handles.
	ErrUnsupported = errors.New("format not supported")
	// ErrTooLarge: the input exceeds Limits.MaxInputBytes.
	ErrTooLarge = errors.New("document too large")
	// ErrTimeout: the extraction took longer than Limits.Timeout.
	ErrTimeout = errors.New("extraction timed out")
	// ErrLimit: the document needs more memory than Limits.MaxMemoryBytes
	// (a zip bomb, a PDF whose extraction exceeds the memory limit).
	ErrLimit = errors.New("document exceeds the memory limit")
	// ErrMalformed: the document is damaged or not what it claims to be.
	ErrMalformed = errors.New("malformed document")
	// ErrEncrypted: the document is encrypted with a password.
	ErrEncrypted = errors.New("document is encrypted")
	// ErrUnavailable: the external program the format needs is missing.
	ErrUnavailable = errors.New("extractor unavailable")
)

// Error is an extraction failure.
type Error struct {
	Format Format // "" when detection failed
	Err    error  // wraps one of the sentinels above
}

func (e *Error) Error() string {
	if e.Format == "" {
		return "extract: " + e.Err.Error()
	}
	return "extract " + string(e.Format) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Extractor extracts text. It is safe for concurrent use; it holds no
// state besides its configuration.
type Extractor struct {
	formats   map[Format]bool
	limits    Limits
	pdftotext string // resolved path, "" when missing
	pdfErr    error  // why pdftotext is unavailable
	pdfinfo   string // pdfinfo beside pdftotext (pages of a cut PDF), "" when missing
	log       *slog.Logger
}

// New returns an Extractor. It looks pdftotext up once; a missing
// pdftotext is not an error here (PDFs then fail with ErrUnavailable, and
// PDFAvailable says why).
func New(cfg Config) (*Extractor, error) {
	e := &Extractor{formats: map[Format]bool{}, limits: cfg.Limits.withDefaults(), log: cfg.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	fs := cfg.Formats
	if fs == nil {
		fs = Formats
	}
	for _, f := range fs {
		if _, ok := ParseFormat(string(f)); !ok {
			return nil, fmt.Errorf("extract: unknown format %q", f)
		}
		e.formats[f] = true
	}
	if e.formats[PDF] {
		e.pdftotext, e.pdfErr = lookPDFToText(cfg.PDFToText)
		e.pdfinfo = lookPDFInfo(e.pdftotext)
	}
	return e, nil
}

// Limits returns the effective limits.
func (e *Extractor) Limits() Limits { return e.limits }

// Handles reports whether f is extracted by e.
func (e *Extractor) Handles(f Format) bool { return e.formats[f] }

// PDFAvailable returns nil when PDFs can be extracted, else why not.
func (e *Extractor) PDFAvailable() error {
	if !e.formats[PDF] {
		return fmt.Errorf("%w: pdf is not an extracted format", ErrUnsupported)
	}
	return e.pdfErr
}

// Extract detects in's format and extracts its text and metadata. It
// returns an *Error for an unsupported format (ErrUnsupported), an input
// over the limits, a timeout, a damaged document or an extractor that
// failed; it never panics and returns within about Limits.Timeout (or when
// ctx ends, with ctx's error).
func (e *Extractor) Extract(ctx context.Context, in Input) (doc *Document, err error) {
	f := Detect(in)
	if f == "" || !e.formats[f] {
		return nil, &Error{Format: f, Err: ErrUnsupported}
	}
	if int64(len(in.Data)) > e.limits.MaxInputBytes {
		return nil, &Error{Format: f, Err: fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(in.Data), e.limits.MaxInputBytes)}
	}
	start := time.Now()
	// Plain text is decoded in one pass bounded by MaxInputBytes, which
	// never looks at a context: it gets no timer (a timer per attachment,
	// most of which are text, cost more than decoding a small one); its
	// time is checked once done.
	tctx := ctx
	if f != Text {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeoutCause(ctx, e.limits.Timeout, ErrTimeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			msg := panics.Text(r)
			e.log.Error("extractor panicked", "format", f, "panic", msg, "stack", string(debug.Stack()))
			doc, err = nil, &Error{Format: f, Err: fmt.Errorf("%w: extractor failed: %s", ErrMalformed, msg)}
		}
	}()
	x := &extraction{ctx: tctx, limits: e.limits, out: newTextBuilder(e.limits.MaxTextBytes)}
	doc = &Document{Format: f}
	switch f {
	case PDF:
		err = e.pdf(x, in.Data, doc)
	case DOCX, XLSX, PPTX:
		err = ooxml(x, f, in.Data, doc)
	case ODT, ODS, ODP:
		err = odf(x, f, in.Data, doc)
	case RTF:
		err = rtf(x, in.Data, doc)
	case HTML:
		err = htmlDoc(x, in.Data, in.ContentType, doc)
	case Text:
		x.out.WriteString(DecodeText(in.Data, in.ContentType))
		if time.Since(start) > e.limits.Timeout {
			err = ErrTimeout
		}
	}
	if err == nil {
		if cerr := context.Cause(tctx); cerr != nil && tctx.Err() != nil {
			err = cerr
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
			err = fmt.Errorf("%w after %s", ErrTimeout, e.limits.Timeout)
		}
		if e.log.Enabled(ctx, slog.LevelDebug) {
			e.log.Debug("extraction failed", "format", f, "name", in.Name, "bytes", len(in.Data), "error", err, "elapsed", time.Since(start))
		}
		return nil, &Error{Format: f, Err: err}
	}
	doc.Text = x.out.String()
	doc.Truncated = doc.Truncated || x.out.truncated
	doc.Title = cleanLine(doc.Title)
	doc.Author = cleanLine(doc.Author)
	doc.Subject = cleanLine(doc.Subject)
	doc.Keywords = cleanLine(doc.Keywords)
	doc.Description = strings.TrimSpace(dropSoftHyphens(strings.ReplaceAll(strings.ToValidUTF8(doc.Description, "\uFFFD"), "\x00", "")))
	doc.Language = cleanLine(doc.Language)
	if !e.log.Enabled(ctx, slog.LevelDebug) {
		return doc, nil // its attributes are not even built (an allocation each)
	}
	e.log.Debug("extracted", "format", f, "name", in.Name, "bytes", len(in.Data), "text_bytes", len(doc.Text),
		"pages", doc.Pages, "truncated", doc.Truncated, "elapsed", time.Since(start))
	return doc, nil
}

// extraction is the state of one Extract call shared by the formats.
type extraction struct {
	ctx    context.Context
	limits Limits
	out    *textBuilder
	ticks  int
}

// check returns the context's cause every 256 calls (cheap enough to call
// per token).
func (x *extraction) check() error {
	x.ticks++
	if x.ticks&255 != 0 {
		return nil
	}
	if x.ctx.Err() != nil {
		return context.Cause(x.ctx)
	}
	return nil
}

// cleanLine makes a metadata value one line of valid UTF-8.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return strings.Join(strings.Fields(dropSoftHyphens(s)), " ")
}

// softHyphen (U+00AD) marks where a word may break across lines: it is
// not seen unless the word breaks there, and a word holding it is not
// the word searched for ("Ver\u00adsicherung"), so it is no text, as
// docx's w:softHyphen and RTF's \- are not.
const softHyphen = "\u00ad"

// dropSoftHyphens returns s without its soft hyphens.
func dropSoftHyphens(s string) string {
	if !strings.Contains(s, softHyphen) {
		return s
	}
	return strings.ReplaceAll(s, softHyphen, "")
}

// textBuilder collects text up to a byte limit, with at most one blank
// line in a row and no leading spaces on a line.
type textBuilder struct {
	b         strings.Builder
	max       int
	truncated bool
	pendingNL int  // newlines owed before the next text
	pendingSp bool // a space owed before the next text
	// pendingTab: cell separators owed before the next text of the line
	// (the empty cells before it); a line's last cells, when empty, write
	// nothing.
	pendingTab int
	lineStart  bool
}

func newTextBuilder(max int) *textBuilder { return &textBuilder{max: max, lineStart: true} }

// full reports whether the limit was reached (callers may stop early).
func (t *textBuilder) full() bool { return t.truncated }

// WriteString appends s; runs of spaces and tabs inside s are kept as
// written except at line starts. "\n", "\r\n" and a lone "\r" (old Mac
// text) end lines. NUL bytes and soft hyphens are dropped.
func (t *textBuilder) WriteString(s string) {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	s = dropSoftHyphens(s)
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	for len(s) > 0 && !t.truncated {
		i := strings.IndexByte(s, '\n')
		line := s
		if i >= 0 {
			line = s[:i]
		}
		t.text(line)
		if i < 0 {
			return
		}
		t.newline()
		s = s[i+1:]
	}
}

func (t *textBuilder) text(s string) {
	if t.lineStart {
		s = strings.TrimLeft(s, " ")
	}
	if s == "" {
		return
	}
	if t.b.Len() > 0 {
		switch {
		case t.pendingNL > 0:
			t.emit(strings.Repeat("\n", min(t.pendingNL, 2)))
		case t.pendingSp && t.pendingTab == 0 && !strings.HasPrefix(s, " ") && !strings.HasPrefix(s, "\t"):
			t.emit(" ")
		}
	}
	if t.pendingTab > 0 {
		t.emit(strings.Repeat("\t", min(t.pendingTab, t.max-t.b.Len()+1)))
	}
	t.pendingNL, t.pendingSp, t.pendingTab = 0, false, 0
	t.emit(s)
	t.lineStart = false
}

// newline ends the current line.
func (t *textBuilder) newline() {
	if t.b.Len() > 0 {
		t.pendingNL++
	}
	t.pendingSp, t.pendingTab = false, 0
	t.lineStart = true
}

// block writes s (text that stands apart: notes after their paragraph)
// on lines of its own.
func (t *textBuilder) block(s string) {
	if s == "" {
		return
	}
	if t.pendingNL == 0 {
		t.newline()
	}
	t.WriteString(s)
	t.newline()
}

// space asks for a word break before the next text (none at a line start).
func (t *textBuilder) space() {
	if !t.lineStart {
		t.pendingSp = true
	}
}

// tableCells counts, per open table, the cells of its current row, so
// that a separator goes between two cells and none before a row's first.
type tableCells []int

func (c *tableCells) open() { *c = append(*c, 0) }

func (c *tableCells) close() {
	if n := len(*c); n > 0 {
		*c = (*c)[:n-1]
	}
}

// row starts a row of the innermost table.
func (c tableCells) row() {
	if n := len(c); n > 0 {
		c[n-1] = 0
	}
}

// cell starts a cell of the current row, separated from the one before it
// on out.
func (c tableCells) cell(out *textBuilder) {
	if n := len(c); n > 0 {
		if c[n-1] > 0 {
			out.tab()
		}
		c[n-1]++
	}
}

// tab separates a table cell from the one before it (callers call it
// between cells, not before a row's first). It is written with the next
// text of the line, so that an empty first cell keeps the columns after
// it in place and empty cells at a row's end write nothing.
func (t *textBuilder) tab() { t.tabs(1) }

// tabs is n tab calls.
func (t *textBuilder) tabs(n int) {
	t.pendingTab = min(t.pendingTab+n, t.max+1)
	t.pendingSp = false
}

func (t *textBuilder) emit(s string) {
	if t.b.Len()+len(s) > t.max {
		s = s[:t.max-t.b.Len()]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		t.truncated = true
	}
	t.b.WriteString(s)
}

func (t *textBuilder) String() string {
	s := strings.ToValidUTF8(t.b.String(), "\uFFFD")
	return strings.TrimRight(s, " \t\n")
}
