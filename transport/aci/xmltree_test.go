package aci

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// decodeXML is the tests' own reader of ACI XML: it parses a document
// strictly with encoding/xml into a Node tree. Names in the autn namespace
// come back as "autn:local"; namespace declarations are dropped. With trim
// set, text is trimmed of surrounding white space and white-space-only text
// is dropped (for indented fixtures); otherwise text is exact.
func decodeXML(data []byte, trim bool) (Node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var stack []*Node
	var root *Node
	var text [][]byte
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Node{}, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &Node{Name: qname(tok.Name)}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				n.Attrs = append(n.Attrs, Attr{Name: qname(a.Name), Value: a.Value})
			}
			stack = append(stack, n)
			text = append(text, nil)
		case xml.CharData:
			if len(stack) > 0 {
				text[len(text)-1] = append(text[len(text)-1], tok...)
			}
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.Text = string(text[len(text)-1])
			if trim {
				n.Text = strings.TrimSpace(n.Text)
			}
			stack, text = stack[:len(stack)-1], text[:len(text)-1]
			if len(stack) == 0 {
				if root != nil {
					return Node{}, fmt.Errorf("two root elements")
				}
				root = n
				continue
			}
			p := stack[len(stack)-1]
			p.Children = append(p.Children, *n)
		}
	}
	if root == nil {
		return Node{}, fmt.Errorf("no root element")
	}
	return *root, nil
}

func qname(n xml.Name) string {
	switch n.Space {
	case "":
		return n.Local
	case Namespace:
		return "autn:" + n.Local
	default:
		return n.Space + ":" + n.Local
	}
}

// decodeReply reads an autnresponse document back into a Reply: the
// action, and either the error block (as *Error) or the responsedata
// children.
func decodeReply(t *testing.T, data []byte, trim bool) *Reply {
	t.Helper()
	root, err := decodeXML(data, trim)
	require.NoError(t, err, "%s", data)
	require.Equal(t, "autnresponse", root.Name)
	require.Len(t, root.Children, 3)
	require.Equal(t, "action", root.Children[0].Name)
	require.Equal(t, "response", root.Children[1].Name)
	require.Equal(t, "responsedata", root.Children[2].Name)
	r := &Reply{Action: root.Children[0].Text}
	data2 := root.Children[2].Children
	switch root.Children[1].Text {
	case "SUCCESS":
		r.Data = data2
	case "ERROR":
		require.Len(t, data2, 1)
		r.Err = decodeError(t, data2[0])
	default:
		t.Fatalf("response %q", root.Children[1].Text)
	}
	return r
}

// decodeError reads an <error> block.
func decodeError(t *testing.T, n Node) *Error {
	t.Helper()
	require.Equal(t, "error", n.Name)
	names := make([]string, len(n.Children))
	for i, c := range n.Children {
		names[i] = c.Name
	}
	require.Equal(t, []string{"errorid", "rawerrorid", "errorstring", "errordescription", "errorcode", "errortime"}, names)
	var raw int
	_, err := fmt.Sscanf(n.Children[1].Text, "0x%X", &raw)
	require.NoError(t, err)
	tm, err := parseTimeIn(ErrorTimeLayout, n.Children[5].Text)
	require.NoError(t, err)
	return &Error{
		ID: n.Children[0].Text, Raw: raw, String: n.Children[2].Text,
		Description: n.Children[3].Text, Code: n.Children[4].Text, Time: tm,
	}
}

// normalize makes trees comparable after a trip through XML, which keeps
// neither List nor the difference between nil and empty Children.
func normalize(n Node) Node {
	n.List = false
	if len(n.Children) == 0 {
		n.Children = nil
		return n
	}
	ch := make([]Node, len(n.Children))
	for i, c := range n.Children {
		ch[i] = normalize(c)
	}
	n.Children = ch
	return n
}

func normalizeAll(ns []Node) []Node {
	out := make([]Node, len(ns))
	for i, n := range ns {
		out[i] = normalize(n)
	}
	return out
}

// xmllint validates files against schema with xmllint (Debian package
// libxml2-utils, which `make test` installs).
func xmllint(t *testing.T, schema string, files ...string) {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatalf("xmllint not found: install the Debian package libxml2-utils (make test does): %v", err)
	}
	args := append([]string{"--noout", "--schema", schema}, files...)
	out, err := exec.Command(path, args...).CombinedOutput()
	require.NoError(t, err, "xmllint %s:\n%s", strings.Join(args, " "), out)
}

func execLookXmllint(t *testing.T) (string, error) {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatalf("xmllint not found: install the Debian package libxml2-utils (make test does): %v", err)
	}
	return path, nil
}

func runXmllint(path, schema string, files ...string) ([]byte, error) {
	args := append([]string{"--noout", "--schema", schema}, files...)
	return exec.Command(path, args...).CombinedOutput()
}
