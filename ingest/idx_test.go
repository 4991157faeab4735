package ingest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteIDXFormat(t *testing.T) {
	t.Parallel()
	doc := &Document{
		Reference: "http://example.com/a?b=1",
		Fields: []Field{
			{Name: "AUTN_IDENTIFIER", Value: "PGlkIHM9Ik1ZVEFTSyIvPg=="},
			{Name: FieldTitle, Value: "A \"quoted\" title"},
			{Name: "URL", Value: "http://example.com/a?b=1"},
			{Name: "PATH", Value: `C:\data\file.txt`},
			{Name: "KEYWORD", Value: "one"},
			{Name: "KEYWORD", Value: "two"},
			{Name: "NOTE", Value: "line1\nline2 \"with\" quotes"},
			{Name: FieldDate, Value: "2024/05/06"},
			{Name: FieldDatabase, Value: "News"},
			{Name: "EMPTY", Value: ""},
		},
		Content: "First line.\nSecond line.",
	}
	var buf bytes.Buffer
	require.NoError(t, WriteIDX(&buf, doc))
	want := `#DREREFERENCE http://example.com/a?b=1
#DREFIELD AUTN_IDENTIFIER="PGlkIHM9Ik1ZVEFTSyIvPg=="
#DRETITLE
A "quoted" title
#DREFIELD URL="http://example.com/a?b=1"
#DREFIELD PATH="C:\data\file.txt"
#DREFIELD KEYWORD="one"
#DREFIELD KEYWORD="two"
#DREFIELD NOTE="line1
line2 "with" quotes"
#DREDATE 2024/05/06
#DREDBNAME News
#DREFIELD EMPTY=""
#DRECONTENT
First line.
Second line.
#DREENDDOC
`
	require.Equal(t, want, buf.String())

	got, err := ReadIDX(&buf)
	require.NoError(t, err)
	require.Equal(t, []*Document{doc}, got)
}

// TestWriteIDXCollectSidecar checks the shape of the .idx sidecar that the
// Collect action writes next to a collected file: the same shape as the one
// a real connector writes (OpenText idol-oem-tutorials, Dropbox connector
// lesson): reference, quoted fields, no content, #DREENDDOC.
func TestWriteIDXCollectSidecar(t *testing.T) {
	t.Parallel()
	doc := &Document{
		Reference: "http://127.0.0.1:8080/docs/report.pdf",
		Fields: []Field{
			{Name: "AUTN_COLLECTTIME", Value: "1667553752"},
			{Name: "AUTN_IDENTIFIER", Value: "PGlkIHQ9IldlYiIgcz0iTVlUQVNLIiByPSJodHRwOi8vMTI3LjAuMC4xIi8+"},
			{Name: "COLLECTDESTINATIONFILENAME", Value: `C:\collected\1667553752_report.pdf`},
		},
	}
	var buf bytes.Buffer
	require.NoError(t, WriteIDX(&buf, doc))
	require.Equal(t, `#DREREFERENCE http://127.0.0.1:8080/docs/report.pdf
#DREFIELD AUTN_COLLECTTIME="1667553752"
#DREFIELD AUTN_IDENTIFIER="PGlkIHQ9IldlYiIgcz0iTVlUQVNLIiByPSJodHRwOi8vMTI3LjAuMC4xIi8+"
#DREFIELD COLLECTDESTINATIONFILENAME="C:\collected\1667553752_report.pdf"
#DREENDDOC
`, buf.String())
}

func TestIDXRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		docs []*Document
	}{
		{desc: "no documents", docs: nil},
		{desc: "reference only", docs: []*Document{{Reference: "r"}}},
		{desc: "several documents", docs: []*Document{
			{Reference: "a", Content: "alpha"},
			{Reference: "b", Fields: []Field{{Name: "X", Value: "1"}}},
			{Reference: "c", Content: "gamma\n"},
		}},
		{desc: "content edge cases", docs: []*Document{
			{Reference: "nl", Content: "\n"},
			{Reference: "nlnl", Content: "\n\n"},
			{Reference: "lead", Content: "\nx"},
			{Reference: "cr", Content: "x\r"},
			{Reference: "crlf", Content: "a\r\nb\r\n"},
			{Reference: "spaces", Content: "  indented  "},
			{Reference: "quote", Content: `"`},
		}},
		{desc: "field value edge cases", docs: []*Document{{Reference: "f", Fields: []Field{
			{Name: "Q", Value: `"`},
			{Name: "QQ", Value: `""`},
			{Name: "TRAIL", Value: `ends with quote"`},
			{Name: "NL", Value: "\n"},
			{Name: "NLQ", Value: "x\n\"\n"},
			{Name: "CR", Value: "x\r"},
			{Name: "SP", Value: "  "},
			{Name: "EQ", Value: "a=b"},
			{Name: "TAGMID", Value: "see #DREFIELD here"},
			{Name: "UNICODE", Value: "naïve — 日本語"},
			{Name: "x.y-z/w:v", Value: "odd but legal name"},
		}}}},
		{desc: "title edge cases", docs: []*Document{{Reference: "t", Fields: []Field{
			{Name: FieldTitle, Value: ""},
			{Name: FieldTitle, Value: "two\nlines"},
			{Name: FieldTitle, Value: "trailing\n"},
		}}}},
		{desc: "lines longer than the read buffer", docs: []*Document{{Reference: "long",
			Fields:  []Field{{Name: "BIG", Value: strings.Repeat("v", 200<<10) + "\n" + strings.Repeat("w", 70<<10)}},
			Content: strings.Repeat("x", 300<<10) + "\n" + strings.Repeat("y", 65<<10)}}},
		{desc: "lower-case special names are plain fields", docs: []*Document{{Reference: "l", Fields: []Field{
			{Name: "DreTitle", Value: "x"}, {Name: "dredate", Value: " spaced "},
		}}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			require.NoError(t, WriteIDX(&buf, tt.docs...))
			got, err := ReadIDX(&buf)
			require.NoError(t, err)
			require.Equal(t, len(tt.docs), len(got))
			for i := range tt.docs {
				require.Equal(t, tt.docs[i], got[i])
			}
		})
	}
}

func TestWriteIDXNeutralisesTagLines(t *testing.T) {
	t.Parallel()
	doc := &Document{
		Reference: "r",
		Fields: []Field{
			{Name: "F", Value: "x\"\n#DREENDDOC\n#DREREFERENCE evil"},
			{Name: FieldTitle, Value: "#DRECONTENT"},
		},
		Content: "#DREENDDOC\nok\r#dreenddoc\n#DreField a=\"b\"\nnot #DRE at start",
	}
	var buf bytes.Buffer
	require.NoError(t, WriteIDX(&buf, doc))
	for _, line := range strings.FieldsFunc(buf.String(), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if isTagAt(line, 0) {
			require.Contains(t, []string{"#DREREFERENCE r", "#DREFIELD F=\"x\"", "#DRETITLE", "#DRECONTENT", "#DREENDDOC"}, line)
		}
	}
	got, err := ReadIDX(&buf)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, &Document{
		Reference: "r",
		Fields: []Field{
			{Name: "F", Value: "x\"\n #DREENDDOC\n #DREREFERENCE evil"},
			{Name: FieldTitle, Value: " #DRECONTENT"},
		},
		Content: " #DREENDDOC\nok\r #dreenddoc\n #DreField a=\"b\"\nnot #DRE at start",
	}, got[0])
}

func TestReadIDXForeignForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		in   string
		want []*Document
	}{
		{
			desc: "CRLF line ends and a byte order mark",
			in:   "\ufeff#DREREFERENCE r1\r\n#DREFIELD A=\"v\"\r\n#DRETITLE\r\nT\r\n#DRECONTENT\r\nc1\r\nc2\r\n#DREENDDOC\r\n",
			want: []*Document{{Reference: "r1", Fields: []Field{{Name: "A", Value: "v"}, {Name: FieldTitle, Value: "T"}}, Content: "c1\r\nc2"}},
		},
		{
			desc: "DREADDDATA body: blank lines, trailing space, end marker",
			in:   "\n#DREREFERENCE http://a\n#DREFIELD homer=\"simpson\"\n#DREDBNAME test\n#DRECONTENT\n\n#DREENDDOC \n\n#DREENDDATANOOP\n\nignored after the end marker\n",
			want: []*Document{{Reference: "http://a", Fields: []Field{{Name: "homer", Value: "simpson"}, {Name: FieldDatabase, Value: "test"}}, Content: ""}},
		},
		{
			desc: "unquoted value, spaces around =, same-line content and title",
			in:   "#DREREFERENCE  r2 \n#DREFIELD N = 42 \n#DREFIELD M= \"q\" \n#DRETITLE Same line\n#DRECONTENT Text here\nmore\n#DREENDDOC",
			want: []*Document{{Reference: "r2", Fields: []Field{{Name: "N", Value: "42"}, {Name: "M", Value: "q"}, {Name: FieldTitle, Value: "Same line"}}, Content: "Text here\nmore"}},
		},
		{
			desc: "IDOL documentation example",
			in: "#DREREFERENCE 392348A0\n#DREFIELD authorname1=\"Brown\"\n#DREFIELD authorname2=\"Edgar\"\n#DREFIELD title=\"Dr.\"\n" +
				"#DREDATE 1998/08/06\n#DRETITLE\nJurassic Molecules\n#DRECONTENT\nScientists announced last week.\n#DREENDDOC\n",
			want: []*Document{{Reference: "392348A0", Fields: []Field{
				{Name: "authorname1", Value: "Brown"}, {Name: "authorname2", Value: "Edgar"}, {Name: "title", Value: "Dr."},
				{Name: FieldDate, Value: "1998/08/06"}, {Name: FieldTitle, Value: "Jurassic Molecules"},
			}, Content: "Scientists announced last week."}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, err := ReadIDX(strings.NewReader(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestReadIDXErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		in      string
		wantErr string
	}{
		{desc: "missing end of document", in: "#DREREFERENCE a\n#DRECONTENT\nx\n", wantErr: "line 3: unexpected end of data: \"a\" has no #DREENDDOC"},
		{desc: "second reference before end", in: "#DREREFERENCE a\n#DREREFERENCE b\n#DREENDDOC\n", wantErr: "line 2: #DREREFERENCE before #DREENDDOC"},
		{desc: "text outside a document", in: "hello\n", wantErr: "line 1: text outside a document"},
		{desc: "text after a single-line tag", in: "#DREREFERENCE a\nstray\n#DREENDDOC\n", wantErr: "line 2: text outside a tag"},
		{desc: "unsupported tag", in: "#DREREFERENCE a\n#DRESECTION 2\n#DREENDDOC\n", wantErr: "line 2: unsupported tag #DRESECTION"},
		{desc: "field outside a document", in: "#DREFIELD A=\"b\"\n", wantErr: "line 1: #DREFIELD outside a document"},
		{desc: "unterminated field value", in: "#DREREFERENCE a\n#DREFIELD A=\"b\n#DREENDDOC\n", wantErr: "line 3: value of field A has no closing quote"},
		{desc: "text after closing quote", in: "#DREREFERENCE a\n#DREFIELD A=\"b\" c\n#DREENDDOC\n", wantErr: "line 3: value of field A has no closing quote"},
		{desc: "field without =", in: "#DREREFERENCE a\n#DREFIELD A\n#DREENDDOC\n", wantErr: "line 2: #DREFIELD without '='"},
		{desc: "field without name", in: "#DREREFERENCE a\n#DREFIELD =\"x\"\n#DREENDDOC\n", wantErr: "line 2: #DREFIELD without a field name"},
		{desc: "empty reference", in: "#DREREFERENCE \n#DREENDDOC\n", wantErr: "line 1: #DREREFERENCE needs a reference after a space"},
		{desc: "second content", in: "#DREREFERENCE a\n#DRECONTENT\nx\n#DRECONTENT\ny\n#DREENDDOC\n", wantErr: "line 4: second #DRECONTENT in a document"},
		{desc: "end of data inside a document", in: "#DREREFERENCE a\n#DREENDDATA\n", wantErr: "line 2: #DREENDDATA inside a document: missing #DREENDDOC"},
		{desc: "date without value", in: "#DREREFERENCE a\n#DREDATE\n#DREENDDOC\n", wantErr: "line 2: #DREDATE needs a value after a space"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := ReadIDX(strings.NewReader(tt.in))
			require.EqualError(t, err, "ingest: read idx: "+tt.wantErr)
		})
	}
}

func TestWriteIDXRejectsInvalidDocuments(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	err := WriteIDX(&buf, &Document{Reference: "ok"}, &Document{Reference: "bad\nref"})
	require.ErrorIs(t, err, ErrInvalidDocument)
	require.Zero(t, buf.Len(), "nothing may be written when a document is invalid")
}

type failingWriter struct {
	n   int // bytes accepted before failing
	err error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		w.n -= len(p)
		return len(p), nil
	}
	n := w.n
	w.n = 0
	return n, w.err
}

func TestWriteIDXWriterFails(t *testing.T) {
	t.Parallel()
	errFull := errors.New("no space left on device")
	docs := make([]*Document, 50)
	for i := range docs {
		docs[i] = &Document{Reference: "r", Content: strings.Repeat("x", 4<<10)}
	}
	err := WriteIDX(&failingWriter{n: 100 << 10, err: errFull}, docs...)
	require.ErrorIs(t, err, errFull)
	require.ErrorContains(t, err, "ingest: write idx")
}

func TestDocumentValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		doc     *Document
		wantErr string // "" for valid
	}{
		{desc: "valid", doc: &Document{Reference: "http://a/b", Fields: []Field{{Name: "A_B.c-d", Value: "any\n\"thing\""}}}},
		{desc: "nil", doc: nil, wantErr: "nil document"},
		{desc: "empty reference", doc: &Document{}, wantErr: "is empty"},
		{desc: "reference with LF", doc: &Document{Reference: "a\nb"}, wantErr: "control character"},
		{desc: "reference with CR", doc: &Document{Reference: "a\rb"}, wantErr: "control character"},
		{desc: "reference with NUL", doc: &Document{Reference: "a\x00b"}, wantErr: "control character"},
		{desc: "reference with trailing space", doc: &Document{Reference: "a "}, wantErr: "white space"},
		{desc: "reference not UTF-8", doc: &Document{Reference: "a\xffb"}, wantErr: "UTF-8"},
		// A password in a reference would be kept in clear in the store,
		// the output and the logs; the error does not quote it. (On main
		// an Insert's <reference>http://u:pw@h/doc</reference> reached the
		// IDX output and connector.db.)
		{desc: "reference with a URL password", doc: &Document{Reference: "http://u:hunter2@h/doc "},
			wantErr: `reference "http://u:[REDACTED]@h/doc ": holds a URL with a password`},
		{desc: "reference with a user name only", doc: &Document{Reference: "http://u@h/doc"}},
		{desc: "empty field name", doc: &Document{Reference: "r", Fields: []Field{{Value: "v"}}}, wantErr: "field 0 name \"\": is empty"},
		{desc: "field name with space", doc: &Document{Reference: "r", Fields: []Field{{Name: "A B"}}}, wantErr: "white space"},
		{desc: "field name with =", doc: &Document{Reference: "r", Fields: []Field{{Name: "A=B"}}}, wantErr: "'='"},
		{desc: "field name with quote", doc: &Document{Reference: "r", Fields: []Field{{Name: `A"`}}}, wantErr: "'\"'"},
		{desc: "reserved DREREFERENCE", doc: &Document{Reference: "r", Fields: []Field{{Name: "DREREFERENCE", Value: "x"}}}, wantErr: "is reserved"},
		{desc: "reserved drecontent", doc: &Document{Reference: "r", Fields: []Field{{Name: "drecontent", Value: "x"}}}, wantErr: "is reserved"},
		{desc: "multi-line DREDATE", doc: &Document{Reference: "r", Fields: []Field{{Name: FieldDate, Value: "2024\n01"}}}, wantErr: "field DREDATE value"},
		{desc: "empty DREDBNAME", doc: &Document{Reference: "r", Fields: []Field{{Name: FieldDatabase}}}, wantErr: "field DREDBNAME value \"\": is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			err := tt.doc.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidDocument)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestReadDeleteRefs(t *testing.T) {
	t.Parallel()
	refs := []string{"http://a/1", "http://a/2?x=1,2", "ref with spaces"}
	got, err := ReadDeleteRefs(bytes.NewReader(appendDeleteRefs(nil, refs)))
	require.NoError(t, err)
	require.Equal(t, refs, got)

	got, err = ReadDeleteRefs(strings.NewReader("\r\n#DREDELETEREF a\r\n\n#DREDELETEREF b\n#DREENDDATANOOP\n#DREDELETEREF c\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, got)

	_, err = ReadDeleteRefs(strings.NewReader("#DREDELETEREF a\n#DREREFERENCE b\n"))
	require.EqualError(t, err, "ingest: read removals: line 2: want #DREDELETEREF <reference>")
	_, err = ReadDeleteRefs(strings.NewReader("#DREDELETEREF \n"))
	require.Error(t, err)
}
