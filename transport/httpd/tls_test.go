package httpd

import (
	"bufio"
	"compress/gzip"
	"crypto/tls"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/testpki"
	"github.com/connectorhq/connector/tlsconf"
)

// tlsEnv is a front end speaking TLS with a certificate of its own test
// CA; clients present certificates of clientCA (trusted) or of another CA.
type tlsEnv struct {
	*env
	addr      string
	serverCA  *testpki.CA
	clientCA  *testpki.CA
	foreignCA *testpki.CA
}

func startTLS(t *testing.T, check bool, policy func(t *testing.T) *auth.Policy) *tlsEnv {
	t.Helper()
	dir := t.TempDir()
	te := &tlsEnv{serverCA: testpki.NewCA(t, "server CA"), clientCA: testpki.NewCA(t, "client CA"), foreignCA: testpki.NewCA(t, "foreign CA")}
	certPath, keyPath := te.serverCA.Localhost(t).Write(t, dir, "server")
	o := &config.SSLOptions{Method: "Negotiate", Certificate: certPath, PrivateKey: keyPath,
		CACertificate: te.clientCA.WriteCA(t, dir, "clients"), CheckCertificate: check}
	tc, err := tlsconf.Server(o, nil)
	require.NoError(t, err)
	te.env = startWith(t, setup{front: func(c *Config) {
		c.TLS = tc
		if policy != nil {
			c.Policy = policy(t)
		}
	}})
	te.addr = strings.TrimPrefix(te.base, "http://")
	te.base = "https://" + te.addr
	return te
}

// client returns an HTTPS client that trusts the server and presents cert
// (none when nil).
func (te *tlsEnv) client(cert *tls.Certificate, min, max uint16) *http.Client {
	tc := &tls.Config{RootCAs: te.serverCA.Pool(), MinVersion: min, MaxVersion: max}
	if cert != nil {
		// Sent whatever authorities the server asks for: Go's client
		// would leave out a certificate the server's CA list does not
		// cover, and the foreign one must reach the server.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

func (te *tlsEnv) aciWith(t *testing.T, c *http.Client, path string) (xresp, error) {
	t.Helper()
	resp, err := c.Get(te.base + path)
	if err != nil {
		return xresp{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var x xresp
	require.NoError(t, xml.Unmarshal(body, &x), string(body))
	return x, nil
}

// TestTLSRefusesOldProtocols: TLS 1.0 and 1.1 clients are refused at the
// handshake; 1.2 and 1.3 are served.
func TestTLSRefusesOldProtocols(t *testing.T) {
	t.Parallel()
	te := startTLS(t, false, nil)
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		c, err := tls.Dial("tcp", te.addr, &tls.Config{RootCAs: te.serverCA.Pool(), MinVersion: v, MaxVersion: v}) //nolint:gosec // the old protocol is the test
		if err == nil {
			c.Close()
		}
		require.Error(t, err, "version %x", v)
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		x, err := te.aciWith(t, te.client(nil, v, v), "/action=GetVersion")
		require.NoError(t, err)
		require.Equal(t, "SUCCESS", x.Response)
	}
	_, err := http.Get("http://" + te.addr + "/action=GetVersion")
	require.Error(t, err, "plain HTTP on the TLS port gets no ACI reply")
}

// TestTLSClientCertificates: with SSLCheckCertificate=true a client without
// a certificate, or with one from another authority, is refused at the
// handshake; a verified certificate's identities select SSLIdentities
// roles.
func TestTLSClientCertificates(t *testing.T) {
	t.Parallel()
	policy := func(t *testing.T) *auth.Policy {
		ids, err := auth.ParseIdentities("dns:admin.example.com,email:ops@example.com")
		require.NoError(t, err)
		all, err := auth.ParseClients("*")
		require.NoError(t, err)
		p, err := auth.New([]auth.Role{
			{Name: "CertAdmins", Standard: auth.Admin, Identities: ids},
			{Name: "Readers", Standard: auth.Query, Clients: all},
		})
		require.NoError(t, err)
		return p
	}
	te := startTLS(t, true, policy)
	admin := te.clientCA.Issue(t, testpki.Leaf{CommonName: "x", DNS: []string{"admin.example.com"}, Client: true}).TLS(t)
	ops := te.clientCA.Issue(t, testpki.Leaf{CommonName: "Ops", Emails: []string{"ops@example.com"}, Client: true}).TLS(t)
	user := te.clientCA.Issue(t, testpki.Leaf{CommonName: "user.example.com", Client: true}).TLS(t)
	foreign := te.foreignCA.Issue(t, testpki.Leaf{CommonName: "admin.example.com", DNS: []string{"admin.example.com"}, Client: true}).TLS(t)

	_, err := te.aciWith(t, te.client(nil, 0, 0), "/action=GetVersion")
	require.Error(t, err, "no client certificate")
	_, err = te.aciWith(t, te.client(&foreign, 0, 0), "/action=GetVersion")
	require.Error(t, err, "a certificate of another authority")

	for _, c := range []struct {
		cert  *tls.Certificate
		admin bool
	}{{&admin, true}, {&ops, true}, {&user, false}} {
		x, err := te.aciWith(t, te.client(c.cert, 0, 0), "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
		require.NoError(t, err)
		if c.admin {
			require.Equal(t, "SUCCESS", x.Response)
		} else {
			require.Equal(t, "ERRORPERMISSIONDENIED", x.ResponseData.Code)
			require.Contains(t, x.ResponseData.Desc, "client 127.0.0.1 dns:user.example.com (roles: Readers)", "the Common Name stands in for a missing subjectAltName")
		}
	}
	x, err := te.aciWith(t, te.client(&ops, 0, 0), "/action=ShowPermissions")
	require.NoError(t, err)
	require.Contains(t, string(x.ResponseData.Inner), "<identity>email:ops@example.com</identity>")
	require.Contains(t, string(x.ResponseData.Inner), "<role>CertAdmins</role>")
}

// TestTLSOptionalClientCertificate: with SSLCheckCertificate=false a client
// without a certificate is served (the roles decide by address), and one
// with a foreign certificate is still refused.
func TestTLSOptionalClientCertificate(t *testing.T) {
	t.Parallel()
	te := startTLS(t, false, nil)
	x, err := te.aciWith(t, te.client(nil, 0, 0), "/action=GetVersion")
	require.NoError(t, err)
	require.Equal(t, "SUCCESS", x.Response)
	foreign := te.foreignCA.Issue(t, testpki.Leaf{CommonName: "f", Client: true}).TLS(t)
	_, err = te.aciWith(t, te.client(&foreign, 0, 0), "/action=GetVersion")
	require.Error(t, err)
}

// TestJavaClientRequestsOverHTTPS: the official client's request shapes
// (GET, form POST, chunked multipart) work over TLS, byte for byte.
func TestJavaClientRequestsOverHTTPS(t *testing.T) {
	t.Parallel()
	te := startTLS(t, false, nil)
	replay := func(raw []byte) string {
		c, err := tls.Dial("tcp", te.addr, &tls.Config{RootCAs: te.serverCA.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = c.Write(raw)
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml"))
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			require.NoError(t, err)
			r = zr
		}
		body, err := io.ReadAll(r)
		require.NoError(t, err)
		return string(body)
	}
	require.Contains(t, replay(readReplay(t, "get-getversion.http")), "<autn:version>1.2.3</autn:version>")
	for _, f := range []string{"get-fetch.http", "post-fetch.http", "multipart-chunked-fetch.http"} {
		body := replay(readReplay(t, f))
		require.Contains(t, body, "<response>SUCCESS</response>", f)
		require.NotEmpty(t, between(body, "<token>", "</token>"), f)
	}
	require.Contains(t, replay(readReplay(t, "post-getrequestlog-tail.http")), "<autn:request>action=FETCH&amp;FetchAction=Collect")
}
