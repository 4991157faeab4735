package webfetch

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
)

// TestFetchActionsOnRenderedPages: the HTTP connector's fetch actions
// work on the Web connector's rendered pages. Identifiers lists every
// page under its rendered title; View shows the rendered HTML (with the
// text a script wrote); Update fetches and renders the page again (a
// script's new output and the metadata reach the target); Delete removes
// a page; TaskList lists the task.
func TestFetchActionsOnRenderedPages(t *testing.T) {
	t.Parallel()
	s := newScriptSite(t, 4)
	n := s.reachable()
	b := setup(t, taskConfig(s.URL+"/", "Depth=-1"))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: uint64(n), Added: uint64(n)}, countsOf(job, "MYTASK"))
	one := httpfetch.EncodeIdentifier("MyTask", s.URL+pagePath(1))

	_, res, err := b.run(t, fetch.ActionIdentifiers, params("ConfigSection", "MyTask"))
	require.NoError(t, err)
	require.Len(t, res, 1)
	names := map[string]string{}
	for _, el := range res[0].Children {
		id, err := httpfetch.DecodeIdentifier(el.Text)
		require.NoError(t, err)
		for _, a := range el.Attrs {
			if a.Name == "name" {
				names[id.Reference] = a.Value
			}
		}
	}
	require.Len(t, names, n)
	for i := 0; i < n; i++ {
		assert.Equal(t, "Rendered page "+strconv.Itoa(i), names[s.URL+pagePath(i)], "page %d named by its rendered title", i)
	}

	v, err := b.repo.View(context.Background(), one, nil)
	require.NoError(t, err)
	assert.Contains(t, string(v.Content), "sentence number 1 from the data", "View shows the rendered HTML")
	assert.Contains(t, string(v.Content), "<a ", "with the links scripts created")

	s.setWords(1, "words the script writes for the update")
	job, _, err = b.run(t, fetch.ActionUpdate, params("IdentifiersXML", `<identifier value="`+one+`"><metadata name="CATEGORY" value="news"/></identifier>`))
	require.NoError(t, err)
	assert.EqualValues(t, 1, countsOf(job, "MYTASK").Updated)
	d := b.target.doc(s.URL + pagePath(1))
	require.NotNil(t, d)
	assert.Equal(t, "news", field(d, "CATEGORY"))
	assert.Contains(t, d.Content, "words the script writes for the update", "Update renders the page again")
	assert.Equal(t, "true", field(d, FieldRendered))

	job, _, err = b.run(t, fetch.ActionDelete, params("Identifiers", one))
	require.NoError(t, err)
	assert.EqualValues(t, 1, countsOf(job, "MYTASK").Deleted)
	assert.Nil(t, b.target.doc(s.URL+pagePath(1)))

	tl, ok := fetch.Repository(b.repo).(fetch.TaskLister)
	require.True(t, ok, "the Web connector answers TaskList")
	tasks, err := tl.TaskList()
	require.NoError(t, err)
	var listed []string
	for _, ti := range tasks {
		listed = append(listed, ti.Name)
	}
	assert.Contains(t, listed, "MYTASK")
}
