package aci

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/transform"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

// Format is the reply format a client asked for with ResponseFormat.
type Format uint8

// Reply formats. The zero value is XML, the ACI default.
const (
	// FormatXML is the default autnresponse XML document.
	FormatXML Format = iota
	// FormatSimpleJSON is ResponseFormat=simplejson: plain strings,
	// "@" attributes, list elements always arrays.
	FormatSimpleJSON
	// FormatJSON is ResponseFormat=json: BadgerFish-style, every element
	// an object with its text under "$".
	FormatJSON
)

// String returns the ResponseFormat value that selects f.
func (f Format) String() string {
	switch f {
	case FormatSimpleJSON:
		return "simplejson"
	case FormatJSON:
		return "json"
	default:
		return "xml"
	}
}

// ParseFormat reads a ResponseFormat value in any ASCII case, ignoring
// surrounding ASCII white space (messages.IsValue). An empty value selects
// XML.
func ParseFormat(v string) (Format, bool) {
	switch {
	case messages.TrimASCIISpace(v) == "", messages.IsValue(v, "xml"):
		return FormatXML, true
	case messages.IsValue(v, "simplejson"):
		return FormatSimpleJSON, true
	case messages.IsValue(v, "json"):
		return FormatJSON, true
	}
	return FormatXML, false
}

// Request is one parsed ACI request. It owns its memory: nothing in it
// refers to the buffers given to Parse.
type Request struct {
	// Action is the action name with its ASCII letters in upper case,
	// e.g. QUEUEINFO; other characters are kept as sent, so that only an
	// ASCII spelling names an action. It is empty only when Parse also
	// returned an error.
	Action string
	// Params holds every parameter except action (and its alias a), in
	// the order received: the request URI first, then the body. Names keep
	// the client's spelling; Get compares them case-insensitively and
	// returns the first occurrence of a repeated name.
	Params messages.Params
	// Format is the reply format chosen by ResponseFormat.
	Format Format
	// Uploads lists the parameters that came from file parts of a
	// multipart body, in order; nil when there are none. See Upload.
	Uploads []Upload
	// OtherActions are the action (and a) parameters after the first, in
	// the order received; nil when there are none. Nothing acts on them
	// (the first occurrence of a name wins): they are kept so that the
	// request log can show the request as it came.
	OtherActions []OtherAction
}

// OtherAction is an action parameter after the first (Request.OtherActions).
type OtherAction struct {
	Name  string // as the client spelled it: action, a, ACTION...
	Value string // as sent; "" when it came from a file part
	// File, when it came from a file part, says which (its Index is -1):
	// logs show its size, never its content.
	File *Upload
}

// Upload describes a parameter that came from a file part of a multipart
// body: a part with a file name (curl -F name=@file), or one whose content
// type is not text/* (the Java client's binary parameters). Its value is
// the part's content. Logs show an Upload's size, never its content.
type Upload struct {
	Index    int    // in Request.Params
	FileName string // as the client gave it; "" when none
	Size     int    // bytes
}

// Upload reports whether Params[i] came from a file part, and which.
func (r *Request) Upload(i int) (Upload, bool) {
	for _, u := range r.Uploads {
		if u.Index == i {
			return u, true
		}
	}
	return Upload{}, false
}

// Parse reads an ACI request from the raw HTTP request line and body.
//
// requestURI is the request-target exactly as received: the path form
// (/action=GetStatus&x=1), the query form with any path (/?Action=GetStatus,
// /some/path?a=getstatus), or both (/action=X?y=1). body is read for every
// method except GET and HEAD: as multipart/form-data when contentType is
// multipart/*, otherwise as name=value pairs separated by &, CR, LF or CRLF
// whatever the content type says. Names and values are percent-decoded and
// + means a space.
//
// The error wraps messages.ErrBadRequest for undecodable input,
// messages.ErrMissingParam (a *messages.ParamError naming Action) when no
// action is given, and messages.ErrInvalidParam for an unknown
// ResponseFormat. Even then the returned Request is non-nil and carries
// whatever could be read (the action and format in particular), so that the
// caller can render the error for the action and in the format the client
// asked for. The inputs are not retained.
func Parse(method, requestURI, contentType, body []byte) (*Request, error) {
	return ParseLimited(method, requestURI, contentType, body, Limits{})
}

// Limits bound what ParseLimited accepts. A zero field sets no limit.
type Limits struct {
	// MaxParams is the most parameters (URI and body together, action
	// included; every part of a multipart body counts) a request may
	// have. Parsing stops at the first one beyond it.
	MaxParams int
	// MaxParamsName is how the error names the limit, e.g.
	// "[Server] MaxRequestParameters".
	MaxParamsName string
}

// ParseLimited is Parse with limits. A request beyond a limit is an error
// wrapping messages.ErrTooLarge that names the limit; the Request returned
// with it carries what was read before the limit (the action and format
// when they came first, as they usually do).
//
// Memory: the Request holds one buffer of at most len(requestURI) +
// len(body) bytes for every name and value, the UTF-8 text of each
// multipart text part declared in another charset (at most three times
// the part's size), and one small record per parameter, so that with
// MaxParams set a request costs a small, fixed multiple of its size,
// whatever its shape (FuzzParseAllocation).
func ParseLimited(method, requestURI, contentType, body []byte, lim Limits) (*Request, error) {
	p := parser{lim: lim}
	readBody := len(body) > 0 && !bytes.Equal(method, methodGet) && !bytes.Equal(method, methodHead)
	// Decoded names and values are never longer than their encoding.
	size := len(requestURI)
	if readBody {
		size += len(body)
	}
	p.buf = make([]byte, 0, size)
	path, query := splitURI(requestURI)
	if len(path) > 0 && bytes.IndexByte(path, '=') >= 0 {
		p.form(path, false, "request path")
	}
	if query != nil {
		p.form(query, false, "query string")
	}
	if readBody {
		if isMultipart(contentType) {
			p.multipart(contentType, body)
		} else {
			p.form(body, true, "request body")
		}
	}
	return p.finish()
}

var (
	methodGet  = []byte("GET")
	methodHead = []byte("HEAD")
)

// splitURI returns the path (without leading slashes) and the query of a
// request-target; query is nil when there is no '?'. An absolute-form
// target (http://host/path?q) is reduced to its path and query.
func splitURI(uri []byte) (path, query []byte) {
	if hasPrefixFold(uri, "http://") || hasPrefixFold(uri, "https://") {
		rest := uri[bytes.Index(uri, []byte("//"))+2:]
		if i := bytes.IndexAny(rest, "/?"); i >= 0 {
			uri = rest[i:]
		} else {
			uri = nil
		}
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		path, query = uri[:i], uri[i+1:]
	} else {
		path = uri
	}
	for len(path) > 0 && path[0] == '/' {
		path = path[1:]
	}
	return path, query
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

func isMultipart(contentType []byte) bool {
	return hasPrefixFold(bytes.TrimLeft(contentType, " \t"), "multipart/")
}

// span locates one decoded name and value in parser.buf.
type span struct {
	nameStart, nameEnd, valueEnd int
	action                       bool // an action or a pair
	upload                       bool // a multipart file part
	// decoded, when not 0, is the index+1 in parser.decoded of the value,
	// decoded to UTF-8 from the charset of its multipart part; valueEnd
	// is then nameEnd.
	decoded int32
}

// parser accumulates decoded names and values in one buffer so that the
// finished Request needs a single string allocation for all of them.
type parser struct {
	buf []byte
	// small holds the first pairs, more the rest: a typical request's
	// spans stay on the stack (a slice into small would move the parser to
	// the heap).
	small   [16]span
	more    []span
	n       int // number of spans
	action  int // index+1 of the first action/a pair in spans; 0: none
	actions int // number of action/a pairs
	err     error
	// fileNames are the file names of the upload spans, in order.
	fileNames []string
	lim       Limits
	count     int  // pairs and multipart parts seen (named or not)
	stopped   bool // a limit was reached: read no further

	// decoded are the values of multipart text parts decoded to UTF-8
	// (span.decoded), each its own exact-size slice.
	decoded [][]byte
}

// full counts one more pair or multipart part, or reports (and records as
// the error) that it would exceed Limits.MaxParams. A multipart part
// without a name counts too: each costs its header.
func (p *parser) full() bool {
	if p.lim.MaxParams <= 0 || p.count < p.lim.MaxParams {
		p.count++
		return false
	}
	if !p.stopped {
		p.stopped = true
		name := p.lim.MaxParamsName
		if name == "" {
			name = "the parameter limit"
		}
		p.err = fmt.Errorf("%w: the request has more than %d parameters (%s)", messages.ErrTooLarge, p.lim.MaxParams, name)
	}
	return true
}

// form decodes application/x-www-form-urlencoded style pairs. Pairs are
// separated by '&' and, in a body, also by CR and LF.
func (p *parser) form(data []byte, lines bool, where string) {
	for len(data) > 0 {
		end := len(data)
		for i, c := range data {
			if c == '&' || (lines && (c == '\r' || c == '\n')) {
				end = i
				break
			}
		}
		p.pair(data[:end], where)
		if end == len(data) || p.stopped {
			break
		}
		data = data[end+1:]
	}
}

func (p *parser) pair(kv []byte, where string) {
	if len(kv) == 0 || p.full() {
		return
	}
	name, value := kv, []byte(nil)
	if i := bytes.IndexByte(kv, '='); i >= 0 {
		name, value = kv[:i], kv[i+1:]
	}
	mark := len(p.buf)
	var ok bool
	if p.buf, ok = appendUnescape(p.buf, name); !ok {
		p.fail(fmt.Errorf("%w: invalid percent escape in a parameter name in the %s", messages.ErrBadRequest, where))
		p.buf = p.buf[:mark]
		return
	}
	nameEnd := len(p.buf)
	if nameEnd == mark { // empty names are skipped
		return
	}
	if p.buf, ok = appendUnescape(p.buf, value); !ok {
		p.fail(fmt.Errorf("%w: invalid percent escape in the value of parameter %q in the %s",
			messages.ErrBadRequest, string(p.buf[mark:nameEnd]), where))
		p.buf = p.buf[:mark]
		return
	}
	p.add(mark, nameEnd)
}

func (p *parser) add(nameStart, nameEnd int) {
	sp := span{nameStart: nameStart, nameEnd: nameEnd, valueEnd: len(p.buf),
		action: isActionName(p.buf[nameStart:nameEnd])}
	if p.n < len(p.small) {
		p.small[p.n] = sp
	} else {
		p.more = append(p.more, sp)
	}
	p.n++
	if sp.action {
		p.actions++
		if p.action == 0 {
			p.action = p.n
		}
	}
}

func isActionName(name []byte) bool {
	switch len(name) {
	case 1:
		return name[0] == 'a' || name[0] == 'A'
	case 6:
		return strings.EqualFold(string(name), "action")
	}
	return false
}

// fail records the first error; parsing goes on so that the action and
// format can still be found.
func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// multipart reads a multipart body: each named part, field or file, becomes
// one parameter whose value is the part's content.
func (p *parser) multipart(contentType, body []byte) {
	_, params, err := mime.ParseMediaType(string(contentType))
	if err != nil {
		p.fail(fmt.Errorf("%w: request body: content type %q: %v", messages.ErrBadRequest, contentType, err))
		return
	}
	boundary := params["boundary"]
	if boundary == "" {
		p.fail(fmt.Errorf("%w: request body: multipart content type has no boundary", messages.ErrBadRequest))
		return
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for n := 1; ; n++ {
		if p.full() {
			return
		}
		part, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			if n == 1 && !bytes.Contains(body, []byte("--"+boundary)) {
				p.fail(fmt.Errorf("%w: request body: multipart part 1: boundary %q not found", messages.ErrBadRequest, boundary))
			}
			return
		}
		if err != nil {
			p.fail(fmt.Errorf("%w: request body: multipart part %d: %v", messages.ErrBadRequest, n, err))
			return
		}
		name := part.FormName()
		if name == "" {
			continue
		}
		mark := len(p.buf)
		p.buf = append(p.buf, name...)
		nameEnd := len(p.buf)
		p.buf, err = readAppend(p.buf, part)
		if err != nil {
			p.buf = p.buf[:mark]
			p.fail(fmt.Errorf("%w: request body: multipart part %q: %v", messages.ErrBadRequest, name, err))
			return
		}
		contentType := part.Header.Get("Content-Type")
		fileName := part.FileName()
		upload := fileName != "" || !isTextPart(contentType)
		decoded := false
		if !upload {
			if decoded, err = p.decodePart(name, contentType, nameEnd); err != nil {
				p.buf = p.buf[:mark]
				p.fail(err)
				continue
			}
		}
		p.add(mark, nameEnd)
		if decoded {
			p.last().decoded = int32(len(p.decoded))
		}
		if upload {
			p.markUpload(fileName)
		}
	}
}

// decodePart decodes the value of the text part just read (p.buf from
// valueStart) to UTF-8 from the charset its content type declares: the
// Java ACI client labels every string part with its configured charset
// (text/plain; charset=ISO-8859-1) and encodes it so. A part with no
// charset, or UTF-8, is kept as sent. The decoded value is kept in
// p.decoded and the raw bytes are dropped from p.buf; decoded reports
// that, for the caller to mark the span. An unknown charset, or a value
// its charset cannot hold, is an invalid value of parameter name.
func (p *parser) decodePart(name, contentType string, valueStart int) (decoded bool, err error) {
	enc, label, err := partCharset(contentType)
	if err != nil {
		return false, fmt.Errorf("%w: parameter %s: unknown charset %q in its multipart part's content type: send it as UTF-8",
			messages.ErrInvalidParam, name, label)
	}
	if enc == nil {
		return false, nil
	}
	value, ok := decodeText(enc, p.buf[valueStart:])
	if !ok {
		return false, fmt.Errorf("%w: parameter %s: not valid %s, the charset its multipart part declares",
			messages.ErrInvalidParam, name, label)
	}
	p.buf = p.buf[:valueStart]
	p.decoded = append(p.decoded, value)
	return true, nil
}

// partCharset returns the encoding a multipart text part's charset
// parameter names (IANA names and aliases, as Java's Charset.name()
// writes them), with the label as sent. enc is nil when the value is
// kept as sent: no label (or a content type without parameters), or
// UTF-8. err is set for a label that names no charset this server can
// decode.
func partCharset(contentType string) (enc encoding.Encoding, label string, err error) {
	semi := strings.IndexByte(contentType, ';')
	if semi < 0 {
		return nil, "", nil
	}
	if strings.LastIndexByte(contentType, ';') == semi &&
		strings.EqualFold(strings.TrimSpace(contentType[semi+1:]), "charset=UTF-8") {
		return nil, "", nil // the Java client's default, without parsing it
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, "", nil // as before: a part's content type only says whether it is text
	}
	label = strings.TrimSpace(params["charset"])
	if label == "" || strings.EqualFold(label, "utf8") {
		return nil, label, nil
	}
	enc, err = ianaindex.IANA.Encoding(label)
	if err != nil || enc == nil { // enc nil: registered but not supported
		return nil, label, errUnknownCharset
	}
	if n, _ := ianaindex.IANA.Name(enc); n == "UTF-8" {
		return nil, label, nil
	}
	return enc, label, nil
}

var errUnknownCharset = errors.New("unknown charset")

// decodeText returns raw decoded from enc to UTF-8, in a slice of its
// exact size: one pass counts, the second writes. ok is false when raw is
// not valid in enc, which its decoder shows by a U+FFFD (one that UTF-16
// text holds itself is text: utf16Replacements).
func decodeText(enc encoding.Encoding, raw []byte) (out []byte, ok bool) {
	var scratch [512]byte
	dec := enc.NewDecoder()
	n := 0
	for src := raw; ; {
		nDst, nSrc, err := dec.Transform(scratch[:], src, true)
		n += nDst
		src = src[nSrc:]
		if err == nil {
			break
		}
		if !errors.Is(err, transform.ErrShortDst) || nDst+nSrc == 0 {
			return nil, false
		}
	}
	out = make([]byte, n)
	dec.Reset()
	if nDst, _, err := dec.Transform(out, raw, true); err != nil || nDst != n {
		return nil, false
	}
	marks := bytes.Count(out, []byte("\uFFFD"))
	return out, marks == 0 || marks == utf16Replacements(enc, raw)
}

// utf16Replacements returns how many U+FFFD raw holds as text when enc is
// UTF-16 (UTF-16BE, UTF-16LE, or UTF-16, big-endian unless raw starts
// with a little-endian byte-order mark) and raw is valid UTF-16 (whole
// code units, surrogates in pairs); -1 otherwise. A UTF-16 text may hold
// U+FFFD itself, which its decoder's output does not tell from its mark
// of invalid input: decodeText takes the output's U+FFFD for text only
// when there are as many in raw.
func utf16Replacements(enc encoding.Encoding, raw []byte) int {
	name, err := ianaindex.IANA.Name(enc)
	if err != nil || len(raw)%2 != 0 {
		return -1
	}
	var little bool
	switch name {
	case "UTF-16LE":
		little = true
	case "UTF-16":
		little = bytes.HasPrefix(raw, []byte{0xFF, 0xFE})
	case "UTF-16BE":
	default:
		return -1
	}
	n, high := 0, false // high: the unit before was the first half of a pair
	for i := 0; i < len(raw); i += 2 {
		u := uint16(raw[i])<<8 | uint16(raw[i+1])
		if little {
			u = uint16(raw[i+1])<<8 | uint16(raw[i])
		}
		switch {
		case u >= 0xD800 && u < 0xDC00: // first half
			if high {
				return -1
			}
			high = true
			continue
		case u >= 0xDC00 && u < 0xE000: // second half
			if !high {
				return -1
			}
		case high:
			return -1
		case u == 0xFFFD:
			n++
		}
		high = false
	}
	if high {
		return -1
	}
	return n
}

// isTextPart reports whether a part's content type makes it a form field:
// none (a plain -F name=value) or text/*.
func isTextPart(contentType string) bool {
	ct := strings.TrimSpace(contentType)
	return ct == "" || hasPrefixFold([]byte(ct), "text/")
}

// markUpload marks the span just added as a file part.
func (p *parser) markUpload(fileName string) {
	p.last().upload = true
	p.fileNames = append(p.fileNames, fileName)
}

// last returns the span just added.
func (p *parser) last() *span {
	if i := p.n - 1; i < len(p.small) {
		return &p.small[i]
	}
	return &p.more[p.n-1-len(p.small)]
}

func readAppend(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// span returns the i-th span.
func (p *parser) span(i int) span {
	if i < len(p.small) {
		return p.small[i]
	}
	return p.more[i-len(p.small)]
}

// value returns the value of sp: in s (p.buf as a string), or its own
// when it was decoded from another charset.
func (p *parser) value(s string, sp span) string {
	if sp.decoded != 0 {
		// The parser owns the slice and never writes it again.
		d := p.decoded[sp.decoded-1]
		return unsafe.String(unsafe.SliceData(d), len(d))
	}
	return s[sp.nameEnd:sp.valueEnd]
}

func (p *parser) finish() (*Request, error) {
	req, backing, params := newRequest(p.n - p.actions)
	if p.action != 0 {
		// Upper-case the action in place so that it needs no string of
		// its own.
		sp := p.span(p.action - 1)
		if sp.decoded != 0 {
			upperASCII(p.decoded[sp.decoded-1])
		} else {
			upperASCII(p.buf[sp.nameEnd:sp.valueEnd])
		}
	}
	// Every name and value, as one string sharing p.buf's memory: the
	// parser owns p.buf and never writes it again, so the string cannot
	// change, and a large request is not held twice.
	var s string
	if len(p.buf) > 0 {
		s = unsafe.String(unsafe.SliceData(p.buf), len(p.buf))
	}
	if n := p.n - p.actions; n > 0 {
		req.Params = params
		i, uploads := 0, 0
		for j := range p.n {
			sp := p.span(j)
			if sp.action {
				if sp.upload {
					uploads++ // a file part named action: its name was kept too
				}
				continue
			}
			// A URL's password in a name is redacted, and so is a secret
			// setting's value in one (nameSecret): no parameter is
			// named by a URL (one that is, an unencoded URL split at its
			// =, is ignored) or so, and names are shown, logged and
			// stored as they are.
			backing[i].Name = nameSecret(secret.RedactURLs(s[sp.nameStart:sp.nameEnd]))
			backing[i].Value = p.value(s, sp)
			req.Params[i] = &backing[i]
			if sp.upload {
				req.Uploads = append(req.Uploads, Upload{Index: i, FileName: p.fileNames[uploads], Size: sp.valueEnd - sp.nameEnd})
				uploads++
			}
			i++
		}
	}
	if p.actions > 1 {
		req.OtherActions = make([]OtherAction, 0, p.actions-1)
		uploads := 0
		for j := range p.n {
			sp := p.span(j)
			if sp.action && j != p.action-1 {
				// Shown only (the request log), never acted on: a URL's
				// password in it is redacted, as in every shown value.
				a := OtherAction{Name: s[sp.nameStart:sp.nameEnd], Value: secret.RedactURLs(p.value(s, sp))}
				if sp.upload {
					a.Value, a.File = "", &Upload{Index: -1, FileName: p.fileNames[uploads], Size: sp.valueEnd - sp.nameEnd}
				}
				req.OtherActions = append(req.OtherActions, a)
			}
			if sp.upload {
				uploads++
			}
		}
	}
	if p.action != 0 {
		sp := p.span(p.action - 1)
		// Upper-cased in place above, in ASCII only: action names are
		// ASCII, and a non-ASCII letter that Unicode upper-cases to an
		// ASCII one (long s, dotless i) must not spell one of them.
		// Trimmed of ASCII white space only, for the same reason: a
		// no-break space after Stop must not leave Stop. A URL's
		// password in it is redacted: no action is named so, and the
		// name is echoed in the reply (<action>, errorid) and the
		// request log.
		req.Action = secret.RedactURLs(strings.Trim(p.value(s, sp), asciiSpace))
	}
	if v, ok := req.Params.Get("ResponseFormat"); ok {
		f, ok := ParseFormat(v)
		if !ok {
			p.fail(messages.Invalid("ResponseFormat", v, "must be xml, simplejson or json"))
		}
		req.Format = f
	}
	if req.Action == "" {
		// A missing action outranks a bad ResponseFormat but not an
		// undecodable request.
		if p.err == nil || !errors.Is(p.err, messages.ErrBadRequest) {
			p.err = messages.Missing("Action")
		}
	}
	return req, p.err
}

// nameSecret returns name with the text after a secret setting's name
// redacted: Password:x, AuthPassword x and ProxyPassword=x (a client
// that wrote the = as a colon or a space, or percent-encoded it) become
// Password:[REDACTED], AuthPassword [REDACTED] and
// ProxyPassword=[REDACTED]. The setting's name is the text up to the
// first colon, = or ASCII white space after its [Task] prefix, if any, and
// looks secret (secret.SensitiveName); a name with only blanks after it
// (AuthPassword followed by a space, which the repository trims) is
// kept.
func nameSecret(name string) string {
	const seps = ":=" + asciiSpace
	if !strings.ContainsAny(name, seps) {
		return name // most names
	}
	start := len(name) - len(strings.TrimLeft(name, asciiSpace))
	if name[start:] != "" && name[start] == '[' {
		if j := strings.IndexByte(name[start:], ']'); j > 0 {
			start += j + 1
		}
	}
	j := strings.IndexAny(name[start:], seps)
	if j < 0 {
		return name
	}
	end := start + j
	if strings.TrimSpace(name[end+1:]) == "" || !secret.SensitiveName(name[:end]) {
		return name
	}
	return name[:end+1] + secret.Redacted
}

// newRequest returns a new Request with room for n parameters: the
// parameters and the slice of pointers to them, to be filled in. A request
// of up to four parameters (a Fetch, a GetStatus) comes in one allocation
// with them instead of three.
func newRequest(n int) (*Request, []messages.Param, messages.Params) {
	switch {
	case n <= 0:
		return &Request{}, nil, nil
	case n <= 2:
		r := &struct {
			req  Request
			ptrs [2]*messages.Param
			vals [2]messages.Param
		}{}
		return &r.req, r.vals[:n:n], r.ptrs[:n:n]
	case n <= 4:
		r := &struct {
			req  Request
			ptrs [4]*messages.Param
			vals [4]messages.Param
		}{}
		return &r.req, r.vals[:n:n], r.ptrs[:n:n]
	}
	return &Request{}, make([]messages.Param, n), make(messages.Params, n)
}

// asciiSpace is the white space trimmed around an action name: ASCII
// only, as unicode.IsSpace's other characters (U+0085, U+00A0, U+2003...)
// around a name would otherwise leave an ASCII one.
const asciiSpace = " \t\n\v\f\r"

func upperASCII(b []byte) {
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
}

// appendUnescape appends the percent-decoded s to dst, with + as a space.
// It reports false for a malformed escape.
func appendUnescape(dst, s []byte) ([]byte, bool) {
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '+':
			dst = append(dst, s[start:i]...)
			dst = append(dst, ' ')
			start = i + 1
		case '%':
			if i+2 >= len(s) {
				return dst, false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return dst, false
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, hi<<4|lo)
			i += 2
			start = i + 1
		}
	}
	return append(dst, s[start:]...), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// standardParams are the parameters every ACI action accepts
// (aci-protocol.md §1.4).
var standardParams = [...]string{
	"ActionID", "EncryptResponse", "FileName", "ForceTemplateRefresh",
	"Output", "ResponseFormat", "Template", "TemplateParamCSVs",
}

// IsStandardParam reports whether name (case-insensitive) is one of the
// standard ACI parameters that every action accepts: ActionID,
// EncryptResponse, FileName, ForceTemplateRefresh, Output, ResponseFormat,
// Template and TemplateParamCSVs. Handlers use it to leave them out of an
// action's own parameters.
func IsStandardParam(name string) bool {
	for _, s := range standardParams {
		if len(s) == len(name) && strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

// ActionParams returns the parameters that are not standard ACI
// parameters (see IsStandardParam), in order. The Params share memory with
// r.Params.
func (r *Request) ActionParams() messages.Params {
	out := make(messages.Params, 0, len(r.Params))
	for _, p := range r.Params {
		if !IsStandardParam(p.GetName()) {
			out = append(out, p)
		}
	}
	return out
}

// ParseBool reads an ACI Boolean: TRUE, ON, Y, YES, 1 are true and FALSE,
// OFF, N, NO, 0 are false, in any ASCII letter case and ignoring
// surrounding ASCII white space (messages.IsValue: Ye\u017f, with a long
// s, is not yes). ok is false for anything else.
func ParseBool(v string) (value, ok bool) {
	is := func(name string) bool { return messages.IsValue(v, name) }
	switch {
	case is("1"), is("true"), is("on"), is("y"), is("yes"):
		return true, true
	case is("0"), is("false"), is("off"), is("n"), is("no"):
		return false, true
	}
	return false, false
}

// Int returns parameter name as a decimal integer, or def when it is
// absent or empty (or ASCII white space only: a no-break space is
// neither blank nor a digit). A value that is not an integer gives a
// *messages.ParamError (ErrInvalidParam) naming name.
func (r *Request) Int(name string, def int64) (int64, error) {
	v, ok := r.Params.Get(name)
	v = messages.TrimASCIISpace(v) // a no-break space is no blank, and no digit
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, messages.Invalid(name, v, "must be an integer")
	}
	return n, nil
}

// IntRange is Int with bounds: a value outside [lo, hi] is an
// ErrInvalidParam *messages.ParamError. def is not checked.
func (r *Request) IntRange(name string, def, lo, hi int64) (int64, error) {
	v, ok := r.Params.Get(name)
	v = messages.TrimASCIISpace(v) // a no-break space is no blank, and no digit
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, messages.Invalid(name, v, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
	}
	return n, nil
}

// Bool returns parameter name read with ParseBool, or def when it is
// absent or empty. Any other value gives an ErrInvalidParam
// *messages.ParamError naming name.
func (r *Request) Bool(name string, def bool) (bool, error) {
	v, ok := r.Params.Get(name)
	if !ok || messages.TrimASCIISpace(v) == "" {
		return def, nil
	}
	b, ok := ParseBool(v)
	if !ok {
		return false, messages.Invalid(name, v, "must be true or false")
	}
	return b, nil
}

// Require returns the value of parameter name, or an ErrMissingParam
// *messages.ParamError naming it when it is absent or empty.
func (r *Request) Require(name string) (string, error) {
	v, ok := r.Params.Get(name)
	if !ok || v == "" {
		return "", messages.Missing(name)
	}
	return v, nil
}
