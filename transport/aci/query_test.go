package aci

import (
	"math/rand/v2"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// AppendQueryEscape is url.QueryEscape, byte for byte, for strings and
// byte slices; QueryEscapedLen is the length it appends.
func TestAppendQueryEscapeIsQueryEscape(t *testing.T) {
	t.Parallel()
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	check := func(s string) {
		t.Helper()
		want := url.QueryEscape(s)
		require.Equal(t, want, string(AppendQueryEscape([]byte("x"), s))[1:], "%q", s)
		require.Equal(t, want, string(AppendQueryEscape(nil, []byte(s))), "%q as bytes", s)
		require.Equal(t, len(want), QueryEscapedLen(s), "%q", s)
		require.Equal(t, len(want), QueryEscapedLen([]byte(s)), "%q as bytes", s)
	}
	for _, s := range []string{"", "a", " ", "a b+c&d=e%f", "héllo wörld", string(all), "~-_.AZaz09"} {
		check(s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		check(string(b))
	}
}
