package fetch

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/store"
)

// Descriptor describes one connector type to the server: everything the
// server needs to know about a connector before its repository exists. A
// server runs one connector type, the one [Connector] Type names (package
// connectors maps the names to descriptors).
type Descriptor struct {
	// Type is the value of [Connector] Type that selects this connector,
	// upper case: HTTP, WEB, GOOGLEMAIL, ...
	Type string
	// Product is the connector's product type, as IDOL names its
	// connector servers (HTTPCONNECTOR): GetVersion's producttypecsv and
	// GetStatus report it.
	Product string
	// DefaultConfig is the configuration the server runs on when no
	// -config is given (embedded in the binary).
	DefaultConfig []byte
	// Doc is the connector's documentation page, relative to the
	// repository root (docs/connectors/http.md).
	Doc string
	// TaskKeys checks one setting of a task section, [FetchTasks] or
	// [Default] (config.TaskKeysFunc): the task keys this connector
	// accepts.
	TaskKeys config.TaskKeysFunc
	// Check validates a loaded configuration's tasks as a whole (start
	// URLs, resolved settings) without touching anything on disk.
	Check func(*config.Config) error
	// FetchActions are the fetch actions the connector performs (upper
	// case); its Repository's FetchActions returns the same.
	FetchActions []string
	// New builds the connector's repository.
	New func(Deps) (Repository, error)
}

// Deps are what a repository is built from. The server creates them from
// the configuration and owns them: the repository must not close them.
type Deps struct {
	Config *config.Config
	Store  store.Store
	Target ingest.Target // nil when ingestion is disabled
	Logger *slog.Logger
	// Crawled, when set, receives the figures of each crawl as it ends
	// (metrics); a repository that crawls reports them.
	Crawled func(CrawlStats)
}

// CrawlStats are the figures of one finished crawl.
type CrawlStats struct {
	Pages       int64 // pages fetched (200, 203)
	NotModified int64 // pages found not modified (304, or a sitemap's lastmod)
	Requests    int64 // HTTP requests sent (pages, redirects, robots.txt, sitemaps)
	Bytes       int64 // response body bytes read
}

// Validate checks that a descriptor is complete.
func (d *Descriptor) Validate() error {
	var missing []string
	if d.Type == "" || d.Type != strings.ToUpper(d.Type) {
		return fmt.Errorf("fetch: connector type %q must be upper case and not empty", d.Type)
	}
	if d.Product == "" {
		missing = append(missing, "Product")
	}
	if len(d.DefaultConfig) == 0 {
		missing = append(missing, "DefaultConfig")
	}
	if d.TaskKeys == nil {
		missing = append(missing, "TaskKeys")
	}
	if d.Check == nil {
		missing = append(missing, "Check")
	}
	if len(d.FetchActions) == 0 {
		missing = append(missing, "FetchActions")
	}
	if d.New == nil {
		missing = append(missing, "New")
	}
	if len(missing) > 0 {
		return fmt.Errorf("fetch: connector %s: the descriptor lacks %s", d.Type, strings.Join(missing, ", "))
	}
	for _, a := range d.FetchActions {
		if a != strings.ToUpper(a) || a == "" {
			return fmt.Errorf("fetch: connector %s: fetch action %q must be upper case", d.Type, a)
		}
	}
	return nil
}
