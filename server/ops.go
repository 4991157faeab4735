package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/readfile"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/tlsconf"
)

// tlsConfigs are the TLS configurations of the ports and of ingestion (nil:
// plain).
type tlsConfigs struct {
	aci, service, ingest *tls.Config
	// reload are the ports' certificates, which SIGHUP and a change of
	// their files load again (Server.ReloadTLS).
	reload []portTLS
}

// portTLS is a port's reloadable TLS configuration.
type portTLS struct {
	port string // ACI, service
	r    *tlsconf.Reloader
}

// loadTLS loads the certificates of every TLS section in use. An error
// names the file, the line, the section and the key.
func loadTLS(cfg *config.Config) (tlsConfigs, error) {
	var out tlsConfigs
	var key *secret.Key
	for _, o := range []*config.SSLOptions{cfg.Server.SSL, cfg.Service.SSL, cfg.Ingestion.SSLOptions} {
		if o != nil && secret.IsEncrypted(o.PrivateKeyPassword) && key == nil {
			k, err := secret.LoadKeyFile(cfg.Security.AESKeyFile)
			if err != nil {
				return out, &config.Error{File: cfg.Path, Line: o.KeyLine("SSLPrivateKeyPassword"), Section: o.Section,
					Key: "SSLPrivateKeyPassword", Err: err}
			}
			key = k
		}
	}
	for _, p := range []struct {
		name string
		o    *config.SSLOptions
		out  **tls.Config
	}{{"ACI", cfg.Server.SSL, &out.aci}, {"service", cfg.Service.SSL, &out.service}} {
		if p.o == nil {
			continue
		}
		r, err := tlsconf.NewReloader(p.o, key)
		if err != nil {
			return out, tlsconf.ConfigError(cfg.Path, p.o, err)
		}
		*p.out = r.Config()
		out.reload = append(out.reload, portTLS{p.name, r})
	}
	var err error
	if o := cfg.Ingestion.SSLOptions; o != nil {
		if out.ingest, err = tlsconf.Client(o, key); err != nil {
			return out, tlsconf.ConfigError(cfg.Path, o, err)
		}
	}
	return out, nil
}

// checkKeyFile refuses a [Security] AESKeyFile that exists but is no
// regular file (a FIFO, a folder, a device), or that other users may read
// or write (secret.CheckKeyFileMode): the key is read when a secret
// first needs it, so such a file was accepted at start-up and every
// request with a secret failed later (or, readable by every user, was
// used). A missing file is fine (it is created when first needed), and
// one that cannot be read is reported when it is read.
func checkKeyFile(cfg *config.Config) error {
	p := cfg.Security.AESKeyFile
	fi, err := os.Stat(p) // follows a symbolic link; never opens the file
	if err != nil {
		return nil
	}
	if !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (%s)", p, readfile.Kind(fi.Mode()))
	} else if err = secret.CheckKeyFileMode(p, fi.Mode()); err == nil {
		return nil
	}
	return &config.Error{File: cfg.Path, Line: cfg.Line("Security", "AESKeyFile"), Section: "Security", Key: "AESKeyFile", Err: err}
}

// allowedHosts is what a request's Host header may name: [Server]
// AllowedHosts, or by default the names of this machine as the bind address
// reaches it: localhost and the loopback addresses always; the bind address;
// and, when bound to every interface, the host name and every interface's
// address. A browser that a rebinding DNS name sends to the port names that
// DNS name instead, and is refused.
func allowedHosts(s config.Server) []string {
	if s.AllowedHosts != nil {
		return s.AllowedHosts
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	add := func(h string) {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		for _, x := range hosts {
			if strings.EqualFold(x, h) {
				return
			}
		}
		hosts = append(hosts, h)
	}
	add(s.Host)
	if ip := net.ParseIP(s.Host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			add(name)
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					add(n.IP.String())
				}
			}
		}
	}
	return hosts
}

// warnIdentitiesUnused warns that roles name members by certificate
// (SSLIdentities) while no port asks clients for a certificate (no TLS
// section with SSLCACertificate on [Server] or [Service]): those members
// match no client, and the roles go by Clients alone.
func warnIdentitiesUnused(log *slog.Logger, cfg *config.Config, t tlsConfigs) {
	if cfg.Policy == nil {
		return
	}
	roles := cfg.Policy.IdentityRoles()
	if len(roles) == 0 {
		return
	}
	for _, c := range []*tls.Config{t.aci, t.service} {
		if c != nil && c.ClientAuth != tls.NoClientCert {
			return
		}
	}
	log.Warn("roles list SSLIdentities, but no port asks clients for a certificate: no client matches them, and those roles go by their Clients alone "+
		"(give [Server] or [Service] SSLConfig a TLS section with SSLCACertificate)", "roles", strings.Join(roles, ","))
}
