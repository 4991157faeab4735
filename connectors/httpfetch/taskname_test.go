package httpfetch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
)

// A request that names a task section in another spelling the
// configuration accepts for it (a Kelvin sign for its K, a long s for its
// s: config.HasTask folds case as Unicode does) acts on that task under
// its configured name: Validate returns the task as configured, so the
// queue's one-action-per-task rule (fetch.Exclusive, keyed by these
// names) holds it. On main it returned the name as spelt, upper-cased
// ("MYTAS\u212a", whose Kelvin sign has no upper case of its own): a
// Synchronize of ConfigSection=MyTas%E2%84%AA ran beside the running
// Synchronize of MyTask, both on the task's datastore, which the rule
// exists to prevent.
func TestTaskNamedInAnotherSpellingIsTheConfiguredTask(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\nNumber=2\n0=MyTask\n1=Listed\n\n[MyTask]\nUrl=http://127.0.0.1:9/\n\n[Listed]\nUrl=http://127.0.0.1:9/\n\n[Other]\nUrl=http://127.0.0.1:9/\n",
		setupOpts{noTarget: true})
	for _, spelt := range []string{"MyTas\u212a", "mytas\u212a", "MyTa\u017fk", "MYTASK", " mytask "} {
		for _, name := range []string{"ConfigSection", "TaskSections"} {
			tasks, err := b.repo.Validate(fetch.ActionSynchronize, params(name, spelt))
			require.NoError(t, err, "%s=%q", name, spelt)
			require.Equal(t, []string{"MYTASK"}, tasks, "%s=%q", name, spelt)
		}
	}
	tasks, err := b.repo.Validate(fetch.ActionSynchronize, params("TaskSections", "Lis\u0442ed,o\u0442her,\u212aelvin"))
	require.Error(t, err, "a Cyrillic letter spells nothing: %v", tasks)
	tasks, err = b.repo.Validate(fetch.ActionSynchronize, params("TaskSections", "mytas\u212a,MyTask,o\u017fther"))
	if err == nil { // "o\u017fther" names no task: refused
		t.Fatalf("accepted %v", tasks)
	}
	tasks, err = b.repo.Validate(fetch.ActionSynchronize, params("TaskSections", "mytas\u212a,MyTask,OTHER"))
	require.NoError(t, err)
	require.Equal(t, []string{"MYTASK", "OTHER"}, tasks, "one task, however spelt")
}
