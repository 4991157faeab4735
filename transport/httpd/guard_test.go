package httpd

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/internal/testlog"
)

// queryOnlyPolicy makes the test client (127.0.0.1) a Query client: Admin
// is for another network only.
func queryOnlyPolicy(t *testing.T) *auth.Policy {
	t.Helper()
	local, err := auth.ParseClients("localhost")
	require.NoError(t, err)
	other, err := auth.ParseClients("10.0.0.0/8")
	require.NoError(t, err)
	p, err := auth.New([]auth.Role{
		{Name: "Admins", Standard: auth.Admin | auth.ServiceControl, Clients: other},
		{Name: "Readers", Standard: auth.Query | auth.ServiceStatus, Clients: local},
	})
	require.NoError(t, err)
	return p
}

// queryOnlyServer starts a server whose test client is a Query client
// (queryOnlyPolicy), logging into the buffer it returns.
func queryOnlyServer(t *testing.T) (*env, *testlog.Buffer) {
	t.Helper()
	logs := &testlog.Buffer{}
	e := startWith(t, setup{
		logger: slog.New(slog.NewTextHandler(logs, nil)),
		front:  func(c *Config) { c.Policy = queryOnlyPolicy(t) },
	})
	return e, logs
}

// TestRolesRefuseWithACIError: a request no role allows gets
// ERRORPERMISSIONDENIED (nothing runs), logged once with the client and the
// action; what the roles allow still works.
func TestRolesRefuseWithACIError(t *testing.T) {
	t.Parallel()
	e, logs := queryOnlyServer(t)
	x := e.aci(t, "/action=Fetch&FetchAction=Collect&ConfigSection=MyTask")
	require.Equal(t, "ERROR", x.Response)
	require.Equal(t, "ERRORPERMISSIONDENIED", x.ResponseData.Code)
	require.Equal(t, "CONFETCH140", x.ResponseData.ErrorID)
	require.Contains(t, x.ResponseData.Desc, "client 127.0.0.1 (roles: Readers) may not send Fetch: it needs the Admin role")

	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	require.Equal(t, "ERRORPERMISSIONDENIED", x.ResponseData.Code)
	require.Contains(t, x.ResponseData.Desc, "may not send QueueInfo QueueAction=Pause")

	qs, err := e.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.False(t, qs.Paused, "a refused request does nothing")
	require.Zero(t, qs.Queued+qs.Finished, "a refused Fetch queues nothing")

	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
	require.Equal(t, "SUCCESS", x.Response)
	x = e.aci(t, "/action=GetStatus")
	require.Equal(t, "ERRORPERMISSIONDENIED", x.ResponseData.Code, "GetStatus is an Admin action, as IDOL documents")
	x = e.aci(t, "/action=Frobnicate")
	require.Equal(t, "ERRORNOTIMPLEMENTED", x.ResponseData.Code, "an unknown action is unknown to everyone")

	out := logs.String()
	require.Equal(t, 1, strings.Count(out, "action=Fetch "), out)
	require.Contains(t, out, `msg="request refused: no role allows it" component=httpd client=127.0.0.1 action=Fetch role=Readers needs=Admin`)
	require.Equal(t, 3, strings.Count(out, "request refused"), out)
}

// TestRefusalsLoggedAtABoundedRate: a client no role allows may send
// requests as fast as it likes, and each refusal was a warning in the log:
// 300 requests, 300 lines (about 45 KB) that any client who can reach the
// port could write, at network speed, into a LogFile on the data folder's
// disk. Refusals are logged up to refusalLines a minute; the others are
// counted, and the next line logged says how many went unlogged.
func TestRefusalsLoggedAtABoundedRate(t *testing.T) {
	t.Parallel()
	logs := &testlog.Buffer{}
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC).UnixNano())
	e := startWith(t, setup{
		logger: slog.New(slog.NewTextHandler(logs, nil)),
		front: func(c *Config) {
			c.Policy = queryOnlyPolicy(t)
			c.Now = func() time.Time { return time.Unix(0, now.Load()) }
		},
	})
	const sent = 300
	for range sent {
		require.Equal(t, "ERRORPERMISSIONDENIED", e.aci(t, "/action=Fetch&FetchAction=Collect&ConfigSection=MyTask").ResponseData.Code)
	}
	out := logs.String()
	require.Equal(t, refusalLines, strings.Count(out, "request refused"), "one minute's lines")
	require.NotContains(t, out, "refused_unlogged")

	now.Add(int64(time.Minute))
	require.Equal(t, "ERRORPERMISSIONDENIED", e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause").ResponseData.Code)
	out = logs.String()
	require.Equal(t, refusalLines+1, strings.Count(out, "request refused"), out)
	require.Contains(t, out, `action="QueueInfo QueueAction=Pause" role=Readers needs=Admin refused_unlogged_since_last_line=`+strconv.Itoa(sent-refusalLines))
}

// TestShowPermissions: the client learns its address, roles and, for every
// action of the port, whether it may send it; it needs no role.
func TestShowPermissions(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{front: func(c *Config) { c.Policy = queryOnlyPolicy(t) }})
	_, body := e.get(t, "/action=ShowPermissions&ResponseFormat=simplejson")
	var r struct {
		A struct {
			Response string `json:"response"`
			Data     struct {
				Client string `json:"client"`
				Policy string `json:"policy"`
				Roles  struct {
					Role []string `json:"role"`
				} `json:"roles"`
				Std struct {
					Role []string `json:"standardrole"`
				} `json:"standardroles"`
				Perms struct {
					P []map[string]string `json:"permission"`
				} `json:"permissions"`
			} `json:"responsedata"`
		} `json:"autnresponse"`
	}
	require.NoError(t, json.Unmarshal(body, &r), string(body))
	d := r.A.Data
	require.Equal(t, "SUCCESS", r.A.Response)
	require.Equal(t, "127.0.0.1", d.Client)
	require.Equal(t, "configured", d.Policy)
	require.Equal(t, []string{"Readers"}, d.Roles.Role)
	require.Equal(t, []string{"Query", "ServiceStatus"}, d.Std.Role)
	allowed := map[string]string{}
	for _, p := range d.Perms.P {
		allowed[p["@action"]+"/"+p["@queueaction"]] = p["@allowed"]
	}
	require.Equal(t, "false", allowed["Fetch/"])
	require.Equal(t, "true", allowed["QueueInfo/GetStatus"])
	require.Equal(t, "false", allowed["QueueInfo/Stop"])
	require.Equal(t, "true", allowed["ShowPermissions/"])
	require.Equal(t, "false", allowed["View/"])
	require.Equal(t, "true", allowed["TaskList/"])
	require.Equal(t, "true", allowed["Admin/"])
	_, served := allowed["GetStatusInfo/"]
	require.False(t, served, "only the actions of this port")

	// IDOL's defaults: localhost holds every role.
	e2 := start(t, nil)
	x := e2.aci(t, "/action=ShowPermissions")
	require.Contains(t, string(x.ResponseData.Inner), "<policy>default</policy>")
	require.Contains(t, string(x.ResponseData.Inner), `<permission action="Fetch" allowed="true"/>`)
}

// TestShowPermissionsOfAnotherAddress: IDOL's ShowPermissions takes IP, the
// address to check (aci-protocol.md, section 6). It used to be ignored, so
// an administrator on localhost who asked what 10.9.8.7 may do was told
// that it may do everything: the reply was localhost's own. Now the reply
// is that address's, for an Admin caller; anyone else may ask only about
// itself (the roles are the administrator's business).
func TestShowPermissionsOfAnotherAddress(t *testing.T) {
	t.Parallel()
	e := start(t, nil) // IDOL's defaults: localhost is Admin
	x := e.aci(t, "/action=ShowPermissions&IP=10.9.8.7")
	require.Equal(t, "SUCCESS", x.Response, x.ResponseData.Desc)
	inner := string(x.ResponseData.Inner)
	require.Contains(t, inner, "<client>10.9.8.7</client>")
	require.Contains(t, inner, "<roles><role>Query</role><role>ServiceStatus</role></roles>")
	require.Contains(t, inner, `<permission action="Fetch" allowed="false"/>`)
	require.Contains(t, inner, `<permission action="QueueInfo" queueaction="GetStatus" allowed="true"/>`)
	// Its own address, an IPv4-mapped form of it, or an empty IP: the
	// caller's own permissions.
	for _, ip := range []string{"127.0.0.1", "%3A%3Affff%3A127.0.0.1", ""} {
		x = e.aci(t, "/action=ShowPermissions&IP="+ip)
		require.Contains(t, string(x.ResponseData.Inner), `<client>127.0.0.1</client>`, ip)
		require.Contains(t, string(x.ResponseData.Inner), `<permission action="Fetch" allowed="true"/>`, ip)
	}
	x = e.aci(t, "/action=ShowPermissions&IP=host.example.com")
	require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code)
	require.Contains(t, x.ResponseData.Desc, "parameter IP")

	// A client without Admin may ask about itself only.
	q := startWith(t, setup{front: func(c *Config) { c.Policy = queryOnlyPolicy(t) }})
	x = q.aci(t, "/action=ShowPermissions&IP=10.1.1.1")
	require.Equal(t, "ERRORPERMISSIONDENIED", x.ResponseData.Code, string(x.ResponseData.Inner))
	require.Contains(t, x.ResponseData.Desc, "Admin")
	x = q.aci(t, "/action=ShowPermissions&IP=127.0.0.1")
	require.Equal(t, "SUCCESS", x.Response, x.ResponseData.Desc)
	require.Contains(t, string(x.ResponseData.Inner), "<roles><role>Readers</role></roles>")
}

// TestBrowserOriginRefused: requests a browser sends from another site are
// refused; those from the server's own pages (same-origin), typed URLs
// (none) and programs (no header) are not.
func TestBrowserOriginRefused(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	send := func(header, value string) xresp {
		req, err := http.NewRequest("GET", e.base+"/action=QueueInfo&QueueName=fetch&QueueAction=Pause", nil)
		require.NoError(t, err)
		if header != "" {
			req.Header.Set(header, value)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var x xresp
		require.NoError(t, xmlDecode(resp, &x))
		return x
	}
	for _, site := range []string{"cross-site", "same-site", "Cross-Site"} {
		x := send("Sec-Fetch-Site", site)
		require.Equal(t, "ERRORREQUESTREFUSED", x.ResponseData.Code, site)
		require.Contains(t, x.ResponseData.Desc, "a browser sent this request from another site (Sec-Fetch-Site: "+strings.ToLower(site)+")")
	}
	qs, err := e.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.False(t, qs.Paused)
	for _, site := range []string{"same-origin", "none", ""} {
		x := send("Sec-Fetch-Site", site)
		require.Equal(t, "SUCCESS", x.Response, site)
		send("", "")
		e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Resume")
	}
	// A browser without Sec-Fetch-Site still sends Origin with a form's
	// POST or a script's cross-origin request: another site's, or "null"
	// (a sandboxed or file: page), is refused; the server's own is not.
	for _, origin := range []string{"http://evil.example", "null", "http://127.0.0.1", "https://" + strings.TrimPrefix(e.base, "http://") + ".evil.example"} {
		x := send("Origin", origin)
		require.Equal(t, "ERRORREQUESTREFUSED", x.ResponseData.Code, origin)
		require.Contains(t, x.ResponseData.Desc, "its Origin is not this server", origin)
		require.NotContains(t, x.ResponseData.Desc, "evil", origin)
	}
	qs, err = e.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.False(t, qs.Paused)
	x := send("Origin", strings.Replace(e.base, "http://", "HTTP://", 1))
	require.Equal(t, "SUCCESS", x.Response)
	e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Resume")
}

// TestNavigationToThePageFromAnotherSite: a browser's navigation (a link
// followed) from another site opens the dashboard page, which changes
// nothing (the service port's page links to it, and to the browser the
// ACI port is another site); the same headers on any other action, or on
// anything but a document's GET (a frame, a no-cors fetch, a form's POST),
// are refused as before.
func TestNavigationToThePageFromAnotherSite(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	send := func(method, path, mode, dest string) *http.Response {
		req, err := http.NewRequest(method, e.base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Sec-Fetch-Site", "same-site")
		req.Header.Set("Sec-Fetch-Mode", mode)
		req.Header.Set("Sec-Fetch-Dest", dest)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := send("GET", "/action=Admin", "navigate", "document")
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	for _, c := range []struct{ method, path, mode, dest string }{
		{"GET", "/action=QueueInfo&QueueName=fetch&QueueAction=Pause", "navigate", "document"},
		{"GET", "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask", "navigate", "document"},
		{"GET", "/action=Admin", "navigate", "iframe"},
		{"GET", "/action=Admin", "no-cors", "image"},
		{"GET", "/action=Admin", "cors", "empty"},
		{"POST", "/action=Admin", "navigate", "document"},
	} {
		var x xresp
		require.NoError(t, xmlDecode(send(c.method, c.path, c.mode, c.dest), &x))
		require.Equal(t, "ERRORREQUESTREFUSED", x.ResponseData.Code, "%+v", c)
	}
	qs, err := e.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.False(t, qs.Paused)
}

// TestAllowedHosts: only configured Host headers are answered (DNS
// rebinding); a request without Host is.
func TestAllowedHosts(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{front: func(c *Config) { c.AllowedHosts = []string{"127.0.0.1", "localhost", "connector.example.com"} }})
	for host, ok := range map[string]bool{"evil.example": false, "evil.example:80": false, "localhost": true,
		"CONNECTOR.example.com:7000": true, strings.TrimPrefix(e.base, "http://"): true, "[::1]:7000": false} {
		req, err := http.NewRequest("GET", e.base+"/action=GetVersion", nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var x xresp
		require.NoError(t, xmlDecode(resp, &x))
		resp.Body.Close()
		if ok {
			require.Equal(t, "SUCCESS", x.Response, host)
		} else {
			require.Equal(t, "ERRORREQUESTREFUSED", x.ResponseData.Code, host)
			require.Contains(t, x.ResponseData.Desc, "which is not one of [Server] AllowedHosts (127.0.0.1, localhost, connector.example.com)")
		}
	}
	// HTTP/1.0 without a Host header.
	raw := e.replay(t, []byte("GET /action=GetVersion HTTP/1.0\r\n\r\n"))
	require.Contains(t, raw, "<response>SUCCESS</response>")
}

// TestUnsupportedStandardParamsRefused: EncryptResponse and server-side
// Output/FileName writes are refused with a clear error, not ignored.
func TestUnsupportedStandardParamsRefused(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for q, want := range map[string]string{
		"EncryptResponse=true":       "this server does not encrypt replies",
		"EncryptResponse=maybe":      "this server does not encrypt replies",
		"Output=File&FileName=x.xml": "this server never writes replies to files on the server",
		"FileName=/etc/passwd":       "this server never writes replies to files on the server",
	} {
		x := e.aci(t, "/action=GetVersion&"+q)
		require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, q)
		require.Contains(t, x.ResponseData.Desc, want, q)
	}
	// false, or blank as Output= and FileName= may be (a client's template
	// that leaves the value out): nothing to refuse. A blank
	// EncryptResponse used to be refused as if it asked for encryption.
	for _, q := range []string{"EncryptResponse=false", "EncryptResponse=", "EncryptResponse=%20", "Output=&FileName="} {
		x := e.aci(t, "/action=GetVersion&"+q)
		require.Equal(t, "SUCCESS", x.Response, "%s: %s", q, x.ResponseData.Desc)
	}
}

// TestDashboardServed: action=Admin serves the embedded page with headers
// that keep it from being framed or cached, and its script and styles.
func TestDashboardServed(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	resp, body := e.get(t, "/action=Admin")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Contains(t, string(body), `<script src="/action=Admin&amp;File=app.js" defer></script>`)
	resp, body = e.get(t, "/action=Admin&File=app.js")
	require.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, string(body), "textContent")
	require.NotContains(t, string(body), "innerHTML", "the page never inserts markup")
	resp, _ = e.get(t, "/action=Admin&File=app.css")
	require.Equal(t, "text/css; charset=utf-8", resp.Header.Get("Content-Type"))
	x := e.aci(t, "/action=Admin&File=../../etc/passwd")
	require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code)
}

func xmlDecode(resp *http.Response, x *xresp) error {
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return xml.Unmarshal(body, x)
}

// TestEveryActionHasARole: the role table has every action this server
// answers on each port, and every QueueAction.
func TestEveryActionHasARole(t *testing.T) {
	t.Parallel()
	for _, port := range []auth.Port{auth.ACIPort, auth.ServicePort} {
		e := startWith(t, setup{front: func(c *Config) { c.Port = port; c.RequestLogSize = -1 }})
		for route := range e.srv.routes {
			_, ok := auth.KnownAction(port, actionName(route))
			require.True(t, ok, "%s port: %s has no row in auth.Rules (docs/security.md)", port, actionName(route))
		}
	}
	for _, qa := range queueActions {
		found := false
		for _, r := range auth.Rules {
			found = found || r.Action == "QueueInfo" && r.Sub == qa
		}
		require.True(t, found, "QueueAction %s has no row in auth.Rules", qa)
	}
}

// TestCallerClientFollowsItsPrincipal: a recycled caller keeps its client
// string only for the same address without certificate identities; any
// other principal gets its own (auth.Principal.String).
func TestCallerClientFollowsItsPrincipal(t *testing.T) {
	a, b := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("::1")
	c := &caller{principal: auth.Principal{Addr: a}}
	require.Equal(t, "10.1.2.3", c.client())
	// Recycled as identify does it, for the same address: the string is kept.
	kept := c.name
	*c = caller{principal: auth.Principal{Addr: a}, name: c.name, nameAddr: c.nameAddr}
	require.Equal(t, "10.1.2.3", c.client())
	require.Equal(t, unsafe.StringData(kept), unsafe.StringData(c.client()), "the same string, not a new one")
	// Another address.
	*c = caller{principal: auth.Principal{Addr: b}, name: c.name, nameAddr: c.nameAddr}
	require.Equal(t, "::1", c.client())
	// An unknown address.
	*c = caller{principal: auth.Principal{}, name: c.name, nameAddr: c.nameAddr}
	require.Equal(t, "unknown address", c.client())
	// Certificate identities at the address the string was made for.
	p := auth.Principal{Addr: a, DNS: []string{"client.example"}, Email: []string{"ops@example.com"}}
	*c = caller{principal: auth.Principal{Addr: a}, name: c.name, nameAddr: c.nameAddr}
	require.Equal(t, "10.1.2.3", c.client())
	*c = caller{principal: p, name: c.name, nameAddr: c.nameAddr}
	require.Equal(t, p.String(), c.client())
	require.Contains(t, c.client(), "dns:client.example")
}

// TestCallerRoleFollowsItsGrant: a recycled caller keeps its roles' string
// (a Fetch records it, and with several roles auth.Grant.Role joins them
// in a new string) only while its grant is the same; another grant, of
// the same policy or of another one, gets its own.
func TestCallerRoleFollowsItsGrant(t *testing.T) {
	local, other := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3")
	def := auth.Default()
	c := &caller{principal: auth.Principal{Addr: local}, grant: def.Grant(auth.Principal{Addr: local})}
	require.Equal(t, "Admin,ServiceControl,Query,ServiceStatus", c.role())
	// Recycled as identify does it, with the same grant: the string is kept.
	kept := c.roleName
	*c = caller{grant: def.Grant(auth.Principal{Addr: local}), roleName: c.roleName, roleOf: c.roleOf}
	require.Equal(t, unsafe.StringData(kept), unsafe.StringData(c.role()), "the same string, not a new one")
	// Another grant of the same policy.
	*c = caller{grant: def.Grant(auth.Principal{Addr: other}), roleName: c.roleName, roleOf: c.roleOf}
	require.Equal(t, "Query,ServiceStatus", c.role())
	// The same roles' bits in another policy.
	p := queryOnlyPolicy(t)
	*c = caller{grant: p.Grant(auth.Principal{Addr: other}), roleName: c.roleName, roleOf: c.roleOf}
	require.Equal(t, "Admins", c.role())
	*c = caller{grant: p.Grant(auth.Principal{Addr: local}), roleName: c.roleName, roleOf: c.roleOf}
	require.Equal(t, "Readers", c.role())
}

// TestRefusalLogIsBounded: a refused QueueInfo is logged with the
// QueueAction the client gave, which may be as long as the body (1 MiB):
// the log line shows at most maxLogged bytes of it, so that a client
// without a role cannot write a megabyte to the log with each request.
func TestRefusalLogIsBounded(t *testing.T) {
	t.Parallel()
	e, logs := queryOnlyServer(t)
	qa := strings.Repeat("Q", 100<<10)
	resp, err := http.Post(e.base+"/", "application/x-www-form-urlencoded",
		strings.NewReader("action=QueueInfo&QueueName=fetch&QueueAction="+qa))
	require.NoError(t, err)
	var x xresp
	require.NoError(t, xmlDecode(resp, &x))
	resp.Body.Close()
	require.Equal(t, "ERRORPERMISSIONDENIED", x.ResponseData.Code)
	out := logs.String()
	require.Contains(t, out, "request refused")
	require.Less(t, len(out), 4*maxLogged, "the refusal's log line: %d bytes", len(out))
}

// TestTemplateRefused: Template, the standard parameter that asks IDOL to
// transform the reply with an XSL template stored on the server, is refused
// as EncryptResponse, Output and FileName are: this server has no
// templates. It used to be ignored, so a client that asked for its
// template's HTML or CSV was sent the plain XML as a success. A blank
// Template, and TemplateParamCSVs or ForceTemplateRefresh without one,
// ask for nothing and pass.
func TestTemplateRefused(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	x := e.aci(t, "/action=GetVersion&Template=results&TemplateParamCSVs=a,b")
	require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, string(x.ResponseData.Inner))
	require.Contains(t, x.ResponseData.Desc, `invalid value "results" for parameter Template: this server has no reply templates`)
	for _, q := range []string{"Template=", "Template=%20", "TemplateParamCSVs=a&ForceTemplateRefresh=true"} {
		x := e.aci(t, "/action=GetVersion&"+q)
		require.Equal(t, "SUCCESS", x.Response, "%s: %s", q, x.ResponseData.Desc)
	}
}

// A Host header with a fully qualified name, ending in the root's dot
// (curl http://localhost.:7000/, a script given connector.example.com.),
// names the same host as without it: it is answered when that host is
// allowed (on main it was refused with ERRORREQUESTREFUSED), and an
// allowed host configured with the dot matches the name without it. One
// dot only: "localhost.." is no host name.
func TestAllowedHostsTakeAFullyQualifiedName(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{front: func(c *Config) { c.AllowedHosts = []string{"localhost", "connector.example.com."} }})
	for host, ok := range map[string]bool{"localhost.": true, "localhost.:7000": true, "LOCALHOST.": true,
		"connector.example.com": true, "connector.example.com.:7000": true,
		"evil.example.": false, "localhost..": false, ".": false, "localhost.evil.": false} {
		req, err := http.NewRequest("GET", e.base+"/action=GetVersion", nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var x xresp
		require.NoError(t, xmlDecode(resp, &x))
		resp.Body.Close()
		if ok {
			require.Equal(t, "SUCCESS", x.Response, host)
		} else {
			require.Equal(t, "ERRORREQUESTREFUSED", x.ResponseData.Code, host)
		}
	}
}
