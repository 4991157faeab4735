package httpfetch

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/ingest"
)

// A page whose document no ingestion target can take (here an
// extension's field whose name has a space, read from the page; any
// document failing ingest.Document.Validate) made the target refuse the
// whole Add it was in: every other page of the batch was refused with it
// (ingestfailed and a failure each, their records left undelivered), and
// again by every run, since the same pages were batched together again.
// It is refused alone now; the other pages are delivered and recorded.
func TestSyncUndeliverablePageDoesNotRefuseItsBatch(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":    htmlPage("Home", "/a", "/bad", "/c"),
		"/a":   htmlPage("A"),
		"/bad": htmlPage("Bad"),
		"/c":   htmlPage("C"),
	})
	begin := func(context.Context, TaskStart) (*TaskRun, error) {
		return &TaskRun{Document: func(p *crawl.Page, d *ingest.Document) {
			if strings.HasSuffix(p.FinalURL, "/bad") {
				d.Fields = append(d.Fields, ingest.Field{Name: "FROM PAGE", Value: "x"})
			}
		}}, nil
	}
	b := setup(t, siteConfig(s), setupOpts{begin: begin})
	job := b.sync(t)
	require.Equal(t, []string{s.URL + "/", s.URL + "/a", s.URL + "/c"}, b.target.refs())
	require.Equal(t, cnt{Seen: 4, Added: 4, IngestAdded: 3, IngestFailed: 1}, countsOf(job, "MYTASK"))
	fl := job.Failures()
	require.NotNil(t, fl)
	require.Len(t, fl.Items, 1)
	require.Equal(t, s.URL+"/bad", fl.Items[0].Url)
	require.Contains(t, fl.Items[0].Reason, "FROM PAGE")

	// The next run sends the refused page alone again; the others are
	// unchanged.
	b.target.reset()
	job = b.sync(t)
	require.Empty(t, b.target.refs())
	require.Equal(t, cnt{Seen: 4, Added: 1, Unchanged: 3, IngestFailed: 1}, countsOf(job, "MYTASK"))
}
