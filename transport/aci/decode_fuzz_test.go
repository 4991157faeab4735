package aci

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeReply: the Decoded parser never panics, is deterministic, and
// accepts only what it can trust: a Decoded it accepts has a <response>,
// and JSON it accepts is valid JSON. Seeds are in
// testdata/fuzz/FuzzDecodeReply (real IDOL replies, the connector's
// replies in every format, and edge cases).
func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`<autnresponse><response>SUCCESS</response><responsedata><token>abc</token></responsedata></autnresponse>`))
	f.Add([]byte(`{"autnresponse":{"response":"SUCCESS","responsedata":{"actions":{"action":[{"status":"Queued"}]}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r1, r2 Decoded
		err1 := DecodeReply(body, &r1)
		err2 := DecodeReply(bytes.Clone(body), &r2)
		require.Equal(t, err1, err2)
		require.Equal(t, r1, r2)
		if err1 != nil {
			return
		}
		require.NotEqual(t, ResponseNone, r1.Response)
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if len(trimmed) > 0 && trimmed[0] == '{' {
			require.True(t, json.Valid(body), "accepted invalid JSON %q", body)
		}
		if r1.State != StateNone {
			require.Positive(t, r1.Actions)
		}
	})
}
