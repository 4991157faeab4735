package messages

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// NewToken returns the token of an action: standard base64 of
// "HOST:PORT:QUEUE:ID" (aci-protocol.md §3.2), QUEUE in upper case and ID
// the action's UUIDv7. Clients treat it as opaque.
func NewToken(host string, port int, queue string, id uuid.UUID) string {
	var raw [128]byte
	b := append(raw[:0], host...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(port), 10)
	b = append(b, ':')
	for i := 0; i < len(queue); i++ {
		c := queue[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	b = append(b, ':')
	var idText [36]byte
	encodeUUID(idText[:], id)
	b = append(b, idText[:]...)
	// Encoded on the stack and copied into the string once:
	// EncodeToString allocates its buffer and then the string (two
	// allocations for every submitted action).
	var enc [172]byte // base64 of the 128 bytes of raw
	n := base64.StdEncoding.EncodedLen(len(b))
	if n > len(enc) {
		return base64.StdEncoding.EncodeToString(b)
	}
	base64.StdEncoding.Encode(enc[:n], b)
	return string(enc[:n])
}

// ParseToken extracts the queue name and action id from a token. Host and
// port are ignored: a token stays valid when the server moves. It is
// forgiving about transport damage: '+' turned into ' ' by a client that
// did not percent-encode, a second layer of percent-encoding, the URL-safe
// alphabet, missing padding. Anything else is ErrUnknownToken.
func ParseToken(token string) (queue string, id uuid.UUID, err error) {
	t := strings.TrimSpace(token)
	if strings.ContainsRune(t, '%') {
		if u, uerr := url.QueryUnescape(t); uerr == nil {
			t = u
		}
	}
	// A token this server made is a few dozen bytes: it is decoded on the
	// stack (GetStatus by token is the most frequent request); a longer
	// one (a long host name) on the heap.
	var src [160]byte
	var dst [120]byte
	var raw []byte
	ok := false
	if len(t) <= len(src) {
		n := copy(src[:], t)
		for i, c := range src[:n] {
			if c == ' ' {
				src[i] = '+'
			}
		}
		raw, ok = decodeBase64(dst[:0], src[:n])
	} else {
		raw, ok = decodeBase64(nil, []byte(strings.ReplaceAll(t, " ", "+")))
	}
	if !ok {
		return "", uuid.Nil, ErrUnknownToken
	}
	i := bytes.LastIndexByte(raw, ':')
	if i < 0 {
		return "", uuid.Nil, ErrUnknownToken
	}
	idPart := raw[i+1:]
	rest := raw[:i]
	j := bytes.LastIndexByte(rest, ':')
	if j < 0 {
		return "", uuid.Nil, ErrUnknownToken
	}
	queueBytes := rest[j+1:]
	hostPort := rest[:j]
	k := bytes.LastIndexByte(hostPort, ':')
	if k < 0 || len(queueBytes) == 0 {
		return "", uuid.Nil, ErrUnknownToken
	}
	if !isPort(hostPort[k+1:]) {
		return "", uuid.Nil, ErrUnknownToken
	}
	if len(idPart) != 36 {
		return "", uuid.Nil, ErrUnknownToken
	}
	id, ok = parseUUID(idPart)
	if !ok {
		return "", uuid.Nil, ErrUnknownToken
	}
	if string(queueBytes) == "FETCH" { // the usual queue: no copy
		return "FETCH", id, nil
	}
	return string(queueBytes), id, nil
}

// isPort reports whether b is what strconv.ParseUint(b, 10, 16) accepts.
func isPort(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 1<<16-1 {
			return false
		}
	}
	return true
}

// decodeBase64 appends the decoding of t to dst, in the first of the
// standard, raw standard, URL-safe and raw URL-safe alphabets that
// decodes it.
func decodeBase64(dst, t []byte) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.AppendDecode(dst[:0], t); err == nil {
			return b, true
		}
	}
	return nil, false
}

// uuidHexAt are the offsets of the 16 hexadecimal pairs of a UUID's
// canonical form (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).
var uuidHexAt = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// parseUUID is uuid.Parse of a 36-byte canonical form (either case),
// which does not keep b (uuid.ParseBytes would move it to the heap).
func parseUUID(b []byte) (id uuid.UUID, ok bool) {
	if len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return uuid.Nil, false
	}
	for i, at := range uuidHexAt {
		hi, ok1 := unhex(b[at])
		lo, ok2 := unhex(b[at+1])
		if !ok1 || !ok2 {
			return uuid.Nil, false
		}
		id[i] = hi<<4 | lo
	}
	return id, true
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

const hexDigits = "0123456789abcdef"

// encodeUUID writes the canonical 36-character form of id into dst without
// allocating.
func encodeUUID(dst []byte, id uuid.UUID) {
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j] = hexDigits[c>>4]
		dst[j+1] = hexDigits[c&0x0f]
		j += 2
	}
}
