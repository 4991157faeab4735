package httpfetch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
)

// A site whose "sid" query parameter names content (/story?sid=1 and
// /story?sid=2 are two articles) is crawled whole by a task that lists
// the session parameters to remove without it (SessionParameters), and
// View fetches such a page by its own URL. By default sid is a session
// id, removed from every URL, so the two articles are one URL (/story,
// here not a page at all) and neither is indexed; before, no setting
// could keep it.
func TestSessionParametersKeepAParameterThatIsContent(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":            htmlPage("Home", "/story?sid=1", "/story?sid=2"),
		"/story?sid=1": htmlPage("Story one"),
		"/story?sid=2": htmlPage("Story two"),
	})
	cfg := "[FetchTasks]\n0=News\n[News]\nUrl=" + s.URL + "/\n"

	def := setup(t, cfg)
	job := def.sync(t)
	require.EqualValues(t, 1, countsOf(job, "NEWS").Added, "by default sid is a session id: the stories are /story, which is not a page")

	b := setup(t, cfg+"SessionParameters=jsessionid, phpsessid\n")
	job = b.sync(t)
	require.EqualValues(t, 3, countsOf(job, "NEWS").Added)
	require.True(t, b.target.holds(s.URL+"/story?sid=1"))
	require.True(t, b.target.holds(s.URL+"/story?sid=2"))
	v, err := b.repo.View(t.Context(), EncodeIdentifier("News", s.URL+"/story?sid=2"), nil)
	require.NoError(t, err)
	require.Contains(t, string(v.Content), "Story two")

	// Empty: no query parameter is removed.
	e := setup(t, cfg+"SessionParameters=\n")
	job = e.sync(t)
	require.EqualValues(t, 3, countsOf(job, "NEWS").Added)

	_, err = config.Parse("test.cfg", []byte(cfg+"SessionParameters=a=b\n"), TaskKeys)
	require.ErrorContains(t, err, "SessionParameters")
}
