package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/secret"
)

// Operations sections: [AuthorizationRoles] and the role sections it lists,
// [Service], and the TLS sections that SSLConfig keys name
// (docs/configuration.md, docs/security.md).

// Service is [Service]: IDOL's service port.
type Service struct {
	// Port is ServicePort: the service port (GetStatus, GetStatusInfo,
	// Stop, /metrics), on [Server] Host; 0 picks a free port. Enabled is
	// false when [Service] gives no ServicePort: there is no service port.
	Port    int
	Enabled bool
	// MaxConnections bounds the service port's open connections (default
	// 64): beyond it, new clients wait in the listen queue.
	MaxConnections int
	// MaxConnectionsPerClient bounds the service port's connections from
	// one client (an IPv4 address, or an IPv6 /64) that holds neither
	// Admin nor ServiceControl (default 16); 0: no bound.
	MaxConnectionsPerClient int
	// SSL is the TLS section SSLConfig names; nil: plain HTTP.
	SSL       *SSLOptions
	sslConfig string
	sslLine   int
	portLine  int
}

// SSLOptions is a TLS section named by an SSLConfig key ([Server],
// [Service], [Ingestion]), with IDOL's keys.
type SSLOptions struct {
	Section string
	Line    int // of the section header
	// Method is SSLMethod: Negotiate (TLS 1.2 or 1.3, the default), TLSV1.2
	// or TLSV1.3. SSLV23 is read as Negotiate; older protocols are refused.
	Method string
	// Certificate and PrivateKey are PEM files: this side's certificate
	// (chain) and key (SSLCertificate, SSLPrivateKey). PrivateKeyPassword
	// decrypts a key in the legacy encrypted PEM form (secret: given in
	// clear or in IDOL's encrypted-password form).
	Certificate        string
	PrivateKey         string
	PrivateKeyPassword string
	// CACertificate is SSLCACertificate: PEM certificates of the
	// authorities that sign the peers' certificates (clients', on a
	// listening port; the server's, on an outgoing connection).
	CACertificate string
	// CheckCertificate is SSLCheckCertificate (default true): on a listening
	// port with a CACertificate, clients must present a certificate signed
	// by it; false accepts clients without one (the roles then decide
	// by address). Outgoing connections always check the server.
	CheckCertificate bool
	// Lines holds the line of each key given, by its documented name.
	Lines map[string]int
}

// KeyLine returns the line of key in the section, or the section's.
func (o *SSLOptions) KeyLine(key string) int {
	if n, ok := o.Lines[key]; ok {
		return n
	}
	return o.Line
}

// sslMethods are the SSLMethod values accepted.
var sslMethods = []string{"Negotiate", "SSLV23", "TLSV1.2", "TLSV1.3"}

// sslKeys are the keys of a TLS section.
var sslKeys = []string{"SSLMethod", "SSLCertificate", "SSLPrivateKey", "SSLPrivateKeyPassword", "SSLCACertificate", "SSLCheckCertificate"}

// roleKeys are the keys of a role section.
var roleKeys = []string{"StandardRoles", "Actions", "ServiceActions", "Clients", "SSLIdentities"}

// refusedRoleKeys are IDOL's role keys this server does not support.
var refusedRoleKeys = map[string]string{
	"gssprincipals": "GSSAPI (Kerberos) principals are not supported: identify clients by Clients (addresses) or SSLIdentities (TLS client certificates)",
	"indexactions":  "IndexActions are IDOL's index-port actions, and a connector has no index port",
}

// legacyClientKeys are IDOL's deprecated per-role client lists, refused
// with a pointer to [AuthorizationRoles].
var legacyClientKeys = []string{"AdminClients", "QueryClients", "UserClients", "IndexClients", "ProxyClients", "ServiceControlClients", "ServiceStatusClients"}

func legacyClientKey(key string) error {
	for _, k := range legacyClientKeys {
		if strings.EqualFold(k, key) {
			return fmt.Errorf("%s is IDOL's deprecated client list (IDOL 11.5 replaced it with authorization roles); "+
				"list the clients in a role section instead: [AuthorizationRoles] 0=MyRole, and [MyRole] StandardRoles=... Clients=...", k)
		}
	}
	return nil
}

// opsRefs are the sections that [AuthorizationRoles] and the SSLConfig keys
// name: found before the sections are read, since a section's meaning
// depends on them.
type opsRefs struct {
	roles    []KeyValue          // [AuthorizationRoles] entries, in index order (Value: section name)
	rolesSec *rawSection         // [AuthorizationRoles] itself, nil when absent
	ssl      map[string]KeyValue // lower-case section name → the first SSLConfig naming it
	// roleNames are the roles' section names by foldKey.
	roleNames map[string]bool
}

func (r *opsRefs) isRole(name string) bool { return r.roleNames[foldKey(name)] }

func (r *opsRefs) isSSL(name string) bool {
	_, ok := r.ssl[strings.ToLower(name)]
	return ok
}

// findOpsRefs reads [AuthorizationRoles] and every SSLConfig key.
func findOpsRefs(file string, raw []*rawSection) (*opsRefs, error) {
	refs := &opsRefs{ssl: map[string]KeyValue{}, roleNames: map[string]bool{}}
	for _, rs := range raw {
		switch {
		case strings.EqualFold(rs.name, "AuthorizationRoles"):
			refs.rolesSec = rs
			byIndex := map[int]KeyValue{}
			for _, kv := range rs.keys {
				i, err := strconv.Atoi(kv.Key)
				if err != nil || i < 0 {
					return nil, &Error{File: file, Line: kv.Line, Section: rs.name, Key: kv.Key, Err: fmt.Errorf(
						"%w: [AuthorizationRoles] lists role sections as 0=RoleName, 1=RoleName, ...", ErrUnknownKey)}
				}
				if kv.Value == "" || isSystem(kv.Value) {
					return nil, &Error{File: file, Line: kv.Line, Section: rs.name, Key: kv.Key, Err: fmt.Errorf(
						"%s is not a role section name (expected the name of a section of its own, not %s)", wording.Quote(kv.Value), bracketed(systemNames))}
				}
				if first, ok := byIndex[i]; ok { // 1= and 01=: see fetchTasks
					return nil, &Error{File: file, Line: kv.Line, Section: rs.name, Key: kv.Key,
						Err: fmt.Errorf("role %d is listed twice (first on line %d, as %s=%s)", i, first.Line, wording.Clip(first.Key), wording.Clip(first.Value))}
				}
				byIndex[i] = kv
			}
			for i := 0; i < len(byIndex); i++ {
				kv, ok := byIndex[i]
				if !ok {
					return nil, &Error{File: file, Line: rs.line, Section: rs.name, Key: strconv.Itoa(i),
						Err: fmt.Errorf("role %d is not listed, but a later one is (expected 0=RoleName, 1=RoleName, ... without gaps)", i)}
				}
				refs.roles = append(refs.roles, kv)
				refs.roleNames[foldKey(kv.Value)] = true
			}
		case strings.EqualFold(rs.name, "Server"), strings.EqualFold(rs.name, "Service"), strings.EqualFold(rs.name, "Ingestion"):
			for _, kv := range rs.keys {
				if strings.EqualFold(kv.Key, "SSLConfig") && kv.Value != "" {
					if isSystem(kv.Value) {
						return nil, &Error{File: file, Line: kv.Line, Section: rs.name, Key: kv.Key,
							Err: fmt.Errorf("%s is a system section, not a TLS section (expected the name of a section with SSLMethod, SSLCertificate, ...)", wording.Quote(kv.Value))}
					}
					if _, ok := refs.ssl[strings.ToLower(kv.Value)]; !ok {
						kv.Key = rs.name // remember who named it
						refs.ssl[strings.ToLower(kv.Value)] = kv
					}
				}
			}
		}
	}
	for _, kv := range refs.roles {
		if refs.isSSL(kv.Value) {
			return nil, &Error{File: file, Line: kv.Line, Section: "AuthorizationRoles", Key: kv.Key,
				Err: fmt.Errorf("[%s] is named both as a role and as a TLS section (SSLConfig); give each its own section", wording.Clip(kv.Value))}
		}
	}
	return refs, nil
}

// checkRefsExist reports a role or TLS section that is named but absent.
func (p *parser) checkRefsExist(c *Config, refs *opsRefs, raw []*rawSection) error {
	names := make(map[string]bool, len(raw))
	for _, rs := range raw {
		names[foldKey(rs.name)] = true
	}
	has := func(name string) bool { return names[foldKey(name)] }
	for _, kv := range refs.roles {
		if !has(kv.Value) {
			return &Error{File: p.file, Line: kv.Line, Section: "AuthorizationRoles", Key: kv.Key,
				Err: fmt.Errorf("role section [%s] does not exist (expected a section with StandardRoles and Clients or SSLIdentities)", wording.Clip(kv.Value))}
		}
	}
	for name, kv := range refs.ssl {
		if !has(name) {
			return &Error{File: p.file, Line: kv.Line, Section: kv.Key, Key: "SSLConfig",
				Err: fmt.Errorf("TLS section [%s] does not exist (expected a section with SSLMethod, SSLCertificate, SSLPrivateKey, ...)", wording.Clip(kv.Value))}
		}
	}
	return nil
}

// role reads one role section into an auth.Role.
func (p *parser) role(sec *Section) (auth.Role, error) {
	r := auth.Role{Name: sec.Name}
	for _, kv := range sec.Keys {
		if why, ok := refusedRoleKeys[strings.ToLower(kv.Key)]; ok {
			return r, p.err(kv, errors.New(why))
		}
		var err error
		switch strings.ToLower(kv.Key) {
		case "standardroles":
			r.Standard, err = auth.ParseStandard(kv.Value)
		case "actions":
			r.Actions = splitList(kv.Value)
			for _, a := range r.Actions {
				if _, ok := auth.KnownAction(auth.ACIPort, a); !ok {
					err = fmt.Errorf("%s is not an action of the ACI port%s (expected one of %s)", wording.Quote(a),
						didYouMean(a, auth.Actions(auth.ACIPort), "%s"), strings.Join(auth.Actions(auth.ACIPort), ", "))
					break
				}
			}
		case "serviceactions":
			r.ServiceActions = splitList(kv.Value)
			for _, a := range r.ServiceActions {
				if _, ok := auth.KnownAction(auth.ServicePort, a); !ok {
					err = fmt.Errorf("%s is not an action of the service port%s (expected one of %s)", wording.Quote(a),
						didYouMean(a, auth.Actions(auth.ServicePort), "%s"), strings.Join(auth.Actions(auth.ServicePort), ", "))
					break
				}
			}
		case "clients":
			r.Clients, err = auth.ParseClients(kv.Value)
		case "sslidentities":
			r.Identities, err = auth.ParseIdentities(kv.Value)
		default:
			err = fmt.Errorf("%w%s; a role section takes %s", ErrUnknownKey, didYouMean(kv.Key, roleKeys, "%s"), strings.Join(roleKeys, ", "))
		}
		if err != nil {
			return r, p.err(kv, err)
		}
	}
	return r, nil
}

// roles builds the policy of [AuthorizationRoles].
func (p *parser) roles(c *Config, refs *opsRefs, read map[string]auth.Role, secs map[string]*Section) error {
	if refs.rolesSec == nil {
		return nil
	}
	roles := make([]auth.Role, 0, len(refs.roles))
	for _, kv := range refs.roles {
		roles = append(roles, read[strings.ToLower(kv.Value)])
	}
	if len(roles) == 0 {
		return &Error{File: p.file, Line: refs.rolesSec.line, Section: refs.rolesSec.name,
			Err: errors.New("lists no role (expected 0=RoleName, ...; remove the section for IDOL's default roles)")}
	}
	pol, err := auth.New(roles)
	if err != nil {
		// Point at the role section the complaint is about.
		line, section := refs.rolesSec.line, refs.rolesSec.name
		for _, r := range roles {
			if strings.Contains(err.Error(), "role "+r.Name+" ") || strings.Contains(err.Error(), "role "+r.Name+":") {
				if s := secs[strings.ToLower(r.Name)]; s != nil {
					line, section = s.Line, s.Name
				}
				break
			}
		}
		return &Error{File: p.file, Line: line, Section: section, Err: err}
	}
	c.Policy = pol
	return nil
}

// ssl reads one TLS section.
func (p *parser) ssl(sec *Section) (*SSLOptions, error) {
	o := &SSLOptions{Section: sec.Name, Line: sec.Line, Method: "Negotiate", CheckCertificate: true, Lines: map[string]int{}}
	names := sslKeys
	for _, kv := range sec.Keys {
		var err error
		key := ""
		for _, n := range names {
			if strings.EqualFold(n, kv.Key) {
				key = n
			}
		}
		switch key {
		case "SSLMethod":
			o.Method, err = sslMethod(kv.Value)
		case "SSLCertificate":
			o.Certificate, err = kv.Value, nonEmpty(kv.Value)
		case "SSLPrivateKey":
			o.PrivateKey, err = kv.Value, nonEmpty(kv.Value)
		case "SSLPrivateKeyPassword":
			o.PrivateKeyPassword = kv.Value
			if secret.IsEncrypted(kv.Value) {
				err = secret.Check(kv.Value)
			}
		case "SSLCACertificate":
			o.CACertificate, err = kv.Value, nonEmpty(kv.Value)
		case "SSLCheckCertificate":
			o.CheckCertificate, err = Bool(kv.Value)
		default:
			err = fmt.Errorf("%w%s; a TLS section takes %s", ErrUnknownKey, didYouMean(kv.Key, names, "%s"), strings.Join(names, ", "))
		}
		if err != nil {
			if key == "SSLPrivateKeyPassword" {
				return nil, &Error{File: p.file, Line: kv.Line, Section: p.section, Key: kv.Key, Err: errors.New("the value is neither a password nor IDOL's encrypted-password form")}
			}
			return nil, p.err(kv, err)
		}
		o.Lines[key] = kv.Line
	}
	if (o.Certificate == "") != (o.PrivateKey == "") {
		missing := "SSLPrivateKey"
		if o.Certificate == "" {
			missing = "SSLCertificate"
		}
		return nil, &Error{File: p.file, Line: sec.Line, Section: sec.Name, Key: missing,
			Err: errors.New("SSLCertificate and SSLPrivateKey go together (this side's certificate and its key)")}
	}
	if o.PrivateKeyPassword != "" && o.PrivateKey == "" {
		return nil, &Error{File: p.file, Line: o.KeyLine("SSLPrivateKeyPassword"), Section: sec.Name, Key: "SSLPrivateKeyPassword",
			Err: errors.New("there is no SSLPrivateKey for it to decrypt")}
	}
	return o, nil
}

func sslMethod(v string) (string, error) {
	for _, m := range sslMethods {
		if strings.EqualFold(strings.TrimSpace(v), m) {
			if m == "SSLV23" {
				return "Negotiate", nil
			}
			return m, nil
		}
	}
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "SSLV2", "SSLV3", "TLSV1", "TLSV1.0", "TLSV1.1":
		return "", fmt.Errorf("%s is an obsolete protocol; this server speaks TLS 1.2 and 1.3 only (expected Negotiate, TLSV1.2 or TLSV1.3)", wording.Quote(v))
	case "NONE":
		return "", errors.New(`"None" turns TLS off: remove the SSLConfig key that names this section instead`)
	}
	return "", fmt.Errorf("%s is not an SSLMethod (expected Negotiate, TLSV1.2 or TLSV1.3)", wording.Quote(v))
}

// attachSSL gives [Server], [Service] and [Ingestion] the TLS section their
// SSLConfig names, and checks that it has what that use needs.
func (p *parser) attachSSL(c *Config, read map[string]*SSLOptions) error {
	for _, use := range []struct {
		section string
		name    string
		line    int
		dst     **SSLOptions
		listen  bool
	}{
		{"Server", c.Server.SSLConfig, c.Server.sslLine, &c.Server.SSL, true},
		{"Service", c.Service.sslConfig, c.Service.sslLine, &c.Service.SSL, true},
		{"Ingestion", c.Ingestion.SSLConfig, c.Ingestion.sslLine, &c.Ingestion.SSLOptions, false},
	} {
		if use.name == "" {
			continue
		}
		o := read[strings.ToLower(use.name)]
		if o == nil {
			continue // reported by checkRefsExist
		}
		*use.dst = o
		e := func(err error) error {
			return &Error{File: p.file, Line: use.line, Section: use.section, Key: "SSLConfig", Err: err}
		}
		if use.listen {
			if o.Certificate == "" {
				return e(fmt.Errorf("[%s] has no SSLCertificate and SSLPrivateKey: a listening port needs its certificate and key", wording.Clip(o.Section)))
			}
			if o.CheckCertificate && o.CACertificate == "" && o.Lines["SSLCheckCertificate"] > 0 {
				return e(fmt.Errorf("[%s] SSLCheckCertificate=true needs SSLCACertificate (the authorities that sign client certificates)", wording.Clip(o.Section)))
			}
		} else if !o.CheckCertificate {
			return e(fmt.Errorf("[%s] SSLCheckCertificate=false: outgoing connections always check the server's certificate "+
				"(give SSLCACertificate to trust a private authority)", wording.Clip(o.Section)))
		}
	}
	if c.Service.Enabled && c.Server.Port != 0 && c.Service.Port == c.Server.Port {
		return &Error{File: p.file, Line: c.Service.portLine, Section: "Service", Key: "ServicePort",
			Err: fmt.Errorf("%d is also [Server] Port (expected a port of its own; IDOL's convention is Port+2)", c.Service.Port)}
	}
	return nil
}
