package extract

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/connectorhq/connector/internal/htmlcharset"
)

// archive is a zip package (Office Open XML, OpenDocument) read with a
// budget: the uncompressed bytes read from all its members together, and
// what the extractor keeps of them beyond the text (keep), are bounded by
// Limits.MaxMemoryBytes, whatever the members claim, so a zip bomb ends
// with ErrLimit after that many bytes of inflation.
type archive struct {
	x      *extraction
	files  map[string]*zip.File
	budget int64
}

func openArchive(x *extraction, data []byte) (*archive, error) {
	if n, over := tooManyMembers(data); over {
		return nil, fmt.Errorf("%w: more than %d archive members (%d central directory entries)", ErrLimit, DefaultMaxArchiveMember, n)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if truncatedZip(data) {
			return nil, malformed("truncated (a download or copy cut short?): %d bytes, without the zip directory that ends the file", len(data))
		}
		return nil, malformed("not a zip archive: %v", err)
	}
	if len(zr.File) > DefaultMaxArchiveMember {
		return nil, fmt.Errorf("%w: %d archive members", ErrLimit, len(zr.File))
	}
	a := &archive{x: x, files: make(map[string]*zip.File, len(zr.File)), budget: x.limits.MaxMemoryBytes}
	for _, f := range zr.File {
		if f.Flags&0x1 != 0 {
			return nil, ErrEncrypted
		}
		a.files[strings.TrimPrefix(f.Name, "/")] = f
	}
	return a, nil
}

// truncatedZip reports whether data starts as a zip does (a member's
// local header) but does not end with a whole end of central directory
// record (22 bytes, then the comment whose length it gives), which ends
// every zip: the file was cut.
func truncatedZip(data []byte) bool {
	const eocdLen = 22
	if !bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		return false
	}
	tail := data[max(len(data)-eocdLen-65535, 0):]
	i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	return i < 0 || i+eocdLen > len(tail) || i+eocdLen+int(binary.LittleEndian.Uint16(tail[i+20:])) > len(tail)
}

// zipDirEntry starts an entry of a zip's central directory; one is at
// least zipDirEntryLen bytes long.
var zipDirEntry = []byte("PK\x01\x02")

const zipDirEntryLen = 46

// tooManyMembers reports whether the zip data may hold more than
// DefaultMaxArchiveMember members, and how many central directory entries
// it may hold, before zip.NewReader reads them: that reads every entry it
// finds (up to the whole input, whatever the archive says its count is,
// which it checks modulo 65,536 only) into a few hundred bytes of memory
// each, so that 16 MiB of bare entries took 165 MiB of heap, before any
// limit was looked at. Each entry starts with a signature, so their
// number bounds the members; an input too short to hold more is not
// searched.
func tooManyMembers(data []byte) (int, bool) {
	if len(data)/zipDirEntryLen <= DefaultMaxArchiveMember {
		return 0, false
	}
	n := bytes.Count(data, zipDirEntry)
	return n, n > DefaultMaxArchiveMember
}

// open returns a reader of member name, or nil when there is none. Reads
// beyond the remaining budget fail with ErrLimit.
func (a *archive) open(name string) (io.ReadCloser, error) {
	f := a.files[name]
	if f == nil {
		return nil, nil
	}
	rc, err := f.Open()
	if err != nil {
		return nil, malformed("%s: %v", name, err)
	}
	return &budgetReader{rc: rc, a: a, name: name}, nil
}

// keep charges n bytes the extractor keeps while it reads member name (a
// table it looks values up in) against the budget.
func (a *archive) keep(name string, n int64) error {
	a.budget -= n
	if a.budget < 0 {
		return a.overBudget(name)
	}
	return nil
}

func (a *archive) overBudget(name string) error {
	return fmt.Errorf("%w: more than %d bytes uncompressed or kept (at %s)", ErrLimit, a.x.limits.MaxMemoryBytes, name)
}

type budgetReader struct {
	rc   io.ReadCloser
	a    *archive
	name string
}

func (r *budgetReader) Read(p []byte) (int, error) {
	// The deadline is checked here too: one XML token can be as long as
	// the whole member.
	if r.a.x.ctx.Err() != nil {
		return 0, context.Cause(r.a.x.ctx)
	}
	if r.a.budget <= 0 {
		return 0, r.a.overBudget(r.name)
	}
	if int64(len(p)) > r.a.budget {
		p = p[:r.a.budget]
	}
	n, err := r.rc.Read(p)
	r.a.budget -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, malformed("%s: %v", r.name, err)
	}
	return n, err
}

func (r *budgetReader) Close() error { return r.rc.Close() }

// walkXML streams the XML member name through fn, token by token, checking
// the deadline as it goes. A missing member is not an error. fn returns
// errStop to end early.
func (a *archive) walkXML(name string, fn func(d *xml.Decoder, t xml.Token) error) error {
	rc, err := a.open(name)
	if rc == nil || err != nil {
		return err
	}
	defer rc.Close()
	// What the replacements add to the bytes read counts as read.
	return walkXML(a.x, &xmlChars{r: rc, grow: func(n int) error { return a.keep(name, int64(n)) }}, name, fn)
}

// xmlChars passes XML through with what Go's decoder refuses in a whole
// part replaced, so that one bad byte does not cost a document its text:
// each byte that is not UTF-8 becomes U+FFFD (a Latin-1 character one
// U+FFFD), a control character XML does not allow (C0 but tab, line feed
// and carriage return) a space, and U+FFFE and U+FFFF U+FFFD; so does a
// character reference to one ("&#1;", "&#xFFFE;": badCharRef). A part in
// UTF-16 or in another encoding its declaration names is decoded first
// (partDecoder). grow is charged with the bytes the replacements add
// (U+FFFD is three bytes).
type xmlChars struct {
	r       io.Reader
	started bool // the part's encoding was looked at
	// src counts the bytes of a part decoded to UTF-8 (partDecoder) read,
	// nil for one read as it is; got counts the bytes read from r.
	src   *countingReader
	got   int64
	grow  func(n int) error
	raw   []byte           // the read buffer
	clean []byte           // the buffer of cleaned bytes
	tail  [charRefMax]byte // an incomplete sequence or reference at the end of the last read
	ntail int
	out   []byte // cleaned, not yet returned (in raw or clean)
	err   error
}

func (c *xmlChars) Read(p []byte) (int, error) {
	if !c.started {
		c.started = true
		c.r, c.src = partDecoder(c.r)
	}
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		c.fill(len(p))
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// fill reads up to n bytes and cleans them into out.
func (c *xmlChars) fill(n int) {
	if cap(c.raw) < c.ntail+n {
		c.raw = make([]byte, c.ntail+n)
	}
	copy(c.raw, c.tail[:c.ntail])
	m, err := c.r.Read(c.raw[c.ntail : c.ntail+n])
	raw := c.raw[:c.ntail+m]
	c.err = err
	if c.src != nil {
		// What decoding adds (Windows-1252's "é" is two bytes of UTF-8)
		// counts as read.
		before := max(c.got-c.src.n, 0)
		c.got += int64(m)
		c.charge(int(max(c.got-c.src.n, 0) - before))
	}
	c.ntail = 0
	if err == nil {
		// An incomplete sequence or character reference at the end
		// waits for the rest of it.
		c.ntail = copy(c.tail[:], raw[len(raw)-max(incompleteTail(raw), incompleteCharRef(raw)):])
		raw = raw[:len(raw)-c.ntail]
	}
	if xmlClean(raw) {
		c.out = raw // most parts: their bytes go out as read
		return
	}
	c.clean = cleanXMLChars(c.clean[:0], raw)
	c.out = c.clean
	c.charge(len(c.clean) - len(raw))
}

// charge charges grow with n bytes added, if any.
func (c *xmlChars) charge(n int) {
	if n <= 0 || c.grow == nil {
		return
	}
	if err := c.grow(n); err != nil {
		c.err = err
	}
}

// xmlHeadBytes is how much of a part is looked at for its encoding: its
// byte order mark and XML declaration.
const xmlHeadBytes = 256

// partDecoder returns r decoded to UTF-8 when it is not: UTF-16 (with a
// byte order mark, or told by its declaration's bytes) or in another
// encoding its XML declaration names (htmlcharset.XMLDeclaration, as
// XHTML's). The
// decoder's CharsetReader then passes it as it is. Bytes a decoder cannot
// read become U+FFFD. src counts the bytes decoded (nil: none are).
func partDecoder(r io.Reader) (_ io.Reader, src *countingReader) {
	head := make([]byte, xmlHeadBytes)
	n, err := io.ReadFull(r, head)
	head = head[:n]
	switch err {
	case nil:
		r = io.MultiReader(bytes.NewReader(head), r)
	case io.EOF, io.ErrUnexpectedEOF:
		r = bytes.NewReader(head)
	default:
		r = io.MultiReader(bytes.NewReader(head), errReader{err})
	}
	var enc encoding.Encoding
	if bytes.HasPrefix(head, []byte("\xff\xfe")) || bytes.HasPrefix(head, []byte("\xfe\xff")) {
		enc = unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM)
	} else {
		enc, _ = htmlcharset.XMLDeclaration(head)
	}
	if enc == nil {
		return r, nil
	}
	src = &countingReader{r: r}
	return transform.NewReader(src, enc.NewDecoder()), src
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// errReader fails with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// incompleteTail returns the length of the incomplete UTF-8 sequence
// that ends b, if any.
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		switch {
		case b[i] < utf8.RuneSelf:
			return 0
		case utf8.RuneStart(b[i]):
			if utf8.FullRune(b[i:]) {
				return 0
			}
			return len(b) - i
		}
	}
	return 0
}

// charRefMax is the length of the longest character reference xmlChars
// replaces: it holds back the start of one at the end of a read, so a
// longer one (of more than twenty leading zeros) is passed as it is.
const charRefMax = 32

// incompleteCharRef returns the length of what may start a character
// reference at the end of b ("&", "&#", "&#x1"), if it is shorter than
// charRefMax.
func incompleteCharRef(b []byte) int {
	from := max(len(b)-(charRefMax-1), 0)
	i := bytes.LastIndexByte(b[from:], '&')
	if i < 0 {
		return 0
	}
	ref := b[from+i:]
	if len(ref) > 1 && ref[1] != '#' {
		return 0
	}
	digits := ref[min(len(ref), 2):]
	hex := len(digits) > 0 && digits[0] == 'x'
	if hex {
		digits = digits[1:]
	}
	for _, c := range digits {
		if !isDigit(c, hex) {
			return 0
		}
	}
	return len(ref)
}

// isDigit reports a digit of a decimal character reference, or of a
// hexadecimal one.
func isDigit(c byte, hex bool) bool {
	return '0' <= c && c <= '9' || hex && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')
}

// badCharRef returns the length of the character reference b starts
// with, when it stands for a character XML does not allow (of at most
// charRefMax bytes), and what xmlChars writes for it: a space for a
// control character, U+FFFD for U+FFFE and U+FFFF. It reads one as Go's
// decoder does: "&#" and decimal digits, or "&#x" and hexadecimal ones,
// then ';'. A reference in a CDATA section, which is no reference, is
// replaced too (it is rare in a package's parts: their text is escaped).
func badCharRef(b []byte) (int, []byte) {
	if len(b) < 4 || b[0] != '&' || b[1] != '#' {
		return 0, nil
	}
	i := 2
	hex := b[i] == 'x'
	if hex {
		i++
	}
	start := i
	for i < len(b) && i < charRefMax-1 && isDigit(b[i], hex) {
		i++
	}
	if i == start || i >= len(b) || b[i] != ';' {
		return 0, nil
	}
	base := 10
	if hex {
		base = 16
	}
	n, err := strconv.ParseUint(string(b[start:i]), base, 32)
	switch {
	case err != nil:
		return 0, nil
	case n < utf8.RuneSelf && !xmlPlain[n]:
		return i + 1, space
	case n == 0xfffe, n == 0xffff:
		return i + 1, replacement
	}
	return 0, nil
}

// xmlClean reports whether b holds nothing xmlChars replaces.
func xmlClean(b []byte) bool {
	high := false
	for i, c := range b {
		if c >= utf8.RuneSelf {
			high = true
		} else if !xmlPlain[c] {
			return false
		} else if c == '&' {
			if n, _ := badCharRef(b[i:]); n > 0 {
				return false
			}
		}
	}
	return !high || utf8.Valid(b) && !bytes.Contains(b, []byte("\uFFFE")) && !bytes.Contains(b, []byte("\uFFFF"))
}

// cleanXMLChars appends b to dst with xmlChars' replacements.
func cleanXMLChars(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		if c := b[i]; c < utf8.RuneSelf {
			if !xmlPlain[c] {
				c = ' ' // a control character
			} else if n, repl := badCharRef(b[i:]); n > 0 {
				dst = append(dst, repl...)
				i += n
				continue
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == 0xfffe, r == 0xffff:
			dst = append(dst, replacement...)
		default:
			dst = append(dst, b[i:i+size]...)
		}
		i += size
	}
	return dst
}

var replacement, space = []byte("\uFFFD"), []byte(" ")

// xmlPlain: the ASCII bytes XML allows (all but the C0 controls besides
// tab, line feed and carriage return).
var xmlPlain = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	t['\t'], t['\n'], t['\r'] = true, true, true
	return t
}()

var errStop = errors.New("stop")

// mcNS is the namespace of Office Open XML's markup compatibility
// (ECMA-376 part 3): mc:AlternateContent holds the same content in
// several forms (a text box as a DrawingML shape in mc:Choice and as VML
// in mc:Fallback), of which a reader takes one.
const mcNS = "http://schemas.openxmlformats.org/markup-compatibility/2006"

// xmlMaxDepth bounds the nesting of elements: the decoder keeps about 80
// bytes per open element, so a part of a few million nested elements
// (three bytes each, a few kilobytes of zip) would hold far more memory
// than it read. Real documents nest a few dozen deep.
const xmlMaxDepth = 1000

// xmlMaxTagBytes bounds the bytes of a start tag outside its quoted
// values (its names, '=', quotes and spaces): the decoder holds the whole
// tag it reads, about a hundred bytes per attribute, so a part of one
// element of millions of attributes (` a=""`, or ` a`, which a decoder
// that is not strict reads as a="a": a few bytes each, a few kilobytes
// of zip) held twenty times the bytes read, past the memory limit,
// before the archive's budget was spent (16 MiB of them: 385 MiB of
// heap). A real tag has a few hundred such bytes; a long value (a
// drawing's path) does not count.
const xmlMaxTagBytes = 64 << 10

// tagGuard passes XML through and fails (ErrLimit) at a start tag of
// more than xmlMaxTagBytes outside its values, before the decoder has
// read them. A value cannot hold a '<' (the decoder refuses it), so
// every '<' starts a tag over, but for a comment, a CDATA section and a
// processing instruction, which are skipped to their ends as the decoder
// reads them (the same bytes end them, so the skip ends where the
// decoder's does, or before: never inside a tag the decoder reads), so
// that their '<' and quotes count for nothing. Another declaration
// ("<!DOCTYPE") is not skipped: a '<' in it starts a tag over.
type tagGuard struct {
	r     io.Reader
	name  string
	lt    bool // a '<' was the last byte looked at
	bang  bool // "<!" were the last bytes looked at
	inTag bool
	quote byte // the quote of the value being read, or 0
	n     int  // bytes of the tag outside its values
	// skip: what is skipped ('-' a comment, ']' a CDATA section, '?' a
	// processing instruction), or 0; b0, b1 the last two bytes of it.
	skip, b0, b1 byte
}

// tagStops are the bytes that end a stretch of a tag outside values.
var tagStops = [256]bool{'"': true, '\'': true, '<': true, '>': true}

func (g *tagGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for b := p[:n]; len(b) > 0; {
		switch {
		case g.lt:
			// After a '<': a tag, unless a comment, CDATA, a declaration
			// or a processing instruction.
			g.lt = false
			switch b[0] {
			case '!':
				g.bang = true
				b = b[1:]
			case '?':
				g.skip, g.b0, g.b1 = '?', 0, 0
				b = b[1:]
			default:
				g.inTag = true
			}
		case g.bang:
			// "<!-" starts a comment, "<![" a CDATA section (the decoder
			// refuses any other "<!-" or "<![").
			g.bang = false
			if b[0] == '-' || b[0] == '[' {
				g.skip, g.b0, g.b1 = b[0], 0, 0
				if b[0] == '[' {
					g.skip = ']'
				}
				b = b[1:]
			}
		case g.skip != 0:
			i := bytes.IndexByte(b, '>')
			if i < 0 {
				g.skipped(b)
				return n, err
			}
			g.skipped(b[:i])
			if g.skip == '?' && g.b1 == '?' || g.skip != '?' && g.b0 == g.skip && g.b1 == g.skip {
				g.skip = 0
			} else {
				g.skipped(b[i : i+1])
			}
			b = b[i+1:]
		case !g.inTag:
			i := bytes.IndexByte(b, '<')
			if i < 0 {
				return n, err
			}
			g.lt, g.quote, g.n = true, 0, 0
			b = b[i+1:]
		case g.quote != 0:
			i := bytes.IndexByte(b, g.quote)
			if i < 0 {
				i = len(b)
			}
			if j := bytes.IndexByte(b[:i], '<'); j >= 0 {
				g.inTag, g.quote = false, 0 // not a value: the next tag
				b = b[j:]
				continue
			}
			if i == len(b) {
				return n, err
			}
			g.quote = 0
			b = b[i+1:]
		default:
			i := 0
			for i < len(b) && !tagStops[b[i]] {
				i++
			}
			if g.n += min(i+1, len(b)); g.n > xmlMaxTagBytes {
				return 0, fmt.Errorf("%w: %s: a tag of more than %d bytes besides its values", ErrLimit, g.name, xmlMaxTagBytes)
			}
			if i == len(b) {
				return n, err
			}
			switch b[i] {
			case '<':
				g.inTag, g.lt, g.n = false, true, 0
			case '>':
				g.inTag = false
			default:
				g.quote = b[i]
			}
			b = b[i+1:]
		}
	}
	return n, err
}

// skipped keeps the last two bytes of what is skipped, b its next bytes.
func (g *tagGuard) skipped(b []byte) {
	switch len(b) {
	case 0:
	case 1:
		g.b0, g.b1 = g.b1, b[0]
	default:
		g.b0, g.b1 = b[len(b)-2], b[len(b)-1]
	}
}

// walkXML streams the XML r through fn, token by token, checking the
// deadline as it goes. Of an mc:AlternateContent it passes the first
// branch (mc:Choice or mc:Fallback) and skips the others.
func walkXML(x *extraction, r io.Reader, name string, fn func(d *xml.Decoder, t xml.Token) error) error {
	d := xml.NewDecoder(&tagGuard{r: r, name: name})
	d.Strict = false
	d.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		return input, nil // decoded to UTF-8 already (xmlChars)
	}
	depth := 0
	skipDepth := 0 // > 0: the depth of the branch being skipped
	// chosen: per open mc:AlternateContent, whether one of its branches
	// was read (the others are skipped).
	var chosen []bool
	for {
		if err := x.check(); err != nil {
			return err
		}
		t, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrLimit) || errors.Is(err, ErrMalformed) || x.ctx.Err() != nil {
				return err
			}
			return malformed("%s: %v", name, err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			depth++
			if depth > xmlMaxDepth {
				return malformed("%s: elements nested deeper than %d", name, xmlMaxDepth)
			}
			if skipDepth > 0 {
				continue
			}
			if isMC(t.Name) {
				switch t.Name.Local {
				case "AlternateContent":
					chosen = append(chosen, false)
				case "Choice", "Fallback":
					if n := len(chosen); n > 0 {
						if chosen[n-1] {
							skipDepth = depth
							continue
						}
						chosen[n-1] = true
					}
				}
			}
		case xml.EndElement:
			depth--
			if skipDepth > 0 {
				if depth < skipDepth {
					skipDepth = 0
				}
				continue
			}
			if isMC(t.Name) && t.Name.Local == "AlternateContent" && len(chosen) > 0 {
				chosen = chosen[:len(chosen)-1]
			}
		default:
			if skipDepth > 0 {
				continue
			}
		}
		if err := fn(d, t); err != nil {
			if err == errStop {
				return nil
			}
			return err
		}
		if x.out.full() {
			return nil
		}
	}
}

// isMC reports a name of the markup compatibility namespace (or of its
// usual prefix, left undeclared).
func isMC(n xml.Name) bool { return n.Space == mcNS || n.Space == "mc" }

// relTargets reads a relationships part (name.rels) and returns Id →
// target, resolved against dir.
func (a *archive) relTargets(rels, dir string) (map[string]string, error) {
	m := map[string]string{}
	err := a.walkXML(rels, func(_ *xml.Decoder, t xml.Token) error {
		se, ok := t.(xml.StartElement)
		if !ok || se.Name.Local != "Relationship" {
			return nil
		}
		id, target := attr(se, "Id"), attr(se, "Target")
		if id == "" || target == "" {
			return nil
		}
		m[id] = resolvePart(dir, target)
		return nil
	})
	return m, err
}

// relOfType returns the target of the first relationship of rels whose
// type's last segment is typ (".../sharedStrings"), resolved against dir;
// "" when there is none.
func (a *archive) relOfType(rels, dir, typ string) (string, error) {
	found := ""
	err := a.walkXML(rels, func(_ *xml.Decoder, t xml.Token) error {
		se, ok := t.(xml.StartElement)
		if !ok || se.Name.Local != "Relationship" || path.Base(attr(se, "Type")) != typ || attr(se, "Target") == "" {
			return nil
		}
		found = resolvePart(dir, attr(se, "Target"))
		return errStop
	})
	return found, err
}

// resolvePart resolves a relationship target against the folder of its
// source part.
func resolvePart(dir, target string) string {
	if strings.HasPrefix(target, "/") {
		return strings.TrimPrefix(target, "/")
	}
	parts := strings.Split(dir, "/")
	if dir == "" {
		parts = nil
	}
	for _, p := range strings.Split(target, "/") {
		switch p {
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		case ".", "":
		default:
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

func attr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
