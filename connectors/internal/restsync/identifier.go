package restsync

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"strings"
)

// Identifier locates an item of a task for Collect, View and Delete. The
// AUTN_IDENTIFIER is base64 (standard, padded) of
// <id s="TASK" t="KIND" c="CONTAINER" i="ITEM" p="PART"/>: the task in
// upper case, the kind of item, the container it was found in, its id, and
// a part of it (a file of a message, a version of a document), each
// attribute left out when empty. Each connector says what its kinds and
// parts are.
type Identifier struct {
	Task      string
	Kind      string
	Container string
	Item      string
	Part      string
}

type xmlID struct {
	XMLName   xml.Name `xml:"id"`
	Task      string   `xml:"s,attr"`
	Kind      string   `xml:"t,attr,omitempty"`
	Container string   `xml:"c,attr,omitempty"`
	Item      string   `xml:"i,attr,omitempty"`
	Part      string   `xml:"p,attr,omitempty"`
}

// Encode returns the AUTN_IDENTIFIER (the XML written by hand, into one
// buffer, and encoded at once: this is done for every document).
func (id Identifier) Encode() string {
	var stack [256]byte
	raw := append(stack[:0], "<id"...)
	attr := func(name, v string, always bool) {
		if v == "" && !always {
			return
		}
		raw = append(raw, ' ')
		raw = append(raw, name...)
		raw = append(raw, '=', '"')
		if plainAttr(v) {
			raw = append(raw, v...)
		} else {
			var b bytes.Buffer
			_ = xml.EscapeText(&b, []byte(v))
			raw = append(raw, b.Bytes()...)
		}
		raw = append(raw, '"')
	}
	task := id.Task
	if !isUpper(task) {
		task = strings.ToUpper(task)
	}
	attr("s", task, true)
	attr("t", id.Kind, false)
	attr("c", id.Container, false)
	attr("i", id.Item, false)
	attr("p", id.Part, false)
	raw = append(raw, "></id>"...)
	var encoded [512]byte
	n := base64.StdEncoding.EncodedLen(len(raw))
	if n > len(encoded) {
		return base64.StdEncoding.EncodeToString(raw)
	}
	base64.StdEncoding.Encode(encoded[:n], raw)
	return string(encoded[:n])
}

// isUpper reports whether strings.ToUpper would return s unchanged
// without looking further than ASCII (task names are upper case ASCII).
func isUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' || c >= 0x80 {
			return false
		}
	}
	return true
}

// plainAttr reports whether xml.EscapeText would write v unchanged
// (printable ASCII other than " ' & < >): ids are, and escaping them rune
// by rune was most of the cost of an identifier.
func plainAttr(v string) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\'', c == '&', c == '<', c == '>':
			return false
		}
	}
	return true
}

// ErrIdentifier is the reason a value is not an identifier of the
// connector.
var ErrIdentifier = errors.New(`not an identifier of this connector (base64 of <id s="TASK" t="KIND" i="ITEM"/>)`)

// DecodeIdentifier reads an AUTN_IDENTIFIER. It tolerates a '+' that came
// as a space, lost padding and the URL-safe alphabet.
func DecodeIdentifier(s string) (Identifier, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, " ", "+"))
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	raw, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(raw) > 64<<10 {
		return Identifier{}, ErrIdentifier
	}
	var x xmlID
	if err := xml.Unmarshal(raw, &x); err != nil || x.Task == "" || x.Item == "" {
		return Identifier{}, ErrIdentifier
	}
	return Identifier{Task: strings.ToUpper(x.Task), Kind: x.Kind, Container: x.Container, Item: x.Item, Part: x.Part}, nil
}
