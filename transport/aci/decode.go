package aci

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"
)

// This file is the client side of the codec: DecodeReply reads an ACI
// reply (autnresponse, in XML, simplejson or BadgerFish json) sent by any
// ACI server, without reflection and without allocating beyond the few
// strings it keeps. The load harness (loadgen), the CFS ingestion target
// and tests read replies with it.

// ActionState is an action ActionState read from a QueueInfo GetStatus reply.
type ActionState uint8

const (
	StateNone       ActionState = iota // no <status> in the reply
	StateOther                         // a spelling this package does not know
	StateQueued                        // Queued
	StateProcessing                    // Processing
	StatePaused                        // Paused
	StateFinished                      // Finished
	StateCancelled                     // Cancelled (or Canceled)
	StateStopped                       // Stopped
	StateError                         // Error (or Failed)
)

var stateNames = [...]string{
	StateNone:       "",
	StateOther:      "Other",
	StateQueued:     "Queued",
	StateProcessing: "Processing",
	StatePaused:     "Paused",
	StateFinished:   "Finished",
	StateCancelled:  "Cancelled",
	StateStopped:    "Stopped",
	StateError:      "Error",
}

func (s ActionState) String() string { return stateNames[s] }

// Terminal reports whether s is an end state: Finished, Cancelled, Stopped
// or Error.
func (s ActionState) Terminal() bool {
	return s == StateFinished || s == StateCancelled || s == StateStopped || s == StateError
}

// ParseActionState reads a ActionState spelling case-insensitively without
// allocating. "Canceled" is read as Cancelled and "Failed" as Error.
func ParseActionState(b []byte) ActionState {
	switch {
	case len(b) == 0:
		return StateNone
	case bytes.EqualFold(b, []byte("Queued")):
		return StateQueued
	case bytes.EqualFold(b, []byte("Processing")):
		return StateProcessing
	case bytes.EqualFold(b, []byte("Paused")):
		return StatePaused
	case bytes.EqualFold(b, []byte("Finished")):
		return StateFinished
	case bytes.EqualFold(b, []byte("Cancelled")), bytes.EqualFold(b, []byte("Canceled")):
		return StateCancelled
	case bytes.EqualFold(b, []byte("Stopped")):
		return StateStopped
	case bytes.EqualFold(b, []byte("Error")), bytes.EqualFold(b, []byte("Failed")):
		return StateError
	}
	return StateOther
}

// Decoded is what DecodeReply reads from an autnresponse: the response,
// an ERROR reply's error, a submitted action's token, the first action's
// status, GetVersion's product and version. DecodeReply fills it from XML,
// simplejson or (BadgerFish) json without reflection; only the token and
// the strings of error and version replies are allocated.
type Decoded struct {
	Response         Response    // <response>: SUCCESS, ERROR or something else
	ResponseRaw      string      // the <response> text when Response is ResponseOther
	ErrorID          string      // <errorid> of an ERROR reply
	ErrorString      string      // its <errorstring>
	ErrorDescription string      // its <errordescription>
	ErrorCode        string      // its <errorcode>
	Token            string      // <responsedata><token>
	State            ActionState // <status> of the first <action> under <actions>
	StateRaw         string      // the status text when State is StateOther
	Actions          int         // number of <action> elements under <actions>
	Product          string      // GetVersion <autn:productname>
	Version          string      // GetVersion <autn:version>
}

// Response is the text of <response>.
type Response uint8

const (
	ResponseNone    Response = iota // no <response> element
	ResponseSuccess                 // SUCCESS
	ResponseError                   // ERROR
	ResponseOther                   // anything else
)

// Success reports a SUCCESS reply.
func (r *Decoded) Success() bool { return r.Response == ResponseSuccess }

// IsError reports an ERROR reply.
func (r *Decoded) IsError() bool { return r.Response == ResponseError }

// ErrorText is an ERROR reply's description, else its error string.
func (r *Decoded) ErrorText() string {
	if r.ErrorDescription != "" {
		return r.ErrorDescription
	}
	return r.ErrorString
}

var (
	ErrReplyEmpty      = errors.New("aci: empty reply")
	ErrReplyMalformed  = errors.New("aci: malformed reply")
	ErrReplyTooDeep    = errors.New("aci: reply nested too deeply")
	ErrReplyNotAutn    = errors.New("aci: reply is not an autnresponse")
	ErrReplyNoResponse = errors.New("aci: reply has no <response>")
)

// maxReplyDepth bounds the nesting the parsers follow; deeper input is
// rejected rather than risking the stack (the JSON parser recurses).
const maxReplyDepth = 64

// DecodeReply reads an ACI reply, XML or JSON (told apart by the first
// non-space byte), into r (which it clears first). It returns an error for input that is not a
// well-formed enough autnresponse to trust: bad syntax, no <autnresponse>
// root, or no <response>.
func DecodeReply(body []byte, r *Decoded) error {
	*r = Decoded{}
	i := skipSpace(body, 0)
	// A UTF-8 byte order mark may precede either format.
	if bytes.HasPrefix(body[i:], []byte("\xEF\xBB\xBF")) {
		i = skipSpace(body, i+3)
	}
	if i >= len(body) {
		return ErrReplyEmpty
	}
	var err error
	if body[i] == '{' {
		err = decodeReplyJSON(body[i:], r)
	} else {
		err = decodeReplyXML(body[i:], r)
	}
	if err != nil {
		return err
	}
	if r.Response == ResponseNone {
		return ErrReplyNoResponse
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// localName strips a namespace prefix: autn:version -> version.
func localName(name []byte) []byte {
	if k := bytes.LastIndexByte(name, ':'); k >= 0 {
		return name[k+1:]
	}
	return name
}

func is(name []byte, want string) bool { return bytes.EqualFold(name, []byte(want)) }

// path is the stack of element (or JSON key) local names from the root.
type path struct {
	names [maxReplyDepth][]byte
	depth int
}

func (p *path) push(name []byte) error {
	if p.depth >= maxReplyDepth {
		return ErrReplyTooDeep
	}
	p.names[p.depth] = localName(name)
	p.depth++
	return nil
}

func (p *path) pop() {
	if p.depth > 0 {
		p.depth--
	}
}

// at reports whether the path is exactly names (case-insensitive).
func (p *path) at(names ...string) bool {
	if p.depth != len(names) {
		return false
	}
	for i, n := range names {
		if !is(p.names[i], n) {
			return false
		}
	}
	return true
}

// value is called with the text of the element (or JSON string) at the
// current path. text aliases the input unless it had to be decoded.
func (r *Decoded) value(p *path, text []byte) {
	text = bytes.TrimSpace(text)
	switch {
	case p.at("autnresponse", "response"):
		if r.Response == ResponseNone {
			switch {
			case is(text, "SUCCESS"):
				r.Response = ResponseSuccess
			case is(text, "ERROR"):
				r.Response = ResponseError
			default:
				r.Response, r.ResponseRaw = ResponseOther, string(text)
			}
		}
	case p.at("autnresponse", "responsedata", "token"):
		if r.Token == "" {
			r.Token = string(text)
		}
	case p.at("autnresponse", "responsedata", "error", "errorcode"):
		if r.ErrorCode == "" {
			r.ErrorCode = string(text)
		}
	case p.at("autnresponse", "responsedata", "error", "errordescription"):
		if r.ErrorDescription == "" {
			r.ErrorDescription = string(text)
		}
	case p.at("autnresponse", "responsedata", "error", "errorstring"):
		if r.ErrorString == "" {
			r.ErrorString = string(text)
		}
	case p.at("autnresponse", "responsedata", "error", "errorid"):
		if r.ErrorID == "" {
			r.ErrorID = string(text)
		}
	case p.at("autnresponse", "responsedata", "productname"):
		if r.Product == "" {
			r.Product = string(text)
		}
	case p.at("autnresponse", "responsedata", "version"):
		if r.Version == "" {
			r.Version = string(text)
		}
	case p.at("autnresponse", "responsedata", "actions", "action", "status"):
		if r.Actions == 1 && r.State == StateNone {
			r.State = ParseActionState(text)
			if r.State == StateOther {
				r.StateRaw = string(text)
			}
		}
	}
}

// open is called when an element (or JSON object or string value) starts
// at the current path; it counts <action> elements.
func (r *Decoded) open(p *path) {
	if p.at("autnresponse", "responsedata", "actions", "action") {
		r.Actions++
	}
}

// ---- XML ----

// decodeReplyXML is a minimal non-validating XML reader: it tracks the element
// path, skips the declaration, comments, processing instructions and a
// DOCTYPE, honours CDATA, and reports the text of leaf elements. It does
// not check that end tags match start tags (a mismatch is tolerated, as
// the values are read by path from the start tags).
func decodeReplyXML(b []byte, r *Decoded) error {
	var p path
	textStart := -1 // start of the current leaf candidate's content
	seenRoot := false
	i := 0
	for i < len(b) {
		lt := bytes.IndexByte(b[i:], '<')
		if lt < 0 {
			break // trailing text
		}
		lt += i
		if lt+1 >= len(b) {
			return ErrReplyMalformed
		}
		switch c := b[lt+1]; {
		case c == '?':
			end := bytes.Index(b[lt+2:], []byte("?>"))
			if end < 0 {
				return ErrReplyMalformed
			}
			i = lt + 2 + end + 2
		case bytes.HasPrefix(b[lt:], []byte("<!--")):
			end := bytes.Index(b[lt+4:], []byte("-->"))
			if end < 0 {
				return ErrReplyMalformed
			}
			i = lt + 4 + end + 3
		case bytes.HasPrefix(b[lt:], []byte("<![CDATA[")):
			end := bytes.Index(b[lt+9:], []byte("]]>"))
			if end < 0 {
				return ErrReplyMalformed
			}
			i = lt + 9 + end + 3 // part of the current element's text
		case c == '!':
			end, err := skipDecl(b, lt+2)
			if err != nil {
				return err
			}
			i = end
		case c == '/':
			gt := bytes.IndexByte(b[lt+2:], '>')
			if gt < 0 {
				return ErrReplyMalformed
			}
			if p.depth == 0 {
				return ErrReplyMalformed
			}
			if textStart >= 0 {
				r.value(&p, xmlText(b[textStart:lt]))
			}
			textStart = -1
			p.pop()
			i = lt + 2 + gt + 1
		default:
			name, end, selfClose, err := startTag(b, lt+1)
			if err != nil {
				return err
			}
			if !seenRoot {
				if !is(localName(name), "autnresponse") {
					return ErrReplyNotAutn
				}
				seenRoot = true
			} else if p.depth == 0 {
				return ErrReplyMalformed // a second root
			}
			if err := p.push(name); err != nil {
				return err
			}
			r.open(&p)
			if selfClose {
				r.value(&p, nil)
				p.pop()
				textStart = -1
			} else {
				textStart = end
			}
			i = end
		}
	}
	if !seenRoot {
		return ErrReplyNotAutn
	}
	if p.depth != 0 {
		return ErrReplyMalformed // truncated
	}
	return nil
}

// skipDecl skips <!DOCTYPE ...> (with an internal subset in [...]) from
// i, just after "<!", and returns the index after its '>'.
func skipDecl(b []byte, i int) (int, error) {
	inSubset := false
	for ; i < len(b); i++ {
		switch b[i] {
		case '[':
			inSubset = true
		case ']':
			inSubset = false
		case '>':
			if !inSubset {
				return i + 1, nil
			}
		}
	}
	return 0, ErrReplyMalformed
}

// startTag reads a start tag from i (just after '<'): its name, the index
// after its '>', and whether it closes itself. Attribute values may hold
// '>' inside quotes.
func startTag(b []byte, i int) (name []byte, end int, selfClose bool, err error) {
	j := i
	for j < len(b) && !isTagEnd(b[j]) {
		j++
	}
	if j == i || j >= len(b) {
		return nil, 0, false, ErrReplyMalformed
	}
	name = b[i:j]
	var quote byte
	for ; j < len(b); j++ {
		c := b[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return name, j + 1, j > i && b[j-1] == '/', nil
		case c == '<':
			return nil, 0, false, ErrReplyMalformed
		}
	}
	return nil, 0, false, ErrReplyMalformed
}

func isTagEnd(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '/' || c == '>'
}

// xmlText returns the character data of raw element content: CDATA
// sections unwrapped and entity references decoded. Content with neither
// is returned as is, without allocating. Content that holds child
// elements is never passed here (a leaf's text ends at its end tag, and
// an element with children has its textStart reset by the child).
func xmlText(raw []byte) []byte {
	if bytes.IndexByte(raw, '&') < 0 && !bytes.Contains(raw, []byte("<![CDATA[")) && !bytes.Contains(raw, []byte("<!--")) {
		return raw
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		switch {
		case bytes.HasPrefix(raw[i:], []byte("<![CDATA[")):
			end := bytes.Index(raw[i+9:], []byte("]]>"))
			if end < 0 {
				return append(out, raw[i+9:]...)
			}
			out = append(out, raw[i+9:i+9+end]...)
			i += 9 + end + 3
		case bytes.HasPrefix(raw[i:], []byte("<!--")):
			end := bytes.Index(raw[i+4:], []byte("-->"))
			if end < 0 {
				return out
			}
			i += 4 + end + 3
		case raw[i] == '&':
			semi := bytes.IndexByte(raw[i:], ';')
			if semi < 0 {
				return append(out, raw[i:]...)
			}
			out = appendEntity(out, raw[i+1:i+semi])
			i += semi + 1
		default:
			out = append(out, raw[i])
			i++
		}
	}
	return out
}

func appendEntity(out, name []byte) []byte {
	switch string(name) {
	case "amp":
		return append(out, '&')
	case "lt":
		return append(out, '<')
	case "gt":
		return append(out, '>')
	case "quot":
		return append(out, '"')
	case "apos":
		return append(out, '\'')
	}
	if len(name) > 1 && name[0] == '#' {
		var n uint64
		var err error
		if name[1] == 'x' || name[1] == 'X' {
			n, err = strconv.ParseUint(string(name[2:]), 16, 32)
		} else {
			n, err = strconv.ParseUint(string(name[1:]), 10, 32)
		}
		if err == nil && n <= utf8.MaxRune {
			return utf8.AppendRune(out, rune(n))
		}
	}
	// Unknown entity: keep it as written.
	out = append(out, '&')
	out = append(out, name...)
	return append(out, ';')
}

// ---- JSON ----

// decodeReplyJSON reads simplejson ({"autnresponse":{"response":"SUCCESS",...}})
// and BadgerFish json ({"autnresponse":{"response":{"$":"SUCCESS"},...}}):
// a "$" key gives the text of the key that holds it, "@" keys
// (attributes) are skipped, array elements take the name of their key,
// and the autn: prefix is ignored.
func decodeReplyJSON(b []byte, r *Decoded) error {
	d := jsonDec{b: b, r: r}
	if err := d.value(); err != nil {
		return err
	}
	if skipSpace(d.b, d.i) != len(d.b) {
		return ErrReplyMalformed
	}
	if !d.seenRoot {
		return ErrReplyNotAutn
	}
	return nil
}

// Path names that match no element: under an attribute, in a nested
// array. Package variables, so that pushing them does not allocate.
var (
	jsonAttrPath   = []byte("@")
	jsonNestedPath = []byte("[")
)

type jsonDec struct {
	b        []byte
	i        int
	p        path
	r        *Decoded
	seenRoot bool
	scratch  []byte
}

func (d *jsonDec) value() error {
	d.i = skipSpace(d.b, d.i)
	if d.i >= len(d.b) {
		return ErrReplyMalformed
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, _, err := d.str()
		if err != nil {
			return err
		}
		if d.p.depth > 0 {
			d.r.value(&d.p, s)
		}
		return nil
	default:
		return d.literal()
	}
}

func (d *jsonDec) object() error {
	d.i++ // {
	d.i = skipSpace(d.b, d.i)
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return nil
	}
	for {
		d.i = skipSpace(d.b, d.i)
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return ErrReplyMalformed
		}
		key, decoded, err := d.str()
		if err != nil {
			return err
		}
		if decoded {
			// The value may decode into the same scratch buffer: the path
			// needs its own copy of a key that had escapes (rare).
			key = bytes.Clone(key)
		}
		d.i = skipSpace(d.b, d.i)
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return ErrReplyMalformed
		}
		d.i++
		if err := d.member(key); err != nil {
			return err
		}
		d.i = skipSpace(d.b, d.i)
		if d.i >= len(d.b) {
			return ErrReplyMalformed
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return ErrReplyMalformed
		}
	}
}

// member reads the value of key in the current object.
func (d *jsonDec) member(key []byte) error {
	switch {
	case len(key) == 1 && key[0] == '$':
		// BadgerFish text of the enclosing key: read it at the current path.
		return d.value()
	case len(key) > 0 && key[0] == '@':
		return d.skipValue()
	}
	if d.p.depth == 0 {
		if d.seenRoot || !is(localName(key), "autnresponse") {
			return ErrReplyNotAutn
		}
		d.seenRoot = true
	}
	if err := d.p.push(key); err != nil {
		return err
	}
	d.i = skipSpace(d.b, d.i)
	if d.i < len(d.b) && d.b[d.i] != '[' {
		d.r.open(&d.p)
	}
	err := d.value()
	d.p.pop()
	return err
}

// skipValue reads a value without reporting it (attributes).
func (d *jsonDec) skipValue() error {
	saved := d.p.depth
	// Park the path at an impossible depth marker by pushing a name that
	// matches nothing; values under it are then ignored by reply.value.
	if err := d.p.push(jsonAttrPath); err != nil {
		return err
	}
	err := d.value()
	d.p.depth = saved
	return err
}

func (d *jsonDec) array() error {
	d.i++ // [
	d.i = skipSpace(d.b, d.i)
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return nil
	}
	for {
		d.i = skipSpace(d.b, d.i)
		if d.i < len(d.b) && d.b[d.i] != '[' {
			d.r.open(&d.p) // each element is one element of the key's name
		}
		// Nested arrays are not ACI shapes; still parse them, bounded.
		if d.i < len(d.b) && d.b[d.i] == '[' {
			if err := d.p.push(jsonNestedPath); err != nil {
				return err
			}
			err := d.value()
			d.p.pop()
			if err != nil {
				return err
			}
		} else if err := d.value(); err != nil {
			return err
		}
		d.i = skipSpace(d.b, d.i)
		if d.i >= len(d.b) {
			return ErrReplyMalformed
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return ErrReplyMalformed
		}
	}
}

func (d *jsonDec) literal() error {
	j := d.i
	for j < len(d.b) {
		c := d.b[j]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		j++
	}
	lit := d.b[d.i:j]
	switch string(lit) {
	case "true", "false", "null":
	default:
		if !isJSONNumber(lit) {
			return ErrReplyMalformed
		}
	}
	d.i = j
	return nil
}

// isJSONNumber checks the JSON number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(b []byte) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// str reads a JSON string at d.i (on its quote) and returns its content:
// a slice of the input when it has no escapes, else decoded into
// d.scratch (valid until the next decoded string), with decoded true.
func (d *jsonDec) str() (s []byte, decoded bool, err error) {
	start := d.i + 1
	j := start
	escaped := false
	for {
		if j >= len(d.b) {
			return nil, false, ErrReplyMalformed
		}
		c := d.b[j]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return nil, false, ErrReplyMalformed
		}
		if c == '\\' {
			escaped = true
			j += 2
			continue
		}
		j++
	}
	d.i = j + 1
	raw := d.b[start:j]
	if !escaped {
		return raw, false, nil
	}
	out := d.scratch[:0]
	for k := 0; k < len(raw); k++ {
		c := raw[k]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		k++
		if k >= len(raw) {
			return nil, false, ErrReplyMalformed
		}
		switch raw[k] {
		case '"', '\\', '/':
			out = append(out, raw[k])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r1, ok := hex4(raw, k+1)
			if !ok {
				return nil, false, ErrReplyMalformed
			}
			k += 4 // on the last hex digit
			if r1 >= 0xD800 && r1 < 0xDC00 && k+2 < len(raw) && raw[k+1] == '\\' && raw[k+2] == 'u' {
				if r2, ok := hex4(raw, k+3); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					r1 = (r1-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
					k += 6
				}
			}
			if r1 >= 0xD800 && r1 < 0xE000 {
				r1 = utf8.RuneError
			}
			out = utf8.AppendRune(out, rune(r1))
		default:
			return nil, false, ErrReplyMalformed
		}
	}
	d.scratch = out
	return out, true, nil
}

func hex4(b []byte, i int) (int, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n := 0
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}
