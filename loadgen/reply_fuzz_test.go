package loadgen

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseReply: the reply parser never panics, is deterministic, and
// accepts only what it can trust: a reply it accepts has a <response>,
// and JSON it accepts is valid JSON. Seeds are in
// testdata/fuzz/FuzzParseReply (real IDOL replies, the connector's
// replies in every format, and edge cases).
func FuzzParseReply(f *testing.F) {
	f.Add([]byte(`<autnresponse><response>SUCCESS</response><responsedata><token>abc</token></responsedata></autnresponse>`))
	f.Add([]byte(`{"autnresponse":{"response":"SUCCESS","responsedata":{"actions":{"action":[{"status":"Queued"}]}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r1, r2 reply
		err1 := parseReply(body, &r1)
		err2 := parseReply(bytes.Clone(body), &r2)
		require.Equal(t, err1, err2)
		require.Equal(t, r1, r2)
		if err1 != nil {
			return
		}
		require.NotEqual(t, responseNone, r1.response)
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if len(trimmed) > 0 && trimmed[0] == '{' {
			require.True(t, json.Valid(body), "accepted invalid JSON %q", body)
		}
		if r1.status != statusNone {
			require.Positive(t, r1.actions)
		}
	})
}
