package webfetch

import (
	_ "embed"

	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
)

// defaultConfig is the configuration the server runs on with [Connector]
// Type=WEB and no task of its own: see default.cfg.
//
//go:embed default.cfg
var defaultConfig []byte

// Type is the [Connector] Type of the Web connector.
const Type = "WEB"

// Product is its product type (GetVersion, GetStatus), IDOL's name.
const Product = "WEBCONNECTOR"

// schema is the Web connector's task settings: the HTTP connector's and
// its own.
var schema = httpfetch.NewSchema(extension)

// TaskKeys validates one task setting of the Web connector
// (config.TaskKeysFunc).
func TaskKeys(key, value string) error { return schema.TaskKeys(key, value) }

// Descriptor describes the Web connector to the server (package
// connectors lists it under Type).
func Descriptor() *fetch.Descriptor {
	return &fetch.Descriptor{
		Type:          Type,
		Product:       Product,
		DefaultConfig: defaultConfig,
		Doc:           "docs/connectors/web.md",
		TaskKeys:      TaskKeys,
		Check:         schema.Check,
		FetchActions:  httpfetch.Descriptor().FetchActions,
		New: func(d fetch.Deps) (fetch.Repository, error) {
			return New(Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger, Crawled: d.Crawled})
		},
	}
}
