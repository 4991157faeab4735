package loadgen

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"
)

// status is an action status read from a QueueInfo GetStatus reply.
type status uint8

const (
	statusNone       status = iota // no <status> in the reply
	statusOther                    // a spelling this package does not know
	statusQueued                   // Queued
	statusProcessing               // Processing
	statusPaused                   // Paused
	statusFinished                 // Finished
	statusCancelled                // Cancelled (or Canceled)
	statusStopped                  // Stopped
	statusError                    // Error (or Failed)
)

var statusNames = [...]string{
	statusNone:       "",
	statusOther:      "Other",
	statusQueued:     "Queued",
	statusProcessing: "Processing",
	statusPaused:     "Paused",
	statusFinished:   "Finished",
	statusCancelled:  "Cancelled",
	statusStopped:    "Stopped",
	statusError:      "Error",
}

func (s status) String() string { return statusNames[s] }

// terminal reports whether s is an end state: Finished, Cancelled, Stopped
// or Error.
func (s status) terminal() bool {
	return s == statusFinished || s == statusCancelled || s == statusStopped || s == statusError
}

// parseStatus reads a status spelling case-insensitively without
// allocating. "Canceled" is read as Cancelled and "Failed" as Error.
func parseStatus(b []byte) status {
	switch {
	case len(b) == 0:
		return statusNone
	case bytes.EqualFold(b, []byte("Queued")):
		return statusQueued
	case bytes.EqualFold(b, []byte("Processing")):
		return statusProcessing
	case bytes.EqualFold(b, []byte("Paused")):
		return statusPaused
	case bytes.EqualFold(b, []byte("Finished")):
		return statusFinished
	case bytes.EqualFold(b, []byte("Cancelled")), bytes.EqualFold(b, []byte("Canceled")):
		return statusCancelled
	case bytes.EqualFold(b, []byte("Stopped")):
		return statusStopped
	case bytes.EqualFold(b, []byte("Error")), bytes.EqualFold(b, []byte("Failed")):
		return statusError
	}
	return statusOther
}

// reply is what the harness needs from an autnresponse. The parser fills
// it from XML, simplejson or (BadgerFish) json without reflection; only
// the token and the strings of error and version replies are allocated.
type reply struct {
	response  response // <response>: SUCCESS, ERROR or something else
	errorCode string   // <errorcode> of an ERROR reply
	errorText string   // its <errordescription>, else its <errorstring>
	token     string   // <responsedata><token>
	status    status   // <status> of the first <action> under <actions>
	statusRaw string   // the status text when status is statusOther
	actions   int      // number of <action> elements under <actions>
	product   string   // GetVersion <autn:productname>
	version   string   // GetVersion <autn:version>
}

// response is the text of <response>.
type response uint8

const (
	responseNone    response = iota // no <response> element
	responseSuccess                 // SUCCESS
	responseError                   // ERROR
	responseOther                   // anything else
)

func (r *reply) success() bool { return r.response == responseSuccess }
func (r *reply) isError() bool { return r.response == responseError }

var (
	errEmptyReply   = errors.New("loadgen: empty reply")
	errMalformed    = errors.New("loadgen: malformed reply")
	errTooDeep      = errors.New("loadgen: reply nested too deeply")
	errNotAutn      = errors.New("loadgen: reply is not an autnresponse")
	errNoResponseEl = errors.New("loadgen: reply has no <response>")
)

// maxDepth bounds the nesting the parsers follow; deeper input is
// rejected rather than risking the stack (the JSON parser recurses).
const maxDepth = 64

// parseReply reads an ACI reply, XML or JSON (told apart by the first
// non-space byte), into r. It returns an error for input that is not a
// well-formed enough autnresponse to trust: bad syntax, no <autnresponse>
// root, or no <response>.
func parseReply(body []byte, r *reply) error {
	*r = reply{}
	i := skipSpace(body, 0)
	// A UTF-8 byte order mark may precede either format.
	if bytes.HasPrefix(body[i:], []byte("\xEF\xBB\xBF")) {
		i = skipSpace(body, i+3)
	}
	if i >= len(body) {
		return errEmptyReply
	}
	var err error
	if body[i] == '{' {
		err = parseJSON(body[i:], r)
	} else {
		err = parseXML(body[i:], r)
	}
	if err != nil {
		return err
	}
	if r.response == responseNone {
		return errNoResponseEl
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
	names [maxDepth][]byte
	depth int
}

func (p *path) push(name []byte) error {
	if p.depth >= maxDepth {
		return errTooDeep
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
func (r *reply) value(p *path, text []byte) {
	text = bytes.TrimSpace(text)
	switch {
	case p.at("autnresponse", "response"):
		if r.response == responseNone {
			switch {
			case is(text, "SUCCESS"):
				r.response = responseSuccess
			case is(text, "ERROR"):
				r.response = responseError
			default:
				r.response = responseOther
			}
		}
	case p.at("autnresponse", "responsedata", "token"):
		if r.token == "" {
			r.token = string(text)
		}
	case p.at("autnresponse", "responsedata", "error", "errorcode"):
		if r.errorCode == "" {
			r.errorCode = string(text)
		}
	case p.at("autnresponse", "responsedata", "error", "errordescription"):
		if len(text) > 0 {
			r.errorText = string(text) // wins over errorstring
		}
	case p.at("autnresponse", "responsedata", "error", "errorstring"):
		if r.errorText == "" {
			r.errorText = string(text)
		}
	case p.at("autnresponse", "responsedata", "productname"):
		if r.product == "" {
			r.product = string(text)
		}
	case p.at("autnresponse", "responsedata", "version"):
		if r.version == "" {
			r.version = string(text)
		}
	case p.at("autnresponse", "responsedata", "actions", "action", "status"):
		if r.actions == 1 && r.status == statusNone {
			r.status = parseStatus(text)
			if r.status == statusOther {
				r.statusRaw = string(text)
			}
		}
	}
}

// open is called when an element (or JSON object or string value) starts
// at the current path; it counts <action> elements.
func (r *reply) open(p *path) {
	if p.at("autnresponse", "responsedata", "actions", "action") {
		r.actions++
	}
}

// ---- XML ----

// parseXML is a minimal non-validating XML reader: it tracks the element
// path, skips the declaration, comments, processing instructions and a
// DOCTYPE, honours CDATA, and reports the text of leaf elements. It does
// not check that end tags match start tags (a mismatch is tolerated, as
// the values are read by path from the start tags).
func parseXML(b []byte, r *reply) error {
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
			return errMalformed
		}
		switch c := b[lt+1]; {
		case c == '?':
			end := bytes.Index(b[lt+2:], []byte("?>"))
			if end < 0 {
				return errMalformed
			}
			i = lt + 2 + end + 2
		case bytes.HasPrefix(b[lt:], []byte("<!--")):
			end := bytes.Index(b[lt+4:], []byte("-->"))
			if end < 0 {
				return errMalformed
			}
			i = lt + 4 + end + 3
		case bytes.HasPrefix(b[lt:], []byte("<![CDATA[")):
			end := bytes.Index(b[lt+9:], []byte("]]>"))
			if end < 0 {
				return errMalformed
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
				return errMalformed
			}
			if p.depth == 0 {
				return errMalformed
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
					return errNotAutn
				}
				seenRoot = true
			} else if p.depth == 0 {
				return errMalformed // a second root
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
		return errNotAutn
	}
	if p.depth != 0 {
		return errMalformed // truncated
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
	return 0, errMalformed
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
		return nil, 0, false, errMalformed
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
			return nil, 0, false, errMalformed
		}
	}
	return nil, 0, false, errMalformed
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

// parseJSON reads simplejson ({"autnresponse":{"response":"SUCCESS",...}})
// and BadgerFish json ({"autnresponse":{"response":{"$":"SUCCESS"},...}}):
// a "$" key gives the text of the key that holds it, "@" keys
// (attributes) are skipped, array elements take the name of their key,
// and the autn: prefix is ignored.
func parseJSON(b []byte, r *reply) error {
	d := jsonDec{b: b, r: r}
	if err := d.value(); err != nil {
		return err
	}
	if skipSpace(d.b, d.i) != len(d.b) {
		return errMalformed
	}
	if !d.seenRoot {
		return errNotAutn
	}
	return nil
}

// Path names that match no element: under an attribute, in a nested
// array. Package variables, so that pushing them does not allocate.
var (
	attrName   = []byte("@")
	nestedName = []byte("[")
)

type jsonDec struct {
	b        []byte
	i        int
	p        path
	r        *reply
	seenRoot bool
	scratch  []byte
}

func (d *jsonDec) value() error {
	d.i = skipSpace(d.b, d.i)
	if d.i >= len(d.b) {
		return errMalformed
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
			return errMalformed
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
			return errMalformed
		}
		d.i++
		if err := d.member(key); err != nil {
			return err
		}
		d.i = skipSpace(d.b, d.i)
		if d.i >= len(d.b) {
			return errMalformed
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return errMalformed
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
			return errNotAutn
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
	if err := d.p.push(attrName); err != nil {
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
			if err := d.p.push(nestedName); err != nil {
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
			return errMalformed
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return errMalformed
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
			return errMalformed
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
			return nil, false, errMalformed
		}
		c := d.b[j]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return nil, false, errMalformed
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
			return nil, false, errMalformed
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
				return nil, false, errMalformed
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
			return nil, false, errMalformed
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
