package ingest

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/connectorhq/connector/secret"
)

// Field is one metadata field of a document. Names may repeat within a
// document (a multi-valued field is several Fields with the same name).
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Document is one item handed to a Target. Targets read it during the call
// and never retain it or its slices afterwards.
type Document struct {
	// Reference is the document's unique reference (DREREFERENCE): a
	// re-delivered document with the same reference replaces the old one.
	Reference string
	// Fields are the metadata fields in output order. Three upper-case
	// names are written as their own IDX tags rather than #DREFIELD:
	// DRETITLE (#DRETITLE, may span lines), DREDATE (#DREDATE) and
	// DREDBNAME (#DREDBNAME); the other targets send them as ordinary
	// fields.
	Fields []Field
	// Content is the extracted text (#DRECONTENT); may be empty.
	Content string
	// Source is the original bytes (a PDF, the HTML page, ...) for targets
	// that can use them: CFS sends them base64-encoded for KeyView to
	// filter, JSONL records them; IDX has no place for them. May be nil.
	Source []byte
	// SourceType is the MIME type of Source, when known.
	SourceType string
}

// Field names the IDX writer turns into tags of their own.
const (
	FieldTitle    = "DRETITLE"
	FieldDate     = "DREDATE"
	FieldDatabase = "DREDBNAME"
)

// Validate reports why d cannot be delivered faithfully by every target,
// as an error wrapping ErrInvalidDocument, or nil. The rules:
//
//   - Reference is non-empty, valid UTF-8, has no control characters and no
//     leading or trailing white space (IDOL trims the #DREREFERENCE line and
//     ends it at a line break, so such a reference would silently change).
//   - Reference holds no URL with a password (user:password@): a reference
//     is kept in the datastore, the output, the index and the logs, where
//     a password must never be in clear (docs/security.md). The error
//     shows the reference with the password redacted.
//   - Field names are non-empty, valid UTF-8, and contain no white space,
//     control characters, '=' or '"'; DREREFERENCE and DRECONTENT are
//     reserved (use Reference and Content).
//   - DREDATE and DREDBNAME values follow the Reference rules (single-line
//     tags).
//
// Values and Content may hold anything, including quotes and line breaks;
// see WriteIDX for the one case it has to alter.
func (d *Document) Validate() error {
	if d == nil {
		return fmt.Errorf("%w: nil document", ErrInvalidDocument)
	}
	if secret.HasURLPassword(d.Reference) {
		return fmt.Errorf("%w: reference %q: holds a URL with a password (user:password@), which the reference would keep in clear",
			ErrInvalidDocument, secret.RedactURLs(d.Reference))
	}
	if err := checkLine(d.Reference); err != nil {
		return fmt.Errorf("%w: reference %q: %s", ErrInvalidDocument, d.Reference, err)
	}
	for i, f := range d.Fields {
		if err := checkFieldName(f.Name); err != nil {
			return fmt.Errorf("%w %q: field %d name %q: %s", ErrInvalidDocument, d.Reference, i, f.Name, err)
		}
		if f.Name == FieldDate || f.Name == FieldDatabase {
			if err := checkLine(f.Value); err != nil {
				return fmt.Errorf("%w %q: field %s value %q: %s", ErrInvalidDocument, d.Reference, f.Name, f.Value, err)
			}
		}
	}
	return nil
}

type lineError string

func (e lineError) Error() string { return string(e) }

// checkLine accepts a value IDOL reads back unchanged from a single-line tag.
func checkLine(s string) error {
	switch {
	case s == "":
		return lineError("is empty")
	case !utf8.ValidString(s):
		return lineError("is not valid UTF-8")
	case strings.TrimSpace(s) != s:
		return lineError("has leading or trailing white space")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return lineError("contains a control character")
		}
	}
	return nil
}

func checkFieldName(s string) error {
	if s == "" {
		return lineError("is empty")
	}
	if asciiFieldName(s) {
		// What the rune loop below decides, byte by byte: a connector's
		// field names are ASCII, and every document has some 25.
		if (len(s) == len("DREREFERENCE") && strings.EqualFold(s, "DREREFERENCE")) || (len(s) == len("DRECONTENT") && strings.EqualFold(s, "DRECONTENT")) {
			return lineError("is reserved")
		}
		return nil
	}
	if !utf8.ValidString(s) {
		return lineError("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '=' || r == '"' {
			return lineError("contains white space, a control character, '=' or '\"'")
		}
	}
	if strings.EqualFold(s, "DREREFERENCE") || strings.EqualFold(s, "DRECONTENT") {
		return lineError("is reserved")
	}
	return nil
}

// asciiFieldName reports whether s is printable ASCII other than space,
// '=' and '"': for ASCII, the runes unicode.IsSpace and unicode.IsControl
// refuse are space, 0x00-0x1F and 0x7F (TestCheckFieldNameASCII).
func asciiFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '=' || c == '"' {
			return false
		}
	}
	return true
}

func validateAll(docs []*Document) error {
	for _, d := range docs {
		if err := d.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func validateRefs(refs []string) error {
	for _, r := range refs {
		if err := checkLine(r); err != nil {
			return fmt.Errorf("%w: reference %q: %s", ErrInvalidDocument, r, err)
		}
	}
	return nil
}
