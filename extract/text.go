package extract

import (
	"bytes"
	"encoding/binary"
	"mime"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// DecodeText decodes plain text to UTF-8: a byte order mark (UTF-8,
// UTF-16, UTF-32) wins, then the charset parameter of contentType; without either
// (or with a charset that is not a WHATWG label, such as "unknown-8bit"),
// valid UTF-8 is taken as it is and anything else is read as Windows-1252
// (the WHATWG default for Latin text, and a superset of ISO-8859-1).
// Invalid sequences become U+FFFD; NUL bytes are dropped.
func DecodeText(data []byte, contentType string) string {
	label := ""
	// Without parameters there is no charset: the media type is not parsed.
	if strings.IndexByte(contentType, ';') >= 0 {
		if _, params, err := mime.ParseMediaType(contentType); err == nil {
			label = params["charset"]
		}
	}
	return DecodeTextCharset(data, label)
}

// DecodeTextCharset is DecodeText for a caller that has the charset label
// already (a MIME reader that parsed the Content-Type): "" for none.
func DecodeTextCharset(data []byte, label string) string {
	switch {
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		return clean(data[3:])
	case bytes.HasPrefix(data, []byte("\xff\xfe\x00\x00")), bytes.HasPrefix(data, []byte("\x00\x00\xfe\xff")):
		dec := utf32.UTF32(utf32.BigEndian, utf32.ExpectBOM).NewDecoder()
		if out, err := dec.Bytes(data); err == nil {
			return clean(out)
		}
	case bytes.HasPrefix(data, []byte("\xff\xfe")), bytes.HasPrefix(data, []byte("\xfe\xff")):
		dec := unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()
		if out, err := dec.Bytes(data); err == nil {
			return clean(out)
		}
	}
	if label != "" && !IsUTF8Label(label) {
		enc, name := charset.Lookup(label)
		switch {
		case enc == nil:
			label = "" // an unknown charset ("unknown-8bit") says nothing
		case name != "utf-8":
			if asciiCompatible(name) && isASCII(data) {
				// What the decoder would return: the same bytes.
				return clean(data)
			}
			if out, err := enc.NewDecoder().Bytes(data); err == nil {
				return clean(out)
			}
		}
	}
	if utf8.Valid(data) {
		return cleanValid(data)
	}
	if label == "" {
		if out, err := charmap.Windows1252.NewDecoder().Bytes(data); err == nil {
			return clean(out)
		}
	}
	return clean(data)
}

// asciiCompatible reports whether the WHATWG encoding of that canonical
// name (charset.Lookup's) decodes bytes 0x00–0x7F to the same code points:
// the single-byte encodings do; UTF-16, the CJK encodings with escape or
// shift sequences (ISO-2022-JP, HZ) and "replacement" are not all known
// to, and are left to their decoders.
func asciiCompatible(name string) bool {
	switch {
	case strings.HasPrefix(name, "windows-"), strings.HasPrefix(name, "iso-8859-"):
		return true
	}
	switch name {
	case "ibm866", "koi8-r", "koi8-u", "macintosh", "x-mac-cyrillic":
		return true
	}
	return false
}

// isASCII reports whether every byte of b is below 0x80.
func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func clean(b []byte) string {
	if utf8.Valid(b) {
		return cleanValid(b)
	}
	s := string(b)
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// IsUTF8Label reports whether label is "utf-8" in any letter case: a label
// charset.Lookup reads as UTF-8 (TestIsUTF8LabelIsLookups), told without
// the allocation Lookup makes (the commonest label of mail and the web).
// false says nothing: Lookup may still read the label as UTF-8.
func IsUTF8Label(label string) bool {
	return len(label) == 5 && label[0]|0x20 == 'u' && label[1]|0x20 == 't' && label[2]|0x20 == 'f' && label[3] == '-' && label[4] == '8'
}

// cleanValid is clean for b known to be valid UTF-8 (which stays valid
// without its NUL bytes): it is not walked again to say so.
func cleanValid(b []byte) string {
	s := string(b)
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}
