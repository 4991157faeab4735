package config

import (
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/require"
)

// TestParseEncodings: a file (or fragment) means the same whatever its
// encoding: UTF-8 with or without a byte-order mark, UTF-16 with one, and
// CRLF, LF or CR line ends. NUL bytes are refused, naming the file (and
// the line: TestNULIsRefusedAtItsLine).
func TestParseEncodings(t *testing.T) {
	t.Parallel()
	text := "[Server]\nPort=7010\n[FetchTasks]\n0=T\n[T]\nUrl=http://x/\nDepth=3\n"
	le := func(s string, bom bool) []byte {
		var out []byte
		if bom {
			out = []byte{0xFF, 0xFE}
		}
		for _, u := range utf16.Encode([]rune(s)) {
			out = append(out, byte(u), byte(u>>8))
		}
		return out
	}
	be := func(s string) []byte {
		out := []byte{0xFE, 0xFF}
		for _, u := range utf16.Encode([]rune(s)) {
			out = append(out, byte(u>>8), byte(u))
		}
		return out
	}
	for name, data := range map[string][]byte{
		"utf-8":          []byte(text),
		"utf-8 bom":      append([]byte{0xEF, 0xBB, 0xBF}, text...),
		"crlf":           []byte(replaceNL(text, "\r\n")),
		"cr":             []byte(replaceNL(text, "\r")),
		"utf-16le bom":   le(text, true),
		"utf-16le crlf":  le(replaceNL(text, "\r\n"), true),
		"utf-16be bom":   be(text),
		"utf-8 bom crlf": append([]byte{0xEF, 0xBB, 0xBF}, replaceNL(text, "\r\n")...),
		"utf-16 with é":  le("[Server]\nPort=7010\n[FetchTasks]\n0=T\n[T]\nUrl=http://x/é\nDepth=3\n", true),
	} {
		c, err := Parse("x.cfg", data, testTaskKeys)
		require.NoError(t, err, name)
		require.Equal(t, 7010, c.Server.Port, name)
		require.Equal(t, []string{"Server", "FetchTasks", "T"}, c.SectionNames(), name)
		d, _ := c.TaskValue("T", "Depth")
		require.Equal(t, "3", d, name)
		u, _ := c.TaskValue("T", "Url")
		require.Contains(t, []string{"http://x/", "http://x/é"}, u, name)
	}
	for name, data := range map[string][]byte{
		"utf-16 without bom": le(text, false),
		"odd utf-16":         append(le(text, true), 'x'),
		"nul":                []byte("[Server]\nPort=7010\x00\n"),
	} {
		_, err := Parse("x.cfg", data, testTaskKeys)
		var ce *Error
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, "x.cfg", ce.File, name)
	}
}

// Text that is not UTF-8 (a Windows-1252 file's é is the byte 0xE9) is
// refused at its line, without showing it; comment lines may hold anything.
func TestParseRefusesWhatIsNotUTF8(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, want string
	}{
		{"[FetchTasks]\n0=T\n[T]\nUrl=http://x/caf\xe9\n", "config x.cfg:4: [T] Url: the line is not UTF-8 text (a Windows-1252 or Latin-1 file?): save the file as UTF-8"},
		{"[FetchTasks]\n0=T\xe9\n", "config x.cfg:2: [FetchTasks] 0: the line is not UTF-8 text"},
		{"[Server]\nPort=1\n[T\xe9]\nUrl=http://x/\n", "config x.cfg:3: the line is not UTF-8 text"},
		{"[T]\nPassword=s\xe9cret\n", "config x.cfg:2: [T] Password: the line is not UTF-8 text"},
	} {
		_, err := Parse("x.cfg", []byte(tc.text), testTaskKeys)
		require.ErrorContains(t, err, tc.want, "%q", tc.text)
		require.NotContains(t, err.Error(), "cret")
	}
	c, err := Parse("x.cfg", []byte("// caf\xe9\n; \xff\n[Server]\nPort=7010\n"), testTaskKeys)
	require.NoError(t, err, "a comment is not read")
	require.Equal(t, 7010, c.Server.Port)
}

func replaceNL(s, eol string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, eol...)
		} else {
			out = append(out, s[i])
		}
	}
	return string(out)
}

// A NUL byte is refused at its line, with its section and key, as every
// other error of a file is (the error named the file alone: in a file of
// thousands of lines, a stray NUL in one value had to be hunted for).
// Its value is not shown: it may be a secret.
func TestNULIsRefusedAtItsLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, want   string
		line         int
		section, key string
	}{
		{"[Server]\nPort=7010\n\n[T]\nPassword=s\x00cret\n", "config x.cfg:5: [T] Password: the text contains NUL bytes", 5, "T", "Password"},
		{"[Server]\r\nPort=7010\r\n[T]\r\nUrl=http://x/\x00\r\n", "config x.cfg:4: [T] Url: the text contains NUL bytes", 4, "T", "Url"},
		{"[Server]\rPort=7010\r[T\x00]\r", "config x.cfg:3: the text contains NUL bytes", 3, "", ""},
		{"[S\x00erver]\n", "config x.cfg:1: the text contains NUL bytes", 1, "", ""},
		// An error before it is the file's first: that one is given.
		{"[Server]\nPort 7010\n[T]\nUrl=\x00\n", `config x.cfg:2: [Server]: "Port 7010": expected Key=Value`, 2, "Server", ""},
	} {
		_, err := Parse("x.cfg", []byte(tc.text), testTaskKeys)
		require.ErrorContains(t, err, tc.want, "%q", tc.text)
		require.NotContains(t, err.Error(), "cret")
		var ce *Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, []any{"x.cfg", tc.line, tc.section, tc.key}, []any{ce.File, ce.Line, ce.Section, ce.Key}, "%q", tc.text)
	}
}

// Half of a UTF-16 surrogate pair (a lone surrogate: text cut between the
// two halves of an emoji, or written by a broken tool) is refused at its
// line, as bytes that are not UTF-8 are, without showing the value. On
// main it silently became U+FFFD: a file (or a request's Config fragment)
// saved as UTF-16 gave a password, a path or a URL other than the one
// written, with no word.
func TestLoneSurrogateIsRefusedAtItsLine(t *testing.T) {
	t.Parallel()
	units := func(s string, lone uint16) []uint16 {
		var u []uint16
		for _, r := range s {
			if r == '§' {
				u = append(u, lone)
				continue
			}
			u = append(u, utf16.Encode([]rune{r})...)
		}
		return u
	}
	le := func(u []uint16) []byte {
		out := []byte{0xFF, 0xFE}
		for _, x := range u {
			out = append(out, byte(x), byte(x>>8))
		}
		return out
	}
	be := func(u []uint16) []byte {
		out := []byte{0xFE, 0xFF}
		for _, x := range u {
			out = append(out, byte(x>>8), byte(x))
		}
		return out
	}
	for _, tc := range []struct {
		text         string
		lone         uint16
		line         int
		section, key string
	}{
		{"[Server]\r\nPort=7010\r\n[T]\r\nPassword=s§cret\r\n", 0xD800, 4, "T", "Password"},
		{"[Server]\nPort=7010\n[T]\nUrl=http://x/§\n", 0xDFFF, 4, "T", "Url"},
		{"[Server]\nPort=7010\n[T§]\n", 0xDC00, 3, "", ""},
		{"[Server]\nPort=7010§", 0xD83D, 2, "Server", "Port"}, // high half at the end of the text
	} {
		for _, data := range [][]byte{le(units(tc.text, tc.lone)), be(units(tc.text, tc.lone))} {
			_, err := Parse("x.cfg", data, testTaskKeys)
			require.ErrorContains(t, err, "half of a UTF-16 surrogate pair", "%q", tc.text)
			require.NotContains(t, err.Error(), "cret")
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, []any{"x.cfg", tc.line, tc.section, tc.key}, []any{ce.File, ce.Line, ce.Section, ce.Key}, "%q", tc.text)
		}
	}
	// A pair, and U+FFFD itself, are text.
	c, err := Parse("x.cfg", le(utf16.Encode([]rune("[FetchTasks]\n0=T\n[T]\nUrl=http://x/😀\uFFFD\n"))), testTaskKeys)
	require.NoError(t, err)
	u, _ := c.TaskValue("T", "Url")
	require.Equal(t, "http://x/😀\uFFFD", u)
}
