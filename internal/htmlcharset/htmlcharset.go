// Package htmlcharset reads the charset of an HTML page where
// golang.org/x/net/html/charset leaves it to its caller: an XML
// declaration (XMLDeclaration), a <meta> past the first 1024 bytes, where
// Chromium still looks for it (Meta), and a byte order mark, which is not
// text (TrimBOM). The crawl and package extract both read pages so.
package htmlcharset

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
)

// prescanBytes is how much of a page charset.DetermineEncoding's
// prescan reads, and Chromium reads whatever it holds.
const prescanBytes = 1024

// headTags are the start tags that keep Chromium looking for a <meta>
// charset past the first prescanBytes: those that have a place in a
// head (an end tag other than theirs ends the head, </head> too).
var headTags = map[string]bool{
	"script": true, "noscript": true, "style": true, "link": true, "meta": true,
	"object": true, "title": true, "base": true,
}

// Meta returns the encoding the first <meta> of body that names one
// declares, and its name (as charset.Lookup gives it), when body is
// longer than the prescanBytes charset.DetermineEncoding reads; nil when
// there is none. It reads on, as Chromium does
// (HTMLMetaCharsetParser): every tag of the first prescanBytes, then on
// until the head has ended (a start tag other than html, head and those
// of headTags, or an end tag other than theirs), so that a <meta
// charset> after a long <style>, <script> or comment of the head counts.
// A <meta> names an encoding as in charset.DetermineEncoding: a charset
// attribute, or http-equiv="Content-Type" and a content's "charset=";
// UTF-16 is read as UTF-8.
func Meta(body []byte) (encoding.Encoding, string) {
	if len(body) <= prescanBytes || !containsFold(body, "charset") {
		return nil, "" // the prescan read it all, or no <meta> names one
	}
	z := html.NewTokenizer(bytes.NewReader(body))
	read, inHead := 0, true
	for {
		tt := z.Next()
		read += len(z.Raw())
		switch tt {
		case html.ErrorToken:
			return nil, ""
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if string(name) == "meta" {
				if e, n := metaEncoding(z, hasAttr); e != nil {
					return e, n
				}
			}
			if !headTags[string(name)] && string(name) != "html" && string(name) != "head" {
				inHead = false
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); !headTags[string(name)] {
				inHead = false
			}
		}
		if !inHead && read >= prescanBytes {
			return nil, ""
		}
	}
}

// containsFold reports whether b holds s, an ASCII lower-case word, in
// any case.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if b[i]|0x20 == s[0] && bytes.EqualFold(b[i:i+len(s)], []byte(s)) {
			return true
		}
	}
	return false
}

// metaEncoding returns the encoding the <meta> tag z is at declares, as
// the prescan of charset.DetermineEncoding reads it.
func metaEncoding(z *html.Tokenizer, hasAttr bool) (encoding.Encoding, string) {
	const (
		dontKnow = iota
		needPragma
		noPragma
	)
	var (
		e      encoding.Encoding
		name   string
		seen   = map[string]bool{}
		pragma bool
		need   = dontKnow
	)
	for hasAttr {
		var key, val []byte
		key, val, hasAttr = z.TagAttr()
		k := string(key)
		if seen[k] {
			continue
		}
		seen[k] = true
		v := strings.ToLower(string(val))
		switch k {
		case "http-equiv":
			pragma = v == "content-type"
		case "content":
			if e == nil {
				if label := fromContent(v); label != "" {
					if e, name = charset.Lookup(label); e != nil {
						need = needPragma
					}
				}
			}
		case "charset":
			e, name = charset.Lookup(v)
			need = noPragma
		}
	}
	if e == nil || need == dontKnow || need == needPragma && !pragma {
		return nil, ""
	}
	if strings.HasPrefix(name, "utf-16") {
		return encoding.Nop, "utf-8"
	}
	return e, name
}

// fromContent returns the charset of a <meta http-equiv> content
// ("text/html; charset=windows-1251"), or "", as the WHATWG's
// "extracting a character encoding from a meta element" does.
func fromContent(s string) string {
	for s != "" {
		i := strings.Index(s, "charset")
		if i < 0 {
			return ""
		}
		s = strings.TrimLeft(s[i+len("charset"):], " \t\n\f\r")
		if !strings.HasPrefix(s, "=") {
			continue
		}
		s = strings.TrimLeft(s[1:], " \t\n\f\r")
		if s == "" {
			return ""
		}
		if q := s[0]; q == '"' || q == '\'' {
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				return ""
			}
			return s[1 : 1+end]
		}
		if end := strings.IndexAny(s, "; \t\n\f\r"); end >= 0 {
			return s[:end]
		}
		return s
	}
	return ""
}

// TrimBOM returns body without the byte order mark it starts with, if
// any (UTF-8's, UTF-16's of either byte order). charset.DetermineEncoding
// takes the page's encoding from it, but neither its decoders nor the
// tokenizer drop it, so it came out as a U+FEFF glued to the first word;
// a browser drops it (WHATWG "decode").
func TrimBOM(body []byte) []byte {
	for _, bom := range []string{"\xef\xbb\xbf", "\xfe\xff", "\xff\xfe"} {
		if bytes.HasPrefix(body, []byte(bom)) {
			return body[len(bom):]
		}
	}
	return body
}

// XMLDeclaration returns the encoding the XML declaration that starts data
// declares (<?xml version="1.0" encoding="windows-1251"?>: how an XHTML
// document says its charset), and its name; nil when there is none, or
// when it declares UTF-8 (valid UTF-8 is read as such anyway, and a
// document that is not is better read as Windows-1252). A declaration in
// UTF-16 without a byte order mark is that encoding. Chromium obeys it
// in a page served as text/html too (TextResourceDecoder), before a
// <meta charset>.
func XMLDeclaration(data []byte) (encoding.Encoding, string) {
	switch {
	case bytes.HasPrefix(data, []byte("<\x00?\x00x\x00")):
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "utf-16le"
	case bytes.HasPrefix(data, []byte("\x00<\x00?\x00x")):
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), "utf-16be"
	case !bytes.HasPrefix(data, []byte("<?xml")):
		return nil, ""
	}
	decl, _, ok := bytes.Cut(data[:min(len(data), 1024)], []byte("?>"))
	if !ok {
		return nil, ""
	}
	_, v, ok := bytes.Cut(decl, []byte("encoding"))
	v, eq := bytes.CutPrefix(bytes.TrimLeft(v, " \t\r\n"), []byte("="))
	v = bytes.TrimLeft(v, " \t\r\n")
	if !ok || !eq || len(v) < 2 || v[0] != '"' && v[0] != '\'' {
		return nil, ""
	}
	label, _, ok := bytes.Cut(v[1:], v[:1])
	if !ok {
		return nil, ""
	}
	enc, name := charset.Lookup(string(label))
	if enc == nil || name == "utf-8" || strings.HasPrefix(name, "utf-16") {
		// UTF-16 declared in single bytes is not what the bytes are.
		return nil, ""
	}
	return enc, name
}
