// Package wording checks texts meant for people, such as the descriptions
// of ACI error replies (docs/errors.md): the tests of the codec and of the
// front end use it to hold every description to saying each thing once.
// It also shapes the user text an error quotes (Quote, Clip), so that a
// long value never makes a long error.
package wording

import "strings"

// RepeatedPhrase returns the first run of three words that occurs twice in
// s, or "" when there is none. Words are runs of ASCII letters and digits,
// compared without regard to letter case; everything else separates them,
// so "QueueAction=Stop" is two words.
func RepeatedPhrase(s string) string {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
	seen := make(map[string]bool, len(words))
	for i := 0; i+3 <= len(words); i++ {
		p := strings.Join(words[i:i+3], " ")
		if seen[p] {
			return p
		}
		seen[p] = true
	}
	return ""
}
