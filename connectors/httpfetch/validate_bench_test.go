package httpfetch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
)

// BenchmarkValidate is the HTTP connector's share of every submit: the
// queue calls Validate (and Seal) for each fetch action it admits. The
// actions are the bench's (httpbench submits Identifiers of task EMPTY)
// and a plain Synchronize of one task.
func BenchmarkValidate(b *testing.B) {
	bu := setup(b, "[FetchTasks]\nNumber=2\n0=EMPTY\n1=SLOW\n\n[EMPTY]\nUrl=http://127.0.0.1:9/\n\n[SLOW]\nUrl=http://127.0.0.1:9/\n",
		setupOpts{noTarget: true})
	for _, c := range []struct {
		name, action string
		kv           []string
	}{
		{"Identifiers", fetch.ActionIdentifiers, []string{"ConfigSection", "EMPTY"}},
		{"Synchronize", fetch.ActionSynchronize, []string{"TaskSections", "EMPTY"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := params(c.kv...)
			b.ReportAllocs()
			for b.Loop() {
				tasks, err := bu.repo.Validate(c.action, p)
				if err != nil || len(tasks) != 1 {
					require.NoError(b, err)
					b.Fatalf("tasks %v", tasks)
				}
				if _, err := bu.repo.Seal(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
