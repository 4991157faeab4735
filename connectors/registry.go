// Package connectors is the registry of connector types: it maps the
// [Connector] Type of a configuration to the connector's fetch.Descriptor,
// and loads a configuration (or the connector's embedded default) for the
// connector it names. Each connector lives in a folder of its own below
// this one (connectors/httpfetch, ...); docs/adding-a-connector.md says how
// to add one.
package connectors

import (
	"fmt"
	"slices"
	"strings"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/connectors/mailfetch"
	"github.com/connectorhq/connector/connectors/objectivefetch"
	"github.com/connectorhq/connector/connectors/webexfetch"
	"github.com/connectorhq/connector/connectors/webfetch"
	"github.com/connectorhq/connector/fetch"
)

// Registry is a set of connector types.
type Registry struct {
	byType map[string]*fetch.Descriptor
	types  []string // sorted
	def    string
}

// NewRegistry returns a registry of the given connectors; the first is the
// default (the type of a configuration without [Connector] Type must be
// config.DefaultType). Each descriptor must be complete and its type
// unique.
func NewRegistry(ds ...*fetch.Descriptor) (*Registry, error) {
	if len(ds) == 0 {
		return nil, fmt.Errorf("connectors: no connector")
	}
	r := &Registry{byType: map[string]*fetch.Descriptor{}, def: ds[0].Type}
	for _, d := range ds {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		if _, dup := r.byType[d.Type]; dup {
			return nil, fmt.Errorf("connectors: type %s registered twice", d.Type)
		}
		r.byType[d.Type] = d
		r.types = append(r.types, d.Type)
	}
	slices.Sort(r.types)
	return r, nil
}

// Builtin is the registry of the connectors this binary links, the
// default (HTTP) first.
var Builtin = must(NewRegistry(
	httpfetch.Descriptor(),
	mailfetch.Descriptor(),
	webexfetch.Descriptor(),
	objectivefetch.Descriptor(),
	webfetch.Descriptor(),
))

func must(r *Registry, err error) *Registry {
	if err != nil {
		panic(err)
	}
	return r
}

// Types returns the known connector types, sorted.
func (r *Registry) Types() []string { return slices.Clone(r.types) }

// Default returns the descriptor of the default type.
func (r *Registry) Default() *fetch.Descriptor { return r.byType[r.def] }

// Lookup returns the descriptor of a connector type (any case). An
// unknown type is an error that lists the known ones.
func (r *Registry) Lookup(typ string) (*fetch.Descriptor, error) {
	if d, ok := r.byType[strings.ToUpper(strings.TrimSpace(typ))]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("unknown connector type %q: known types are %s", typ, strings.Join(r.types, ", "))
}

// Load reads the configuration at path, or the default connector's
// embedded default when path is "", checks its task settings against the
// connector its [Connector] Type names, and runs the connector's own
// check of the tasks (Descriptor.Check). It touches nothing on disk. An
// unknown type is a *config.Error at [Connector] Type listing the known
// types.
func (r *Registry) Load(path string) (*config.Config, *fetch.Descriptor, error) {
	cfg, desc, err := r.Read(path)
	if err != nil {
		return nil, nil, err
	}
	if err := desc.Check(cfg); err != nil {
		return nil, nil, err
	}
	return cfg, desc, nil
}

// Read is Load without the connector's check of the tasks as a whole
// (Descriptor.Check): the file's syntax, server-wide keys and task keys.
func (r *Registry) Read(path string) (*config.Config, *fetch.Descriptor, error) {
	name, data := path, r.Default().DefaultConfig
	if path == "" {
		name = config.DefaultName
	} else {
		var err error
		if data, err = config.ReadFile(path); err != nil {
			return nil, nil, err
		}
	}
	return r.parse(name, data)
}

// Parse is Load for configuration text; name is used in errors.
func (r *Registry) Parse(name string, data []byte) (*config.Config, *fetch.Descriptor, error) {
	cfg, desc, err := r.parse(name, data)
	if err != nil {
		return nil, nil, err
	}
	if err := desc.Check(cfg); err != nil {
		return nil, nil, err
	}
	return cfg, desc, nil
}

func (r *Registry) parse(name string, data []byte) (*config.Config, *fetch.Descriptor, error) {
	var desc *fetch.Descriptor
	cfg, err := config.ParseFor(name, data, func(typ string) (config.TaskKeysFunc, error) {
		d, err := r.Lookup(typ)
		if err != nil {
			return nil, err
		}
		desc = d
		return d.TaskKeys, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return cfg, desc, nil
}

// Lookup looks a type up in Builtin.
func Lookup(typ string) (*fetch.Descriptor, error) { return Builtin.Lookup(typ) }

// Load loads a configuration for a Builtin connector (Registry.Load).
func Load(path string) (*config.Config, *fetch.Descriptor, error) { return Builtin.Load(path) }

// Read reads a configuration for a Builtin connector (Registry.Read).
func Read(path string) (*config.Config, *fetch.Descriptor, error) { return Builtin.Read(path) }
