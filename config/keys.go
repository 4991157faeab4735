package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/internal/wording"
)

// sectionDef is one system section of fixed keys: [Connector], [Server],
// [Actions], [Logging], [Ingestion] or [Security]. The table is the one list of their keys: the
// parser, "unknown key" messages and their suggestions all read it.
type sectionDef struct {
	name string
	keys []keyDef
	// check runs after every key of the section has been read.
	check func(c *Config, sec *Section, p *parser) error
}

// keyDef is one key: its documented spelling and how it sets the Config.
// A set error says what is expected.
type keyDef struct {
	name string
	set  func(c *Config, v string) error
}

func (d *sectionDef) key(name string) *keyDef {
	for i := range d.keys {
		if strings.EqualFold(d.keys[i].name, name) {
			return &d.keys[i]
		}
	}
	return nil
}

func (d *sectionDef) keyNames() []string {
	out := make([]string, len(d.keys))
	for i, k := range d.keys {
		out[i] = k.name
	}
	return out
}

func systemSection(lower string) *sectionDef {
	for _, d := range systemDefs {
		if strings.ToLower(d.name) == lower {
			return d
		}
	}
	return nil
}

// positiveDuration is a Duration above zero.
func positiveDuration(v string) (time.Duration, error) {
	d, err := Duration(v)
	if err == nil && d <= 0 {
		err = errors.New("must be more than 0")
	}
	return d, err
}

// commitDelay reads [Actions] CommitDelay: 0 to 100ms (PostgreSQL's
// commit_delay has the same bound; longer would only add latency).
func commitDelay(v string) (time.Duration, error) {
	d, err := Duration(v)
	if err == nil && d > 100*time.Millisecond {
		err = fmt.Errorf("%s is more than 100ms", d)
	}
	return d, err
}

// bindHost reads a host key ([Server] Host, [Cluster] RemoteHost,
// [Ingestion] IngestHost): an IP address, IPv6 in brackets or not ("[::1]"
// is read as "::1"), or a host name; never a port, scheme or path, which
// would otherwise stop start-up only when the server listens, with an error
// that names neither the file nor the line, after the log file was created
// (or, for IngestHost, fail every delivery to the CFS).
func bindHost(v string) (string, error) {
	h := strings.TrimSpace(v)
	if inner, ok := strings.CutPrefix(h, "["); ok {
		if inner, ok = strings.CutSuffix(inner, "]"); ok {
			if a, err := netip.ParseAddr(inner); err == nil && a.Is6() {
				h = inner
			}
		}
	}
	if h == "" {
		return "", errors.New("must not be empty")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return h, nil
	}
	notHost := fmt.Errorf("%s is not an address or host name (expected e.g. 127.0.0.1, 0.0.0.0, ::1 or connector.example.com; no scheme, port or path)", wording.Quote(v))
	if strings.ContainsAny(h, "/@?#\\ \t") {
		return "", notHost
	}
	if host, port, err := net.SplitHostPort(h); err == nil && host != "" && port != "" {
		return "", fmt.Errorf("%s holds a port: give the address alone (e.g. %s) and the port in its own key", wording.Quote(v), host)
	}
	if strings.ContainsAny(h, ":[]") {
		return "", notHost
	}
	return h, nil
}

func nonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

var systemDefs = []*sectionDef{
	{name: "Connector", keys: []keyDef{
		{"Type", func(c *Config, v string) error {
			c.Connector.Type = strings.ToUpper(strings.TrimSpace(v))
			return nonEmpty(c.Connector.Type)
		}},
		{"BrowserTabs", func(c *Config, v string) (err error) { c.Connector.BrowserTabs, err = intIn(v, 0, 256); return }},
		{"BrowserIdleTimeout", func(c *Config, v string) error {
			d, err := Duration(v)
			if err == nil && d <= 0 {
				err = errors.New("must be positive")
			}
			c.Connector.BrowserIdleTimeout = d
			return err
		}},
		{"BrowserTabMaxPages", func(c *Config, v string) (err error) {
			c.Connector.BrowserTabMaxPages, err = intIn(v, 0, 1<<20)
			return
		}},
		{"BrowserExecutable", func(c *Config, v string) error {
			c.Connector.BrowserExecutable = strings.TrimSpace(v)
			return nonEmpty(v)
		}},
	}},
	{name: "Server", keys: []keyDef{
		{"Host", func(c *Config, v string) (err error) { c.Server.Host, err = bindHost(v); return }},
		{"Port", func(c *Config, v string) (err error) { c.Server.Port, err = intIn(v, 0, 65535); return }},
		{"DataDirectory", func(c *Config, v string) error { c.Server.DataDirectory = v; return nonEmpty(v) }},
		{"MaxRequestBytes", func(c *Config, v string) (err error) { c.Server.MaxRequestBytes, err = intIn(v, 1024, 1<<31-1); return }},
		{"MaxRequestParameters", func(c *Config, v string) (err error) {
			c.Server.MaxRequestParameters, err = intIn(v, 16, 1<<20)
			return
		}},
		{"ReadTimeout", func(c *Config, v string) (err error) { c.Server.ReadTimeout, err = positiveDuration(v); return }},
		{"WriteTimeout", func(c *Config, v string) (err error) { c.Server.WriteTimeout, err = positiveDuration(v); return }},
		{"IdleTimeout", func(c *Config, v string) (err error) { c.Server.IdleTimeout, err = positiveDuration(v); return }},
		{"RequestLogSize", func(c *Config, v string) (err error) { c.Server.RequestLogSize, err = intIn(v, 0, 1<<20); return }},
		// 0 would give running actions no time at all: the queue would
		// stop without stopping them, and a clean shutdown would leave
		// them as a crash does (re-run at the next start).
		{"ShutdownTimeout", func(c *Config, v string) (err error) { c.Server.ShutdownTimeout, err = positiveDuration(v); return }},
		{"MaxConnections", func(c *Config, v string) (err error) { c.Server.MaxConnections, err = intIn(v, 0, 1<<24); return }},
		{"MaxConnectionsPerClient", func(c *Config, v string) (err error) {
			c.Server.MaxConnectionsPerClient, err = intIn(v, 0, 1<<24)
			return
		}},
		{"MaxReplyBytesPerClient", func(c *Config, v string) (err error) {
			c.Server.MaxReplyBytesPerClient, err = intIn(v, 0, 1<<30)
			return
		}},
		{"SSLConfig", func(c *Config, v string) error { c.Server.SSLConfig = v; return nonEmpty(v) }},
		{"AllowedHosts", func(c *Config, v string) error {
			c.Server.AllowedHosts = splitList(v)
			if len(c.Server.AllowedHosts) == 0 {
				return errors.New(`lists no host (expected host names or addresses, or * to allow any Host header)`)
			}
			for _, h := range c.Server.AllowedHosts {
				if strings.ContainsAny(h, "/ ") {
					return fmt.Errorf("%s is not a host name or address (expected e.g. connector.example.com, 10.0.0.5; no scheme, path or port)", wording.Quote(h))
				}
			}
			return nil
		}},
	}, check: func(c *Config, sec *Section, p *parser) error {
		if kv, ok := sec.kv("SSLConfig"); ok {
			c.Server.sslLine = kv.Line
		}
		return nil
	}},
	{name: "Service", keys: []keyDef{
		{"ServicePort", func(c *Config, v string) (err error) {
			c.Service.Port, err = intIn(v, 0, 65535)
			c.Service.Enabled = err == nil
			return
		}},
		{"SSLConfig", func(c *Config, v string) error { c.Service.sslConfig = v; return nonEmpty(v) }},
		{"MaxConnections", func(c *Config, v string) (err error) { c.Service.MaxConnections, err = intIn(v, 1, 1<<16); return }},
		{"MaxConnectionsPerClient", func(c *Config, v string) (err error) {
			c.Service.MaxConnectionsPerClient, err = intIn(v, 0, 1<<16)
			return
		}},
	}, check: func(c *Config, sec *Section, p *parser) error {
		if kv, ok := sec.kv("SSLConfig"); ok {
			c.Service.sslLine = kv.Line
			if !c.Service.Enabled {
				return p.err(kv, errors.New("there is no service port to secure: give ServicePort too"))
			}
		}
		if kv, ok := sec.kv("ServicePort"); ok {
			c.Service.portLine = kv.Line
		}
		return nil
	}},
	{name: "Actions", keys: []keyDef{
		{"MaximumThreads", func(c *Config, v string) (err error) { c.Actions.MaximumThreads, err = intIn(v, 1, 4096); return }},
		{"MaximumQueueSize", func(c *Config, v string) (err error) { c.Actions.MaximumQueueSize, err = intIn(v, 1, 1<<31-1); return }},
		{"MaximumFinishedActions", func(c *Config, v string) (err error) {
			c.Actions.MaximumFinishedActions, err = intIn(v, 0, 1<<31-1)
			return
		}},
		{"FinishedActionMaxAge", func(c *Config, v string) (err error) { c.Actions.FinishedActionMaxAge, err = Duration(v); return }},
		{"UseInMemoryDatastore", func(c *Config, v string) (err error) { c.Actions.UseInMemoryDatastore, err = Bool(v); return }},
		{"ProcessingOnRestart", func(c *Config, v string) (err error) {
			c.Actions.ProcessingOnRestart, err = oneOf(v, "Rerun", "Error")
			return
		}},
		{"StopTimeout", func(c *Config, v string) (err error) { c.Actions.StopTimeout, err = positiveDuration(v); return }},
		{"CommitDelay", func(c *Config, v string) (err error) { c.Actions.CommitDelay, err = commitDelay(v); return }},
		{"MaxListResults", func(c *Config, v string) (err error) { c.Actions.MaxListResults, err = intIn(v, 1, 1<<20); return }},
		{"CompactFreePercent", func(c *Config, v string) (err error) { c.Actions.CompactFreePercent, err = intIn(v, 0, 99); return }},
		{"CompactMinimumSizeMB", func(c *Config, v string) (err error) {
			c.Actions.CompactMinimumSizeMB, err = intIn(v, 1, 1<<20)
			return
		}},
		{"CompactTimeout", func(c *Config, v string) (err error) { c.Actions.CompactTimeout, err = positiveDuration(v); return }},
		{"CompactStartTimeout", func(c *Config, v string) (err error) {
			c.Actions.CompactStartTimeout, err = positiveDuration(v)
			return
		}},
	}},
	{name: "Logging", keys: []keyDef{
		{"LogLevel", func(c *Config, v string) (err error) {
			c.Logging.Level, err = oneOf(v, "debug", "info", "warn", "error")
			return
		}},
		{"LogFormat", func(c *Config, v string) (err error) { c.Logging.Format, err = oneOf(v, "text", "json"); return }},
		{"LogFile", func(c *Config, v string) error { c.Logging.File = v; return nil }},
	}},
	{name: "Ingestion", keys: []keyDef{
		{"EnableIngestion", func(c *Config, v string) (err error) { c.Ingestion.Enabled, err = Bool(v); return }},
		{"IngesterType", func(c *Config, v string) (err error) { c.Ingestion.Type, err = oneOf(v, "IDX", "JSONL", "CFS"); return }},
		{"IngestDirectory", func(c *Config, v string) error { c.Ingestion.Directory = v; return nil }},
		{"IngestHost", func(c *Config, v string) (err error) {
			if strings.TrimSpace(v) == "" { // IngesterType=CFS says it is missing
				c.Ingestion.Host = ""
				return nil
			}
			c.Ingestion.Host, err = bindHost(v)
			return err
		}},
		{"IngestPort", func(c *Config, v string) (err error) { c.Ingestion.Port, err = intIn(v, 1, 65535); return }},
		{"IngestSSL", func(c *Config, v string) (err error) { c.Ingestion.SSL, err = Bool(v); return }},
		{"IngestTimeout", func(c *Config, v string) (err error) { c.Ingestion.Timeout, err = positiveDuration(v); return }},
		{"IngestBatchSize", func(c *Config, v string) (err error) { c.Ingestion.BatchSize, err = intIn(v, 1, 100000); return }},
		{"SSLConfig", func(c *Config, v string) error { c.Ingestion.SSLConfig = v; return nonEmpty(v) }},
	}, check: func(c *Config, sec *Section, p *parser) error {
		if kv, ok := sec.kv("SSLConfig"); ok {
			c.Ingestion.sslLine = kv.Line
			if ssl, given := sec.kv("IngestSSL"); given && !c.Ingestion.SSL {
				return p.err(ssl, errors.New("IngestSSL=false but SSLConfig names a TLS section: remove one of them"))
			}
			if c.Ingestion.Type != "CFS" {
				return p.err(kv, fmt.Errorf("IngesterType=%s writes files; SSLConfig is for a CFS reached over HTTPS", c.Ingestion.Type))
			}
			c.Ingestion.SSL = true
		}
		if c.Ingestion.Type != "CFS" {
			// A CFS key under a file target is a CFS the connector
			// would never reach: IngesterType=CFS forgotten, and every
			// document written to a folder no one reads.
			for _, k := range []struct{ key, what string }{
				{"IngestHost", "the address of a CFS"},
				{"IngestPort", "the port of a CFS"},
				{"IngestSSL", "for a CFS reached over HTTPS"},
			} {
				kv, given := sec.kv(k.key)
				if !given || (k.key == "IngestSSL" && !c.Ingestion.SSL) || (k.key == "IngestHost" && c.Ingestion.Host == "") {
					continue
				}
				return p.err(kv, fmt.Errorf("IngesterType=%s writes files; %s is %s: set IngesterType=CFS, or remove %s",
					c.Ingestion.Type, k.key, k.what, k.key))
			}
		}
		in := c.Ingestion
		if in.Enabled && in.Type == "CFS" && (in.Host == "" || in.Port == 0) {
			kv, ok := sec.kv("IngesterType")
			if !ok {
				kv = KeyValue{Key: "IngesterType", Line: sec.Line}
			}
			return p.err(kv, errors.New("IngesterType=CFS needs IngestHost and IngestPort (the CFS server's address)"))
		}
		return nil
	}},
	{name: "Security", keys: []keyDef{
		{"InsertFolders", func(c *Config, v string) (err error) { c.Security.InsertFolders, err = folders(v); return }},
		{"CollectFolders", func(c *Config, v string) (err error) { c.Security.CollectFolders, err = folders(v); return }},
		{"AllowTempFileDeletion", func(c *Config, v string) (err error) { c.Security.AllowTempFileDeletion, err = Bool(v); return }},
		{"DeniedAddresses", func(c *Config, v string) error {
			c.Security.DeniedAddresses = splitList(v)
			_, err := netguard.Parse(c.Security.DeniedAddresses)
			return err
		}},
		{"AESKeyFile", func(c *Config, v string) error { c.Security.AESKeyFile = v; return nonEmpty(v) }},
		{"MaxOverridePageBytes", func(c *Config, v string) (err error) {
			c.Security.MaxOverridePageBytes, err = int64In(v, 1, 1<<40)
			return
		}},
		{"MaxOverrideConcurrency", func(c *Config, v string) (err error) {
			c.Security.MaxOverrideConcurrency, err = intIn(v, 1, 256)
			return
		}},
		{"MaxOverrideRequestTimeout", func(c *Config, v string) (err error) {
			c.Security.MaxOverrideRequestTimeout, err = Duration(v)
			if err == nil && c.Security.MaxOverrideRequestTimeout <= 0 {
				err = errors.New("must be positive")
			}
			return
		}},
	}},
}

// splitList splits a comma-separated value, trimming spaces and dropping
// empty entries. An empty value is an empty, non-nil list.
func splitList(v string) []string {
	out := []string{}
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// folders reads a comma-separated list of folders, each cleaned. An empty
// value is an empty, non-nil list (no folder).
func folders(v string) ([]string, error) {
	out := splitList(v)
	for i, f := range out {
		if strings.ContainsRune(f, 0) {
			return nil, fmt.Errorf("%s is not a folder name", wording.Quote(f))
		}
		out[i] = filepath.Clean(f)
	}
	return out, nil
}

// kv returns the setting of key (case-insensitive) as written.
func (s *Section) kv(key string) (KeyValue, bool) {
	for _, kv := range s.Keys {
		if strings.EqualFold(kv.Key, key) {
			return kv, true
		}
	}
	return KeyValue{}, false
}
