package messages

import (
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	id := uuid.Must(uuid.NewV7())
	for _, host := range []string{"127.0.0.1", "10.2.105.34", "::1", "connector.example.com"} {
		tok := NewToken(host, 7000, "fetch", id)
		raw, err := base64.StdEncoding.DecodeString(tok)
		require.NoError(t, err)
		require.Equal(t, host+":7000:FETCH:"+id.String(), string(raw))
		q, got, err := ParseToken(tok)
		require.NoError(t, err, host)
		require.Equal(t, "FETCH", q)
		require.Equal(t, id, got)
	}
}

func TestTokenSurvivesTransportDamage(t *testing.T) {
	t.Parallel()
	// Find an id whose token contains '+', '/' and '=' so every repair path runs.
	var tok string
	// Hex ids and ordinary hosts never produce '+' or '/' (only '='), which
	// keeps real tokens URL-safe; a host with '~' and '?' forces both so
	// that every repair path below runs.
	id := uuid.Must(uuid.NewV7())
	for _, host := range []string{"~~~???", "a~~~??", "aa~~~?"} {
		tok = NewToken(host, 7000, "FETCH", id)
		if strings.Contains(tok, "+") && strings.Contains(tok, "/") {
			break
		}
	}
	require.Contains(t, tok, "+")
	variants := map[string]string{
		"exact":          tok,
		"plus as space":  strings.ReplaceAll(tok, "+", " "),
		"double encoded": url.QueryEscape(tok),
		"no padding":     strings.TrimRight(tok, "="),
		"url alphabet":   strings.NewReplacer("+", "-", "/", "_").Replace(tok),
		"surrounding ws": "  " + tok + "\n",
	}
	for name, v := range variants {
		_, got, err := ParseToken(v)
		require.NoError(t, err, name)
		require.Equal(t, id, got, name)
	}
}

func TestTokenGarbage(t *testing.T) {
	t.Parallel()
	enc := base64.StdEncoding.EncodeToString
	for _, bad := range []string{
		"", "!!!", "MTAuMi4xMDUuMzQ6MTIzNDpGRVRDSDoxNDAyOTU3MzY4", // a real IDOL token: numeric id, not ours
		enc([]byte("nocolons")),
		enc([]byte("h:p:FETCH:" + uuid.NewString())), // port not a number
		enc([]byte("h:1:FETCH:not-a-uuid-but-36-chars-long-xxxxxxx")),
		enc([]byte("h:1::" + uuid.NewString())), // empty queue
		enc([]byte(":FETCH:" + uuid.NewString())),
	} {
		_, _, err := ParseToken(bad)
		require.True(t, errors.Is(err, ErrUnknownToken), "%q: %v", bad, err)
	}
}

func BenchmarkNewToken(b *testing.B) {
	id := uuid.Must(uuid.NewV7())
	b.ReportAllocs()
	for b.Loop() {
		_ = NewToken("127.0.0.1", 7000, "fetch", id)
	}
}

func BenchmarkParseToken(b *testing.B) {
	tok := NewToken("127.0.0.1", 7000, "fetch", uuid.Must(uuid.NewV7()))
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = ParseToken(tok)
	}
}

// TestParseTokenPieces holds the allocation-free pieces of ParseToken to
// what they replace: strconv.ParseUint(port, 10, 16) and uuid.Parse.
func TestParseTokenPieces(t *testing.T) {
	for _, p := range []string{"", "0", "7000", "65535", "65536", "000000000080", "-1", "+1", "1_0", "99999999999999999999", "12a", " 1"} {
		_, err := strconv.ParseUint(p, 10, 16)
		require.Equal(t, err == nil, isPort([]byte(p)), "%q", p)
	}
	r := rand.New(rand.NewPCG(5, 6))
	const alphabet = "0123456789abcdefABCDEF-gG {}:"
	for n := range 20000 {
		b := []byte(uuid.Must(uuid.NewV7()).String())
		if n%2 == 1 {
			b = []byte(strings.ToUpper(string(b)))
		}
		for range r.IntN(3) {
			b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
		}
		want, err := uuid.Parse(string(b))
		got, ok := parseUUID(b)
		require.Equal(t, err == nil, ok, "%q", b)
		if ok {
			require.Equal(t, want, got, "%q", b)
		}
	}
	tok := NewToken("127.0.0.1", 7000, "fetch", uuid.Must(uuid.NewV7()))
	require.Zero(t, testing.AllocsPerRun(20, func() { _, _, _ = ParseToken(tok) }))
}

// TestNewTokenOneAllocation: a token is the base64 of HOST:PORT:QUEUE:ID,
// encoded on the stack and copied into its string once; a host too long
// for the stack buffer still gets the same token.
func TestNewTokenOneAllocation(t *testing.T) {
	id := uuid.Must(uuid.NewV7())
	for _, host := range []string{"127.0.0.1", "", strings.Repeat("h", 80), strings.Repeat("long-host.", 30)} {
		want := base64.StdEncoding.EncodeToString([]byte(host + ":7000:FETCH:" + id.String()))
		require.Equal(t, want, NewToken(host, 7000, "fetch", id), "host %q", host)
		q, got, err := ParseToken(NewToken(host, 7000, "fetch", id))
		require.NoError(t, err)
		require.Equal(t, "FETCH", q)
		require.Equal(t, id, got)
	}
	allocs := testing.AllocsPerRun(100, func() { _ = NewToken("127.0.0.1", 7000, "fetch", id) })
	require.Equal(t, 1.0, allocs, "allocations per token")
}

// TestTokensOfHostNamesHaveNoPlusOrSlash: base64 writes '+' or '/' for a
// byte of the raw token only when it is '>', '?', '~', DEL or not ASCII;
// a host name or address (letters of either case, digits, ".-_:%[]"), the
// port, the queue and the id have none, so the tokens this server makes
// survive a client that forgets to percent-encode (docs/protocol.md).
func TestTokensOfHostNamesHaveNoPlusOrSlash(t *testing.T) {
	t.Parallel()
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:%[]"
	for i := range alphabet {
		for pad := 0; pad < 3; pad++ { // each position of a byte in base64's 3-byte groups
			host := strings.Repeat("h", pad) + alphabet[i:] + alphabet[:i]
			for _, id := range []uuid.UUID{uuid.Nil, uuid.Max, uuid.Must(uuid.NewV7())} {
				tok := NewToken(host, 65535, "FETCH", id)
				require.False(t, strings.ContainsAny(tok, "+/"), "host %q: %s", host, tok)
			}
		}
	}
}
