package mimedoc

// The reference the in-place multipart reader is checked against: the
// entity, multipart and body decoding of mimedoc before partReader (commit
// f989255), reading parts with go-message's streaming multipart reader.
// The rest of the parser (the top-level header, fields, charsets) is the
// package's own.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/html/charset"

	"github.com/connectorhq/connector/extract"
)

var refScratch sync.Pool

type refParser struct {
	*parser
	scratch []byte
}

// refParse is Parse as it was with go-message's multipart reader.
func refParse(raw []byte, truncated bool, lim Limits, toText HTMLText) *Message {
	p := &refParser{parser: &parser{lim: lim.withDefaults(), toText: toText, truncated: truncated, msg: &Message{}}}
	if sp, ok := refScratch.Get().(*[]byte); ok {
		p.scratch = *sp
	} else {
		p.scratch = make([]byte, 0, 64<<10)
	}
	defer func() { b := p.scratch[:0]; refScratch.Put(&b) }()
	h, body, err := p.readHeader(raw)
	p.fields(h)
	if err != nil {
		p.problem("header: %v", err)
	}
	p.entity(h, nil, body, 0, "", false, false)
	p.finish()
	return p.msg
}

func (p *refParser) entity(h getter, r io.Reader, raw []byte, depth int, section string, dropHTML, inDigest bool) {
	p.parts++
	mediaType, params := partType(h, inDigest)
	if strings.HasPrefix(mediaType, "multipart/") {
		if r == nil {
			r = bytes.NewReader(raw)
		}
		p.multipart(mediaType, &params, r, depth, section)
		return
	}
	if section == "" {
		section = "1" // a single-part message's body is part 1 (RFC 3501)
	}
	disp, dparams := disposition(h)
	name := DecodeHeader(dparams.get("filename"))
	if name == "" {
		name = DecodeHeader(params.get("name"))
	}
	data, inScratch, encErr := p.decodeBody(h.Get("Content-Transfer-Encoding"), r, raw)
	if encErr != nil {
		p.problem("part %s: %v", section, encErr)
	}
	// As Parse since b00bff9: a truncated message's own body, when it is
	// a single part, runs to the cut.
	cut := p.truncated && (depth == 0 || encErr != nil && errors.Is(encErr, io.ErrUnexpectedEOF))
	isText := mediaType == "text/plain" || mediaType == "text/html"
	if isText && disp != "attachment" && name == "" {
		ct := mediaType
		if cs := params.get("charset"); cs != "" {
			// An unknown charset is left out, so that the text is read as
			// UTF-8 when it is valid UTF-8, else as Windows-1252.
			if enc, _ := charset.Lookup(cs); enc != nil {
				ct += "; charset=" + cs
			} else {
				p.problem("part %s: unknown charset %q", section, shorten(cs))
			}
		}
		var text string
		if mediaType == "text/html" {
			if !dropHTML {
				text = p.htmlText(data, ct)
			}
			p.msg.HTMLBody = p.msg.HTMLBody || len(p.body) == 0
		} else {
			text = extract.DecodeText(data, ct)
		}
		p.body = append(p.body, text)
		return
	}
	a := &Attachment{
		Section:     section,
		FileName:    name,
		ContentType: mediaType,
		ContentID:   strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>"),
		Inline:      disp == "inline",
		Data:        data,
		Truncated:   cut,
	}
	if inScratch {
		a.Data = bytes.Clone(data) // the next part reuses the buffer
	}
	if a.FileName == "" && mediaType == "message/rfc822" {
		a.FileName = "message.eml"
	}
	p.msg.Attachments = append(p.msg.Attachments, a)
}
func (p *refParser) multipart(mediaType string, params *params, r io.Reader, depth int, section string) {
	if depth >= p.lim.MaxDepth {
		p.problem("multipart nested deeper than %d: the inner parts are not read", p.lim.MaxDepth)
		return
	}
	boundary := params.get("boundary")
	if boundary == "" {
		p.problem("%s without a boundary: read as text", mediaType)
		data, _, _ := p.readPart(r)
		p.body = append(p.body, extract.DecodeText(data, "text/plain"))
		return
	}
	mr := textproto.NewMultipartReader(r, boundary)
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
		part, err := mr.NextPart()
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
		before := len(p.body)
		pt, _ := partType(&part.Header, mediaType == "multipart/digest")
		p.entity(&part.Header, part, nil, depth+1, sec, alternative && hasPlain, mediaType == "multipart/digest")
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
func (p *refParser) decodeBody(cte string, r io.Reader, raw []byte) (data []byte, inScratch bool, err error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		var enc []byte
		switch {
		case r != nil:
			enc, _, err = p.readPart(r)
		case len(raw) <= cap(p.scratch):
			// decodeBase64 works in place: not in the caller's raw.
			enc = append(p.scratch[:0], raw...)
		default:
			enc = bytes.Clone(raw)
		}
		out, derr := refDecodeBase64(enc)
		if err == nil {
			err = derr
		}
		return out, false, err
	case "quoted-printable":
		if r == nil {
			r = bytes.NewReader(raw)
		}
		var buf bytes.Buffer
		_, err := io.Copy(&buf, quotedprintable.NewReader(r))
		if err != nil {
			// quotedprintable stops at a bad escape: keep the rest as it is.
			rest, _ := io.ReadAll(r)
			buf.Write(rest)
			return buf.Bytes(), false, fmt.Errorf("quoted-printable: %v", err)
		}
		return buf.Bytes(), false, nil
	default:
		if r == nil {
			return raw, false, nil
		}
		return p.readPart(r)
	}
}
func (p *refParser) readPart(r io.Reader) (data []byte, inScratch bool, err error) {
	b := p.scratch[:0]
	for len(b) < cap(b) {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, true, err
		}
	}
	data, err = io.ReadAll(io.MultiReader(bytes.NewReader(b), r))
	return data, false, err
}
func refDecodeBase64(raw []byte) ([]byte, error) {
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
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
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
