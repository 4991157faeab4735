package mimedoc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"mime"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/extract"
)

// checkSimpleMediaType: a value simpleMediaType reads is read as
// mime.ParseMediaType reads it.
func checkSimpleMediaType(t *testing.T, v string) bool {
	t.Helper()
	gt, gp, ok := simpleMediaType(v)
	if !ok {
		return false
	}
	wt, wp, err := mime.ParseMediaType(v)
	require.NoError(t, err, "%q", v)
	require.Equal(t, wt, gt, "%q", v)
	require.Equal(t, wp, gp.asMap(), "%q", v)
	return true
}

func TestSimpleMediaTypeIsMimes(t *testing.T) {
	read := []string{"text/plain", "TEXT/Plain", "text/plain; charset=utf-8", `text/plain; charset="UTF-8"`,
		"multipart/mixed; boundary=abc", `multipart/alternative; boundary="=_x y"`, "inline", "attachment; filename=a.txt",
		`attachment; FileName="notes 1.txt"; size=12`, "text/plain ;charset=x", "text/plain;charset=x", `a/b; c=""`}
	for _, v := range read {
		require.True(t, checkSimpleMediaType(t, v), "%q is not read by the short cut", v)
	}
	// Left to mime.ParseMediaType (some of which it reads, some it refuses).
	left := []string{"", " text/plain", "text/", "/plain", "text/plain;", "text/plain; ", "text/plain; charset",
		"text/plain; charset=", `text/plain; charset="a`, `text/plain; name="a\"b"`, "text/plain; a=1; A=2",
		"text/plain; title*=us-ascii'en'x", "text/plain; title*0=a; title*1=b", "text/plain;  charset=x",
		"text/plain; charset=x y", "text/plain\tcharset=x", "text/plain; charset=\"é\"", "text/plain (c)", "a/b/c"}
	for _, v := range left {
		require.False(t, checkSimpleMediaType(t, v), "%q", v)
	}
	// Random values from the characters that matter.
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = `aZ09-./;= "\*'_` + "\t"
	simple := 0
	for range 200000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if checkSimpleMediaType(t, string(b)) {
			simple++
		}
	}
	require.Greater(t, simple, 1000)
}

func FuzzSimpleMediaTypeIsMimes(f *testing.F) {
	for _, s := range []string{"text/plain; charset=utf-8", `a/b; c="d e"`, "inline", "a/b; c*=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) { checkSimpleMediaType(t, v) })
}

// collapseSpace is strings.Join(strings.Fields(s), " "), allocation or not.
func checkCollapseSpace(t *testing.T, s string) {
	t.Helper()
	require.Equal(t, strings.Join(strings.Fields(s), " "), collapseSpace(s), "%q", s)
}

func TestCollapseSpaceIsFieldsJoined(t *testing.T) {
	for _, s := range []string{"", " ", "a", "a b", "a  b", " a", "a ", "a\tb", "a\u00a0b", "a\u0085b", "a\u2003b",
		"a\u3000b", "Report 1 – figures", "a\u200bb", "\xff \xfe", "a\r\nb", "a\vb", "a\fb", "é é", " é"} {
		checkCollapseSpace(t, s)
	}
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", " ", "\t", "\n", "\u00a0", "\u2013", "\u2028", "\u3000", "\xc2", "\xe2\x80", "é", "\v"}
	for range 100000 {
		var b strings.Builder
		for range r.IntN(8) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		checkCollapseSpace(t, b.String())
	}
	require.Equal(t, 0.0, testing.AllocsPerRun(10, func() { collapseSpace("Report 1 – figures") }))
}

func FuzzCollapseSpaceIsFieldsJoined(f *testing.F) {
	f.Add("a  b\u00a0c")
	f.Fuzz(func(t *testing.T, s string) { checkCollapseSpace(t, s) })
}

// msgIDsAsBefore is msgIDs as it was written on strings.FieldsFunc.
func msgIDsAsBefore(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == ',' }) {
		f = strings.Trim(f, "<>")
		if f != "" && utf8.ValidString(f) {
			out = append(out, f)
		}
	}
	return out
}

func TestMsgIDsAsBefore(t *testing.T) {
	for _, v := range []string{"", "<a@b>", "<a@b> <c@d>", " <a@b>,<c@d>\r\n\t<e@f> ", "<>", "<\xff@b> <c@d>", "a", ",,", "<a@b>\u00a0<c@d>"} {
		require.Equal(t, msgIDsAsBefore(v), msgIDs(v), "%q", v)
	}
}

func FuzzMsgIDsAsBefore(f *testing.F) {
	f.Add("<a@b> <c@d>,<e@f>")
	f.Fuzz(func(t *testing.T, v string) { require.Equal(t, msgIDsAsBefore(v), msgIDs(v), "%q", v) })
}

// checkBodyText: bodyText is extract.DecodeTextCharset, shared or not, and
// shares data's memory only where it says so.
func checkBodyText(t *testing.T, data []byte, label string) bool {
	t.Helper()
	want := extract.DecodeTextCharset(data, label)
	require.Equal(t, want, bodyText(data, label, false), "%q %q", data, label)
	got := bodyText(data, label, true)
	require.Equal(t, want, got, "%q %q", data, label)
	return len(got) > 0 && unsafe.StringData(got) == &data[0]
}

func TestBodyTextIsDecodeTextCharset(t *testing.T) {
	shared := []struct{ data, label string }{{"hello", ""}, {"héllo\r\nwörld", "utf-8"}, {"x", "UTF-8"}, {"日本語", ""}}
	for _, c := range shared {
		require.True(t, checkBodyText(t, []byte(c.data), c.label), "%q %q is copied", c.data, c.label)
	}
	// Copied (or decoded) as before.
	copied := []struct{ data, label string }{{"", ""}, {"a\x00b", ""}, {"\xef\xbb\xbfbom", ""}, {"\xff\xfeh\x00i\x00", ""},
		{"\xfe\xff\x00h\x00i", "utf-8"}, {"caf\xe9", ""}, {"caf\xe9", "utf-8"}, {"café", "iso-8859-1"}, {"plain", "us-ascii"},
		{"plain", "windows-1252"}, {"日本語", "utf8"}, {"\xef\xbc\x86 full width", ""}, {"text", "bogus-charset"}, {"\x1b$B", "iso-2022-jp"}}
	for _, c := range copied {
		require.False(t, checkBodyText(t, []byte(c.data), c.label), "%q %q is shared", c.data, c.label)
	}
	r := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "é", "\x00", "\xef\xbb\xbf", "\xff", "\xfe", "\xe9", "\r\n", " ", "日", "\x80"}
	labels := []string{"", "utf-8", "UTF-8", "utf8", "iso-8859-1", "us-ascii", "x-unknown", "utf-16", "windows-1252"}
	for range 50000 {
		var b strings.Builder
		for range r.IntN(8) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		checkBodyText(t, []byte(b.String()), labels[r.IntN(len(labels))])
	}
}

func FuzzBodyTextIsDecodeTextCharset(f *testing.F) {
	for _, s := range []string{"hello", "\xef\xbb\xbfx", "a\x00", "caf\xe9", "\xff\xfe"} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "utf-8")
		f.Add([]byte(s), "iso-8859-1")
	}
	f.Fuzz(func(t *testing.T, data []byte, label string) {
		checkBodyText(t, data, label)
	})
}

// A message's text shares the message's bytes only when it is at least
// half of them; its documents are the same either way.
func TestTextSharesTheMessageOnlyWhenMostOfIt(t *testing.T) {
	long := mailtest.Message{From: "a@example.com", To: "b@example.com", Subject: "s", Text: strings.Repeat("text of the message ", 50)}.Raw()
	m := Parse(long, false, Limits{}, nil)
	require.Equal(t, strings.TrimSpace(strings.Repeat("text of the message ", 50)), m.Text)
	require.True(t, within(m.Text, long), "a message that is mostly text: its text is not copied")

	short := mailtest.Message{From: "a@example.com", To: "b@example.com", Subject: "s", Text: "hi",
		Attachments: []mailtest.Attachment{{Name: "big.bin", Data: bytes.Repeat([]byte{1}, 4096)}}}.Raw()
	m = Parse(short, false, Limits{}, nil)
	require.Equal(t, "hi", m.Text)
	require.False(t, within(m.Text, short), "a small text beside an attachment is copied, so the message can be freed")
}

// within reports whether s's bytes lie in b's memory.
func within(s string, b []byte) bool {
	if len(s) == 0 || len(b) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(&b[0]))
	return p >= lo && p < lo+uintptr(len(b))
}

// rawStrings returns the strings and byte slices of m (every field, found
// by reflection, so that a field added later is checked too) that lie in
// raw's memory.
func rawStrings(m *Message, raw []byte) []string {
	var out []string
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(path, v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				if v.Len() > 0 && within(unsafe.String((*byte)(v.UnsafePointer()), v.Len()), raw) {
					out = append(out, path)
				}
				return
			}
			for i := range v.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), v.Index(i))
			}
		case reflect.String:
			if within(v.String(), raw) {
				out = append(out, path+"="+v.String())
			}
		}
	}
	walk("Message", reflect.ValueOf(m))
	return out
}

func TestHeaderSharesTheMessageOnlyWhenTheMessageIsHeld(t *testing.T) {
	// Mostly text: the text is the message's memory, and so are the
	// header's strings (no copy of the header block).
	long := mailtest.Message{From: "Ann Smith <a@example.com>", To: "b@example.com, c@example.com", Subject: "the subject",
		Text: strings.Repeat("text of the message ", 50)}.Raw()
	m := Parse(long, false, Limits{}, nil)
	require.Equal(t, "the subject", m.Subject)
	require.Equal(t, []string{"Ann Smith <a@example.com>"}, m.From)
	require.Equal(t, []string{"b@example.com", "c@example.com"}, m.To)
	require.True(t, within(m.Text, long))
	require.True(t, within(m.Subject, long), "the header's strings share the message it holds anyway")
	require.True(t, within(m.To[1], long))

	// Messages whose text and attachments are not the message's memory:
	// nothing of the Message is, so the message can be freed once read.
	small := []*mailtest.Message{
		{From: "Ann Smith <a@example.com>", To: "b@example.com", Subject: "s", Text: "hi",
			Attachments: []mailtest.Attachment{{Name: "big.bin", Data: bytes.Repeat([]byte{1}, 4096)}}},
		{From: "a@example.com", To: "b@example.com", Subject: "plain text attachment", Text: "hi",
			Attachments: []mailtest.Attachment{{Name: "notes.txt", ContentType: "text/plain", Data: bytes.Repeat([]byte("notes "), 500)}}},
	}
	for _, msg := range small {
		raw := msg.Raw()
		m := Parse(raw, false, Limits{}, nil)
		require.Equal(t, msg.Subject, m.Subject)
		require.NotEmpty(t, m.Attachments)
		require.Empty(t, rawStrings(m, raw), "%s", raw[:200])
	}
	// A single-part message whose body is an attachment of its own (not
	// text): its Data is the message's memory, so the header may be too.
	att := []byte("From: a@example.com\r\nSubject: a file\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f.bin\r\n\r\n" + strings.Repeat("x", 100))
	m = Parse(att, false, Limits{}, nil)
	require.Len(t, m.Attachments, 1)
	require.Equal(t, "f.bin", m.Attachments[0].FileName)
	require.Equal(t, "application/octet-stream", m.Attachments[0].ContentType)
	require.True(t, within(m.Subject, att))

	// Header-only and hostile shapes: the same rule.
	for _, raw := range [][]byte{
		[]byte("Subject: no body"),
		[]byte("Subject: folded\r\n continued\r\nFrom: x@y.z\r\n\r\n"),
		[]byte("From: a@b.c\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n"),
	} {
		m := Parse(raw, false, Limits{}, nil)
		if !within(m.Text, raw) {
			require.Empty(t, rawStrings(m, raw), "%q", raw)
		}
	}
}

// checkOneUTF8Word: a value oneUTF8Word reads is what wordDecoder's
// DecodeHeader makes of it.
func checkOneUTF8Word(t *testing.T, s string) bool {
	t.Helper()
	got, ok := oneUTF8Word(s)
	if !ok {
		return false
	}
	want, err := wordDecoder.DecodeHeader(s)
	require.NoError(t, err, "%q", s)
	require.Equal(t, want, got, "%q", s)
	return true
}

func TestOneUTF8WordIsDecodeHeaders(t *testing.T) {
	read := []string{"=?utf-8?q?Report_1_=E2=80=93_figures?=", "=?UTF-8?Q?a?=", "=?utf-8?b?w6k=?=", "=?Utf-8?B??=",
		"=?utf-8?q??=", "=?utf-8?q?=e2=80=93?=", mime.QEncoding.Encode("utf-8", "Réunion – 3 €"), mime.BEncoding.Encode("utf-8", "Réunion – 3 €"),
		"=?utf-8?q?" + strings.Repeat("=C3=A9", 100) + "?=", "=?utf-8?q?=FF?="}
	for _, s := range read {
		require.True(t, checkOneUTF8Word(t, s), "%q is not read by the short cut", s)
	}
	left := []string{"", "plain", "=?iso-8859-1?q?a?=", "=?utf-8?x?a?=", "=?utf-8?q?a?= x", "x =?utf-8?q?a?=",
		"=?utf-8?q?a?= =?utf-8?q?b?=", "=?utf-8?q?a?=?=", "=?utf-8?q?=4?=", "=?utf-8?q?=ZZ?=", "=?utf-8?b?***?=",
		"=?utf-8?q?a\x01?=", "=?utf-8?qq?a?=", "=?utf-8?q", "=??q?a?="}
	for _, s := range left {
		require.False(t, checkOneUTF8Word(t, s), "%q", s)
	}
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "=?_uUtTfF-8qQbB aZ09+/\t\r\n\x7f\xe2\x80\x93"
	read2 := 0
	for range 200000 {
		b := []byte("=?utf-8?q?")
		if r.IntN(4) == 0 {
			b = []byte("=?UTF-8?B?")
		}
		for range r.IntN(16) {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		if r.IntN(8) != 0 {
			b = append(b, "?="...)
		}
		if checkOneUTF8Word(t, string(b)) {
			read2++
		}
	}
	require.Greater(t, read2, 1000)
}

func FuzzOneUTF8WordIsDecodeHeaders(f *testing.F) {
	for _, s := range []string{"=?utf-8?q?Report_1_=E2=80=93_figures?=", "=?utf-8?b?w6k=?=", "=?utf-8?q?a?= b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkOneUTF8Word(t, s) })
}
