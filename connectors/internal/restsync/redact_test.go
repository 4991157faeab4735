package restsync

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

// TestRedactKeepsNoURLPassword: Redact, which is also Seal (what the queue
// and the store keep), redacts the password of a URL in a parameter that
// no action takes (on main, Bogus=http://u:pw@h/ was stored in clear), as
// it redacts a parameter whose name looks secret; an action's own
// parameters are left as they are.
func TestRedactKeepsNoURLPassword(t *testing.T) {
	t.Parallel()
	in := messages.Params{
		{Name: "Bogus", Value: "see http://u:hunter2@h/x"},
		{Name: "ApiKey", Value: "k1"},
		{Name: "ConfigSection", Value: "T"},
		{Name: "InsertXML", Value: "<insertxml/>"},
		{Name: "Plain", Value: "http://u@h/"},
	}
	out := Redact(in, func(string) bool { return false })
	require.Equal(t, "see http://u:"+secret.Redacted+"@h/x", out[0].GetValue())
	require.Equal(t, secret.Redacted, out[1].GetValue())
	require.Equal(t, in[2:], out[2:])
	require.Equal(t, "see http://u:hunter2@h/x", in[0].GetValue(), "params are not changed")
}

// TestRedactKeepsNoURLQuerySecret: Redact (Seal) redacts a URL's query
// credentials in a parameter that no action takes, as it redacts a URL's
// password. On main Bogus=https://h/x?access_token=... was queued and
// stored in clear: only a URL with a password was looked at.
func TestRedactKeepsNoURLQuerySecret(t *testing.T) {
	t.Parallel()
	in := messages.Params{
		{Name: "Bogus", Value: "https://h/x?access_token=sekrit&a=1"},
		{Name: "Identifiers", Value: "https://h/x?token=t"},
	}
	out := Redact(in, func(string) bool { return false })
	require.Equal(t, "https://h/x?access_token="+secret.Redacted+"&a=1", out[0].GetValue())
	require.Equal(t, in[1:], out[1:], "an action's own parameter is left as it is")
}
