package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUsageErrorsSayWhatIsWrong: a subcommand given the wrong arguments
// says what is wrong before its usage, with status 2, and runs nothing.
// Go's flag package stops at the first argument that is no flag, so a
// flag given after one (connector bench report run.json -o page.html,
// connector bench compare a.json b.json -fail-worse) was taken for an
// argument. Before, connector oauth and connector bench report printed
// their usage alone, and bench compare tried to open "-fail-worse" as a
// run: "open -fail-worse: no such file or directory", status 1.
func TestUsageErrorsSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	cmds := map[string]func(args []string, stdout, stderr io.Writer) int{
		"oauth":   oauthMain,
		"report":  benchReportMain,
		"compare": benchCompareMain,
		"bench":   benchMain,
	}
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"oauth", nil, "connector oauth: -config is required: the configuration of the task to authorize"},
		{"oauth", []string{"-config", "c.cfg", "MyTask"}, `connector oauth: unexpected argument "MyTask" (name the task with -task)`},
		{"oauth", []string{"MyTask", "-config", "c.cfg"}, "connector oauth: the flag -config comes after an argument: give the flags first"},
		{"report", nil, "connector bench report: no RUN.json given"},
		{"report", []string{"a.json", "b.json"}, `connector bench report: one RUN.json expected, got ["a.json" "b.json"]`},
		{"report", []string{"run.json", "-o", "page.html"}, "connector bench report: the flag -o comes after an argument: give the flags first"},
		{"compare", []string{"a.json"}, "connector bench compare: two GROUPs or more expected (the baseline first), got 1"},
		{"compare", []string{"a.json", "b.json", "-fail-worse"}, "connector bench compare: the flag -fail-worse comes after an argument: give the flags first"},
		{"bench", []string{"http://127.0.0.1:1/", "-duration", "5s"}, "connector bench: the flag -duration comes after an argument: give the flags first"},
	} {
		var out, errb bytes.Buffer
		require.Equal(t, 2, cmds[tc.cmd](tc.args, &out, &errb), "%s %q", tc.cmd, tc.args)
		first, _, _ := strings.Cut(errb.String(), "\n")
		require.Equal(t, tc.want, first, "%s %q", tc.cmd, tc.args)
		require.Contains(t, errb.String(), "usage: connector ", "%s %q", tc.cmd, tc.args)
		require.Empty(t, out.String(), "%s %q", tc.cmd, tc.args)
	}
}
