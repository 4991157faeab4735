package aci

import (
	"strings"
	"unicode/utf8"
)

// autnPrefix is the one namespace prefix element and attribute names may
// carry; the envelope declares it.
const autnPrefix = "autn:"

// xmlName returns name as a valid XML name: name itself when it already is
// one (no allocation), otherwise a sanitised copy (sanitizeName).
func xmlName(name string) string {
	if validName(name) {
		return name
	}
	return sanitizeName(name)
}

// attrName is xmlName for attributes; "xmlns" would declare a namespace,
// so it is renamed.
func attrName(name string) string {
	n := xmlName(name)
	if n == "xmlns" {
		return "_xmlns"
	}
	return n
}

// nameClass classifies ASCII bytes for XML names: nameStartBit for
// [A-Za-z_], nameCharBit for those and [0-9.-].
var nameClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
			t[c] = nameStartBit | nameCharBit
		case '0' <= c && c <= '9', c == '-', c == '.':
			t[c] = nameCharBit
		}
	}
	return t
}()

const (
	nameStartBit = 1 << iota
	nameCharBit
)

func isNameStart(c byte) bool { return nameClass[c]&nameStartBit != 0 }

func isNameChar(c byte) bool { return nameClass[c]&nameCharBit != 0 }

// validName reports whether name is an ASCII XML name with at most the
// autn: prefix.
func validName(name string) bool {
	local := name
	if len(name) >= len(autnPrefix) && name[:len(autnPrefix)] == autnPrefix {
		local = name[len(autnPrefix):]
	}
	if local == "" || nameClass[local[0]]&nameStartBit == 0 {
		return false
	}
	for i := 1; i < len(local); i++ {
		if nameClass[local[i]]&nameCharBit == 0 {
			return false
		}
	}
	return true
}

// plainName reports whether name is written unchanged as an element name
// (or attribute name, with attr) and, when strip is set, as a JSON key:
// then two plain names give the same key exactly when they are equal.
func plainName(name string, attr, strip bool) bool {
	return validName(name) && !(attr && name == "xmlns") &&
		!(strip && len(name) >= len(autnPrefix) && name[:len(autnPrefix)] == autnPrefix)
}

// plainAttrs reports whether every attribute name is plain.
func plainAttrs(attrs []Attr, strip bool) bool {
	for i := range attrs {
		if !plainName(attrs[i].Name, true, strip) {
			return false
		}
	}
	return true
}

// plainNodes reports whether every node name is plain.
func plainNodes(nodes []Node, strip bool) bool {
	for i := range nodes {
		if !plainName(nodes[i].Name, false, strip) {
			return false
		}
	}
	return true
}

// sanitizeName maps name to a valid XML name: an autn: prefix is kept,
// every other character outside [A-Za-z0-9_.-] (including other colons and
// each byte of invalid UTF-8) becomes '_', a local name starting with a
// digit, '-' or '.' gets a leading '_', and an empty local name becomes "_".
func sanitizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 1)
	local := name
	if strings.HasPrefix(name, autnPrefix) {
		b.WriteString(autnPrefix)
		local = name[len(autnPrefix):]
	}
	if local == "" {
		b.WriteByte('_')
		return b.String()
	}
	for i, r := range local {
		switch {
		case r < utf8.RuneSelf && isNameStart(byte(r)):
			b.WriteRune(r)
		case r < utf8.RuneSelf && isNameChar(byte(r)):
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// jsonKey is the key of an element or attribute name in JSON: the XML name,
// without its autn: prefix when strip is set (simplejson).
func jsonKey(xmlname string, strip bool) string {
	if strip {
		return strings.TrimPrefix(xmlname, autnPrefix)
	}
	return xmlname
}

// replacement is U+FFFD in UTF-8.
const replacement = "\uFFFD"

// appendXMLText appends s escaped as XML character data, or as an
// attribute value in double quotes when attr is set. Characters XML 1.0
// cannot carry (C0 controls other than tab, LF and CR; U+FFFE; U+FFFF;
// each byte of invalid UTF-8) become U+FFFD. CR (and in attributes also
// tab and LF) is written as a character reference so that it survives
// end-of-line and attribute-value normalisation.
func appendXMLText(dst []byte, s string, attr bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var esc string
			switch {
			case c == '&':
				esc = "&amp;"
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;"
			case c == '"' && attr:
				esc = "&quot;"
			case c == '\r':
				esc = "&#13;"
			case c == '\n':
				if !attr {
					i++
					continue
				}
				esc = "&#10;"
			case c == '\t':
				if !attr {
					i++
					continue
				}
				esc = "&#9;"
			case c < 0x20:
				esc = replacement
			default:
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, esc...)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == 0xFFFE || r == 0xFFFF {
			dst = append(dst, s[start:i]...)
			dst = append(dst, replacement...)
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal. Control characters
// are escaped, each byte of invalid UTF-8 becomes U+FFFD, and U+2028 and
// U+2029 are escaped so that the output is also valid JavaScript.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u2028`...)
		case r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u2029`...)
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
