package mailfetch

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"strings"
	"unicode/utf8"
)

// Identifier locates a message, or one of its attachments, for Collect,
// View and Delete. AUTN_IDENTIFIER is base64 (standard, padded) of
// <id s="TASK" c="COLLECTION" k="KEY" p="SECTION"/>: the task in upper
// case, the collection (the IMAP folder; "" for the Gmail API), the
// message's key in it (IMAP "<UIDVALIDITY>.<UID>", Gmail the message id)
// and, for an attachment, its section ("2", "1.3"). A collection whose
// name holds a character XML cannot (U+FFFE, a control character, a byte
// that is not UTF-8: Dovecot creates such folders) is also in c64, base64
// (standard, padded) of its bytes, which DecodeIdentifier reads instead of
// c (there U+FFFD for each such character, as encoding/xml writes it).
type Identifier struct {
	Task       string
	Collection string
	Key        string
	Section    string // "" for the message itself
}

type xmlID struct {
	XMLName xml.Name `xml:"id"`
	Task    string   `xml:"s,attr"`
	Coll    string   `xml:"c,attr"`
	Key     string   `xml:"k,attr"`
	Section string   `xml:"p,attr,omitempty"`
	Coll64  string   `xml:"c64,attr,omitempty"`
}

// Encode returns the AUTN_IDENTIFIER. The XML is written by hand, byte
// for byte what xml.Marshal writes of xmlID (TestIdentifierEncodeIsXML):
// xml.Marshal cost a 4 KiB buffer and reflection per document, a tenth of
// a synchronize's CPU.
func (id Identifier) Encode() string {
	var arr [256]byte
	b := append(arr[:0], `<id s="`...)
	b = appendXMLAttr(b, strings.ToUpper(id.Task))
	b = append(b, `" c="`...)
	b = appendXMLAttr(b, id.Collection)
	b = append(b, `" k="`...)
	b = appendXMLAttr(b, id.Key)
	if id.Section != "" {
		b = append(b, `" p="`...)
		b = appendXMLAttr(b, id.Section)
	}
	if !xmlHolds(id.Collection) {
		b = append(b, `" c64="`...)
		b = base64.StdEncoding.AppendEncode(b, []byte(id.Collection))
	}
	b = append(b, `"></id>`...)
	return base64.StdEncoding.EncodeToString(b)
}

// appendXMLAttr appends s escaped as encoding/xml escapes an attribute
// value (printer.EscapeString): the five markup characters and tab, LF
// and CR as character references, a character XML cannot hold (or a byte
// that is not UTF-8) as U+FFFD.
func appendXMLAttr(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		i += width
		var esc string
		switch r {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if !xmlChar(r) || (r == utf8.RuneError && width == 1) {
				esc = "\uFFFD"
				break
			}
			continue
		}
		b = append(b, s[last:i-width]...)
		b = append(b, esc...)
		last = i
	}
	return append(b, s[last:]...)
}

// xmlHolds reports whether an XML attribute holds s as it is: UTF-8 of
// characters XML allows (appendXMLAttr changes no other).
func xmlHolds(s string) bool {
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		if !xmlChar(r) || (r == utf8.RuneError && width == 1) {
			return false
		}
		i += width
	}
	return true
}

// xmlChar is encoding/xml's isInCharacterRange: the Char production of
// XML 1.0.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// errIdentifier is the reason a value is not an identifier.
var errIdentifier = errors.New("not an identifier of the Google Mail connector (base64 of <id s=\"TASK\" c=\"FOLDER\" k=\"KEY\"/>)")

// DecodeIdentifier reads an AUTN_IDENTIFIER. It tolerates a '+' that came
// as a space, lost padding and the URL-safe alphabet.
func DecodeIdentifier(s string) (Identifier, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, " ", "+"))
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	raw, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(raw) > 64<<10 {
		return Identifier{}, errIdentifier
	}
	var x xmlID
	if err := xml.Unmarshal(raw, &x); err != nil || x.Task == "" || x.Key == "" {
		return Identifier{}, errIdentifier
	}
	if x.Coll64 != "" {
		coll, err := base64.StdEncoding.DecodeString(x.Coll64)
		if err != nil {
			return Identifier{}, errIdentifier
		}
		x.Coll = string(coll)
	}
	return Identifier{Task: strings.ToUpper(x.Task), Collection: x.Coll, Key: x.Key, Section: x.Section}, nil
}
