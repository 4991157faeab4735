package messages

import (
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
	return base64.StdEncoding.EncodeToString(b)
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
	t = strings.ReplaceAll(t, " ", "+")
	raw, ok := decodeBase64(t)
	if !ok {
		return "", uuid.Nil, ErrUnknownToken
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", uuid.Nil, ErrUnknownToken
	}
	idPart := s[i+1:]
	rest := s[:i]
	j := strings.LastIndexByte(rest, ':')
	if j < 0 {
		return "", uuid.Nil, ErrUnknownToken
	}
	queue = rest[j+1:]
	hostPort := rest[:j]
	k := strings.LastIndexByte(hostPort, ':')
	if k < 0 || queue == "" {
		return "", uuid.Nil, ErrUnknownToken
	}
	if _, perr := strconv.ParseUint(hostPort[k+1:], 10, 16); perr != nil {
		return "", uuid.Nil, ErrUnknownToken
	}
	if len(idPart) != 36 {
		return "", uuid.Nil, ErrUnknownToken
	}
	id, err = uuid.Parse(idPart)
	if err != nil {
		return "", uuid.Nil, ErrUnknownToken
	}
	return queue, id, nil
}

func decodeBase64(t string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(t); err == nil {
			return b, true
		}
	}
	return nil, false
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
