package httpfetch

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// xnode is an element of a small XML document given as a parameter
// (IdentifiersXML, InsertXML): names are local and lower case, attributes
// keyed by lower-case local name, text is the element's own character
// data.
type xnode struct {
	name  string
	attrs map[string]string
	text  strings.Builder
	kids  []*xnode
}

func (n *xnode) attr(name string) (string, bool) {
	v, ok := n.attrs[name]
	return v, ok
}

func (n *xnode) child(name string) *xnode {
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

func (n *xnode) childText(name string) string {
	if c := n.child(name); c != nil {
		return strings.TrimSpace(c.text.String())
	}
	return ""
}

// maxXMLDepth bounds nesting in parameter XML.
const maxXMLDepth = 64

// parseXML reads a sequence of top-level elements. Namespaces are ignored;
// comments, processing instructions and directives are skipped.
func parseXML(s string) ([]*xnode, error) {
	dec := xml.NewDecoder(strings.NewReader(s))
	dec.Strict = true
	var roots []*xnode
	var stack []*xnode
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxXMLDepth {
				return nil, errors.New("elements nested too deeply")
			}
			n := &xnode{name: strings.ToLower(t.Name.Local), attrs: make(map[string]string, len(t.Attr))}
			for _, a := range t.Attr {
				n.attrs[strings.ToLower(a.Name.Local)] = a.Value
			}
			if len(stack) == 0 {
				roots = append(roots, n)
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, errors.New("text outside any element")
			}
		}
	}
	if len(roots) == 0 {
		return nil, errors.New("no element")
	}
	return roots, nil
}

// findAll returns the elements named name in document order, not looking
// inside a match.
func findAll(nodes []*xnode, name string) []*xnode {
	var out []*xnode
	var walk func([]*xnode)
	walk = func(ns []*xnode) {
		for _, n := range ns {
			if n.name == name {
				out = append(out, n)
				continue
			}
			walk(n.kids)
		}
	}
	walk(nodes)
	return out
}

// decodeBase64 reads base64 in the standard or URL-safe alphabet, with or
// without padding, ignoring white space (line breaks of MIME-style
// encoders; a '+' sent without percent-encoding arrives as a space and is
// read back as '+').
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ':
			return '+'
		case '\t', '\n', '\r':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	var lastErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		lastErr = err
	}
	return nil, lastErr
}
