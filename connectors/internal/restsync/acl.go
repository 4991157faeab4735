package restsync

import (
	"net/url"
	"strings"
)

// ACLName is a user's or group's name as the REST connectors write it in
// an ACL entry (AUTONOMYMETADATA): lower case and percent-encoded, every
// byte but letters, digits and -_.~ as %XX, a space included (%20, not
// the "+" of form encoding, which percent-decoding leaves a "+"), so that
// the list's commas and the ACL's colons never occur in a name and IDOL
// Content reads it back as escaped (X) entries.
func ACLName(name string) string {
	return strings.ReplaceAll(url.QueryEscape(strings.ToLower(name)), "+", "%20")
}
