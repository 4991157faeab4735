package mailfetch

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"strings"
)

// Identifier locates a message, or one of its attachments, for Collect,
// View and Delete. AUTN_IDENTIFIER is base64 (standard, padded) of
// <id s="TASK" c="COLLECTION" k="KEY" p="SECTION"/>: the task in upper
// case, the collection (the IMAP folder; "" for the Gmail API), the
// message's key in it (IMAP "<UIDVALIDITY>.<UID>", Gmail the message id)
// and, for an attachment, its section ("2", "1.3").
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
}

// Encode returns the AUTN_IDENTIFIER.
func (id Identifier) Encode() string {
	b, _ := xml.Marshal(xmlID{Task: strings.ToUpper(id.Task), Coll: id.Collection, Key: id.Key, Section: id.Section})
	return base64.StdEncoding.EncodeToString(b)
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
	return Identifier{Task: strings.ToUpper(x.Task), Collection: x.Coll, Key: x.Key, Section: x.Section}, nil
}
