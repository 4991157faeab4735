package webfetch

import (
	"testing"

	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/messages"
)

// TestConformance runs the fetch contract's conformance suite on the Web
// connector: Validate refuses bad settings naming the key (its own
// settings included), Run honours cancellation within the bound while a
// page is in flight, a Synchronize reports its counts, and the
// identifiers of rendered pages round-trip through View (which shows the
// rendered HTML) and Collect.
func TestConformance(t *testing.T) {
	t.Parallel()
	slow := newSite(t)
	slow.hold("/")
	quick := newScriptSite(t, 3)
	collectTo := t.TempDir()
	fetchtest.Run(t, fetchtest.Conformance{
		Descriptor: Descriptor(),
		New: func(t *testing.T) fetch.Repository {
			return setup(t, taskConfig(quick.URL+"/", "Depth=-1")+"[Slow]\nUrl="+slow.URL+"/\n[Security]\nCollectFolders="+collectTo+"\n").repo
		},
		BadSettings: []fetchtest.BadSetting{
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "MyTask", "Depth", "deep")}, Key: "Depth"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "MyTask", "RenderDeadline", "-3s")}, Key: "RenderDeadline"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "MyTask", "ClippingMode", "SMARTPRINT")}, Key: "ClippingMode"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "MyTask", "LoginUrl", "http://127.0.0.1/login")}, Key: "LoginUrl"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "NoSuchTask")}, Key: "ConfigSection"},
		},
		BadKeys: []fetchtest.BadKey{
			{Key: "NoSuchSetting", Value: "1", Unknown: true},
			{Key: "RenderDeadline", Value: "soon"},
			{Key: "ClippingMode", Value: "SMARTPRINT"},
			{Key: "RenderResourceTypes", Value: "Script,Gifs"},
			{Key: "RenderUrlRegex", Value: "("},
		},
		Long:    fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "Slow")},
		Started: func(*fetch.Job) bool { return slow.held.Load() > 0 },
		Counted: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: params("ConfigSection", "MyTask")},
		Identifiers: func(t *testing.T, _ fetch.Repository, _ []*messages.Element) []string {
			return []string{httpfetch.EncodeIdentifier("MyTask", quick.URL+"/page/1")}
		},
		CollectParams: params("Destination", collectTo),
	})
}
