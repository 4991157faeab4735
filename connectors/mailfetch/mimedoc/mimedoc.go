// Package mimedoc reads a mail message (RFC 5322 with MIME) into what the
// Google Mail connector indexes: its standard header fields, decoded; its
// text (the plain text body, or the HTML body as text); and its attachments
// (named parts, and parts that are not text of the body), each with its
// IMAP section number, file name, media type and decoded bytes.
//
// It never fails and never stalls on hostile mail: a header it cannot read
// is read line by line for what it can use; an unknown charset falls back
// to UTF-8 or Windows-1252; a bad transfer encoding keeps what decodes; a
// multipart without its closing boundary keeps the parts it has; nesting
// beyond Limits.MaxDepth and parts beyond Limits.MaxParts are not read (the
// message's Problems say so). Its cost is linear in the message's size: the
// header, the parts and their bodies are slices of the message (partReader
// splits a multipart as go-message's reader does, without copying), and
// the caller bounds the size of the message it hands in.
//
// go-message was chosen over enmime by a measured check on hostile mail
// (docs/connectors/google-mail.md, "MIME"): it streams a 50 MB attachment
// without holding it twice (enmime allocated 82 MB and took 7 times as
// long), and both read the same broken messages. Its multipart reader is
// now the reference partReader is checked against (FuzzPartsAreGoMessages).
package mimedoc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"

	"github.com/connectorhq/connector/extract"
)

// Limits bound the work on one message.
type Limits struct {
	// MaxDepth is the deepest multipart nesting read (the message itself
	// is depth 0); default 32. Deeper parts are skipped.
	MaxDepth int
	// MaxParts is the most parts read (every part counts, multiparts
	// included); default 1000. Later parts are skipped.
	MaxParts int
	// MaxHeaderBytes bounds one header block; default 1 MiB.
	MaxHeaderBytes int
}

// Defaults of Limits.
const (
	DefaultMaxDepth       = 32
	DefaultMaxParts       = 1000
	DefaultMaxHeaderBytes = 1 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxParts <= 0 {
		l.MaxParts = DefaultMaxParts
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// Message is a parsed mail message.
type Message struct {
	From, Sender, ReplyTo, To, Cc, Bcc []string // addresses as "Name <addr>" (or the raw text when unparsable)
	Subject                            string
	Date                               time.Time // zero when absent or unparsable
	MessageID                          string    // without angle brackets
	InReplyTo, References              []string  // message ids without angle brackets
	// Text is the body's text: the text/plain parts of the body, or its
	// text/html parts as text where a multipart/alternative offers no
	// plain text (HTMLText converts them).
	Text string
	// HTMLBody is set when the text came from HTML.
	HTMLBody bool
	// Attachments are the parts that are not the body's text, in order.
	Attachments []*Attachment
	// Problems say what could not be read (malformed header, unknown
	// charset, missing boundary, nesting or part limits). Empty for a
	// well-formed message.
	Problems []string

	addrs [2]string // room for From's and To's address (fields)
}

// Attachment is one attached part.
type Attachment struct {
	Section     string // IMAP section number ("2", "1.3")
	FileName    string // decoded; "" when the part has none
	ContentType string // media type, lower case
	// Charset is the charset parameter of the part's Content-Type, as
	// written ("" when none): a text attachment's bytes are in it.
	Charset   string
	ContentID string
	Inline    bool // Content-Disposition: inline
	Data      []byte
	// Truncated is set when the message ended inside this part (a message
	// cut at the size limit): Data is what there is.
	Truncated bool
}

// HTMLText turns an HTML body into text. nil uses a plain tag stripper.
type HTMLText func(html []byte, contentType string) string

// Parse reads raw. truncated says raw is the start of a longer message
// (cut at the size limit), so that parts it cuts are marked. toText turns
// HTML bodies into text.
//
// The header, the parts and bodies without a transfer encoding are read
// from raw in place. An attachment's Data, the Text and the strings read
// from the header (when the Text or an attachment's Data does: ownHeader)
// may share raw's memory: raw must not change while the Message is used.
func Parse(raw []byte, truncated bool, lim Limits, toText HTMLText) *Message {
	p := &parser{lim: lim.withDefaults(), toText: toText, truncated: truncated, raw: raw, msg: &Message{}}
	h, body, err := p.readHeader(raw)
	p.fields(h)
	if err != nil {
		p.problem("header: %v", err)
	}
	p.entity(h, body, io.EOF, 0, "", false, false)
	p.finish()
	p.ownHeader()
	return p.msg
}

// ownHeader gives the Message's strings from the header block (names,
// addresses, the subject, ids: slices of raw, see readHeader) a copy of
// the block of their own, unless the Message holds raw anyway (its Text or
// an attachment's Data is raw's memory): so a Message holds all of the
// message only when most of it is its text or an attachment (mayShare),
// as before the header's strings were slices of raw. Sharing the block
// instead of copying it for every message saved a twentieth of the bytes
// a mail Synchronize allocates (most messages are a single text part).
func (p *parser) ownHeader() {
	m := p.msg
	raw := bytesString(p.raw)
	if p.header == "" || inside(m.Text, raw) {
		return
	}
	for _, a := range m.Attachments {
		if inside(bytesString(a.Data), raw) {
			return
		}
	}
	own := strings.Clone(p.header)
	rebase := func(s *string) {
		if inside(*s, p.header) {
			off := uintptr(unsafe.Pointer(unsafe.StringData(*s))) - uintptr(unsafe.Pointer(unsafe.StringData(p.header)))
			*s = own[off : off+uintptr(len(*s))]
		}
	}
	for _, list := range [][]string{m.From, m.Sender, m.ReplyTo, m.To, m.Cc, m.Bcc, m.InReplyTo, m.References, m.Problems} {
		for i := range list {
			rebase(&list[i])
		}
	}
	rebase(&m.Subject)
	rebase(&m.MessageID)
	rebase(&m.Text)
	for _, a := range m.Attachments {
		rebase(&a.Section)
		rebase(&a.FileName)
		rebase(&a.ContentType)
		rebase(&a.ContentID)
	}
}

// inside reports whether s is (non-empty and) within the memory of in.
func inside(s, in string) bool {
	if len(s) == 0 || len(in) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.StringData(in)))
	ptr := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return ptr >= base && ptr < base+uintptr(len(in))
}

// bytesString is b's memory as a string ("" when empty), for inside.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

type parser struct {
	lim       Limits
	toText    HTMLText
	truncated bool
	raw       []byte // the message
	msg       *Message
	parts     int
	// body holds the text chosen for the body, one entry per text part.
	body []string
	// header is the top-level header block, raw's memory (readHeader).
	header string
}

func (p *parser) problem(format string, args ...any) {
	if len(p.msg.Problems) < 20 {
		p.msg.Problems = append(p.msg.Problems, fmt.Sprintf(format, args...))
	}
}

// getter is a header (the top-level one, or a part's).
type getter interface{ Get(key string) string }

// header is a header block read by readHeader (the message's) or
// partReader.readHeader (a part's), in the order of the message.
type header []headerField

type headerField struct{ key, value string }

// Get returns the value of the first field named key, as go-message's
// textproto.Header.Get does: the name compared without regard to case
// (readHeader keeps printable ASCII names only, for which that is what
// canonical names compare), the value unfolded.
func (h header) Get(key string) string {
	for i := range h {
		// ASCII names: names of different lengths never match.
		if len(h[i].key) == len(key) && strings.EqualFold(h[i].key, key) {
			return h[i].value
		}
	}
	return ""
}

// readHeader reads the header block at the start of raw and returns it
// with the body that follows. When the block is malformed it keeps the
// lines that are fields (textproto.ReadHeader gives up on the first bad
// line). A block is read up to Limits.MaxHeaderBytes; a longer one is cut
// there (the rest is the body) and reported.
func (p *parser) readHeader(raw []byte) (header, []byte, error) {
	block := raw
	if len(block) > p.lim.MaxHeaderBytes {
		block = block[:p.lim.MaxHeaderBytes]
	}
	// One string for the block (up to its blank line): names and one-line
	// values are slices of it. It is the message's memory, not a copy:
	// Parse copies it (ownHeader) when the Message would not hold the
	// message otherwise.
	var text string
	if n := headerEnd(block); n > 0 {
		text = unsafe.String(&block[0], n)
	}
	p.header = text
	// At most a field per line: one allocation, not a doubling series.
	h := make(header, 0, strings.Count(text, "\n")+1)
	var bad int
	pos := 0
	ended := false // a blank line ended the block
	for pos < len(text) {
		line := text[pos:]
		if i := strings.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		pos += len(line)
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "" {
			// A blank line whose LF the limit cut off ("\r" as the
			// block's last byte) is not the end of a block within it.
			ended = strings.HasSuffix(line, "\n") || len(block) == len(raw)
			break
		}
		if (trimmed[0] == ' ' || trimmed[0] == '\t') && len(h) > 0 {
			f := &h[len(h)-1]
			if v := unfoldPiece(trimmed); v != "" {
				if f.value != "" {
					f.value += " " + v
				} else {
					f.value = v
				}
			}
		} else if i := strings.IndexByte(trimmed, ':'); i > 0 && validFieldName(trimmed[:i]) {
			h = append(h, headerField{key: trimmed[:i], value: unfoldPiece(trimmed[i+1:])})
		} else {
			bad++
		}
	}
	var err error
	if bad > 0 {
		err = fmt.Errorf("%d malformed line(s) skipped", bad)
	}
	if !ended && len(raw) >= p.lim.MaxHeaderBytes {
		err = fmt.Errorf("header block larger than %d bytes", p.lim.MaxHeaderBytes)
	}
	return h, raw[pos:], err
}

// headerEnd returns the length of the header block at the start of b:
// through its blank line (a line of nothing but CR and LF), or all of b.
func headerEnd(b []byte) int {
	pos := 0
	for pos < len(b) {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			return len(b)
		}
		blank := true
		for _, c := range b[pos : pos+i] {
			if c != '\r' {
				blank = false
				break
			}
		}
		pos += i + 1
		if blank {
			return pos
		}
	}
	return len(b)
}

// unfoldPiece is one line of a field's value as go-message unfolds it: a
// final CR dropped, then the spaces and tabs around it.
func unfoldPiece(s string) string {
	s = strings.TrimSuffix(s, "\r")
	return strings.Trim(s, " \t")
}

func validFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 127 {
			return false
		}
	}
	return true
}

// fields reads the standard fields of the top-level header.
func (p *parser) fields(h header) {
	m := p.msg
	// From and To, most often one address each, are held by the Message
	// (an allocation each for the commonest header saved).
	m.From = addresses(h.Get("From"), m.addrs[0:0:1])
	m.Sender = addresses(h.Get("Sender"), nil)
	m.ReplyTo = addresses(h.Get("Reply-To"), nil)
	m.To = addresses(h.Get("To"), m.addrs[1:1:2])
	m.Cc = addresses(h.Get("Cc"), nil)
	m.Bcc = addresses(h.Get("Bcc"), nil)
	m.Subject = DecodeHeader(h.Get("Subject"))
	if d := strings.TrimSpace(h.Get("Date")); d != "" {
		if t, err := parseDate(d); err == nil {
			m.Date = t
		} else {
			p.problem("Date %q: not a date", shorten(d))
		}
	}
	m.MessageID = firstMsgID(h.Get("Message-Id"))
	m.InReplyTo = msgIDs(h.Get("In-Reply-To"))
	m.References = msgIDs(h.Get("References"))
}

// entity reads one entity (the message, or a part) whose header is h and
// whose body is body, a slice of the message, at depth, numbered section
// ("" for the message itself). end is how the body ended: io.EOF when it
// is whole (the message's end, or its part's closing delimiter),
// io.ErrUnexpectedEOF when its part was cut without one. dropHTML says it
// is an alternative of a multipart/alternative that already has a plain
// text alternative, which replaces an HTML one: such HTML is decoded (for
// its problems) but not turned into text. inDigest says it is a part of a
// multipart/digest. It returns the entity's media type.
func (p *parser) entity(h getter, body []byte, end error, depth int, section string, dropHTML, inDigest bool) string {
	p.parts++
	mediaType, params := partType(h, inDigest)
	if strings.HasPrefix(mediaType, "multipart/") {
		p.multipart(mediaType, &params, body, end, depth, section)
		return mediaType
	}
	if section == "" {
		section = "1" // a single-part message's body is part 1 (RFC 3501)
	}
	disp, dparams := disposition(h)
	name := DecodeHeader(dparams.get("filename"))
	if name == "" {
		name = DecodeHeader(params.get("name"))
	}
	data, encErr := p.decodeBody(h.Get("Content-Transfer-Encoding"), body, end)
	if encErr != nil {
		p.problem("part %s: %v", section, encErr)
	}
	// Of a message cut at the size limit, the part cut is the one whose
	// multipart delimiter is missing, or the message's own body when it
	// is a single part (a file sent alone): it runs to the cut.
	cut := p.truncated && (depth == 0 || encErr != nil && errors.Is(encErr, io.ErrUnexpectedEOF))
	isText := mediaType == "text/plain" || mediaType == "text/html"
	if isText && disp != "attachment" && name == "" {
		cs := params.get("charset")
		if cs != "" && !extract.IsUTF8Label(cs) { // UTF-8 is known: Lookup would allocate to say so
			// An unknown charset is left out, so that the text is read as
			// UTF-8 when it is valid UTF-8, else as Windows-1252.
			if enc, _ := charset.Lookup(cs); enc == nil {
				p.problem("part %s: unknown charset %q", section, shorten(cs))
				cs = ""
			}
		}
		var text string
		if mediaType == "text/html" {
			if !dropHTML {
				ct := mediaType
				if cs != "" {
					ct += "; charset=" + cs
				}
				text = p.htmlText(data, ct)
			}
			p.msg.HTMLBody = p.msg.HTMLBody || len(p.body) == 0
		} else {
			text = bodyText(data, cs, p.mayShare(data, body))
		}
		p.body = append(p.body, text)
		return mediaType
	}
	a := &Attachment{
		Section:     section,
		FileName:    name,
		ContentType: mediaType,
		Charset:     params.get("charset"),
		ContentID:   strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>"),
		Inline:      disp == "inline",
		Data:        data,
		Truncated:   cut,
	}
	if depth > 0 && len(data) > 0 && len(body) > 0 && &data[0] == &body[0] {
		// A part's bytes, not decoded: copied, so that the attachment does
		// not hold the whole message (a small invitation beside a large
		// file, a thousand such messages in a delivery batch). A
		// single-part message's body is most of it, and is not copied.
		a.Data = bytes.Clone(data)
	}
	if a.FileName == "" && (mediaType == "message/rfc822" || mediaType == "message/global") {
		a.FileName = "message.eml"
	}
	p.msg.Attachments = append(p.msg.Attachments, a)
	return mediaType
}

// multipart reads the parts of a multipart entity whose body is body
// (ended as end says: see entity).
func (p *parser) multipart(mediaType string, params *params, body []byte, end error, depth int, section string) {
	if depth >= p.lim.MaxDepth {
		p.problem("multipart nested deeper than %d: the inner parts are not read", p.lim.MaxDepth)
		return
	}
	boundary := params.get("boundary")
	if boundary == "" {
		p.problem("%s without a boundary: read as text", mediaType)
		p.body = append(p.body, extract.DecodeTextCharset(body, ""))
		return
	}
	mr := newPartReader(body, end, boundary)
	alternative := mediaType == "multipart/alternative"
	type alt struct {
		start int // index in p.body where this alternative's text begins
		html  bool
	}
	var alts []alt
	hasPlain := false
	for i := 1; ; i++ {
		if p.parts >= p.lim.MaxParts {
			p.problem("more than %d parts: the rest are not read", p.lim.MaxParts)
			return
		}
		part, err := mr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if p.truncated {
				p.problem("%s cut at the size limit", mediaType)
			} else {
				p.problem("%s: %v", mediaType, err)
			}
			break
		}
		sec := strconv.Itoa(i)
		if section != "" {
			sec = section + "." + sec
		}
		if part.badLines > 0 {
			p.problem("%s: part %s: %d malformed header line(s) skipped", mediaType, sec, part.badLines)
		}
		before := len(p.body)
		pt := p.entity(part.header, part.body, part.end, depth+1, sec, alternative && hasPlain, mediaType == "multipart/digest")
		if alternative && len(p.body) > before {
			alts = append(alts, alt{start: before, html: pt == "text/html"})
			// The plain text is kept over any HTML alternative after it.
			hasPlain = hasPlain || pt != "text/html"
		}
	}
	// Of a multipart/alternative's text alternatives keep one: the plain
	// text when there is one, else the first.
	if len(alts) > 1 {
		keep := alts[0]
		for _, a := range alts {
			if !a.html {
				keep = a
				break
			}
		}
		var kept []string
		for i, a := range alts {
			end := len(p.body)
			if i+1 < len(alts) {
				end = alts[i+1].start
			}
			if a == keep {
				kept = append(kept, p.body[a.start:end]...)
			}
		}
		if !keep.html {
			p.msg.HTMLBody = false
		}
		p.body = append(p.body[:alts[0].start], kept...)
	}
}

// mayShare reports whether the text of a part whose decoded bytes are data
// (body before decoding) may share data's memory (bodyText): when data was
// decoded into memory of its own, which holds nothing else; or when data
// is the message's own bytes and at least half of the message, so that a
// document holding the text holds at most twice its text's bytes (a small
// text beside a large attachment is copied, and the message freed).
func (p *parser) mayShare(data, body []byte) bool {
	if len(data) == 0 {
		return false
	}
	if len(body) == 0 || &data[0] != &body[0] {
		return true // decoded (base64, quoted-printable): data is ours alone
	}
	return 2*len(data) >= len(p.raw)
}

// bodyText is extract.DecodeTextCharset(data, label), byte for byte
// (TestBodyTextIsDecodeTextCharset, FuzzBodyTextIsDecodeTextCharset). The
// commonest text, valid UTF-8 labelled UTF-8 or not at all, with no byte
// order mark and no NUL byte, is data itself: when share is set the string
// shares data's memory instead of copying it (data never changes: it is
// the message's, which Parse's caller keeps as it is, or decoded for this
// text alone). The copy was an eighth of the bytes a synchronize
// allocated.
func bodyText(data []byte, label string, share bool) string {
	if share && len(data) > 0 && (label == "" || extract.IsUTF8Label(label)) &&
		data[0] != 0xef && data[0] != 0xff && data[0] != 0xfe && // a byte order mark starts with one of these
		bytes.IndexByte(data, 0) < 0 && utf8.Valid(data) {
		return unsafe.String(&data[0], len(data))
	}
	return extract.DecodeTextCharset(data, label)
}

func (p *parser) htmlText(data []byte, ct string) string {
	if p.toText != nil {
		return p.toText(data, ct)
	}
	return StripHTML(data, ct)
}

// StripHTML is the plain tag stripper a nil HTMLText stands for: data
// decoded as its Content-Type ct says, without the code of its style
// sheets and scripts (dropCode), its tags removed (entities kept). An
// HTMLText whose converter fails falls back on it.
func StripHTML(data []byte, ct string) string {
	return stripTags(dropCode(extract.DecodeText(data, ct)))
}

// dropCode returns s without the contents of its script and style
// elements: code, not the message's words, which stripTags would keep (a
// newsletter's style sheet was the start of its text). A self-closed one
// (<script src="a.js"/>) is empty. Everything else is kept as written.
func dropCode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	z := html.NewTokenizer(strings.NewReader(s))
	code := 0 // script and style elements open
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String()
		case html.SelfClosingTagToken:
			z.NextIsNotRawText()
		case html.StartTagToken, html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "script" || string(name) == "style" {
				if tt == html.StartTagToken {
					code++
				} else if code > 0 {
					code--
				}
			}
		case html.TextToken:
			if code > 0 {
				continue
			}
		}
		b.Write(z.Raw())
	}
}

func (p *parser) finish() {
	// One text (most mail): no copy.
	var one string
	n := 0
	for _, t := range p.body {
		if t = strings.TrimSpace(t); t != "" {
			one = t
			n++
		}
	}
	if n <= 1 {
		p.msg.Text = one
		return
	}
	var b strings.Builder
	for _, t := range p.body {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(t)
	}
	p.msg.Text = b.String()
}

// params are the parameters of a Content-Type or Content-Disposition
// value, names in lower case. The few a value has (one or two in nearly
// all mail) are held in place; a map (mime.ParseMediaType's, or the
// lenient reading's) only for values the short cut does not read: a map
// per part cost 3 allocations per message and a twentieth of the bytes a
// full Synchronize allocates.
type params struct {
	list [maxListedParams][2]string
	n    int
	m    map[string]string
}

// maxListedParams is the most parameters params holds without a map.
const maxListedParams = 4

// get returns the value of the parameter named name (lower case), or "".
func (ps *params) get(name string) string {
	if ps.m != nil {
		return ps.m[name]
	}
	for i := range ps.n {
		if ps.list[i][0] == name {
			return ps.list[i][1]
		}
	}
	return ""
}

// has reports whether a parameter named name (lower case) is set.
func (ps *params) has(name string) bool {
	if ps.m != nil {
		_, ok := ps.m[name]
		return ok
	}
	for i := range ps.n {
		if ps.list[i][0] == name {
			return true
		}
	}
	return false
}

// set sets a parameter (name in lower case), in place while there is room,
// else in the map the listed ones move to.
func (ps *params) set(name, value string) {
	if ps.m == nil {
		for i := range ps.n {
			if ps.list[i][0] == name {
				ps.list[i][1] = value
				return
			}
		}
		if ps.n < maxListedParams {
			ps.list[ps.n] = [2]string{name, value}
			ps.n++
			return
		}
		ps.m = make(map[string]string, ps.n+1)
		for i := range ps.n {
			ps.m[ps.list[i][0]] = ps.list[i][1]
		}
		ps.n = 0
	}
	ps.m[name] = value
}

// asMap returns the parameters as a map (tests compare them with
// mime.ParseMediaType's).
func (ps *params) asMap() map[string]string {
	if ps.m != nil {
		return ps.m
	}
	out := make(map[string]string, ps.n)
	for i := range ps.n {
		out[ps.list[i][0]] = ps.list[i][1]
	}
	return out
}

// partType is contentType, but for a part of a multipart/digest (inDigest)
// without a Content-Type, which is a message: message/rfc822 (RFC 2046
// 5.1.5). Read as text/plain, a digest's messages were its text, raw.
func partType(h getter, inDigest bool) (string, params) {
	if inDigest && strings.TrimSpace(h.Get("Content-Type")) == "" {
		return "message/rfc822", params{}
	}
	return contentType(h)
}

// contentType returns the media type (lower case; text/plain when absent
// or unreadable) and its parameters.
func contentType(h getter) (string, params) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return "text/plain", params{}
	}
	t, ps, err := parseMediaType(v)
	if err == nil && !strings.Contains(t, "/") {
		// A type without its subtype ("text", as some mailers write):
		// RFC 2045 (5.2) reads a Content-Type that is not one as the
		// default, text/plain, its charset kept. Read as the type
		// "text", the message's body was an attachment and its text no
		// part of the message's document.
		withExtended(v, &ps, "name")
		return "text/plain", ps
	}
	if err != nil {
		// Lenient: the type before the first ';', and the parameters that
		// can be read one by one.
		t = strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
		ps = lenientParams(v)
		if !strings.Contains(t, "/") {
			t = "application/octet-stream"
		}
	}
	withExtended(v, &ps, "name")
	return strings.ToLower(t), ps
}

// withExtended sets ps's parameter name from its RFC 2231 form in v
// (extendedParam), when v has one ('*' is in no value the short cut of
// parseMediaType reads, so the commonest headers are not read twice).
func withExtended(v string, ps *params, name string) {
	if strings.IndexByte(v, '*') < 0 {
		return
	}
	if s, ok := extendedParam(v, name); ok && s != "" {
		ps.set(name, s)
	}
}

// lenientParams reads the parameters of v that can be read one by one.
func lenientParams(v string) params {
	var ps params
	for _, kv := range strings.Split(v, ";")[1:] {
		k, val, ok := strings.Cut(kv, "=")
		if ok {
			ps.set(strings.ToLower(strings.TrimSpace(k)), strings.Trim(strings.TrimSpace(val), `"`))
		}
	}
	return ps
}

// parseMediaType is mime.ParseMediaType, which reads the commonest
// values (`type/subtype; name=value; name="value"`) through a short cut
// (simpleMediaType) first.
func parseMediaType(v string) (string, params, error) {
	if t, ps, ok := simpleMediaType(v); ok {
		return t, ps, nil
	}
	t, m, err := mime.ParseMediaType(v)
	return t, params{m: m}, err
}

// simpleMediaType reads v when it is a token or token/token, then zero or
// more parameters "; name=value" (single spaces allowed around ';'),
// each name a token without '*' (no RFC 2231 continuations) given once,
// each value a token or a quoted string of printable ASCII without a
// backslash: the type and names lower-cased, values as written, exactly what
// mime.ParseMediaType returns for it (TestSimpleMediaTypeIsMimes). ok is
// false for anything else, which mime.ParseMediaType reads.
func simpleMediaType(v string) (string, params, bool) {
	var ps params
	i := tokenEnd(v, 0)
	if i == 0 {
		return "", ps, false
	}
	if i < len(v) && v[i] == '/' {
		j := tokenEnd(v, i+1)
		if j == i+1 {
			return "", ps, false
		}
		i = j
	}
	t := v[:i]
	for i < len(v) {
		if v[i] == ' ' {
			i++
		}
		if i >= len(v) || v[i] != ';' {
			return "", ps, false
		}
		i++
		if i < len(v) && v[i] == ' ' {
			i++
		}
		k := tokenEnd(v, i)
		if k == i || k >= len(v) || v[k] != '=' || strings.IndexByte(v[i:k], '*') >= 0 {
			return "", ps, false
		}
		name := strings.ToLower(v[i:k])
		if ps.has(name) {
			return "", ps, false
		}
		i = k + 1
		var value string
		if i < len(v) && v[i] == '"' {
			e := i + 1
			for e < len(v) && v[e] != '"' {
				if c := v[e]; c < 0x20 || c > 0x7e || c == '\\' {
					return "", ps, false
				}
				e++
			}
			if e >= len(v) {
				return "", ps, false
			}
			value, i = v[i+1:e], e+1
		} else {
			e := tokenEnd(v, i)
			if e == i {
				return "", ps, false
			}
			value, i = v[i:e], e
		}
		ps.set(name, value)
	}
	return strings.ToLower(t), ps, true
}

// tokenEnd returns the end of the MIME token (RFC 2045) at v[i:].
func tokenEnd(v string, i int) int {
	for i < len(v) && isTokenChar(v[i]) {
		i++
	}
	return i
}

func isTokenChar(c byte) bool {
	return c > 0x20 && c < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
}

func disposition(h getter) (string, params) {
	v := h.Get("Content-Disposition")
	if v == "" {
		return "", params{}
	}
	d, ps, err := parseMediaType(v)
	if err != nil {
		d = strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
		ps = lenientParams(v)
	}
	withExtended(v, &ps, "filename")
	return strings.ToLower(d), ps
}

// decodeBody undoes a body's transfer encoding (body ended as end says:
// see entity; a body cut without its delimiter is an io.ErrUnexpectedEOF).
// What decodes is kept when the encoding is broken. Without an encoding,
// the result is body itself.
func (p *parser) decodeBody(cte string, body []byte, end error) (data []byte, err error) {
	if end != io.EOF {
		err = end
	}
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		out, derr := p.base64(body)
		if err == nil {
			err = derr
		}
		return out, err
	case "quoted-printable":
		r := &endReader{b: body, end: end}
		var buf bytes.Buffer
		_, err := io.Copy(&buf, quotedprintable.NewReader(r))
		if err != nil {
			// quotedprintable stops at a bad escape: keep the rest as it is.
			rest, _ := io.ReadAll(r)
			buf.Write(rest)
			return buf.Bytes(), fmt.Errorf("quoted-printable: %v", err)
		}
		return buf.Bytes(), nil
	default:
		return body, err
	}
}

// base64 decodes a base64 body. Well-formed base64 (lines of the
// alphabet, padded) is decoded by encoding/base64 straight from the
// message; anything else by decodeBase64, on a copy, to the same result
// where both read it (FuzzBase64).
func (p *parser) base64(body []byte) ([]byte, error) {
	// Large enough for either decoder (decodeBase64 decodes a cut final
	// quantum too).
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(body)))
	if n, err := base64.StdEncoding.Decode(out, body); err == nil {
		return out[:n], nil
	}
	return decodeBase64(bytes.Clone(body), out)
}

// decodeBase64 decodes base64 ignoring white space and anything outside the
// alphabet, as mail readers do; trailing bits of a cut final quantum are
// dropped. It cleans raw in place, and decodes into out when out is large
// enough (base64.RawStdEncoding.DecodedLen(len(raw))).
func decodeBase64(raw, out []byte) ([]byte, error) {
	clean := raw[:0] // in place: raw is ours
	skipped := 0
	for _, c := range raw {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			clean = append(clean, c)
		case c == '=' || c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			skipped++
		}
	}
	n := len(clean) - len(clean)%4
	if need := base64.RawStdEncoding.DecodedLen(len(clean)); cap(out) >= need {
		out = out[:need]
	} else {
		out = make([]byte, need)
	}
	w, err := base64.RawStdEncoding.Decode(out, clean[:n])
	if err != nil {
		return out[:w], fmt.Errorf("base64: %v", err)
	}
	if rest := clean[n:]; len(rest) >= 2 {
		m, _ := base64.RawStdEncoding.Decode(out[w:], rest)
		w += m
	}
	out = out[:w]
	if skipped > 0 {
		return out, fmt.Errorf("base64: %d character(s) outside the alphabet skipped", skipped)
	}
	return out, nil
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(label string, r io.Reader) (io.Reader, error) {
	return charset.NewReaderLabel(label, r)
}}

// DecodeHeader decodes RFC 2047 encoded words; raw 8-bit text is read as
// UTF-8, else Windows-1252. An undecodable word is kept as written.
func DecodeHeader(s string) string {
	if s == "" {
		return ""
	}
	if !utf8.ValidString(s) {
		s = extract.DecodeText([]byte(s), "")
	}
	if out, ok := oneUTF8Word(s); ok {
		return collapseSpace(out)
	}
	out, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		// Decode word by word, keeping those that fail.
		var b strings.Builder
		for i, w := range strings.Fields(s) {
			if i > 0 {
				b.WriteByte(' ')
			}
			if d, err := wordDecoder.Decode(w); err == nil {
				b.WriteString(d)
			} else {
				b.WriteString(w)
			}
		}
		out = b.String()
	}
	return collapseSpace(out)
}

// oneUTF8Word returns what wordDecoder.DecodeHeader returns for s when s
// is one encoded word and nothing else, in UTF-8, Q or B encoded, that
// decodes (the commonest subject that is not ASCII): one allocation where
// DecodeHeader made three (TestOneUTF8WordIsDecodeHeaders,
// FuzzOneUTF8WordIsDecodeHeaders). ok is false for anything else.
func oneUTF8Word(s string) (string, bool) {
	// "=?" charset "?" encoding "?" text "?=", as DecodeHeader splits it:
	// the charset up to the first '?', the text up to the first "?=".
	if len(s) < len("=?utf-8?q??=") || s[0] != '=' || s[1] != '?' {
		return "", false
	}
	rest := s[2:]
	i := strings.IndexByte(rest, '?')
	if i < 0 || !strings.EqualFold(rest[:i], "utf-8") {
		return "", false
	}
	rest = rest[i+1:]
	if len(rest) < len("Q??=") || rest[1] != '?' {
		return "", false
	}
	enc, text := rest[0], rest[2:]
	j := strings.Index(text, "?=")
	if j != len(text)-2 {
		return "", false
	}
	text = text[:j]
	var arr [256]byte
	var out []byte
	switch enc {
	case 'Q', 'q':
		out = arr[:0]
		if len(text) > len(arr) {
			out = make([]byte, 0, len(text))
		}
		for k := 0; k < len(text); k++ {
			switch c := text[k]; {
			case c == '_':
				out = append(out, ' ')
			case c == '=':
				if k+2 >= len(text) {
					return "", false
				}
				hi, ok1 := fromHex(text[k+1])
				lo, ok2 := fromHex(text[k+2])
				if !ok1 || !ok2 {
					return "", false
				}
				out = append(out, hi<<4|lo)
				k += 2
			case c <= '~' && c >= ' ' || c == '\n' || c == '\r' || c == '\t':
				out = append(out, c)
			default:
				return "", false
			}
		}
	case 'B', 'b':
		n := base64.StdEncoding.DecodedLen(len(text))
		out = arr[:n]
		if n > len(arr) {
			out = make([]byte, n)
		}
		w, err := base64.StdEncoding.Decode(out, []byte(text))
		if err != nil {
			return "", false
		}
		out = out[:w]
	default:
		return "", false
	}
	return string(out), true
}

// fromHex is mime's: a hexadecimal digit, either case.
func fromHex(b byte) (byte, bool) {
	switch {
	case b >= '0' && b <= '9':
		return b - '0', true
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10, true
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10, true
	}
	return 0, false
}

// collapseSpace is strings.Join(strings.Fields(s), " "): s itself when it
// is already that (no allocation: the commonest case), else the join.
func collapseSpace(s string) string {
	if !spaceCollapsed(s) {
		return strings.Join(strings.Fields(s), " ")
	}
	return s
}

// spaceCollapsed reports whether s holds no white space (as strings.Fields
// reads it: unicode.IsSpace) but single ' ' between other characters.
func spaceCollapsed(s string) bool {
	prevSpace := true // a space at the start is one too many
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if unicode.IsSpace(r) {
				return false
			}
			prevSpace = false
			i += n
			continue
		}
		i++
		switch c {
		case ' ':
			if prevSpace {
				return false
			}
			prevSpace = true
		case '\t', '\n', '\v', '\f', '\r':
			return false
		default:
			prevSpace = false
		}
	}
	return !prevSpace || s == ""
}

// commonDate is the layout of nearly every Date field ("Mon, 2 Jan 2006
// 15:04:05 -0700", RFC 5322's own form).
const commonDate = "Mon, 2 Jan 2006 15:04:05 -0700"

// parseDate is mail.ParseDate, which tries its layouts without the day
// of the week first: 24 failed parses (and their errors) for the common
// form. A date in exactly that form is parsed with its layout alone,
// which is the layout mail.ParseDate ends with (TestParseDateIsMails);
// anything else goes to mail.ParseDate.
func parseDate(s string) (time.Time, error) {
	if isCommonDate(s) {
		if t, err := time.Parse(commonDate, s); err == nil {
			return t, nil
		}
	}
	return mail.ParseDate(s)
}

// isCommonDate reports whether s is "Www, D[D] Mmm YYYY HH:MM:SS +ZZZZ"
// and nothing more.
func isCommonDate(s string) bool {
	// The shape, with the day of the month as 2 digits; a 1-digit day
	// shifts the rest by one.
	const shape = "aaa, dd aaa dddd dd:dd:dd sdddd"
	if len(s) == len(shape)-1 && len(s) > 6 && s[6] == ' ' {
		s = s[:5] + "0" + s[5:]
	}
	if len(s) != len(shape) {
		return false
	}
	for i := 0; i < len(shape); i++ {
		c := s[i]
		switch shape[i] {
		case 'a':
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
				return false
			}
		case 'd':
			if c < '0' || c > '9' {
				return false
			}
		case 's':
			if c != '+' && c != '-' {
				return false
			}
		default:
			if c != shape[i] {
				return false
			}
		}
	}
	return true
}

// addresses reads an address list; an unparsable one is kept as decoded
// text, one entry per comma.
func addresses(v string, room []string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	if out, ok := simpleAddressesIn(v, room); ok {
		return out
	}
	return parsedAddresses(v)
}

// parsedAddresses reads an address list with net/mail; a list it refuses
// is split at its commas.
func parsedAddresses(v string) []string {
	parser := mail.AddressParser{WordDecoder: wordDecoder}
	if list, err := parser.ParseList(v); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, FormatAddress(a.Name, a.Address))
		}
		return out
	}
	var out []string
	for _, part := range strings.Split(DecodeHeader(v), ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// simpleAddresses reads the commonest address lists without net/mail (a
// parser, a map and several strings per address): items "local@domain"
// and "Name <local@domain>", separated by commas, where the name is ASCII
// words (letters, digits, '-', '_') one space apart and the address plain
// ASCII dot-atoms. Each such item is what net/mail and FormatAddress make
// of it, as it is written (TestSimpleAddressesAreNetMails). ok is false
// for anything else (quotes, comments, encoded words, groups, folding,
// 8-bit text), which parsedAddresses reads.
func simpleAddresses(v string) (out []string, ok bool) { return simpleAddressesIn(v, nil) }

// simpleAddressesIn is simpleAddresses, the addresses appended to room
// (empty, its capacity unused) when they fit.
func simpleAddressesIn(v string, room []string) (out []string, ok bool) {
	if n := strings.Count(v, ",") + 1; n <= cap(room) {
		out = room[:0]
	} else {
		out = make([]string, 0, n)
	}
	for item := range strings.SplitSeq(v, ",") {
		item = strings.Trim(item, " ")
		if item == "" {
			return nil, false
		}
		if item[len(item)-1] == '>' {
			i := strings.IndexByte(item, '<')
			if i < 2 || item[i-1] != ' ' || !simpleName(item[:i-1]) || !simpleAddrSpec(item[i+1:len(item)-1]) {
				return nil, false
			}
		} else if !simpleAddrSpec(item) {
			return nil, false
		}
		out = append(out, item)
	}
	return out, true
}

// simpleName reports whether s is words of ASCII letters, digits, '-' and
// '_', one space apart.
func simpleName(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != ' ' {
			return false
		}
	}
	return true
}

// simpleAddrSpec reports whether s is local@domain, the local part a
// dot-atom of letters, digits and "+-_%", the domain one of letters,
// digits and '-'.
func simpleAddrSpec(s string) bool {
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return false
	}
	return dotAtom(s[:at], "+-_%") && dotAtom(s[at+1:], "-")
}

// dotAtom reports whether s is non-empty words of letters, digits and
// extra, one '.' apart.
func dotAtom(s, extra string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && strings.IndexByte(extra, c) < 0 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// FormatAddress writes "Name <addr>", or addr alone without a name.
func FormatAddress(name, addr string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return addr
	}
	return name + " <" + addr + ">"
}

// msgIDs reads message ids ("<a@b> <c@d>"), without angle brackets.
func msgIDs(v string) []string {
	var out []string
	eachMsgID(v, func(id string) bool {
		out = append(out, id)
		return true
	})
	return out
}

// firstMsgID is msgIDs(v)[0] ("" when none), without the slice.
func firstMsgID(v string) string {
	var first string
	eachMsgID(v, func(id string) bool {
		first = id
		return false
	})
	return first
}

// eachMsgID calls fn with each message id of v (msgIDs) until it returns
// false.
func eachMsgID(v string, fn func(string) bool) {
	// The fields between separators, as strings.FieldsFunc would split
	// them (the separators are ASCII: a byte scan splits alike), without
	// its slice of fields.
	start := -1
	for i := 0; i <= len(v); i++ {
		if i < len(v) && !isIDSep(v[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			f := strings.Trim(v[start:i], "<>")
			if f != "" && utf8.ValidString(f) && !fn(f) {
				return
			}
			start = -1
		}
	}
}

func isIDSep(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' }

// stripTags is the fallback HTML-to-text: tags removed, entities kept.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
