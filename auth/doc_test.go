package auth

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the role table of docs/security.md")

// rolesMarkdown is the role table as docs/security.md shows it.
func rolesMarkdown() string {
	var b strings.Builder
	b.WriteString("| Port | Action | Standard role it needs | Why |\n|---|---|---|---|\n")
	for _, r := range Rules {
		action := "`" + r.Action + "`"
		if r.Sub != "" {
			action = "`QueueInfo` `QueueAction=" + r.Sub + "`"
		}
		if r.Port == ServicePort && r.Action == "Metrics" {
			action = "`GET /metrics`"
		}
		role := r.Role.String()
		if r.Role == None {
			role = "none (any client)"
		}
		b.WriteString("| " + r.Port.String() + " | " + action + " | " + role + " | " + r.Why + " |\n")
	}
	return b.String()
}

const (
	beginMark = "<!-- roles: generated from auth.Rules by `go test ./auth -update`; do not edit -->\n"
	endMark   = "<!-- /roles -->"
)

// TestSecurityDocRoleTable: docs/security.md shows the role table as the
// code has it (go test ./auth -run TestSecurityDocRoleTable -update
// rewrites it).
func TestSecurityDocRoleTable(t *testing.T) {
	path := filepath.Join("..", "docs", "security.md")
	doc, err := os.ReadFile(path)
	require.NoError(t, err)
	s := string(doc)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	require.True(t, i >= 0 && j > i, "docs/security.md has no role table between %q and %q", beginMark, endMark)
	want := s[:i+len(beginMark)] + rolesMarkdown() + s[j:]
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
		return
	}
	require.Equal(t, want, s, "docs/security.md's role table is stale: go test ./auth -run TestSecurityDocRoleTable -update")
}
