package ingest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLineStartTag: lineStartTag (which jumps between '#'s) says what a
// look at every line start says.
func TestLineStartTag(t *testing.T) {
	t.Parallel()
	byLine := func(s string, atStart bool) bool {
		for i := 0; i < len(s); i++ {
			if ((i == 0 && atStart) || (i > 0 && (s[i-1] == '\n' || s[i-1] == '\r'))) && isTagAt(s, i) {
				return true
			}
		}
		return false
	}
	for _, s := range []string{"", "#", "#DRE", "#dre x", "x#DRE", "x\n#DRE", "x\r#dRe", "x\n #DRE", "##DRE", "\n#DR", "a#b#c\n#DREF",
		"#DR\n#DRE", "# DRE", "x\r\n#DREENDDOC", "no hash at all", "#x\n#y\r#DRE", "é\n#DRE"} {
		for _, atStart := range []bool{true, false} {
			require.Equal(t, byLine(s, atStart), lineStartTag(s, atStart), "%q atStart=%v", s, atStart)
		}
	}
}
