package httpfetch

import (
	"testing"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/messages"
)

// TestConformance runs the fetch contract's conformance suite on the HTTP
// connector: Validate refuses bad settings naming the key, Run honours
// cancellation within the bound while a page is in flight, a Synchronize
// reports its counts, and the identifiers of crawled pages round-trip
// through View and Collect.
func TestConformance(t *testing.T) {
	t.Parallel()
	slow := newSite(t, map[string]*page{"/": {body: "<html><body>slow</body></html>", hold: true}})
	quick := newSite(t, map[string]*page{"/": htmlPage("Home", "/a"), "/a": htmlPage("A")})
	collectTo := t.TempDir()
	newRepo := func(t *testing.T) fetch.Repository {
		b := setup(t, siteConfig(quick)+"[Slow]\nUrl="+slow.URL+"/\n", setupOpts{extra: "[Security]\nCollectFolders=" + collectTo + "\n"})
		return b.repo
	}
	fetchtest.Run(t, fetchtest.Conformance{
		Descriptor: Descriptor(),
		New:        newRepo,
		BadSettings: []fetchtest.BadSetting{
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "MyTask", "Depth", "deep")}, Key: "Depth"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "NoSuchTask")}, Key: "ConfigSection"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionCollect, Params: params("Destination", collectTo)}, Key: "Identifiers"},
		},
		BadKeys: []fetchtest.BadKey{
			{Key: "NoSuchSetting", Value: "1", Unknown: true},
			{Key: "Depth", Value: "deep"},
		},
		Long:    fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "Slow")},
		Started: func(*fetch.Job) bool { return slow.held.Load() > 0 },
		Counted: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "MyTask")},
		Identifiers: func(t *testing.T, _ fetch.Repository, _ []*messages.Element) []string {
			return []string{EncodeIdentifier("MyTask", quick.URL+"/a")}
		},
		CollectParams: params("Destination", collectTo),
	})
}
