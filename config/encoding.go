package config

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeText brings configuration text (a file, or a request's Config
// fragment) to one form before anything reads it, so that what is checked
// is what is used whatever the encoding: a UTF-8 byte-order mark is
// dropped, UTF-16 text with its byte-order mark (what Windows tools often
// write) is decoded to UTF-8, and lines end with LF whether they ended
// with CRLF, LF or a lone CR. Text with NUL bytes (UTF-16 without a
// byte-order mark, a binary file) is refused rather than guessed at, and
// so is UTF-16 with half of a surrogate pair.
func decodeText(data []byte) ([]byte, error) {
	utf16Text := false
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		data = data[3:]
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		d, err := fromUTF16(data[2:], false)
		if err != nil {
			return nil, err
		}
		data, utf16Text = d, true
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		d, err := fromUTF16(data[2:], true)
		if err != nil {
			return nil, err
		}
		data, utf16Text = d, true
	}
	if bytes.IndexByte(data, '\r') >= 0 {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return data, &nulError{at: i, surrogate: utf16Text && bytes.HasPrefix(data[i:], loneSurrogate)}
	}
	return data, nil
}

// nulError is decodeText's error for text with a NUL byte (or, with
// surrogate, half of a UTF-16 surrogate pair), the first at offset at of
// the decoded text, which decodeText returns with it so that the error
// can name the line (read).
type nulError struct {
	at        int
	surrogate bool
}

func (e *nulError) Error() string {
	if e.surrogate {
		return "the line holds half of a UTF-16 surrogate pair (a character cut in two): the text is not valid UTF-16"
	}
	return "the text contains NUL bytes: save it as UTF-8 (UTF-16 needs its byte-order mark)"
}

// loneSurrogate is what fromUTF16 writes for half of a surrogate pair: a
// NUL byte (which decodeText refuses, so that its line is found as a
// NUL's is), then U+FFFD, which tells it from a NUL of the text.
var loneSurrogate = []byte("\x00\uFFFD")

func fromUTF16(b []byte, bigEndian bool) ([]byte, error) {
	if len(b)%2 != 0 {
		return nil, errors.New("the text starts with a UTF-16 byte-order mark but has an odd number of bytes")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if bigEndian {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		} else {
			u[i] = uint16(b[2*i+1])<<8 | uint16(b[2*i])
		}
	}
	out := make([]byte, 0, len(u))
	for i := 0; i < len(u); i++ {
		r := rune(u[i])
		switch {
		case utf16.IsSurrogate(r) && i+1 < len(u) && utf16.DecodeRune(r, rune(u[i+1])) != utf8.RuneError:
			r = utf16.DecodeRune(r, rune(u[i+1]))
			i++
		case utf16.IsSurrogate(r):
			// Half of a pair: marked for decodeText to refuse at its
			// line, never read as U+FFFD (utf16.Decode's choice).
			out = append(out, loneSurrogate...)
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	return out, nil
}
