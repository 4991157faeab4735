package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCatalogueMatchesDocs: every connector_* metric the page has is in
// the catalogue of docs/operations.md, and every one the catalogue names
// is on the page (so that an alert written from the docs selects
// something).
func TestCatalogueMatchesDocs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/operations.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(doc), "\n## Metrics\n")
	require.True(t, ok, "operations.md has a Metrics section")
	section, _, _ = strings.Cut(section, "\n## ")
	var documented []string
	for _, line := range strings.Split(section, "\n") {
		if name, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " |"); ok && strings.HasPrefix(line, "| `connector_") {
			documented = append(documented, regexp.MustCompile("connector_[a-z_]+").FindAllString(name, -1)...)
		}
	}
	m := testMetrics()
	exercise(m)
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	var served []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "connector_") {
			served = append(served, mf.GetName())
		}
	}
	slices.Sort(documented)
	require.Equal(t, served, documented)
}
