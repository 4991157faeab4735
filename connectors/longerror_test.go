package connectors_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/connectors/mailfetch"
	"github.com/connectorhq/connector/connectors/objectivefetch"
	"github.com/connectorhq/connector/connectors/webfetch"
)

// TestLongValueErrorsShort: a connector's setting check that names the
// bad part of a value (or key) quotes its first 100 bytes and its size
// (wording.Quote), as the configuration's own errors do: a megabyte made
// a start-up error, a log line and a Config fragment's error reply of a
// megabyte.
func TestLongValueErrorsShort(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A", 1<<20)
	for _, c := range []struct{ typ, key, value, want string }{
		{httpfetch.Type, "ExtractFormats", "pdf," + long, "… (1048576 bytes) is not a format"},
		{httpfetch.Type, "OverrideUrlOrigins", "http://a.example," + long, "… (1048576 bytes) is not an http or https origin"},
		{httpfetch.Type, "Depth" + long, "1", "… (1048581 bytes) is not a fetch task setting"},
		{webfetch.Type, "RenderResourceTypes", "script," + long, "… (1048576 bytes) is not a resource type"},
		{objectivefetch.Type, "RootFolders", "/a," + long, "… (1048576 bytes) is neither an object id"},
		{mailfetch.Type, "Folders" + long, "x", "… (1048583 bytes) is not a Google Mail task setting"}, // restsync.Keys
	} {
		d, err := connectors.Lookup(c.typ)
		require.NoError(t, err)
		err = d.TaskKeys(c.key, c.value)
		require.Error(t, err, c.want)
		require.Less(t, len(err.Error()), 1000, err.Error()[:min(len(err.Error()), 1000)])
		require.Contains(t, err.Error(), c.want)
	}
}
