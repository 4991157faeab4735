package extract

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newX(t *testing.T, l Limits) *Extractor {
	t.Helper()
	x, err := New(Config{Limits: l})
	require.NoError(t, err)
	return x
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// The documents of testdata, written by LibreOffice, give their text and
// metadata whatever the format.
func TestRealDocuments(t *testing.T) {
	requirePDFToText(t)
	x := newX(t, Limits{})
	for _, tc := range []struct {
		file   string
		format Format
		want   []string
		pages  int
	}{
		{"hello.pdf", PDF, []string{"Quarterly Report", "The zebra crossed the meadow at dawn.", "café and naïve"}, 1},
		{"hello.docx", DOCX, []string{"Quarterly Report\n\nThe zebra crossed the meadow at dawn.\nSecond paragraph with café and naïve words."}, 0},
		{"hello.odt", ODT, []string{"Quarterly Report\n\nThe zebra crossed the meadow at dawn.\nSecond paragraph with café and naïve words."}, 1},
		{"hello.rtf", RTF, []string{"Quarterly Report", "The zebra crossed the meadow at dawn.", "Second paragraph with café and naïve words."}, 0},
		{"hello.txt", Text, []string{"The zebra crossed the meadow at dawn."}, 0},
		{"sheet.xlsx", XLSX, []string{"Name\tCity\nAda\tLondon\nGrace\tArlington"}, 1},
		{"sheet.ods", ODS, []string{"Name\tCity\nAda\tLondon\nGrace\tArlington"}, 1},
		{"slides.odp", ODP, []string{"zebra crossed the meadow"}, 1},
		{"slides.pptx", PPTX, []string{"zebra crossed the meadow"}, 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data := read(t, tc.file)
			// Detected by content, whatever the name and declared type.
			require.Equal(t, tc.format, Detect(Input{Data: data, Name: tc.file}))
			d, err := x.Extract(context.Background(), Input{Data: data, Name: tc.file})
			require.NoError(t, err)
			require.Equal(t, tc.format, d.Format)
			for _, w := range tc.want {
				assert.Contains(t, d.Text, w)
			}
			assert.Equal(t, tc.pages, d.Pages)
			assert.False(t, d.Truncated)
		})
	}
}

func TestHTML(t *testing.T) {
	x := newX(t, Limits{})
	page := `<!doctype html><html lang="fr"><head><meta charset="windows-1252"><title>Le titre</title>
<meta name="author" content="Ada"><style>p{}</style><script>var x=1</script></head>
<body><h1>Caf` + "\xe9" + `</h1><p>un <b>deux</b> trois</p><table><tr><td>a</td><td>b</td></tr></table></body></html>`
	d, err := x.Extract(context.Background(), Input{Data: []byte(page), ContentType: "text/html"})
	require.NoError(t, err)
	assert.Equal(t, "Café\n\nun deux trois\n\na\tb", d.Text)
	assert.Equal(t, "Le titre", d.Title)
	assert.Equal(t, "Ada", d.Author)
	assert.Equal(t, "fr", d.Language)
}

// A page without a <title> takes its title from <meta name="dc.title">;
// a <title> wins over it, wherever the meta element is.
func TestHTMLDublinCoreTitle(t *testing.T) {
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: []byte(`<html><head><meta name="DC.title" content="Dublin"></head><body>x</body></html>`), ContentType: "text/html"})
	require.NoError(t, err)
	assert.Equal(t, "Dublin", d.Title)
	for _, page := range []string{
		`<html><head><meta name="dc.title" content="Dublin"><title>Own</title></head><body>x</body></html>`,
		`<html><head><title>Own</title><meta name="dc.title" content="Dublin"></head><body>x</body></html>`,
	} {
		d, err = x.Extract(context.Background(), Input{Data: []byte(page), ContentType: "text/html"})
		require.NoError(t, err)
		assert.Equal(t, "Own", d.Title, page)
	}
}

func TestDecodeText(t *testing.T) {
	assert.Equal(t, "héllo", DecodeText([]byte("h\xe9llo"), "text/plain; charset=iso-8859-1"))
	assert.Equal(t, "héllo", DecodeText([]byte("h\xe9llo"), "text/plain"), "not UTF-8, no charset: Windows-1252")
	assert.Equal(t, "héllo", DecodeText([]byte("\xef\xbb\xbfhéllo"), "text/plain; charset=iso-8859-1"), "a BOM wins")
	assert.Equal(t, "hi", DecodeText([]byte("\xff\xfeh\x00i\x00"), ""))
}

func TestRTFFeatures(t *testing.T) {
	x := newX(t, Limits{})
	src := `{\rtf1\ansi\ansicpg1251{\fonttbl{\f0 Times;}}{\info{\title The \u1058?itle}{\author Ann}}` +
		`{\*\generator Hand}\pard \'cf\'f0\'e8\'e2\'e5\'f2\par Tab\tab here\line next{\field{\*\fldinst HYPERLINK "x"}{\fldrslt link}}` +
		`\par\uc2 \u8364\'80\'80 euro {\uc1\u-10179?\u-8704?} smile\par{\pict 0123abcd}end}`
	d, err := x.Extract(context.Background(), Input{Data: []byte(src)})
	require.NoError(t, err)
	assert.Equal(t, "Привет\nTab\there\nnextlink\n€ euro \U0001F600 smile\nend", d.Text)
	assert.Equal(t, "The Тitle", d.Title)
	assert.Equal(t, "Ann", d.Author)
}

// zipDoc builds an Office Open XML package whose document.xml holds about
// n bytes of one repeated run: a zip bomb when n is large.
func zipDoc(t *testing.T, n int64) []byte {
	t.Helper()
	head := []byte(`<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>`)
	tail := []byte(`</w:t></w:r></w:p></w:body></w:document>`)
	return bombZip(t, map[string]string{"[Content_Types].xml": `<?xml version="1.0"?><Types/>`},
		"word/document.xml", head, []byte("bomb "), tail, n)
}

// bombZip builds a zip of the members of small and one member, big, of
// about n bytes: head, unit repeated, tail. The deflate stream is built by
// repeating one compressed block (each block refers only to itself), so a
// 4 GiB bomb costs the test a CRC, not a compression.
func bombZip(t *testing.T, small map[string]string, big string, head, unit, tail []byte, n int64) []byte {
	t.Helper()
	block := func(data []byte, final bool) []byte {
		var b bytes.Buffer
		fw, err := flate.NewWriter(&b, flate.BestCompression)
		require.NoError(t, err)
		_, err = fw.Write(data)
		require.NoError(t, err)
		if final {
			require.NoError(t, fw.Close())
		} else {
			require.NoError(t, fw.Flush())
		}
		return b.Bytes()
	}
	chunk := bytes.Repeat(unit, (1<<20)/len(unit)) // about 1 MiB
	cchunk := block(chunk, false)
	var comp bytes.Buffer
	comp.Write(block(head, false))
	crc := crc32.Update(0, crc32.IEEETable, head)
	size := int64(len(head))
	for size < n {
		comp.Write(cchunk)
		crc = crc32.Update(crc, crc32.IEEETable, chunk)
		size += int64(len(chunk))
	}
	comp.Write(block(tail, true))
	crc = crc32.Update(crc, crc32.IEEETable, tail)
	size += int64(len(tail))

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(small))
	for name := range small {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = io.WriteString(w, small[name])
		require.NoError(t, err)
	}
	w, err := zw.CreateRaw(&zip.FileHeader{Name: big, Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: uint64(size)})
	require.NoError(t, err)
	_, err = w.Write(comp.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// A docx that inflates to 4 GiB stops at the memory limit, quickly, with
// ErrLimit.
func TestZipBomb(t *testing.T) {
	bomb := zipDoc(t, 4<<30)
	t.Logf("zip bomb: %d bytes inflating to 4 GiB", len(bomb))
	x := newX(t, Limits{MaxMemoryBytes: 4 << 20, MaxTextBytes: 64 << 20, Timeout: 5 * time.Minute})
	_, err := x.Extract(context.Background(), Input{Data: bomb, Name: "bomb.docx"})
	require.ErrorIs(t, err, ErrLimit)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, DOCX, e.Format)
}

// Text is cut at MaxTextBytes, not failed.
func TestTextLimit(t *testing.T) {
	x := newX(t, Limits{MaxTextBytes: 1000})
	d, err := x.Extract(context.Background(), Input{Data: zipDoc(t, 1<<20), Name: "big.docx"})
	require.NoError(t, err)
	assert.True(t, d.Truncated)
	assert.LessOrEqual(t, len(d.Text), 1000)
}

func TestDeadline(t *testing.T) {
	x := newX(t, Limits{Timeout: time.Millisecond, MaxMemoryBytes: 1 << 40, MaxTextBytes: 1 << 40})
	start := time.Now()
	_, err := x.Extract(context.Background(), Input{Data: zipDoc(t, 2<<30), Name: "slow.docx"})
	require.ErrorIs(t, err, ErrTimeout)
	assert.Less(t, time.Since(start), 20*time.Second)

	// A cancelled caller gets its own cause back.
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("stopped")
	cancel(cause)
	_, err = newX(t, Limits{}).Extract(ctx, Input{Data: read(t, "hello.odt")})
	require.ErrorIs(t, err, cause)
}

// Plain text gets no timer, yet keeps both rules: text decoded past the
// timeout is reported as a timeout, and a cancelled caller gets its cause.
func TestTextDeadlineAndCancel(t *testing.T) {
	text := Input{Data: bytes.Repeat([]byte("plain words\n"), 1<<16), ContentType: "text/plain"}
	_, err := newX(t, Limits{Timeout: time.Nanosecond}).Extract(context.Background(), text)
	require.ErrorIs(t, err, ErrTimeout)
	d, err := newX(t, Limits{}).Extract(context.Background(), text)
	require.NoError(t, err)
	require.Equal(t, Text, d.Format)

	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("stopped")
	cancel(cause)
	_, err = newX(t, Limits{}).Extract(ctx, text)
	require.ErrorIs(t, err, cause)
}

func TestTooLarge(t *testing.T) {
	x := newX(t, Limits{MaxInputBytes: 10})
	_, err := x.Extract(context.Background(), Input{Data: read(t, "hello.docx")})
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestTruncatedAndDamaged(t *testing.T) {
	requirePDFToText(t)
	x := newX(t, Limits{})
	for _, name := range []string{"hello.pdf", "hello.docx", "hello.odt", "sheet.xlsx", "slides.pptx", "hello.rtf"} {
		data := read(t, name)
		for _, cut := range []int{len(data) / 2, len(data) - 40, 100} {
			d, err := x.Extract(context.Background(), Input{Data: data[:cut], Name: name})
			if err != nil {
				var e *Error
				require.ErrorAs(t, err, &e, name)
				assert.True(t, errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupported), "%s cut at %d: %v", name, cut, err)
			} else {
				assert.NotNil(t, d)
			}
		}
	}
	_, err := x.Extract(context.Background(), Input{Data: []byte("%PDF-1.4 not a pdf at all"), ContentType: "application/pdf"})
	require.ErrorIs(t, err, ErrMalformed)
}

// A PDF whose page tree claims two billion pages ends in bounded time and
// memory: pdftotext reads at most MaxPages, under its address-space limit.
func TestPDFHugePageCount(t *testing.T) {
	requirePDFToText(t)
	pdf := hugePagesPDF()
	x := newX(t, Limits{MaxPages: 50, Timeout: 20 * time.Second, MaxMemoryBytes: 64 << 20})
	start := time.Now()
	d, err := x.Extract(context.Background(), Input{Data: pdf})
	if err == nil {
		assert.LessOrEqual(t, d.Pages, 50)
	} else {
		var e *Error
		require.ErrorAs(t, err, &e)
	}
	assert.Less(t, time.Since(start), 30*time.Second)
}

// hugePagesPDF writes a PDF whose /Pages node says /Count 2147483647 and
// whose one Kids entry is itself (a loop).
func hugePagesPDF() []byte {
	return buildPDF("",
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Count 2147483647 /Kids [2 0 R 3 0 R] >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
		"<< /Length 0 >>\nstream\n\nendstream")
}

// buildPDF writes a PDF of the objects given (numbered from 1, the first
// the catalog) with trailer entries besides /Size and /Root.
func buildPDF(trailer string, objs ...string) []byte {
	var b bytes.Buffer
	var offs []int
	b.WriteString("%PDF-1.4\n")
	for _, s := range objs {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), s)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, trailer, xref)
	return b.Bytes()
}

func TestDeepRTF(t *testing.T) {
	x := newX(t, Limits{})
	_, err := x.Extract(context.Background(), Input{Data: []byte(`{\rtf1 ` + strings.Repeat("{", 100000))})
	require.ErrorIs(t, err, ErrMalformed)
}

func TestUnsupportedAndFormats(t *testing.T) {
	x, err := New(Config{Formats: []Format{DOCX}})
	require.NoError(t, err)
	_, err = x.Extract(context.Background(), Input{Data: read(t, "hello.odt")})
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = x.Extract(context.Background(), Input{Data: []byte{0, 1, 2, 3}, ContentType: "image/png"})
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = New(Config{Formats: []Format{"doc"}})
	require.Error(t, err)
	x, err = New(Config{PDFToText: "/nonexistent/pdftotext"})
	require.NoError(t, err)
	require.ErrorIs(t, x.PDFAvailable(), ErrUnavailable)
	_, err = x.Extract(context.Background(), Input{Data: read(t, "hello.pdf")})
	require.ErrorIs(t, err, ErrUnavailable)
}

// requirePDFToText fails (never skips) when poppler-utils is missing: the
// Makefile installs it for make test.
func requirePDFToText(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("pdftotext")
	require.NoError(t, err, "pdftotext (Debian poppler-utils) is needed: make test installs it")
}

func FuzzExtract(f *testing.F) {
	for _, n := range []string{"hello.docx", "hello.odt", "hello.rtf", "sheet.xlsx", "slides.pptx"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{\rtf1 {\*\x {\u-1?}} \'ff}`))
	f.Add([]byte(`{\rtf1\ansi{\fonttbl{\f1\fcharset128 M;}}\f1\'83\'65{\f0\'e9}\plain\'83}`))
	f.Add([]byte(`<table><tr><td></td><td>a<table><tr><th>b</th></tr></table></td></tr></table><td>c`))
	const maxText = 4096
	x, err := New(Config{Formats: []Format{DOCX, XLSX, PPTX, ODT, ODS, ODP, RTF, HTML, Text},
		Limits: Limits{Timeout: 5 * time.Second, MaxMemoryBytes: 16 << 20, MaxTextBytes: maxText}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := x.Extract(context.Background(), Input{Data: data})
		switch {
		case err == nil && d == nil:
			t.Fatal("nil document without error")
		case err != nil && strings.Contains(err.Error(), "extractor failed"):
			t.Fatalf("an extractor panicked: %v", err) // recovered, but a bug
		case err == nil && (!utf8.ValidString(d.Text) || len(d.Text) > maxText):
			t.Fatalf("text of %d bytes, valid UTF-8 %v", len(d.Text), utf8.ValidString(d.Text))
		}
	})
}

// LibreOffice writes some templates without content.xml: no text, no
// error; a package with neither content nor styles is damaged.
func TestODFWithoutContent(t *testing.T) {
	build := func(members ...string) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, m := range members {
			w, err := zw.Create(m)
			require.NoError(t, err)
			if m == "mimetype" {
				fmt.Fprint(w, "application/vnd.oasis.opendocument.text-template")
			} else {
				fmt.Fprint(w, `<?xml version="1.0"?><office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"/>`)
			}
		}
		require.NoError(t, zw.Close())
		return buf.Bytes()
	}
	x := newX(t, Limits{})
	d, err := x.Extract(context.Background(), Input{Data: build("mimetype", "meta.xml", "styles.xml")})
	require.NoError(t, err)
	assert.Equal(t, ODT, d.Format)
	assert.Empty(t, d.Text)
	_, err = x.Extract(context.Background(), Input{Data: build("mimetype", "settings.xml")})
	require.ErrorIs(t, err, ErrMalformed)
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		in   Input
		want Format
	}{
		{Input{Data: []byte("%PDF-1.7\n..."), ContentType: "text/html"}, PDF},
		{Input{Data: []byte("junk\n%PDF-1.4\n..."), ContentType: "application/octet-stream"}, PDF},
		{Input{Data: []byte("<!doctype html><p>a %PDF-1.4 header</p>"), ContentType: "application/pdf"}, HTML},
		{Input{Data: []byte("the header is %PDF-1.4"), ContentType: "text/plain"}, Text},
		{Input{Data: []byte("plain words"), Name: "notes.txt"}, Text},
		{Input{Data: []byte("<html><body>x</body></html>")}, HTML},
		{Input{Data: []byte{0x89, 'P', 'N', 'G'}, ContentType: "image/png"}, ""},
		{Input{Data: []byte(`{\rtf1 x}`), ContentType: "application/octet-stream"}, RTF},
	} {
		assert.Equal(t, tc.want, Detect(tc.in), "%q %s", tc.in.Data, tc.in.ContentType)
	}
}

// Windows gives a .csv file the media type of Excel's old binary format
// (application/vnd.ms-excel), and Outlook attaches it so; web
// applications' "export to Excel" or "to Word" send an HTML table as
// application/vnd.ms-excel or application/msword under an .xls or .doc
// name. A declared type that is none of the formats extracted decided
// alone: such an attachment or file was a format without text, and none
// of its words were indexed. Bytes that are not the old binary formats'
// (an OLE compound file) contradict those types: the extension (.csv)
// or the bytes (an HTML page) decide, as for a generic type.
func TestDetectTextDeclaredAsOldOfficeType(t *testing.T) {
	x := newX(t, Limits{})
	for _, tc := range []struct {
		in   Input
		want Format
		text string
	}{
		{Input{Data: []byte("name,amount\r\nAnn,5\r\n"), ContentType: "application/vnd.ms-excel", Name: "report.csv"}, Text, "name,amount\nAnn,5"},
		{Input{Data: []byte("name\tamount\nAnn\t5\n"), ContentType: "application/vnd.ms-excel; name=report.tsv", Name: "report.tsv"}, Text, "name\tamount\nAnn\t5"},
		{Input{Data: []byte(`<html xmlns:o="urn:schemas-microsoft-com:office:office"><body><table><tr><td>Ann</td><td>5</td></tr></table></body></html>`),
			ContentType: "application/vnd.ms-excel", Name: "export.xls"}, HTML, "Ann\t5"},
		{Input{Data: []byte(`<html><body><p>Letter</p></body></html>`), ContentType: "application/msword", Name: "letter.doc"}, HTML, "Letter"},
	} {
		require.Equal(t, tc.want, Detect(tc.in), "%s %s", tc.in.ContentType, tc.in.Name)
		d, err := x.Extract(context.Background(), tc.in)
		require.NoError(t, err)
		assert.Equal(t, tc.text, d.Text)
	}
	// An old binary file is still none of the formats, whatever its name.
	for _, in := range []Input{
		{Data: cfb("Workbook"), ContentType: "application/vnd.ms-excel", Name: "budget.xls"},
		{Data: cfb("Workbook"), ContentType: "application/vnd.ms-excel", Name: "budget.csv"},
		{Data: []byte("\x00\x01binary"), ContentType: "application/vnd.ms-excel", Name: "budget.xls"},
	} {
		assert.Equal(t, Format(""), Detect(in), "%q %s", in.Data, in.Name)
	}
}

// A soft hyphen (U+00AD: where a word may break across lines) is
// invisible, but it stayed in the text of HTML (&shy;), OpenDocument and
// RTF (\'ad), inside the word: a search for "Versicherung" missed
// "Ver&shy;sicherung", while the same word in a docx (w:softHyphen) or
// RTF's \- was found. It is dropped from every format's text and
// metadata.
func TestSoftHyphenDropped(t *testing.T) {
	x := newX(t, Limits{})
	for _, in := range []Input{
		{Data: []byte("<title>Ver&shy;sicherung</title><p>Ver&shy;si&shy;che&shy;rung Ver\u00adsicherung</p>"), ContentType: "text/html"},
		{Data: []byte(`{\rtf1\ansi{\info{\title Ver\'adsicherung}}Ver\-si\'adche\'adrung Ver\u173?sicherung\par}`)},
		{Data: odfPackage(t, "application/vnd.oasis.opendocument.text", "<office:text><text:h>Ver\u00adsicherung</text:h><text:p>Ver\u00adsi\u00adche\u00adrung Ver&#xAD;sicherung</text:p></office:text>")},
		{Data: []byte("Ver\u00adsi\u00adche\u00adrung Ver\u00adsicherung"), ContentType: "text/plain"},
	} {
		d, err := x.Extract(context.Background(), in)
		require.NoError(t, err)
		assert.Equal(t, "Versicherung Versicherung", strings.TrimPrefix(d.Text, "Versicherung\n"), "%s %q", d.Format, d.Text)
		if d.Title != "" {
			assert.Equal(t, "Versicherung", d.Title)
		}
	}
}
