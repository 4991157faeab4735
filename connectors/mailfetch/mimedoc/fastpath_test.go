package mimedoc

import (
	"math/rand/v2"
	"mime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
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
	require.Equal(t, wp, gp, "%q", v)
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
