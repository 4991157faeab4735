package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/auth"
)

// TestAuthorizationRoles: IDOL's own example section shape loads, and the
// policy it makes grants what the roles say.
func TestAuthorizationRoles(t *testing.T) {
	t.Parallel()
	c, err := Parse("c.cfg", []byte(`
[AuthorizationRoles]
0=AdminRole
1=IDOLUserRole
2=StatusOnlyRole

[AdminRole]
StandardRoles=Admin,ServiceControl
Clients=localhost,10.1.*.*
SSLIdentities=admin.example.com

[IDOLUserRole]
StandardRoles=query,servicestatus
SSLIdentities=admin.example.com,userserver.example.com

[StatusOnlyRole]
ServiceActions=GetStatus
Actions=getversion
Clients=192.0.2.0/24
`), testTaskKeys)
	require.NoError(t, err)
	require.NotNil(t, c.Policy)
	require.Empty(t, c.TaskSections(), "role sections are not tasks")
	g := c.Policy.Grant(auth.Principal{Addr: netip.MustParseAddr("10.1.2.3")})
	require.True(t, g.Allows(auth.ACIPort, "Fetch", ""))
	g = c.Policy.Grant(auth.Principal{Addr: netip.MustParseAddr("192.0.2.9")})
	require.True(t, g.Allows(auth.ServicePort, "GetStatus", ""))
	require.True(t, g.Allows(auth.ACIPort, "GetVersion", ""))
	require.False(t, g.Allows(auth.ACIPort, "TaskList", ""))

	c, err = Parse("c.cfg", []byte("[Server]\nPort=7000\n"), testTaskKeys)
	require.NoError(t, err)
	require.Nil(t, c.Policy, "no section: IDOL's defaults")
}

// TestTLSSections: SSLConfig names a section with IDOL's keys, for the ACI
// port, the service port and ingestion, before or after the section.
func TestTLSSections(t *testing.T) {
	t.Parallel()
	c, err := Parse("c.cfg", []byte(`
[SSLOptionN]
SSLMethod=Negotiate
SSLCertificate=/etc/connector/server.crt
SSLPrivateKey=/etc/connector/server.key
SSLCACertificate=/etc/connector/ca.crt
SSLCheckCertificate=false

[Server]
Port=7000
SSLConfig=SSLOptionN

[Service]
ServicePort=7002
SSLConfig=SSLOptionN

[Ingestion]
IngesterType=CFS
IngestHost=cfs.example.com
IngestPort=7100
SSLConfig=Outbound

[Outbound]
SSLMethod=TLSV1.3
SSLCACertificate=/etc/connector/cfs-ca.crt
`), testTaskKeys)
	require.NoError(t, err)
	require.Same(t, c.Server.SSL, c.Service.SSL)
	require.Equal(t, "/etc/connector/server.crt", c.Server.SSL.Certificate)
	require.False(t, c.Server.SSL.CheckCertificate)
	require.True(t, c.Service.Enabled)
	require.Equal(t, 7002, c.Service.Port)
	require.True(t, c.Ingestion.SSL, "SSLConfig implies HTTPS")
	require.Equal(t, "TLSV1.3", c.Ingestion.SSLOptions.Method)
	require.True(t, c.Ingestion.SSLOptions.CheckCertificate)
	require.Empty(t, c.TaskSections())
}

func TestOpsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, cfg string
		line      int
		section   string
		key       string
		want      string
	}{
		{"GSSPrincipals", "[AuthorizationRoles]\n0=R\n[R]\nStandardRoles=Admin\nGSSPrincipals=CONTENT01/admin@EXAMPLE.COM\n", 5, "R", "GSSPrincipals",
			"config c.cfg:5: [R] GSSPrincipals: GSSAPI (Kerberos) principals are not supported"},
		{"index role", "[AuthorizationRoles]\n0=R\n[R]\nStandardRoles=index\nClients=*\n", 4, "R", "StandardRoles",
			"config c.cfg:4: [R] StandardRoles: Index is IDOL's role for index actions, and a connector has no index port"},
		{"unknown role key", "[AuthorizationRoles]\n0=R\n[R]\nClient=*\n", 4, "R", "Client",
			"config c.cfg:4: [R] Client: unknown key (did you mean Clients?); a role section takes StandardRoles, Actions, ServiceActions, Clients, SSLIdentities"},
		{"bad client", "[AuthorizationRoles]\n0=R\n[R]\nStandardRoles=Admin\nClients=admin.example.com\n", 5, "R", "Clients",
			`config c.cfg:5: [R] Clients: "admin.example.com" is not an IP address, wildcard, CIDR prefix, localhost or *`},
		{"unknown action", "[AuthorizationRoles]\n0=R\n[R]\nActions=Fetch,QueueInfos\nClients=*\n", 4, "R", "Actions",
			`config c.cfg:4: [R] Actions: "QueueInfos" is not an action of the ACI port (did you mean QueueInfo?)`},
		{"service action on the ACI list", "[AuthorizationRoles]\n0=R\n[R]\nServiceActions=Fetch\nClients=*\n", 4, "R", "ServiceActions",
			`config c.cfg:4: [R] ServiceActions: "Fetch" is not an action of the service port`},
		{"role without members", "[AuthorizationRoles]\n0=R\n[R]\nStandardRoles=Admin\n", 3, "R", "",
			"config c.cfg:3: [R]: role R has no members: give Clients or SSLIdentities"},
		{"missing role section", "[AuthorizationRoles]\n0=R\n", 2, "AuthorizationRoles", "0",
			"config c.cfg:2: [AuthorizationRoles] 0: role section [R] does not exist"},
		{"role gap", "[AuthorizationRoles]\n0=R\n2=S\n[R]\nStandardRoles=Admin\nClients=*\n[S]\nStandardRoles=Query\nClients=*\n", 1, "AuthorizationRoles", "1",
			"config c.cfg:1: [AuthorizationRoles] 1: role 1 is not listed, but a later one is"},
		// 1= and 01= are both role 1: the later replaced the earlier, and
		// the error then said that [AuthorizationRoles] does not list
		// the role the file lists at 1=.
		{"role index twice", "[AuthorizationRoles]\n0=R\n1=S\n01=T\n[R]\nStandardRoles=Admin\nClients=*\n[S]\nStandardRoles=Query\nClients=*\n[T]\nStandardRoles=Query\nClients=*\n", 4, "AuthorizationRoles", "01",
			"config c.cfg:4: [AuthorizationRoles] 01: role 1 is listed twice (first on line 3, as 1=S)"},
		{"role keys without the list", "[Admins]\nStandardRoles=Admin\nClients=*\n", 2, "Admins", "StandardRoles",
			"config c.cfg:2: [Admins] StandardRoles: unknown section: StandardRoles is a key of a role section, but [AuthorizationRoles] does not list [Admins]"},
		{"legacy AdminClients", "[Server]\nAdminClients=127.0.0.1\n", 2, "Server", "AdminClients",
			"config c.cfg:2: [Server] AdminClients: AdminClients is IDOL's deprecated client list"},
		{"legacy ServiceControlClients", "[Service]\nServicePort=7002\nServiceControlClients=127.0.0.1\n", 3, "Service", "ServiceControlClients",
			"config c.cfg:3: [Service] ServiceControlClients: ServiceControlClients is IDOL's deprecated client list"},
		{"missing TLS section", "[Server]\nSSLConfig=SSLOption1\n", 2, "Server", "SSLConfig",
			"config c.cfg:2: [Server] SSLConfig: TLS section [SSLOption1] does not exist"},
		{"old protocol", "[Server]\nSSLConfig=T\n[T]\nSSLMethod=TLSV1.1\nSSLCertificate=a\nSSLPrivateKey=b\n", 4, "T", "SSLMethod",
			`config c.cfg:4: [T] SSLMethod: "TLSV1.1" is an obsolete protocol; this server speaks TLS 1.2 and 1.3 only`},
		{"certificate without key", "[Server]\nSSLConfig=T\n[T]\nSSLCertificate=a\n", 3, "T", "SSLPrivateKey",
			"config c.cfg:3: [T] SSLPrivateKey: SSLCertificate and SSLPrivateKey go together"},
		{"listener without certificate", "[Server]\nSSLConfig=T\n[T]\nSSLCACertificate=ca\n", 2, "Server", "SSLConfig",
			"config c.cfg:2: [Server] SSLConfig: [T] has no SSLCertificate and SSLPrivateKey: a listening port needs its certificate and key"},
		{"check without CA", "[Server]\nSSLConfig=T\n[T]\nSSLCertificate=a\nSSLPrivateKey=b\nSSLCheckCertificate=true\n", 2, "Server", "SSLConfig",
			"config c.cfg:2: [Server] SSLConfig: [T] SSLCheckCertificate=true needs SSLCACertificate"},
		{"outgoing without checks", "[Ingestion]\nIngesterType=CFS\nIngestHost=h\nIngestPort=1\nSSLConfig=T\n[T]\nSSLCheckCertificate=false\n", 5, "Ingestion", "SSLConfig",
			"config c.cfg:5: [Ingestion] SSLConfig: [T] SSLCheckCertificate=false: outgoing connections always check the server's certificate"},
		{"TLS for files", "[Ingestion]\nSSLConfig=T\n[T]\nSSLCACertificate=x\n", 2, "Ingestion", "SSLConfig",
			"config c.cfg:2: [Ingestion] SSLConfig: IngesterType=IDX writes files; SSLConfig is for a CFS reached over HTTPS"},
		{"TLS keys without SSLConfig", "[T]\nSSLMethod=Negotiate\n", 2, "T", "SSLMethod",
			"config c.cfg:2: [T] SSLMethod: unknown section: SSLMethod is a key of a TLS section, but no SSLConfig names [T]"},
		{"service TLS without a port", "[Service]\nSSLConfig=T\n[T]\nSSLCertificate=a\nSSLPrivateKey=b\n", 2, "Service", "SSLConfig",
			"config c.cfg:2: [Service] SSLConfig: there is no service port to secure: give ServicePort too"},
		{"service port on the ACI port", "[Server]\nPort=7000\n[Service]\nServicePort=7000\n", 4, "Service", "ServicePort",
			"config c.cfg:4: [Service] ServicePort: 7000 is also [Server] Port"},
		{"bad allowed host", "[Server]\nAllowedHosts=http://x/\n", 2, "Server", "AllowedHosts",
			`config c.cfg:2: [Server] AllowedHosts: "http://x/" is not a host name or address`},
		{"password garbled", "[Server]\nSSLConfig=T\n[T]\nSSLCertificate=a\nSSLPrivateKey=b\nSSLPrivateKeyPassword=W1BBU1NXT1JEXQpUeXBlPUFFUw==\n", 6, "T", "SSLPrivateKeyPassword",
			"config c.cfg:6: [T] SSLPrivateKeyPassword: the value is neither a password nor IDOL's encrypted-password form"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("c.cfg", []byte(tc.cfg), testTaskKeys)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "%s\nwant prefix\n%s", err, tc.want)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, []any{tc.line, tc.section, tc.key}, []any{ce.Line, ce.Section, ce.Key})
			require.NotContains(t, err.Error(), "W1BBU1NXT1JE", "a secret is never quoted")
		})
	}
}
