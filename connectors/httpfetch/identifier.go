package httpfetch

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Identifier is a decoded AUTN_IDENTIFIER: the task section that knows the
// document and the document's reference (its URL, or the reference given
// to Insert).
type Identifier struct {
	Task      string // task section, upper case
	Reference string
}

// EncodeIdentifier returns the AUTN_IDENTIFIER of a document: standard
// base64 (with padding) of the XML element <id s="TASK" r="REFERENCE"/>,
// attribute values escaped as XML requires. The task is upper-cased.
func EncodeIdentifier(task, reference string) string {
	var b bytes.Buffer
	b.WriteString(`<id s="`)
	_ = xml.EscapeText(&b, []byte(strings.ToUpper(task))) // bytes.Buffer does not fail
	b.WriteString(`" r="`)
	_ = xml.EscapeText(&b, []byte(reference))
	b.WriteString(`"/>`)
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// errIdentifier is wrapped by every DecodeIdentifier failure.
var errIdentifier = errors.New("httpfetch: not an identifier of this connector")

// DecodeIdentifier reads an identifier made by EncodeIdentifier. It is
// lenient about transport damage: white space inside the value (a '+' that
// a client forgot to percent-encode arrives as a space) is read as '+', a
// trailing '+' that became a space and was trimmed is restored, missing
// padding and the URL-safe alphabet are accepted. The element may carry
// other attributes (IDOL adds t= for the type); s and r are required.
func DecodeIdentifier(id string) (Identifier, error) {
	raw := strings.TrimSpace(id)
	if raw == "" {
		return Identifier{}, fmt.Errorf("%w: empty", errIdentifier)
	}
	var firstErr error
	for _, suffix := range []string{"", "+", "++"} {
		out, err := decodeIdentifier(raw + suffix)
		if err == nil {
			return out, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return Identifier{}, firstErr
}

func decodeIdentifier(raw string) (Identifier, error) {
	data, err := decodeBase64(raw)
	if err != nil {
		return Identifier{}, fmt.Errorf("%w: not base64", errIdentifier)
	}
	var el struct {
		XMLName xml.Name
		Attrs   []xml.Attr `xml:",any,attr"`
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&el); err != nil || el.XMLName.Local != "id" {
		return Identifier{}, fmt.Errorf("%w: not an <id> element", errIdentifier)
	}
	var out Identifier
	var haveS, haveR bool
	for _, a := range el.Attrs {
		switch a.Name.Local {
		case "s":
			out.Task, haveS = strings.ToUpper(strings.TrimSpace(a.Value)), true
		case "r":
			out.Reference, haveR = a.Value, true
		}
	}
	if !haveS || out.Task == "" || !haveR || out.Reference == "" {
		return Identifier{}, fmt.Errorf("%w: the <id> element needs s (task) and r (reference)", errIdentifier)
	}
	return out, nil
}

// isWebURL reports whether ref is an absolute http or https URL with a
// host: the only references Collect, View and Update can fetch.
func isWebURL(ref string) bool {
	u, err := url.Parse(ref)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
