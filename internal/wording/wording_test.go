package wording

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRepeatedPhrase(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"the action has started (Cancel removes only queued actions; use QueueAction=Stop to stop a running action)", ""},
		{"the action has already started; only queued actions can change priority (only queued actions can change priority)", "only queued actions"},
		{"Only Queued Actions, only queued actions", "only queued actions"},
		{`invalid value "high" for parameter Priority: must be an integer from -2147483648 to 2147483647`, ""},
		{"a b a b", ""},
		{"a b c a b c", "a b c"},
	} {
		require.Equal(t, c.want, RepeatedPhrase(c.in), c.in)
	}
}
