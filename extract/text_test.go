package extract

import (
	"bytes"
	"math/rand/v2"
	"mime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// whatwgNames are the canonical names of the WHATWG Encoding Standard's
// encodings (what charset.Lookup returns).
var whatwgNames = []string{
	"utf-8", "ibm866", "iso-8859-2", "iso-8859-3", "iso-8859-4", "iso-8859-5", "iso-8859-6", "iso-8859-7",
	"iso-8859-8", "iso-8859-8-i", "iso-8859-10", "iso-8859-13", "iso-8859-14", "iso-8859-15", "iso-8859-16",
	"koi8-r", "koi8-u", "macintosh", "windows-874", "windows-1250", "windows-1251", "windows-1252",
	"windows-1253", "windows-1254", "windows-1255", "windows-1256", "windows-1257", "windows-1258",
	"x-mac-cyrillic", "gbk", "gb18030", "big5", "euc-jp", "iso-2022-jp", "shift_jis", "euc-kr",
	"replacement", "utf-16be", "utf-16le", "x-user-defined",
}

// Every encoding asciiCompatible admits decodes bytes 0x00–0x7F to
// themselves (so DecodeTextCharset may skip its decoder for ASCII), and
// those it leaves out include the ones that do not.
func TestASCIICompatibleEncodingsDecodeASCIIToItself(t *testing.T) {
	ascii := make([]byte, 128)
	for i := range ascii {
		ascii[i] = byte(i)
	}
	admitted := 0
	for _, name := range whatwgNames {
		enc, canonical := charset.Lookup(name)
		require.NotNil(t, enc, name)
		require.Equal(t, name, canonical)
		if !asciiCompatible(canonical) {
			continue
		}
		admitted++
		out, err := enc.NewDecoder().Bytes(ascii)
		require.NoError(t, err, name)
		require.Equal(t, ascii, out, name)
	}
	require.Equal(t, 28, admitted, "the single-byte encodings")
	for _, name := range []string{"utf-8", "utf-16le", "utf-16be", "iso-2022-jp", "replacement", "gbk", "shift_jis"} {
		require.False(t, asciiCompatible(name), name)
	}
}

// decodeTextBefore is DecodeText as it was before the charset label could
// be given and ASCII skipped its decoder (an unknown label read as none,
// and UTF-32 byte order marks read, since): the reference for the new one.
func decodeTextBefore(data []byte, contentType string) string {
	cleanBefore := func(b []byte) string {
		s := string(b)
		if strings.IndexByte(s, 0) >= 0 {
			s = strings.ReplaceAll(s, "\x00", "")
		}
		if utf8.ValidString(s) {
			return s
		}
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	switch {
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		return cleanBefore(data[3:])
	case bytes.HasPrefix(data, []byte("\xff\xfe\x00\x00")), bytes.HasPrefix(data, []byte("\x00\x00\xfe\xff")):
		dec := utf32.UTF32(utf32.BigEndian, utf32.ExpectBOM).NewDecoder()
		if out, err := dec.Bytes(data); err == nil {
			return cleanBefore(out)
		}
	case bytes.HasPrefix(data, []byte("\xff\xfe")), bytes.HasPrefix(data, []byte("\xfe\xff")):
		dec := unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()
		if out, err := dec.Bytes(data); err == nil {
			return cleanBefore(out)
		}
	}
	label := ""
	if _, params, err := mime.ParseMediaType(contentType); err == nil {
		label = params["charset"]
	}
	if enc, _ := charset.Lookup(label); enc == nil {
		label = ""
	}
	if label != "" {
		if enc, name := charset.Lookup(label); enc != nil && name != "utf-8" {
			if out, err := enc.NewDecoder().Bytes(data); err == nil {
				return cleanBefore(out)
			}
		}
	}
	if utf8.Valid(data) {
		return cleanBefore(data)
	}
	if label == "" {
		if out, err := charmap.Windows1252.NewDecoder().Bytes(data); err == nil {
			return cleanBefore(out)
		}
	}
	return cleanBefore(data)
}

func checkDecodeTextAsBefore(t *testing.T, data []byte) {
	t.Helper()
	for _, ct := range []string{"", "text/plain", "text/plain;", "TEXT/PLAIN; Charset=\"US-ASCII\"", "text/plain; charset=bogus", "text/plain; charset=", "text/plain; charset=utf-8; format=flowed", "text/plain charset=utf-8", "text/plain; charset=utf-8; charset=latin1"} {
		require.Equal(t, decodeTextBefore(data, ct), DecodeText(data, ct), "%q %q", ct, data)
	}
	for _, name := range append(whatwgNames, "us-ascii", "latin1", "utf8", "unicode-1-1-utf-8", "cp1252", "x-unknown", "UTF-8", "Utf-8", " utf-8", "utf-8 ", "utf-16") {
		ct := "text/plain; charset=" + name
		require.Equal(t, decodeTextBefore(data, ct), DecodeText(data, ct), "%q %q", ct, data)
		label := name
		require.Equal(t, decodeTextBefore(data, ct), DecodeTextCharset(data, label), "%q %q", label, data)
	}
}

// DecodeText and DecodeTextCharset return what DecodeText returned before
// them, for every charset and ASCII, UTF-8, Latin, UTF-16, NUL-holding
// and random bytes.
func TestDecodeTextAsBefore(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seeds := [][]byte{
		nil, []byte("plain ascii\r\nline two\t."), []byte("nul\x00inside"), []byte("h\xe9llo"), []byte("héllo"),
		[]byte("\xef\xbb\xbfbom"), []byte("\xff\xfeh\x00i\x00"), []byte("\xfe\xff\x00h\x00i"), []byte("\xc3\x00\xa9"),
		[]byte("\x1b$B\x30\x21\x1b(B"), []byte("~{<:~}"), []byte("abcdefgh\x80"), []byte("abcdefg\x80"),
	}
	for range 300 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			switch r.IntN(3) {
			case 0:
				b[i] = byte(r.IntN(128))
			case 1:
				b[i] = byte(0x20 + r.IntN(95))
			default:
				b[i] = byte(r.IntN(256))
			}
		}
		seeds = append(seeds, b)
	}
	for _, s := range seeds {
		checkDecodeTextAsBefore(t, s)
	}
}

func FuzzDecodeTextAsBefore(f *testing.F) {
	f.Add([]byte("plain ascii"))
	f.Add([]byte("h\xe9llo\x00"))
	f.Add([]byte("\x1b$B\x30\x21\x1b(B"))
	f.Fuzz(func(t *testing.T, data []byte) { checkDecodeTextAsBefore(t, data) })
}

// IsUTF8Label says yes only to labels charset.Lookup reads as UTF-8:
// every 5-byte label over the letters that matter.
func TestIsUTF8LabelIsLookups(t *testing.T) {
	alphabet := []byte("uUtTfF-8\x00\xd5\xd4 sS")
	yes := 0
	var label [5]byte
	var walk func(i int)
	walk = func(i int) {
		if i == len(label) {
			l := string(label[:])
			if IsUTF8Label(l) {
				yes++
				enc, name := charset.Lookup(l)
				require.NotNil(t, enc, "%q", l)
				require.Equal(t, "utf-8", name, "%q", l)
			}
			return
		}
		for _, c := range alphabet {
			label[i] = c
			walk(i + 1)
		}
	}
	walk(0)
	require.Equal(t, 8, yes) // u/U × t/T × f/F
	require.False(t, IsUTF8Label("utf8"))
	require.False(t, IsUTF8Label("\u212atf-8"))
}

// A charset label no one knows ("unknown-8bit", which mail programs write
// for text whose charset they could not tell; "x-unknown"; a typo) says
// nothing about the text: it is read as text without a charset, valid
// UTF-8 as it is, else Windows-1252, as mail bodies already were
// (mimedoc). Text attachments and web pages so labelled lost every
// accented letter to U+FFFD.
func TestDecodeTextUnknownCharsetIsNone(t *testing.T) {
	for _, label := range []string{"unknown-8bit", "x-unknown", "latin-1x", "bogus"} {
		assert.Equal(t, "héllo wörld", DecodeText([]byte("h\xe9llo w\xf6rld"), "text/plain; charset="+label), label)
		assert.Equal(t, "héllo", DecodeTextCharset([]byte("h\xc3\xa9llo"), label), label)
	}
	assert.Equal(t, "h\ufffdllo", DecodeText([]byte("h\xe9llo"), "text/plain; charset=utf-8"), "declared UTF-8 stays UTF-8")
}

// A UTF-32 byte order mark (FF FE 00 00, 00 00 FE FF) decodes the text
// as UTF-32: the first was read as UTF-16 (a U+FEFF and NULs), the
// second as Windows-1252 ("þÿ" glued to the first word).
func TestDecodeTextUTF32BOM(t *testing.T) {
	le := []byte("\xff\xfe\x00\x00h\x00\x00\x00\xe9\x00\x00\x00\n\x00\x00\x00")
	be := []byte("\x00\x00\xfe\xff\x00\x00\x00h\x00\x00\x00\xe9\x00\x00\x00\n")
	assert.Equal(t, "hé\n", DecodeText(le, ""))
	assert.Equal(t, "hé\n", DecodeText(be, "text/plain; charset=iso-8859-1"), "a BOM wins")
	assert.Equal(t, "hi", DecodeText([]byte("\xff\xfeh\x00i\x00"), ""), "UTF-16 as before")
}

// Lines ended by a carriage return alone (classic Mac OS text, "CSV
// (Macintosh)" from Excel) were joined with nothing between them: the
// builder dropped every \r, so "one\rtwo" read "onetwo". A \r ends a line
// like \n and \r\n do.
func TestTextCarriageReturnLines(t *testing.T) {
	assertTexts(t, "text/plain", map[string]string{
		"one\rtwo\rthree\r":       "one\ntwo\nthree",
		"Name,City\rAda,London\r": "Name,City\nAda,London",
		"dos\r\nlines\r\n":        "dos\nlines",
		"mixed\r\n\rend":          "mixed\n\nend",
	})
}
