package ingest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// neutralDoc returns what ReadIDX(WriteIDX(d)) must give: d with the one
// change WriteIDX documents (a space before a line that starts with "#DRE").
func neutralDoc(d *Document) *Document {
	out := &Document{Reference: d.Reference, Content: neutral(d.Content, true)}
	if d.Fields != nil {
		out.Fields = make([]Field, len(d.Fields))
	}
	for i, f := range d.Fields {
		switch f.Name {
		case FieldTitle:
			f.Value = neutral(f.Value, true)
		case FieldDate, FieldDatabase:
		default:
			f.Value = neutral(f.Value, false)
		}
		out.Fields[i] = f
	}
	return out
}

// FuzzIDXRoundTrip writes documents built from the inputs and reads them
// back: valid documents come back exactly (up to the documented
// neutralisation), invalid ones are refused without output, nothing panics.
func FuzzIDXRoundTrip(f *testing.F) {
	f.Add("http://example.com/", "TITLE", "A page", "A title", "Some text.\nMore text.")
	f.Fuzz(func(t *testing.T, ref, name, value, title, content string) {
		docs := []*Document{
			{Reference: ref, Fields: []Field{{Name: name, Value: value}, {Name: FieldTitle, Value: title}}, Content: content},
			{Reference: ref + "/2", Fields: []Field{{Name: name, Value: content}}, Content: value},
		}
		var buf bytes.Buffer
		err := WriteIDX(&buf, docs...)
		if docs[0].Validate() != nil || docs[1].Validate() != nil {
			require.ErrorIs(t, err, ErrInvalidDocument)
			require.Zero(t, buf.Len())
			return
		}
		require.NoError(t, err)
		got, err := ReadIDX(&buf)
		require.NoError(t, err, "reading back:\n%s", buf.String())
		require.Len(t, got, len(docs))
		for i := range docs {
			require.Equal(t, neutralDoc(docs[i]), got[i])
		}
	})
}

// FuzzReadIDX feeds arbitrary bytes to ReadIDX: it must not panic, and what
// it accepts must survive a write and a second read.
func FuzzReadIDX(f *testing.F) {
	f.Add([]byte("#DREREFERENCE a\n#DREFIELD X=\"1\"\n#DRECONTENT\nhello\n#DREENDDOC\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := ReadIDX(bytes.NewReader(data))
		if err != nil {
			return
		}
		if validateAll(docs) != nil {
			return
		}
		var buf bytes.Buffer
		require.NoError(t, WriteIDX(&buf, docs...))
		again, err := ReadIDX(&buf)
		require.NoError(t, err, "reading back:\n%s", buf.String())
		require.Len(t, again, len(docs))
		for i := range docs {
			require.Equal(t, neutralDoc(docs[i]), again[i])
		}
	})
}

// checkFieldName's ASCII short cut decides as its rune loop does: every
// byte value alone and in a name, and fuzzed names.
func TestCheckFieldNameASCII(t *testing.T) {
	slow := func(s string) bool {
		for _, r := range s {
			if unicode.IsSpace(r) || unicode.IsControl(r) || r == '=' || r == '"' {
				return false
			}
		}
		return true
	}
	for c := 0; c < 0x80; c++ {
		for _, s := range []string{string(rune(c)), "A" + string(rune(c)) + "B"} {
			if asciiFieldName(s) != slow(s) {
				t.Fatalf("%q: short cut %v, rune loop %v", s, asciiFieldName(s), slow(s))
			}
		}
	}
}

func FuzzCheckFieldName(f *testing.F) {
	for _, s := range []string{"TITLE", "DREREFERENCE", "drecontent", "A B", "A=B", "K\u212a", "DREREFERENCE\u212a", "ſ", "X\x7f", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := checkFieldNameRunes(s)
		got := checkFieldName(s)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%q: %v, want %v", s, got, want)
		}
	})
}

// checkFieldNameRunes is checkFieldName without its ASCII short cut.
func checkFieldNameRunes(s string) error {
	if s == "" {
		return lineError("is empty")
	}
	if !utf8.ValidString(s) {
		return lineError("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '=' || r == '"' {
			return lineError("contains white space, a control character, '=' or '\"'")
		}
	}
	if strings.EqualFold(s, "DREREFERENCE") || strings.EqualFold(s, "DRECONTENT") {
		return lineError("is reserved")
	}
	return nil
}
