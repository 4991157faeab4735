package httpfetch

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
)

// A page too large for CFS on its own failed its whole batch: CFS took
// the other pages (the request split in halves), but every page of the
// batch was counted as refused, listed among the failures and left
// undelivered in its record, so every run delivered them all again, to
// have the large one refused again. Only that page fails now.
func TestSyncOnlyThePageTooLargeForCFSFails(t *testing.T) {
	links := []string{"/a", "/b", "/big", "/c", "/d"}
	pages := map[string]*page{"/": htmlPage("home", links...)}
	for _, l := range links {
		pages[l] = htmlPage("page "+l, "/")
	}
	pages["/big"] = htmlPage("big "+strings.Repeat("word ", 2000), "/")
	s := newSite(t, pages)
	b := setup(t, siteConfig(s))
	tgt, took := resttest.SizeLimitedCFS(t, 6000, 10)
	b.repo.target = tgt

	job := b.sync(t)
	c := countsOf(job, "MyTask")
	require.EqualValues(t, 5, c.IngestAdded, "%+v", c)
	require.EqualValues(t, 1, c.IngestFailed, "%+v", c)
	fails := job.Failures()
	require.NotNil(t, fails)
	require.Len(t, fails.Items, 1, "%+v", fails.Items)
	require.Equal(t, s.URL+"/big", fails.Items[0].Url)
	require.Contains(t, fails.Items[0].Reason, "too large for CFS on its own")
	first := len(took())
	require.Equal(t, 5, first)

	job = b.sync(t)
	c = countsOf(job, "MyTask")
	require.EqualValues(t, 0, c.IngestAdded, "the pages CFS took are not sent again: %+v", c)
	require.EqualValues(t, 1, c.IngestFailed, "%+v", c)
	require.Len(t, took(), first, "nothing more taken")
}

// The same for Insert: every document of the batch was answered as
// failed (and counted so), although CFS took all but the large one, so a
// client inserted them again.
func TestInsertOnlyTheDocumentTooLargeForCFSFails(t *testing.T) {
	b := setup(t, "[FetchTasks]\n0=MyTask\n\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	tgt, took := resttest.SizeLimitedCFS(t, 6000, 10)
	b.repo.target = tgt
	xml := `<insertXML>
<insert><reference>doc-1</reference><file><type>drecontent</type><content>one</content></file></insert>
<insert><reference>doc-2</reference><file><type>drecontent</type><content>` + strings.Repeat("big ", 2000) + `</content></file></insert>
<insert><reference>doc-3</reference><file><type>drecontent</type><content>three</content></file></insert>
</insertXML>`
	job, res := b.run(t, fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", xml))
	ok, failed := results(t, res)
	require.Len(t, ok, 2, "%v %v", ok, failed)
	require.Len(t, failed, 1)
	require.Equal(t, []string{"doc-1", "doc-3"}, took())
	require.Equal(t, cnt{Inserted: 2, IngestAdded: 2, IngestFailed: 1, Errors: 1}, countsOf(job, "MYTASK"))
}

// The page CFS refused on its own was logged as "a document the ingestion
// target cannot take", the line of a document no target can take (one
// that fails validation), where deploy.md and the other connectors say
// "refused on its own": an operator could not tell a page to fix from
// one too large for CFS's limit, nor find the documented line.
func TestSyncLogsThePageCFSRefusedOnItsOwnAsSuch(t *testing.T) {
	var buf testlog.Buffer
	pages := map[string]*page{"/": htmlPage("home", "/a", "/big"), "/a": htmlPage("page a", "/")}
	pages["/big"] = htmlPage("big "+strings.Repeat("word ", 2000), "/")
	s := newSite(t, pages)
	b := setup(t, siteConfig(s), setupOpts{logger: slog.New(slog.NewTextHandler(&buf, nil))})
	tgt, _ := resttest.SizeLimitedCFS(t, 6000, 10)
	b.repo.target = tgt
	c := countsOf(b.sync(t), "MyTask")
	require.EqualValues(t, 1, c.IngestFailed, "%+v", c)
	l := buf.String()
	require.Regexp(t, `msg="delivery refused: a document the ingestion target refused on its own; it is sent again by the next run" .* url=`+regexp.QuoteMeta(s.URL)+`/big `, l)
	require.NotContains(t, l, "cannot take")
}
