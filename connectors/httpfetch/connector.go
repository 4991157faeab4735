package httpfetch

import (
	_ "embed"

	"github.com/connectorhq/connector/fetch"
)

// defaultConfig is the configuration the server runs on when no -config is
// given: 127.0.0.1:7000, data in ./data, one task MyTask crawling
// http://127.0.0.1:8000/.
//
//go:embed default.cfg
var defaultConfig []byte

// Type is the [Connector] Type of the HTTP connector (the default).
const Type = "HTTP"

// Descriptor describes the HTTP connector to the server (package
// connectors lists it under Type).
func Descriptor() *fetch.Descriptor {
	return &fetch.Descriptor{
		Type:          Type,
		Product:       "HTTPCONNECTOR",
		DefaultConfig: defaultConfig,
		Doc:           "docs/connectors/http.md",
		TaskKeys:      TaskKeys,
		Check:         Check,
		FetchActions:  fetchActions(),
		New: func(d fetch.Deps) (fetch.Repository, error) {
			return New(Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger, Crawled: d.Crawled})
		},
	}
}

// fetchActions are the fetch actions the HTTP connector performs.
func fetchActions() []string {
	return []string{fetch.ActionSynchronize, fetch.ActionCollect, fetch.ActionIdentifiers, fetch.ActionDelete, fetch.ActionInsert, fetch.ActionUpdate}
}
