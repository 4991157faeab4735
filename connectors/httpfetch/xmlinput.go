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
	attrs []xattr // a slice, not a map: an element costs little more than its text
	text  strings.Builder
	kids  []*xnode
}

type xattr struct{ name, value string }

// attr returns the first attribute of that (lower-case local) name.
func (n *xnode) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.name == name {
			return a.value, true
		}
	}
	return "", false
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

// xmlBytesPerElement sizes the element limit of parameter XML: one element
// per 256 bytes of [Server] MaxRequestBytes (262,144 with the default 64
// MiB: tens of thousands of Insert documents), so that reading the largest
// tree a client may send costs about the size of the body limit (an element
// takes about 150 bytes in the tree and as much again, briefly, in the
// decoder).
const xmlBytesPerElement = 256

// maxXMLElements is the element limit of parameter XML for a body limit.
func maxXMLElements(maxRequestBytes int) int {
	return max(1024, maxRequestBytes/xmlBytesPerElement)
}

// errXMLElements: parameter XML has more elements than allowed.
var errXMLElements = errors.New("too many elements")

// parseXML reads a sequence of top-level elements, at most maxElements of
// them in all (errXMLElements beyond). Namespaces are ignored; comments,
// processing instructions and directives are skipped.
func parseXML(s string, maxElements int) ([]*xnode, error) {
	dec := xml.NewDecoder(strings.NewReader(s))
	dec.Strict = true
	var roots []*xnode
	var stack []*xnode
	elements := 0
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
			if elements++; elements > maxElements {
				return nil, errXMLElements
			}
			n := &xnode{name: strings.ToLower(t.Name.Local)}
			if len(t.Attr) > 0 {
				n.attrs = make([]xattr, 0, len(t.Attr))
			}
		attrs:
			for _, a := range t.Attr {
				name := strings.ToLower(a.Name.Local)
				for i := range n.attrs {
					if n.attrs[i].name == name { // the last of a name wins
						n.attrs[i].value = a.Value
						continue attrs
					}
				}
				n.attrs = append(n.attrs, xattr{name, a.Value})
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
