package webexfetch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// itemsPage is a page of a list ({"items": [...]}). A page of messages,
// read for every hundred messages, decodes itself without encoding/json's
// reflection (restsync.JSONDecoder); the other lists are short.
type itemsPage[T any] struct {
	Items []T `json:"items"`
}

// DecodeJSON decodes a page as encoding/json would (names match exactly,
// as Webex's are written): unknown names are ignored, null leaves a value empty, a value of the wrong type is an
// error, invalid UTF-8 becomes U+FFFD, and of a name given twice the last
// counts. A body fastjson would read otherwise (fastJSONReads) is left to
// encoding/json.
func (p *itemsPage[T]) DecodeJSON(body []byte) error {
	ms, ok := any(&p.Items).(*[]message)
	if !ok || !fastJSONReads(body) {
		return json.Unmarshal(body, p)
	}
	parser := parsers.Get()
	defer parsers.Put(parser)
	v, err := parser.ParseBytes(body)
	if err != nil {
		return err
	}
	o, err := v.Object()
	if err != nil {
		return errors.New("the answer is not a JSON object")
	}
	var items *fastjson.Value
	n := 0
	o.Visit(func(k []byte, v *fastjson.Value) {
		if string(k) == "items" {
			items, n = v, n+1
		}
	})
	if n > 1 {
		// encoding/json decodes each in turn (o.Get would take the
		// first): its rules, not a copy of them here.
		return json.Unmarshal(body, p)
	}
	if items == nil || items.Type() == fastjson.TypeNull {
		*ms = nil
		return nil
	}
	arr, err := items.Array()
	if err != nil {
		return errors.New("items: not an array")
	}
	out := make([]message, len(arr))
	for i, it := range arr {
		if err := out[i].decode(it); err != nil {
			return fmt.Errorf("items[%d]: %w", i, err)
		}
	}
	*ms = out
	return nil
}

var parsers fastjson.ParserPool

// fastJSONReads reports whether fastjson's parser reads body as
// encoding/json does. It does not when body is not valid JSON (the parser
// alone takes control characters and unknown escapes in strings, and
// numbers such as 01, all of which encoding/json refuses with an error),
// nor when a string holds an escaped UTF-16 surrogate: fastjson keeps a
// lone one as the six characters of its escape (`\ud83d`, say, of an emoji
// cut in half), where encoding/json writes U+FFFD. (A surrogate pair, or a
// backslash escaped before "ud8", is sent to encoding/json too, which reads
// it right.)
func fastJSONReads(body []byte) bool {
	if fastjson.ValidateBytes(body) != nil {
		return false
	}
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`\u`))
		if j < 0 {
			return true
		}
		i += j + 2
		if i+1 < len(body) && body[i]|0x20 == 'd' && strings.IndexByte("89abcdefABCDEF", body[i+1]) >= 0 {
			return false
		}
	}
}

// decode reads a ListMessage.
func (m *message) decode(v *fastjson.Value) error {
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	o, err := v.Object()
	if err != nil {
		return errors.New("not an object")
	}
	o.Visit(func(k []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		switch string(k) {
		case "id":
			err = str(v, &m.ID)
		case "roomId":
			err = str(v, &m.RoomID)
		case "roomType":
			err = str(v, &m.RoomType)
		case "parentId":
			err = str(v, &m.ParentID)
		case "text":
			err = str(v, &m.Text)
		case "markdown":
			err = str(v, &m.Markdown)
		case "html":
			err = str(v, &m.HTML)
		case "files":
			err = strs(v, &m.Files)
		case "personId":
			err = str(v, &m.PersonID)
		case "personEmail":
			err = str(v, &m.PersonEmail)
		case "mentionedPeople":
			err = strs(v, &m.MentionedPeople)
		case "mentionedGroups":
			err = strs(v, &m.MentionedGroups)
		case "created":
			err = str(v, &m.Created)
		case "updated":
			err = str(v, &m.Updated)
		default:
			return
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", k, err)
		}
	})
	return err
}

var errNotString = errors.New("not a string")

func str(v *fastjson.Value, dst *string) error {
	switch v.Type() {
	case fastjson.TypeString:
		*dst = text(v.GetStringBytes())
	case fastjson.TypeNull:
	default:
		return errNotString
	}
	return nil
}

func strs(v *fastjson.Value, dst *[]string) error {
	switch v.Type() {
	case fastjson.TypeArray:
		arr, _ := v.Array()
		out := make([]string, len(arr))
		for i, e := range arr {
			if err := str(e, &out[i]); err != nil {
				return err
			}
		}
		*dst = out
	case fastjson.TypeNull:
		*dst = nil
	default:
		return errors.New("not an array")
	}
	return nil
}

// text copies a decoded JSON string, each byte of invalid UTF-8 replaced
// by U+FFFD as encoding/json does.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}
