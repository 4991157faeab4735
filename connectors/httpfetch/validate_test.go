package httpfetch

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
)

// TestHasTaskMatchesConfig: hasTask answers from the name set New builds
// exactly what the configuration answers (a task section or a [FetchTasks]
// entry, in any case, never a system section), including for names that
// are not ASCII, where Unicode case folding matches more than lower-casing
// ASCII letters does (the Kelvin sign folds to k).
func TestHasTaskMatchesConfig(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("L", maxFastName+6)
	configs := map[string]string{
		"ascii":  "[FetchTasks]\nNumber=3\n0=EMPTY\n1=Listed\n2=" + long + "\n\n[EMPTY]\nUrl=http://127.0.0.1:9/\n\n[Other]\nUrl=http://127.0.0.1:9/\n\n[" + long + "]\nUrl=http://127.0.0.1:9/\n\n[Listed]\nUrl=http://127.0.0.1:9/\n",
		"exotic": "[FetchTasks]\nNumber=2\n0=EMPTY\n1=\u212Aelvin\n\n[EMPTY]\nUrl=http://127.0.0.1:9/\n\n[\u212Aelvin]\nUrl=http://127.0.0.1:9/\n\n[Été]\nUrl=http://127.0.0.1:9/\n",
	}
	names := []string{"", " ", "EMPTY", "empty", "Empty", "EMPTY ", "Listed", "LISTED", "listed", "Other", "OTHER", "nope",
		"FetchTasks", "fetchtasks", "Default", "Server", "Security", "Actions", long, strings.ToLower(long), long[:maxFastName],
		"kelvin", "KELVIN", "\u212Aelvin", "\u212AELVIN", "été", "ÉTÉ", "Été"}
	for name, text := range configs {
		t.Run(name, func(t *testing.T) {
			b := setup(t, text, setupOpts{noTarget: true})
			require.Equal(t, name == "exotic", b.repo.exoticNames)
			for _, n := range names {
				require.Equal(t, slowHasTask(b.cfg, n), b.repo.hasTask(n), "hasTask(%q)", n)
			}
			require.True(t, b.repo.hasTask("empty"), "the set answers a task in another case")
			require.False(t, b.repo.hasTask("FETCHTASKS"), "a system section is never a task")
		})
	}
}

// TestSealReturnsParamsWithNothingToSeal: a submission without secrets is
// admitted without a copy of its parameters; one with a secret gets a
// sealed copy and its own parameters stay as they were.
func TestSealReturnsParamsWithNothingToSeal(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=EMPTY\n[EMPTY]\nUrl=http://127.0.0.1:9/\n[Security]\nAESKeyFile="+t.TempDir()+"/aes.ky\n",
		setupOpts{noTarget: true})
	p := params("TaskSections", "EMPTY", "[EMPTY]Depth", "2")
	_, err := b.repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err)
	out, err := b.repo.Seal(p)
	require.NoError(t, err)
	require.Len(t, out, 2)
	require.Same(t, &p[0], &out[0], "nothing to seal: the same parameters")

	p = params("TaskSections", "EMPTY", "[EMPTY]BasicAuthPassword", "clear")
	out, err = b.repo.Seal(p)
	require.NoError(t, err)
	require.NotSame(t, &p[0], &out[0], "a secret: a copy")
	require.Same(t, p[0], out[0], "the parameters that do not change are shared")
	require.Equal(t, "clear", p[1].Value, "Seal does not change its input")
	require.NotEqual(t, "clear", out[1].Value)
}

// TestIdentifiersListOptions: the Identifiers action's options as
// parseListOpts reads them (set by index since it no longer takes their
// addresses), and the shared default parent list.
func TestIdentifiersListOptions(t *testing.T) {
	t.Parallel()
	o, err := parseListOpts(params("ShowNames", "false", "ShowTypes", "false", "ShowAttributes", "false", "ShowExcluded", "true",
		"ContainersOnly", "true", "MaxDepth", "3", "FilterTypes", "a, b"), "EMPTY")
	require.NoError(t, err)
	require.Equal(t, listOpts{parents: []string{"ROOT"}, maxDepth: 3, showExcluded: true, containersOnly: true, filterTypes: []string{"a", "b"}}, o)
	o, err = parseListOpts(nil, "EMPTY")
	require.NoError(t, err)
	require.Equal(t, listOpts{parents: []string{"ROOT"}, maxDepth: 1, showNames: true, showTypes: true, showAttributes: true}, o)
	_, err = parseListOpts(params("ShowExcluded", "maybe"), "EMPTY")
	require.ErrorContains(t, err, "ShowExcluded")
}

// TestValidateAllocations: Validate, which the queue calls for every
// submission, allocates the copy of the tasks it returns and nothing else
// (its plans, with their parsed request and single task inline, are
// reused); the tasks it returns are a copy of their own (the queue keeps
// them, not the plan), a later Validate leaves them alone, and every task
// of a request is still there.
func TestValidateAllocations(t *testing.T) { // not parallel: AllocsPerRun
	b := setup(t, "[FetchTasks]\nNumber=2\n0=EMPTY\n1=SLOW\n\n[EMPTY]\nUrl=http://127.0.0.1:9/\n\n[SLOW]\nUrl=http://127.0.0.1:9/\n",
		setupOpts{noTarget: true})
	ids := params("ConfigSection", "EMPTY")
	tasks, err := b.repo.Validate(fetch.ActionIdentifiers, ids)
	require.NoError(t, err)
	require.Equal(t, []string{"EMPTY"}, tasks)
	require.Equal(t, len(tasks), cap(tasks), "a copy of the tasks, not the plan's array")
	allocs := testing.AllocsPerRun(100, func() { _, _ = b.repo.Validate(fetch.ActionIdentifiers, ids) })
	if raceEnabled { // sync.Pool drops a quarter of its plans
		require.LessOrEqual(t, allocs, 2.0)
	} else {
		require.Equal(t, 1.0, allocs, "the copy of the tasks")
	}

	both := params("TaskSections", "slow,EMPTY", "ConfigSection2", "x", "Depth", "3")
	tasks, err = b.repo.Validate(fetch.ActionSynchronize, both)
	require.NoError(t, err)
	require.Equal(t, []string{"SLOW", "EMPTY"}, tasks)
	again, err := b.repo.Validate(fetch.ActionIdentifiers, ids)
	require.NoError(t, err)
	require.Equal(t, []string{"SLOW", "EMPTY"}, tasks, "a later Validate leaves earlier tasks alone")
	require.Equal(t, []string{"EMPTY"}, again)

	_, err = b.repo.Validate(fetch.ActionIdentifiers, params("ConfigSection", "NOPE"))
	require.ErrorContains(t, err, "there is no such task section")
}
