package httpd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// saveReply writes body to a new file in dir for xmllint and returns it.
func saveReply(t *testing.T, dir, name string, body []byte) string {
	t.Helper()
	f := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(f, body, 0o600))
	return f
}

// TestGetVersionBuildIsANumber: whatever the build stamped, GetVersion's
// autn:build is an unsigned integer and the reply validates against
// OpenText's getVersionResponse.xsd; GetStatus's <build> likewise. The
// revision goes to autn:aciversion (semantic-versioning build metadata) and
// to GetStatus's <revision>.
func TestGetVersionBuildIsANumber(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		v              Version
		build, aciver  string
		statusRevision string
	}{
		{"stamped", Version{Version: "1.2.0", Revision: "0123456789ab", Build: 421}, "421", "1.2.0+0123456789ab", "0123456789ab"},
		{"dirty tree", Version{Version: "1.2.0", Revision: "0123456789ab-dirty", Build: 421}, "421", "1.2.0+0123456789ab-dirty", "0123456789ab-dirty"},
		{"not stamped", Version{Version: "0.0.0-dev", Revision: "unknown"}, "0", "0.0.0-dev", "unknown"},
		{"no revision", Version{Version: "0.0.0-dev"}, "0", "0.0.0-dev", "unknown"},
		{"largest build", Version{Version: "2.0.0", Revision: "fedcba987654", Build: 1<<64 - 1}, "18446744073709551615", "2.0.0+fedcba987654", "fedcba987654"},
	}
	dir := t.TempDir()
	var versions, statuses []string
	for _, c := range cases {
		v := c.v
		e := startWith(t, setup{version: &v})
		_, body := e.get(t, "/action=GetVersion")
		versions = append(versions, saveReply(t, dir, "getversion-"+c.build+"-"+c.statusRevision+".xml", body))
		require.Contains(t, string(body), "<autn:build>"+c.build+"</autn:build>", c.name)
		require.Contains(t, string(body), "<autn:version>"+c.v.Version+"</autn:version>", c.name)
		require.Contains(t, string(body), "<autn:aciversion>"+c.aciver+"</autn:aciversion>", c.name)

		_, body = e.get(t, "/action=GetStatus")
		statuses = append(statuses, saveReply(t, dir, "getstatus-"+c.build+"-"+c.statusRevision+".xml", body))
		require.Contains(t, string(body), "<build>"+c.build+"</build><revision>"+c.statusRevision+"</revision>", c.name)
	}
	xmllint(t, getVersionXSD, versions...)
	xmllint(t, getStatusXSD, statuses...)
}
