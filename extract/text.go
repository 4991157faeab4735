package extract

import (
	"bytes"
	"mime"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// DecodeText decodes plain text to UTF-8: a byte order mark (UTF-8,
// UTF-16) wins, then the charset parameter of contentType; without either,
// valid UTF-8 is taken as it is and anything else is read as Windows-1252
// (the WHATWG default for Latin text, and a superset of ISO-8859-1).
// Invalid sequences become U+FFFD; NUL bytes are dropped.
func DecodeText(data []byte, contentType string) string {
	switch {
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		return clean(data[3:])
	case bytes.HasPrefix(data, []byte("\xff\xfe")), bytes.HasPrefix(data, []byte("\xfe\xff")):
		dec := unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()
		if out, err := dec.Bytes(data); err == nil {
			return clean(out)
		}
	}
	label := ""
	if _, params, err := mime.ParseMediaType(contentType); err == nil {
		label = params["charset"]
	}
	if label != "" {
		if enc, name := charset.Lookup(label); enc != nil && name != "utf-8" {
			if out, err := enc.NewDecoder().Bytes(data); err == nil {
				return clean(out)
			}
		}
	}
	if utf8.Valid(data) {
		return clean(data)
	}
	if label == "" {
		if out, err := charmap.Windows1252.NewDecoder().Bytes(data); err == nil {
			return clean(out)
		}
	}
	return clean(data)
}

func clean(b []byte) string {
	s := string(b)
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if utf8.ValidString(s) {
		return s // ToValidUTF8 would walk it rune by rune to say so
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
