package mimedoc

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// partReader splits a multipart body held in memory into its parts, each
// part's header and body a slice of the message (nothing is copied). It
// reads what go-message's textproto.MultipartReader (v0.18.2, itself Go's
// mime/multipart) reads from a stream, part for part, with the same
// errors: FuzzPartsAreGoMessages checks it against that reader. It differs
// where the streaming reader's answer depends on its 4 KiB buffer: a line
// between parts longer than 4 KiB, which go-message gives up on ("bufio:
// buffer full") and this reader reads. And on purpose where a part's
// header has a bad line: go-message gives up on the multipart there (the
// part and every part after it lost), this reader skips the line and reads
// on (readHeader).
//
// Why not go-message's reader (or mime/multipart's, which is no cheaper):
// it copies every part through a 4 KiB buffer allocated per multipart and
// a header map per part, and the message is in memory already. On the
// benchmark's messages with an attachment, reading them cost 4 times a
// single-part message.
type partReader struct {
	data []byte
	pos  int
	// end is what reading past the data gives: io.EOF (the message's
	// end, or its part's closing delimiter), or io.ErrUnexpectedEOF (the
	// part holding this multipart was cut without its delimiter).
	end       error
	partsRead int

	nl               []byte // "\r\n" or "\n" (set after seeing the first boundary line)
	nlDashBoundary   []byte // nl + "--boundary"
	dashBoundaryDash []byte // "--boundary--"
	dashBoundary     []byte // "--boundary"
}

// part is one part: its header, its body and how the body ended (io.EOF
// at its delimiter, io.ErrUnexpectedEOF at the data's end without one).
type part struct {
	header header
	// badLines is how many bad header lines were skipped (readHeader).
	badLines int
	body     []byte
	end      error
}

func newPartReader(data []byte, end error, boundary string) *partReader {
	b := []byte("\r\n--" + boundary + "--")
	return &partReader{
		data:             data,
		end:              end,
		nl:               b[:2],
		nlDashBoundary:   b[:len(b)-2],
		dashBoundaryDash: b[2:],
		dashBoundary:     b[2 : len(b)-2],
	}
}

// readLine returns the next line with its LF, or the rest of the data
// with r.end.
func (r *partReader) readLine() ([]byte, error) {
	rest := r.data[r.pos:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		r.pos += i + 1
		return rest[:i+1], nil
	}
	r.pos = len(r.data)
	return rest, r.end
}

// next returns the next part, or io.EOF after the last.
func (r *partReader) next() (*part, error) {
	if string(r.dashBoundary) == "--" {
		return nil, fmt.Errorf("multipart: boundary is empty")
	}
	expectNewPart := false
	for {
		line, err := r.readLine()
		if err == io.EOF && r.isFinalBoundary(line) {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("multipart: NextPart: %v", err)
		}
		if r.isBoundaryDelimiterLine(line) {
			r.partsRead++
			h, bad, err := r.readHeader()
			if err != nil {
				return nil, err
			}
			body, end := r.scanBody()
			return &part{header: h, badLines: bad, body: body, end: end}, nil
		}
		if r.isFinalBoundary(line) {
			return nil, io.EOF
		}
		if expectNewPart {
			return nil, fmt.Errorf("multipart: expecting a new Part; got line %q", string(line))
		}
		if r.partsRead == 0 {
			continue // the preamble
		}
		if bytes.Equal(line, r.nl) {
			expectNewPart = true
			continue
		}
		return nil, fmt.Errorf("multipart: unexpected line in Next(): %q", line)
	}
}

// isFinalBoundary: `^--boundary--[ \t]*(\r\n)?$`.
func (r *partReader) isFinalBoundary(line []byte) bool {
	if !bytes.HasPrefix(line, r.dashBoundaryDash) {
		return false
	}
	rest := skipLWSP(line[len(r.dashBoundaryDash):])
	return len(rest) == 0 || bytes.Equal(rest, r.nl)
}

// isBoundaryDelimiterLine: "--boundary", white space, and the line's end
// (RFC 2046 5.1). A first delimiter line ending in LF alone switches the
// reader to LF line ends, as go-message does.
func (r *partReader) isBoundaryDelimiterLine(line []byte) bool {
	if !bytes.HasPrefix(line, r.dashBoundary) {
		return false
	}
	rest := skipLWSP(line[len(r.dashBoundary):])
	if r.partsRead == 0 && len(rest) == 1 && rest[0] == '\n' {
		r.nl = r.nl[1:]
		r.nlDashBoundary = r.nlDashBoundary[1:]
	}
	return bytes.Equal(rest, r.nl)
}

func skipLWSP(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// boundaryEnds says whether c after a delimiter makes it one (go-message's
// matchAfterPrefix): a dash, a space, a tab or a line end.
func boundaryEnds(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '-'
}

// scanBody returns the body of the part whose header was just read, and
// leaves the reader at its end: at the delimiter that ends it (io.EOF),
// else at the data's end, less a final piece that could have begun a
// delimiter (io.ErrUnexpectedEOF), as go-message's part reader leaves it.
func (r *partReader) scanBody() ([]byte, error) {
	data, start := r.data, r.pos
	cur := start
	// At the body's start, "--boundary" without a line end before it is
	// a delimiter too.
	if rest := data[start:]; bytes.HasPrefix(rest, r.dashBoundary) {
		if len(rest) == len(r.dashBoundary) || boundaryEnds(rest[len(r.dashBoundary)]) {
			return data[start:start], io.EOF
		}
		cur += len(r.dashBoundary)
	} else if bytes.HasPrefix(r.dashBoundary, rest) {
		return data[start:start], io.ErrUnexpectedEOF
	}
	for {
		i := bytes.Index(data[cur:], r.nlDashBoundary)
		if i < 0 {
			break
		}
		at := cur + i
		after := at + len(r.nlDashBoundary)
		if after == len(data) || boundaryEnds(data[after]) {
			r.pos = at
			return data[start:at], io.EOF
		}
		cur = after
	}
	end := len(data)
	if tail := data[cur:]; bytes.HasPrefix(r.nlDashBoundary, tail) {
		end = cur
	} else if i := bytes.LastIndexByte(tail, r.nlDashBoundary[0]); i >= 0 && bytes.HasPrefix(r.nlDashBoundary, tail[i:]) {
		end = cur + i
	}
	r.pos = end
	return data[start:end], io.ErrUnexpectedEOF
}

// readHeader reads a part's header block as go-message's
// textproto.ReadHeader does (a name may have white space around it; a
// value is its lines trimmed and joined by spaces), except for bad lines.
// Where go-message ends the block with an error (and its multipart reader
// gives up, losing this part and every part after it), a bad line is
// skipped, with its continuation lines, as the message's own header's
// are (parser.readHeader), and bad counts them: a first line starting
// with white space, a line without a colon, a name with a byte outside
// printable ASCII. A bad line that begins a delimiter (the part has no
// blank line after its header) ends the block there, so that the part
// after it is read too; it counts as a bad line.
func (r *partReader) readHeader() (h header, bad int, err error) {
	for {
		if r.pos == len(r.data) {
			if r.end == io.EOF {
				return h, bad, nil // a header without a body
			}
			return h, bad, r.end
		}
		start := r.pos
		first, _ := r.headerLine()
		if len(first) == 0 {
			return h, bad, nil // the blank line
		}
		lines := [][]byte{first}
		for r.pos < len(r.data) && (r.data[r.pos] == ' ' || r.data[r.pos] == '\t') {
			l, _ := r.headerLine()
			lines = append(lines, l)
		}
		// The name ends at the first colon, which may be on a
		// continuation line (and then the name holds a line end).
		colon, li := bytes.IndexByte(first, ':'), 0
		for colon < 0 && li+1 < len(lines) {
			li++
			colon = bytes.IndexByte(lines[li], ':')
		}
		var name []byte
		ok := colon >= 0 && first[0] != ' ' && first[0] != '\t'
		if ok {
			if li == 0 {
				name = trimLWSP(first[:colon])
			} else {
				kv := joinCRLF(lines)
				name = trimLWSP(kv[:bytes.Index(kv, []byte(":"))])
			}
			for _, c := range name {
				if c < 33 || c > 126 || c == ':' {
					ok = false
				}
			}
		}
		if !ok {
			if rest := r.data[start:]; bytes.HasPrefix(rest, r.dashBoundary) &&
				(len(rest) == len(r.dashBoundary) || boundaryEnds(rest[len(r.dashBoundary)])) {
				r.pos = start // scanBody ends the body here: an empty one
				return h, bad + 1, nil
			}
			bad++
			continue
		}
		if len(name) == 0 {
			continue // go-message skips a field with an empty name
		}
		var value strings.Builder
		for i := li; i < len(lines); i++ {
			piece := lines[i]
			if i == li {
				piece = piece[colon+1:]
			}
			if piece = trimLWSP(piece); len(piece) > 0 {
				if value.Len() > 0 {
					value.WriteByte(' ')
				}
				value.Write(piece)
			}
		}
		h = append(h, headerField{key: string(name), value: value.String()})
	}
}

// headerLine returns the next line without its LF (and a CR before it),
// as bufio.Reader.ReadLine does; at the data's end, the rest.
func (r *partReader) headerLine() ([]byte, bool) {
	rest := r.data[r.pos:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		r.pos = len(r.data)
		return rest, false
	}
	r.pos += i + 1
	line := rest[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, true
}

func joinCRLF(lines [][]byte) []byte {
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\r', '\n')
	}
	return b
}

func trimLWSP(b []byte) []byte {
	b = skipLWSP(b)
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// endReader reads b, then returns end (io.EOF, or io.ErrUnexpectedEOF for
// a part cut without its delimiter), as a part's reader ends.
type endReader struct {
	b   []byte
	end error
}

func (r *endReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, r.end
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
