package config

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocsStateEveryKeyRange: every key of a system section that takes
// a whole number within bounds states them in docs/configuration.md, as
// "LO to HI" in its row of its section's table, so that an operator
// learns them before start-up refuses a value ([Cluster]'s keys are in
// docs/cluster.md). On main BrowserTabMaxPages, Port, MaxRequestBytes and
// sixteen more left them out.
func TestDocsStateEveryKeyRange(t *testing.T) {
	t.Parallel()
	rows := map[string]string{} // "section\x00key" → its row, without backquotes
	headRE := regexp.MustCompile(`^## .*\[([A-Za-z]+)\]`)
	keyRE := regexp.MustCompile("`([A-Za-z0-9]+)`")
	for _, file := range []string{"configuration.md", "cluster.md"} { // [Cluster] is in cluster.md
		doc, err := os.ReadFile("../docs/" + file)
		require.NoError(t, err)
		section := ""
		for _, line := range strings.Split(string(doc), "\n") {
			if m := headRE.FindStringSubmatch(line); m != nil {
				section = m[1]
				continue
			}
			first, ok := strings.CutPrefix(line, "| `")
			if !ok || section == "" {
				continue
			}
			first, _, _ = strings.Cut("`"+first, " |") // the first cell: its keys
			for _, m := range keyRE.FindAllStringSubmatch(first, -1) {
				rows[strings.ToLower(section)+"\x00"+strings.ToLower(m[1])] = strings.ReplaceAll(line, "`", "")
			}
		}
	}
	rangeRE := regexp.MustCompile(`\(expected (-?\d+) to (-?\d+)\)`)
	checked := 0
	for _, def := range systemDefs {
		for _, k := range def.keys {
			err := k.set(&Config{}, "-99999999999")
			if err == nil {
				continue
			}
			m := rangeRE.FindStringSubmatch(err.Error())
			if m == nil {
				continue
			}
			checked++
			row, ok := rows[strings.ToLower(def.name)+"\x00"+strings.ToLower(k.name)]
			if !assert.True(t, ok, "[%s] %s has no row in the docs", def.name, k.name) {
				continue
			}
			assert.Contains(t, row, m[1]+" to "+m[2], "[%s] %s: its row does not state its range", def.name, k.name)
		}
	}
	require.Greater(t, checked, 10, "keys with a range found")
}
