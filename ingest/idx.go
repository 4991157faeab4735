package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// IDX tags, as IDOL spells them.
const (
	tagReference = "#DREREFERENCE"
	tagField     = "#DREFIELD"
	tagTitle     = "#DRETITLE"
	tagDate      = "#DREDATE"
	tagDatabase  = "#DREDBNAME"
	tagContent   = "#DRECONTENT"
	tagEndDoc    = "#DREENDDOC"
	tagEndData   = "#DREENDDATA" // also #DREENDDATANOOP, #DREENDDATAREFERENCE, ...
	tagDeleteRef = "#DREDELETEREF"
)

// WriteIDX writes docs to w in IDOL's IDX format, one block per document:
//
//	#DREREFERENCE <Reference>
//	#DREFIELD <name>="<value>"      one line per Field, in order
//	#DRETITLE                        for a DRETITLE field: the value on the next line(s)
//	#DREDATE <value>                 for a DREDATE field
//	#DREDBNAME <value>               for a DREDBNAME field
//	#DRECONTENT                      only when Content is not empty:
//	<Content>                        the text on the following line(s)
//	#DREENDDOC
//
// Lines end in LF. Nothing is escaped, as in IDOL: a #DREFIELD value runs
// from the first '"' to the last '"' before the next line that starts with
// "#DRE", so values keep their quotes, backslashes and line breaks as they
// are. The one thing IDX cannot carry is a line, inside a value, title or
// content, that itself starts with "#DRE" (in any letter case, after LF or
// CR): IDOL would take it for a tag. WriteIDX puts one space in front of
// such a line; ReadIDX gives it back with that space.
//
// Every document is validated (Document.Validate) before anything is
// written; on an invalid document WriteIDX writes nothing and returns an
// error wrapping ErrInvalidDocument. The Collect action's .idx sidecar is
// this format with AUTN_IDENTIFIER and AUTN_COLLECTTIME fields and no
// content.
func WriteIDX(w io.Writer, docs ...*Document) error {
	if err := validateAll(docs); err != nil {
		return err
	}
	const flushAt = 64 << 10
	var buf []byte
	for _, d := range docs {
		buf = appendIDX(buf, d)
		if len(buf) >= flushAt {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("ingest: write idx: %w", err)
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("ingest: write idx: %w", err)
		}
	}
	return nil
}

// idxSize is about what appendIDX appends for docs: their text and the
// tags around it (a "#DRE" at a line start costs one byte more).
func idxSize(docs []*Document) int {
	n := 0
	for _, d := range docs {
		n += len(tagReference) + len(d.Reference) + len(tagContent) + len(d.Content) + len(tagEndDoc) + 8
		for _, f := range d.Fields {
			n += len(tagField) + len(f.Name) + len(f.Value) + 8
		}
	}
	return n
}

// appendIDX appends one validated document in IDX form.
func appendIDX(b []byte, d *Document) []byte {
	b = append(b, tagReference...)
	b = append(b, ' ')
	b = append(b, d.Reference...)
	b = append(b, '\n')
	for _, f := range d.Fields {
		switch f.Name {
		case FieldTitle:
			b = append(b, tagTitle...)
			b = append(b, '\n')
			b = appendBlock(b, f.Value)
		case FieldDate:
			b = append(b, tagDate...)
			b = append(b, ' ')
			b = append(b, f.Value...)
			b = append(b, '\n')
		case FieldDatabase:
			b = append(b, tagDatabase...)
			b = append(b, ' ')
			b = append(b, f.Value...)
			b = append(b, '\n')
		default:
			b = append(b, tagField...)
			b = append(b, ' ')
			b = append(b, f.Name...)
			b = append(b, '=', '"')
			b = appendNeutral(b, f.Value, false)
			b = append(b, '"', '\n')
		}
	}
	if d.Content != "" {
		b = append(b, tagContent...)
		b = append(b, '\n')
		b = appendBlock(b, d.Content)
	}
	b = append(b, tagEndDoc...)
	return append(b, '\n')
}

// appendBlock appends a multi-line value that starts on its own line. A
// non-empty value is followed by LF so the next tag starts a line; the
// reader drops that LF again.
func appendBlock(b []byte, s string) []byte {
	if s == "" {
		return b
	}
	b = appendNeutral(b, s, true)
	return append(b, '\n')
}

// isTagAt reports whether s[i:] starts with "#DRE" in any letter case.
func isTagAt(s string, i int) bool {
	return len(s)-i >= 4 && s[i] == '#' && s[i+1]|0x20 == 'd' && s[i+2]|0x20 == 'r' && s[i+3]|0x20 == 'e'
}

// lineStartTag reports whether s has "#DRE" at the start of a line;
// atStart says whether s itself begins a line.
func lineStartTag(s string, atStart bool) bool {
	// '#' is rare in text: jump from one to the next (IndexByte is
	// vectorised) rather than look at every byte for a line end.
	for i := 0; ; i++ {
		j := strings.IndexByte(s[i:], '#')
		if j < 0 {
			return false
		}
		i += j
		if ((i == 0 && atStart) || (i > 0 && (s[i-1] == '\n' || s[i-1] == '\r'))) && isTagAt(s, i) {
			return true
		}
	}
}

// appendNeutral appends s with a space before every "#DRE" that starts a
// line (see WriteIDX).
func appendNeutral(b []byte, s string, atStart bool) []byte {
	if !lineStartTag(s, atStart) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		if ((i == 0 && atStart) || (i > 0 && (s[i-1] == '\n' || s[i-1] == '\r'))) && isTagAt(s, i) {
			b = append(b, ' ')
		}
		b = append(b, s[i])
	}
	return b
}

// neutral returns what appendNeutral appends, as a string.
func neutral(s string, atStart bool) string {
	if !lineStartTag(s, atStart) {
		return s
	}
	return string(appendNeutral(nil, s, atStart))
}

// ReadIDX parses IDX data: what WriteIDX writes, and IDX files from
// elsewhere that use the tags WriteIDX writes (#DREREFERENCE, #DREFIELD,
// #DRETITLE, #DREDATE, #DREDBNAME, #DRECONTENT, #DREENDDOC). It accepts LF
// or CRLF line ends, a UTF-8 byte order mark, blank lines between
// documents, unquoted single-line #DREFIELD values and text on the same
// line as #DRECONTENT or #DRETITLE, and stops at a #DREENDDATA... line.
// #DRETITLE, #DREDATE and #DREDBNAME become Fields of those names.
//
// Other tags, text outside a tag, a field value without its closing quote
// and a document without #DREENDDOC are errors naming the line.
// ReadIDX(WriteIDX(docs)) gives docs back, with the one change WriteIDX
// documents.
func ReadIDX(r io.Reader) ([]*Document, error) {
	p := idxParser{}
	br := bufio.NewReaderSize(r, 64<<10)
	var scratch []byte
	for {
		var line []byte
		var err error
		line, scratch, err = readLine(br, scratch)
		if err != nil && !errors.Is(err, io.EOF) {
			return p.docs, fmt.Errorf("ingest: read idx: %w", err)
		}
		if len(line) > 0 || err == nil {
			stop, perr := p.line(bytes.TrimSuffix(line, []byte("\n")))
			if perr != nil {
				return p.docs, perr
			}
			if stop {
				return p.docs, nil
			}
		}
		if err != nil {
			return p.docs, p.end()
		}
	}
}

// readLine returns the next line including its LF (none at the end of the
// data). The line is valid until the next call; scratch is reused for
// lines longer than br's buffer.
func readLine(br *bufio.Reader, scratch []byte) (line, _ []byte, err error) {
	line, err = br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, scratch, err
	}
	scratch = append(scratch[:0], line...)
	for {
		line, err = br.ReadSlice('\n')
		scratch = append(scratch, line...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return scratch, scratch, err
		}
	}
}

const (
	entryNone = iota
	entryField
	entryTitle
	entryContent
)

type idxParser struct {
	docs   []*Document
	doc    *Document
	lineNo int

	entry      int // entryNone, entryField, ...
	entryName  string
	entryLines int // lines taken so far into sb
	entryCRLF  bool
	sb         strings.Builder
	hasContent bool
}

func (p *idxParser) errorf(format string, args ...any) error {
	return fmt.Errorf("ingest: read idx: line %d: %s", p.lineNo, fmt.Sprintf(format, args...))
}

// tagName returns the "#DRE..." tag that starts line, or "".
func tagName(line string) string {
	if !strings.HasPrefix(line, "#DRE") {
		return ""
	}
	i := 1
	for i < len(line) && line[i] >= 'A' && line[i] <= 'Z' {
		i++
	}
	return line[:i]
}

// line handles one line (without its LF). stop is true at #DREENDDATA.
func (p *idxParser) line(b []byte) (stop bool, err error) {
	p.lineNo++
	if p.lineNo == 1 {
		b = bytes.TrimPrefix(b, []byte("\ufeff"))
	}
	if !bytes.HasPrefix(b, []byte("#DRE")) {
		if p.entry != entryNone {
			if p.entryLines > 0 {
				p.sb.WriteByte('\n')
			}
			p.sb.Write(b)
			p.entryLines++
			return false, nil
		}
		if len(bytes.TrimSpace(b)) != 0 {
			if p.doc == nil {
				return false, p.errorf("text outside a document")
			}
			return false, p.errorf("text outside a tag")
		}
		return false, nil
	}
	line := string(b)
	tag := tagName(line)
	if err := p.finishEntry(); err != nil {
		return false, err
	}
	rest := line[len(tag):]
	if strings.HasPrefix(tag, tagEndData) {
		if p.doc != nil {
			return false, p.errorf("%s inside a document: missing %s", tag, tagEndDoc)
		}
		return true, nil
	}
	if tag == tagReference {
		if p.doc != nil {
			return false, p.errorf("%s before %s", tagReference, tagEndDoc)
		}
		ref := strings.TrimSpace(rest)
		if ref == "" || (rest[0] != ' ' && rest[0] != '\t') {
			return false, p.errorf("%s needs a reference after a space", tagReference)
		}
		p.doc = &Document{Reference: ref}
		p.hasContent = false
		return false, nil
	}
	if p.doc == nil {
		return false, p.errorf("%s outside a document", tag)
	}
	switch tag {
	case tagField:
		return false, p.field(rest)
	case tagTitle, tagContent:
		if tag == tagContent {
			if p.hasContent {
				return false, p.errorf("second %s in a document", tagContent)
			}
			p.hasContent = true
		}
		p.entry, p.entryName = entryTitle, FieldTitle
		if tag == tagContent {
			p.entry, p.entryName = entryContent, ""
		}
		p.entryCRLF = strings.HasSuffix(rest, "\r")
		rest = strings.TrimSuffix(rest, "\r")
		p.sb.Reset()
		p.entryLines = 0
		if strings.TrimSpace(rest) != "" {
			if rest[0] != ' ' && rest[0] != '\t' {
				return false, p.errorf("unsupported tag %s", line)
			}
			p.sb.WriteString(rest[1:])
			p.entryLines = 1
		}
		return false, nil
	case tagDate, tagDatabase:
		v := strings.TrimSpace(rest)
		if v == "" || (rest[0] != ' ' && rest[0] != '\t') {
			return false, p.errorf("%s needs a value after a space", tag)
		}
		p.doc.Fields = append(p.doc.Fields, Field{Name: tag[1:], Value: v})
		return false, nil
	case tagEndDoc:
		p.docs = append(p.docs, p.doc)
		p.doc = nil
		return false, nil
	default:
		return false, p.errorf("unsupported tag %s", tag)
	}
}

// field starts a #DREFIELD entry; rest is what follows the tag.
func (p *idxParser) field(rest string) error {
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return p.errorf("%s needs name=\"value\" after a space", tagField)
	}
	eq := strings.IndexByte(rest, '=')
	if eq < 0 {
		return p.errorf("%s without '='", tagField)
	}
	name := strings.TrimSpace(rest[:eq])
	if name == "" {
		return p.errorf("%s without a field name", tagField)
	}
	val := strings.TrimLeft(rest[eq+1:], " \t")
	if !strings.HasPrefix(val, `"`) {
		// Unquoted: a single-line value.
		p.doc.Fields = append(p.doc.Fields, Field{Name: name, Value: strings.TrimSpace(val)})
		return nil
	}
	p.entry, p.entryName = entryField, name
	p.sb.Reset()
	p.sb.WriteString(val[1:])
	p.entryLines = 1
	return nil
}

// finishEntry completes a multi-line entry when its next tag arrives.
func (p *idxParser) finishEntry() error {
	kind := p.entry
	p.entry = entryNone
	switch kind {
	case entryField:
		s := p.sb.String()
		q := strings.LastIndexByte(s, '"')
		if q < 0 || strings.Trim(s[q+1:], " \t\r") != "" {
			return p.errorf("value of field %s has no closing quote", p.entryName)
		}
		p.doc.Fields = append(p.doc.Fields, Field{Name: p.entryName, Value: s[:q]})
	case entryTitle, entryContent:
		s := p.sb.String()
		if p.entryCRLF {
			s = strings.TrimSuffix(s, "\r")
		}
		if kind == entryContent {
			p.doc.Content = s
		} else {
			p.doc.Fields = append(p.doc.Fields, Field{Name: p.entryName, Value: s})
		}
	}
	return nil
}

// end is called at the end of the data.
func (p *idxParser) end() error {
	if err := p.finishEntry(); err != nil {
		return err
	}
	if p.doc != nil {
		return p.errorf("unexpected end of data: %q has no %s", p.doc.Reference, tagEndDoc)
	}
	return nil
}

// appendDeleteRefs appends one "#DREDELETEREF <reference>" line per
// validated reference.
func appendDeleteRefs(b []byte, refs []string) []byte {
	for _, r := range refs {
		b = append(b, tagDeleteRef...)
		b = append(b, ' ')
		b = append(b, r...)
		b = append(b, '\n')
	}
	return b
}

// ReadDeleteRefs parses a removal file written by the IDX folder target:
// one "#DREDELETEREF <reference>" line per reference, in order. Blank lines
// are skipped, CRLF is accepted and a #DREENDDATA... line ends the data;
// anything else is an error naming the line.
func ReadDeleteRefs(r io.Reader) ([]string, error) {
	var refs []string
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return refs, fmt.Errorf("ingest: read removals: %w", err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		switch tag := tagName(line); {
		case strings.HasPrefix(tag, tagEndData):
			return refs, nil
		case tag == tagDeleteRef && len(line) > len(tag) && (line[len(tag)] == ' ' || line[len(tag)] == '\t') && strings.TrimSpace(line[len(tag):]) != "":
			refs = append(refs, strings.TrimSpace(line[len(tag):]))
		case strings.TrimSpace(line) != "":
			return refs, fmt.Errorf("ingest: read removals: line %d: want %s <reference>", n, tagDeleteRef)
		}
		if err != nil {
			return refs, nil
		}
	}
}
