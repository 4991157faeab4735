package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/connectorhq/connector/internal/wording"
)

// Cluster is [Cluster]: cluster mode (docs/cluster.md). Off by default: the
// server is then one node with its embedded store.
type Cluster struct {
	// Enabled makes the server a node of a cluster: membership in etcd,
	// actions and datastores in a shared PostgreSQL database.
	Enabled bool
	// Name of the cluster; the nodes of one cluster share it. Default
	// "connector".
	Name string
	// Etcd are the etcd client URLs (http://host:port) of the membership
	// service.
	Etcd []string
	// Store is the shared store's PostgreSQL connection URL
	// (postgres://user@host:port/database?sslmode=...). Its password
	// comes from StorePassword, or PostgreSQL's own PGPASSWORD or
	// password file, never from the URL.
	Store string
	// StorePassword is the database password, in clear or in IDOL's
	// encrypted form ([Security] AESKeyFile decrypts it).
	StorePassword string
	// RemoteHost and RemotePort are where the node listens for the other
	// nodes (protoactor remoting). Default: [Server] Host, any free port.
	RemoteHost string
	RemotePort int
	// AdvertisedAddress is host:port as the other nodes reach this one,
	// when it differs from what the node listens on (NAT, containers).
	AdvertisedAddress string
	// LeaseTTL: a node that stops renewing its membership (dead, paused,
	// cut off) is dropped this long after its last renewal, and its
	// actions are taken over. Default 5s.
	LeaseTTL time.Duration
	// RequestTimeout bounds a request to another node. Default 2s.
	RequestTimeout time.Duration
}

var clusterDef = &sectionDef{name: "Cluster", keys: []keyDef{
	{"Enabled", func(c *Config, v string) (err error) { c.Cluster.Enabled, err = Bool(v); return }},
	{"Name", func(c *Config, v string) error {
		c.Cluster.Name = strings.TrimSpace(v)
		if strings.ContainsAny(c.Cluster.Name, "/ \t") {
			return fmt.Errorf("%s: a cluster name has no slash or space", wording.Quote(v))
		}
		return nonEmpty(c.Cluster.Name)
	}},
	{"Etcd", func(c *Config, v string) error {
		c.Cluster.Etcd = splitList(v)
		if len(c.Cluster.Etcd) == 0 {
			return errors.New("lists no etcd endpoint (expected http://host:port, comma-separated)")
		}
		for i, e := range c.Cluster.Etcd {
			// An entry with user information may hold a password: the
			// error names it by its place, never by its text.
			shown := wording.Quote(e)
			if strings.Contains(e, "@") {
				shown = fmt.Sprintf("entry %d", i+1)
			}
			u, err := url.Parse(e)
			if err == nil && u.User != nil {
				// The etcd client takes only the host from a URL: a user
				// and password there would be ignored, and repeated by
				// every error that lists the endpoints.
				return fmt.Errorf("%s holds a user name or password, which the connector never sends (it does not log in to etcd): expected http://host:port or https://host:port", shown)
			}
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s is not an etcd client URL (expected http://host:port or https://host:port)", shown)
			}
		}
		return nil
	}},
	{"Store", func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			return errors.New("is not a PostgreSQL URL (expected postgres://user@host:port/database)")
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			return errors.New("holds a password: give it as StorePassword (which may be encrypted), PGPASSWORD or a PostgreSQL password file, so that it never shows in the URL")
		}
		c.Cluster.Store = v
		return nil
	}},
	{"StorePassword", func(c *Config, v string) error { c.Cluster.StorePassword = v; return nonEmpty(v) }},
	{"RemoteHost", func(c *Config, v string) error {
		// Checked as [Server] Host is, but kept as written: remoting
		// writes host:port without adding brackets to an IPv6 address.
		c.Cluster.RemoteHost = strings.TrimSpace(v)
		_, err := bindHost(v)
		return err
	}},
	{"RemotePort", func(c *Config, v string) (err error) { c.Cluster.RemotePort, err = intIn(v, 0, 65535); return }},
	{"AdvertisedAddress", func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		host, port, err := net.SplitHostPort(v)
		if err != nil || strings.TrimSpace(host) == "" {
			return fmt.Errorf("%s is not host:port (expected e.g. node1.example.com:7100)", wording.Quote(v))
		}
		// The other nodes dial it: a port that is no number (host:abc)
		// made every join fail, reported at Etcd.
		if _, err := intIn(port, 1, 65535); err != nil {
			return fmt.Errorf("%s: its port: %w", wording.Quote(v), err)
		}
		// The other nodes dial it: 0.0.0.0 or :: takes each to its own
		// machine, so that no request crossed between machines.
		if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
			return fmt.Errorf("%s is every interface of a machine, not an address the other nodes can reach this node at (each would dial its own machine): give this node's address as they reach it", wording.Quote(v))
		}
		c.Cluster.AdvertisedAddress = v
		return nil
	}},
	{"LeaseTTL", func(c *Config, v string) (err error) {
		c.Cluster.LeaseTTL, err = Duration(v)
		if err == nil && (c.Cluster.LeaseTTL < time.Second || c.Cluster.LeaseTTL%time.Second != 0) {
			err = fmt.Errorf("%s: expected whole seconds, at least 1s", wording.Quote(v))
		}
		return
	}},
	{"RequestTimeout", func(c *Config, v string) (err error) {
		c.Cluster.RequestTimeout, err = Duration(v)
		if err == nil && c.Cluster.RequestTimeout <= 0 {
			err = errors.New("must be positive")
		}
		return
	}},
}, check: func(c *Config, sec *Section, p *parser) error {
	if !c.Cluster.Enabled {
		return nil
	}
	for _, k := range []string{"Etcd", "Store"} {
		if _, ok := sec.kv(k); !ok {
			kv, _ := sec.kv("Enabled")
			return p.err(kv, fmt.Errorf("cluster mode needs %s too (%s)", k, map[string]string{
				"Etcd": "the etcd client URLs", "Store": "the shared PostgreSQL database's URL"}[k]))
		}
	}
	return nil
}}

func init() {
	systemDefs = append(systemDefs, clusterDef)
}

func (c *Cluster) setDefaults() {
	*c = Cluster{Name: "connector", LeaseTTL: 5 * time.Second, RequestTimeout: 2 * time.Second}
}
