package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseClients(t *testing.T) {
	cases := []struct {
		value string
		in    []string
		out   []string
	}{
		{"localhost", []string{"127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"}, []string{"10.0.0.1", "::2", "128.0.0.1"}},
		{"187.*.*.*", []string{"187.0.0.1", "187.255.1.2"}, []string{"188.0.0.1", "::1"}},
		{"10.1.*.*,192.168.5.7", []string{"10.1.200.3", "192.168.5.7"}, []string{"10.2.0.1", "192.168.5.8"}},
		{"10.0.0.0/8", []string{"10.255.0.1", "::ffff:10.0.0.1"}, []string{"11.0.0.1"}},
		{"fd00::/8,::1", []string{"fd12::1", "::1"}, []string{"fe80::1", "127.0.0.1"}},
		// An IPv4-mapped prefix names IPv4 clients, compared unmapped.
		{"::ffff:10.0.0.0/104", []string{"10.1.2.3", "::ffff:10.1.2.3"}, []string{"11.0.0.1", "::ffff:11.0.0.1"}},
		{"*", []string{"8.8.8.8", "::1"}, nil},
		{"*.*.*.*", []string{"8.8.8.8"}, nil},
	}
	for _, c := range cases {
		cl, err := ParseClients(c.value)
		require.NoError(t, err, c.value)
		for _, a := range c.in {
			require.True(t, cl.Match(addr(a)), "%s should match %s", c.value, a)
		}
		for _, a := range c.out {
			require.False(t, cl.Match(addr(a)), "%s should not match %s", c.value, a)
		}
	}
	for _, bad := range []string{"", " , ", "example.com", "10.*.1.*", "10.0.0.0/33", "300.*.*.*", "10.*.*"} {
		_, err := ParseClients(bad)
		require.Error(t, err, bad)
	}
	var none *Clients
	require.False(t, none.Match(addr("127.0.0.1")))
}

func TestParseIdentities(t *testing.T) {
	id, err := ParseIdentities("email:User@Example.com,dns:admin.example.com, *.ops.example.com")
	require.NoError(t, err)
	require.True(t, id.Match(Principal{Email: []string{"user@example.com"}}))
	require.True(t, id.Match(Principal{DNS: []string{"ADMIN.example.com"}}))
	require.True(t, id.Match(Principal{DNS: []string{"a.ops.example.com"}}))
	require.True(t, id.Match(Principal{DNS: []string{"a.b.ops.example.com"}}), "* spans labels, as docs/configuration.md says")
	require.False(t, id.Match(Principal{DNS: []string{"ops.example.com"}}))
	require.False(t, id.Match(Principal{DNS: []string{"user@example.com"}}), "an email identity is not a DNS name")
	require.False(t, id.Match(Principal{Email: []string{"admin.example.com"}}))
	for _, bad := range []string{"", "uri:x", "dns:", "dns:a[b]", "dns:a?b"} {
		_, err := ParseIdentities(bad)
		require.Error(t, err, bad)
	}
}

func TestParseStandard(t *testing.T) {
	s, err := ParseStandard("admin, ServiceControl")
	require.NoError(t, err)
	require.Equal(t, Admin|ServiceControl, s)
	s, err = ParseStandard("*")
	require.NoError(t, err)
	require.Equal(t, All, s)
	_, err = ParseStandard("index")
	require.ErrorContains(t, err, "no index port")
	_, err = ParseStandard("root")
	require.ErrorContains(t, err, `"root" is not a standard role`)
}

// TestDefaultPolicy: IDOL's defaults. Admin and ServiceControl from
// localhost only; Query and ServiceStatus from anywhere.
func TestDefaultPolicy(t *testing.T) {
	p := Default()
	local := p.Grant(Principal{Addr: addr("127.0.0.1")})
	remote := p.Grant(Principal{Addr: addr("192.0.2.7")})
	v6local := p.Grant(Principal{Addr: addr("::1")})
	for _, r := range Rules {
		require.True(t, local.Allows(r.Port, r.Action, r.Sub), "localhost: %v", r)
		require.True(t, v6local.Allows(r.Port, r.Action, r.Sub), "::1: %v", r)
		wantRemote := r.Role&(Query|ServiceStatus) != 0 || r.Role == None
		require.Equal(t, wantRemote, remote.Allows(r.Port, r.Action, r.Sub), "remote: %v", r)
	}
	require.False(t, remote.Allows(ACIPort, "Fetch", ""))
	require.False(t, remote.Allows(ACIPort, "QueueInfo", "Cancel"))
	require.True(t, remote.Allows(ACIPort, "QueueInfo", "getstatus"))
	require.False(t, remote.Allows(ACIPort, "QueueInfo", "SomethingNew"), "an unlisted QueueAction needs Admin")
	require.False(t, remote.Allows(ACIPort, "NewAction", ""), "an unlisted action needs Admin")
	require.False(t, remote.Allows(ServicePort, "Stop", ""))
	require.True(t, remote.Allows(ServicePort, "Metrics", ""))
	require.Equal(t, "Query,ServiceStatus", remote.Role())
}

// TestConfiguredPolicy: members by address or certificate identity, single
// actions, and nothing granted beyond the configured roles.
func TestConfiguredPolicy(t *testing.T) {
	local, _ := ParseClients("localhost")
	ops, _ := ParseIdentities("dns:admin.example.com")
	users, _ := ParseIdentities("admin.example.com,userserver.example.com")
	general, _ := ParseIdentities("general.example.com")
	p, err := New([]Role{
		{Name: "AdminRole", Standard: Admin | ServiceControl, Clients: local, Identities: ops},
		{Name: "IDOLUserRole", Standard: Query | ServiceStatus, Identities: users},
		{Name: "StatusOnlyRole", ServiceActions: []string{"getstatus"}, Actions: []string{"queueinfo"}, Identities: general},
	})
	require.NoError(t, err)
	require.True(t, p.Configured())

	nobody := p.Grant(Principal{Addr: addr("192.0.2.1")})
	require.Equal(t, "none", nobody.Role())
	require.False(t, nobody.Allows(ACIPort, "GetVersion", ""), "configured roles replace the defaults")
	require.True(t, nobody.Allows(ACIPort, "ShowPermissions", ""))

	admin := p.Grant(Principal{Addr: addr("192.0.2.1"), DNS: []string{"admin.example.com"}})
	require.Equal(t, []string{"AdminRole", "IDOLUserRole"}, admin.Roles())
	require.True(t, admin.Allows(ACIPort, "Fetch", ""))
	require.True(t, admin.Allows(ServicePort, "Stop", ""))

	user := p.Grant(Principal{Addr: addr("192.0.2.1"), DNS: []string{"userserver.example.com"}})
	require.False(t, user.Allows(ACIPort, "Fetch", ""))
	require.True(t, user.Allows(ACIPort, "QueueInfo", "QueueStatus"))

	status := p.Grant(Principal{Addr: addr("192.0.2.1"), DNS: []string{"general.example.com"}})
	require.True(t, status.Allows(ServicePort, "GetStatus", ""))
	require.False(t, status.Allows(ServicePort, "GetStatusInfo", ""))
	require.True(t, status.Allows(ACIPort, "QueueInfo", "Stop"), "Actions=QueueInfo grants every QueueAction")
	require.False(t, status.Allows(ACIPort, "Fetch", ""))

	require.True(t, p.Grant(Principal{Addr: addr("127.0.0.1")}).Allows(ACIPort, "Fetch", ""))
}

func TestNewRefusesBadRoles(t *testing.T) {
	local, _ := ParseClients("localhost")
	for _, c := range []struct {
		roles []Role
		want  string
	}{
		{nil, "lists no role"},
		{[]Role{{Name: "A", Standard: Admin}}, "role A has no members"},
		{[]Role{{Name: "A", Clients: local}}, "role A grants nothing"},
		{[]Role{{Name: "A", Standard: Admin, Clients: local}, {Name: "a", Standard: Query, Clients: local}}, "listed twice"},
		{[]Role{{Name: "A", Actions: []string{"Frobnicate"}, Clients: local}}, `"Frobnicate" is not an action of the ACI port`},
		{[]Role{{Name: "A", ServiceActions: []string{"Fetch"}, Clients: local}}, `"Fetch" is not an action of the service port`},
	} {
		_, err := New(c.roles)
		require.ErrorContains(t, err, c.want)
	}
}

// TestRoleNames: Role is the grant's roles joined by commas, "none" for
// none, whichever roles it holds; one role costs no allocation.
func TestRoleNames(t *testing.T) {
	p := Default()
	for mask := uint64(0); mask < 1<<len(p.roles); mask++ {
		g := Grant{roles: mask, p: p}
		want := strings.Join(g.Roles(), ",")
		if mask == 0 {
			want = "none"
		}
		require.Equal(t, want, g.Role(), "mask %b", mask)
	}
	one := Grant{roles: 1 << (len(p.roles) - 1), p: p}
	require.Zero(t, testing.AllocsPerRun(10, func() { _ = one.Role() }))
}

// TestNeedMatchesQueueActionInASCIICase: the role a QueueAction needs is
// found as the QueueInfo handler finds the QueueAction, in ASCII case only:
// QueueStatu\u017f (a long s) is no QueueAction, so it needs what any
// unknown one does, not QueueStatus's Query.
func TestNeedMatchesQueueActionInASCIICase(t *testing.T) {
	t.Parallel()
	require.Equal(t, Query, Need(ACIPort, "QueueInfo", " queuestatus "))
	require.Equal(t, Need(ACIPort, "QueueInfo", "Explode"), Need(ACIPort, "QueueInfo", "QueueStatu\u017f"))
	require.NotEqual(t, Query, Need(ACIPort, "QueueInfo", "QueueStatu\u017f"))
}

// A certificate's identity matches SSLIdentities in ASCII case only: a
// Common Name (which, unlike a subjectAltName, may hold any Unicode) with
// the Kelvin sign U+212A, which strings.ToLower turns into an ASCII k, is
// not key.example.com, whose certificate an authority may have refused
// to issue to this client. It matched, and took that identity's roles.
func TestIdentitiesMatchInASCIICaseOnly(t *testing.T) {
	id, err := ParseIdentities("dns:key.example.com,email:kim@example.com,dns:*.ops.example.com")
	require.NoError(t, err)
	require.True(t, id.Match(Principal{DNS: []string{"KEY.Example.COM"}}))
	require.True(t, id.Match(Principal{Email: []string{"Kim@example.com"}}))
	for _, p := range []Principal{
		{DNS: []string{"\u212aey.example.com"}},
		{Email: []string{"\u212aim@example.com"}},
		{DNS: []string{"x.ops.example.\u212aom"}},
	} {
		require.False(t, id.Match(p), "%v", p)
	}
}

// IDOL falls back on the subject Common Name only when the certificate has
// no subjectAltName (ops.md §1.1). One whose subjectAltName names only an
// IP address or a URI (a SPIFFE ID) has no DNS or email identity: its
// Common Name, which the authority need not have checked as a name, is
// not taken for one. It was, and matched SSLIdentities=admin.example.com.
func TestCommonNameOnlyWithoutSubjectAltName(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	cert := func(tmpl *x509.Certificate) *x509.Certificate {
		tmpl.SerialNumber = big.NewInt(1)
		tmpl.Subject = pkix.Name{CommonName: "admin.example.com"}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		require.NoError(t, err)
		c, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return c
	}
	a := addr("192.0.2.1")
	require.Equal(t, []string{"admin.example.com"}, FromCertificate(a, cert(&x509.Certificate{})).DNS, "no subjectAltName: the Common Name")
	spiffe, _ := url.Parse("spiffe://example.com/workload")
	for _, c := range []*x509.Certificate{
		cert(&x509.Certificate{IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}}),
		cert(&x509.Certificate{URIs: []*url.URL{spiffe}}),
	} {
		p := FromCertificate(a, c)
		require.False(t, p.HasIdentity(), "%v", p)
	}
	require.Equal(t, []string{"db.example.com"}, FromCertificate(a, cert(&x509.Certificate{DNSNames: []string{"db.example.com"}})).DNS)
}
