package httpfetch

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeIdentifier: any input either fails with errIdentifier or gives
// an identifier that survives a round trip.
func FuzzDecodeIdentifier(f *testing.F) {
	f.Add(EncodeIdentifier("MyTask", "http://example.com/"))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := DecodeIdentifier(s)
		if err != nil {
			return
		}
		if id.Task == "" || id.Reference == "" {
			t.Fatalf("empty part in %+v", id)
		}
		again, err := DecodeIdentifier(EncodeIdentifier(id.Task, id.Reference))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", id, err)
		}
		if again.Reference != id.Reference {
			t.Fatalf("reference %q became %q", id.Reference, again.Reference)
		}
	})
}

// FuzzIdentifierRoundTrip: EncodeIdentifier then DecodeIdentifier gives
// back the reference exactly, and the task upper-cased, for every string
// XML can carry.
func FuzzIdentifierRoundTrip(f *testing.F) {
	f.Add("MyTask", "http://example.com/a?b=c&d=<e>")
	f.Fuzz(func(t *testing.T, task, ref string) {
		if !xmlSafe(task) || !xmlSafe(ref) || strings.TrimSpace(task) == "" || ref == "" {
			return
		}
		id, err := DecodeIdentifier(EncodeIdentifier(task, ref))
		if err != nil {
			t.Fatalf("%q %q: %v", task, ref, err)
		}
		if id.Reference != ref {
			t.Fatalf("reference %q became %q", ref, id.Reference)
		}
		if want := strings.ToUpper(strings.TrimSpace(strings.ToUpper(task))); id.Task != want {
			t.Fatalf("task %q became %q, want %q", task, id.Task, want)
		}
	})
}

// xmlSafe reports whether s is valid UTF-8 made of XML 1.0 characters.
func xmlSafe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return false
		}
	}
	return true
}
