package mimedoc

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkSimpleAddresses: a list simpleAddresses reads is read as net/mail
// (and FormatAddress) read it.
func checkSimpleAddresses(t *testing.T, v string) bool {
	t.Helper()
	v = strings.TrimSpace(v)
	out, ok := simpleAddresses(v)
	if ok {
		require.Equal(t, parsedAddresses(v), out, "%q", v)
	}
	return ok
}

// The lists simpleAddresses reads (without net/mail) come out as net/mail
// reads them, over lists built from the forms it reads and from pieces it
// must leave to net/mail (quotes, comments, encoded words, groups, dots,
// tabs, folding, 8-bit text).
func TestSimpleAddressesAreNetMails(t *testing.T) {
	for _, v := range []string{"a@b", "a@b.c", "Ann <a@b.c>", "Ann Lee <ann.lee+x@mail.example.com>", "a@b.c, d@e.f", "Ann <a@b>,b@c , Bo_B-1 <x%y@z-1.org>"} {
		require.True(t, checkSimpleAddresses(t, v), "read without net/mail: %q", v)
	}
	for _, v := range []string{"<a@b.c>", "Ann  Lee <a@b.c>", "\"Lee, Ann\" <a@b.c>", "a@b.c (Ann)", "=?utf-8?q?Ann?= <a@b.c>", "a@b..c", ".a@b", "a@b.c,", "a@b.c,,d@e.f",
		"Ann\t<a@b.c>", "Ann\r\n <a@b.c>", "Ännchen <a@b.c>", "team: a@b.c;", "a@[1.2.3.4]", "Ann <a@b.c> x", "a@b@c", "O'Brien <a@b.c>", "a.@b.c", "a@b.c."} {
		require.False(t, checkSimpleAddresses(t, v), "left to net/mail: %q", v)
	}
	pieces := []string{"a", "Z", "0", "ann", "lee", ".", "..", "@", "@", "-", "_", "+", "%", " ", "  ", ",", "<", ">", "\"", "(", ")", ":", ";", "=?", "?=", "\t", "é", "'", "[", "]", "x.y", "b.c", "mail.example.com"}
	r := rand.New(rand.NewPCG(3, 4))
	simple := 0
	for range 200000 {
		var b strings.Builder
		for range 1 + r.IntN(12) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		if checkSimpleAddresses(t, b.String()) {
			simple++
		}
	}
	// And lists of the simple forms, so that they are many.
	for range 20000 {
		var items []string
		for range 1 + r.IntN(4) {
			addr := pieces[r.IntN(4)] + "@" + pieces[32]
			if r.IntN(2) == 0 {
				addr = strings.Repeat(pieces[r.IntN(5)], 1+r.IntN(2)) + " <" + addr + ">"
			}
			items = append(items, strings.Repeat(" ", r.IntN(2))+addr)
		}
		if checkSimpleAddresses(t, strings.Join(items, ",")) {
			simple++
		}
	}
	require.Greater(t, simple, 10000)
}

func FuzzSimpleAddressesAreNetMails(f *testing.F) {
	for _, s := range []string{"a@b.c", "Ann Lee <a@b.c>, d@e", "\"x\" <a@b>", "a@b (c)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) { checkSimpleAddresses(t, v) })
}
