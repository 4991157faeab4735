package store

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestMergeApply(t *testing.T) {
	m := Merge{Add: map[string]int64{"calls": 2, "n": 1}, Set: map[string]json.RawMessage{"action": raw(`"LIST"`), "n": raw(`7`)}}
	for _, c := range []struct{ old, want string }{
		{"", `{"action":"LIST","calls":2,"n":7}`},                                               // absent
		{`{"calls":40,"runs":3,"action":"OLD"}`, `{"action":"LIST","calls":42,"n":7,"runs":3}`}, // merged, others kept
		{`{"calls":"x"}`, `{"action":"LIST","calls":2,"n":7}`},                                  // not an integer: 0
		{`{"calls":1.5}`, `{"action":"LIST","calls":2,"n":7}`},
		{`not json`, `{"action":"LIST","calls":2,"n":7}`}, // damaged: {}
		{`[1,2]`, `{"action":"LIST","calls":2,"n":7}`},
		{`null`, `{"action":"LIST","calls":2,"n":7}`},
	} {
		var old []byte
		if c.old != "" {
			old = []byte(c.old)
		}
		require.JSONEq(t, c.want, string(m.Apply(old)), "over %q", c.old)
	}
}

// Then composes: applying a.Then(b) is applying a then b, whatever the
// members (an Add after a Set of one member, a Set after an Add).
func TestMergeThen(t *testing.T) {
	a := Merge{Add: map[string]int64{"calls": 1, "x": 5}, Set: map[string]json.RawMessage{"t": raw(`10`), "s": raw(`"a"`)}}
	b := Merge{Add: map[string]int64{"calls": 1, "t": 3}, Set: map[string]json.RawMessage{"x": raw(`0`), "s": raw(`"b"`)}}
	for _, old := range []string{`{"calls":5,"x":1,"t":1,"keep":true}`, `{}`, `bad`} {
		want := b.Apply(a.Apply([]byte(old)))
		require.JSONEq(t, string(want), string(a.Then(b).Apply([]byte(old))), "over %s", old)
	}
	require.Equal(t, map[string]int64{"calls": 1, "x": 5}, a.Add, "Then changes neither side")
	var zero Merge
	require.JSONEq(t, `{"calls":2}`, string(zero.Then(Merge{Add: map[string]int64{"calls": 2}}).Apply(nil)))
}

func TestMergeValid(t *testing.T) {
	require.True(t, Merge{Set: map[string]json.RawMessage{"a": raw(`"x"`)}}.Valid())
	require.False(t, Merge{Set: map[string]json.RawMessage{"a": raw(`"x`)}}.Valid())
}
