package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testpki"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/secret"
)

// opsConfig is testConfig with keys added to [Server] and [Ingestion].
func opsConfig(t *testing.T, server, ingestion, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse("test.cfg", []byte("[Server]\nPort=0\nDataDirectory="+dir+"\n"+server+
		"[Actions]\nMaximumThreads=1\n[Ingestion]\nIngestDirectory="+filepath.Join(dir, "out")+"\n"+ingestion+extra),
		func(string, string) error { return config.ErrUnknownKey })
	require.NoError(t, err)
	return cfg
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// metric returns the value of the series line starting with name (labels
// included) on a metrics page, or "" when it is not there.
func metric(page, series string) string {
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, series+" ") {
			return strings.TrimPrefix(l, series+" ")
		}
	}
	return ""
}

// TestServicePort: the service port answers GetStatus, GetStatusInfo and
// /metrics; the metrics move with the queue (a submit adds one, a cancel
// ends one as Cancelled); Stop asks the command to shut down.
func TestServicePort(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "[Service]\nServicePort=0\n")
	s := startServer(t, cfg, newTestRepo())
	defer stop(t, s)
	svc := "http://" + s.ServiceAddr().String()

	_, body := get(t, nil, svc+"/action=GetStatus")
	require.Contains(t, body, "<response>SUCCESS</response>")
	require.Contains(t, body, "<queues>")
	_, body = get(t, nil, svc+"/action=GetStatusInfo")
	require.Contains(t, body, "<status>running</status>")
	_, body = get(t, nil, svc+"/action=Fetch&FetchAction=Synchronize")
	require.Contains(t, body, "ERRORNOTIMPLEMENTED", "the service port answers service actions only")
	resp, body := get(t, nil, svc+"/")
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, body, `href="http://127.0.0.1:`+portOf(s.Addr())+`/action=Admin"`, "the page links the dashboard on the ACI port")

	page := func() string {
		resp, body := get(t, nil, svc+"/metrics")
		require.Equal(t, 200, resp.StatusCode)
		return body
	}
	before := page()
	require.Equal(t, "0", metric(before, `connector_actions_submitted_total{fetch_action="SYNCHRONIZE",queue="fetch"}`))
	require.Equal(t, "0", metric(before, `connector_queue_actions{queue="fetch",state="queued"}`))

	aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	tok := between(aci(t, s, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>", "</token>")
	require.NotEmpty(t, tok)
	after := page()
	require.Equal(t, "1", metric(after, `connector_actions_submitted_total{fetch_action="SYNCHRONIZE",queue="fetch"}`))
	require.Equal(t, "1", metric(after, `connector_queue_actions{queue="fetch",state="queued"}`))
	require.Equal(t, "1", metric(after, `connector_queue_paused{queue="fetch"}`))
	require.Contains(t, aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=Cancel&Token="+url.QueryEscape(tok)), "<status>Cancelled</status>")
	after = page()
	require.Equal(t, "1", metric(after, `connector_actions_ended_total{fetch_action="SYNCHRONIZE",queue="fetch",status="Cancelled"}`))
	require.Equal(t, "1", metric(after, `connector_queue_actions{queue="fetch",state="cancelled"}`))
	require.Equal(t, "0", metric(after, `connector_queue_actions{queue="fetch",state="queued"}`))
	require.NotEqual(t, "0", metric(after, `connector_aci_requests_total{action="QueueInfo",outcome="success",port="aci"}`))
	require.NotEmpty(t, metric(after, `connector_store_commit_duration_seconds_count{queue="fetch"}`))
	require.NotContains(t, after, tok, "no label is built from a token")

	select {
	case <-s.StopRequested():
		t.Fatal("stop requested before Stop")
	default:
	}
	_, body = get(t, nil, svc+"/action=Stop")
	require.Contains(t, body, "<status>stopping</status>")
	select {
	case <-s.StopRequested():
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not ask for the shutdown")
	}
}

// The ports' open connections were nowhere to be seen: a server at
// [Server] MaxConnections lets new clients wait in the kernel's listen
// queue, unanswered, with one log line a minute, and idle kept-alive
// connections (a load balancer's pool, held until IdleTimeout) count
// towards it. connector_connections_open and _max, by port, let an
// operator see how near the limit the ports are, and alert before it.
func TestConnectionGauges(t *testing.T) {
	t.Parallel()
	cfg := opsConfig(t, "MaxConnections=50\n", "", "[Service]\nServicePort=0\n")
	s := startServer(t, cfg, newTestRepo())
	defer stop(t, s)
	svc := "http://" + s.ServiceAddr().String() + "/metrics"
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	gauge := func(series string) string { _, body := get(t, c, svc); return metric(body, series) }
	require.Equal(t, "50", gauge(`connector_connections_max{port="aci"}`))
	require.Equal(t, "64", gauge(`connector_connections_max{port="service"}`), "the default")
	// The scrape's own connection, once the server has closed the
	// previous scrape's (the client does not wait for that).
	testwait.For(t, 10*time.Second, func() bool {
		_, page := get(t, c, svc)
		return metric(page, `connector_connections_open{port="aci"}`) == "0" && metric(page, `connector_connections_open{port="service"}`) == "1"
	}, "no ACI connection, and the scrape's own on the service port")

	var conns []net.Conn
	for range 3 {
		conn, err := net.Dial("tcp", s.Addr().String())
		require.NoError(t, err)
		conns = append(conns, conn)
	}
	testwait.For(t, 10*time.Second, func() bool { return gauge(`connector_connections_open{port="aci"}`) == "3" }, "three open connections")
	for _, conn := range conns {
		require.NoError(t, conn.Close())
	}
	testwait.For(t, 10*time.Second, func() bool { return gauge(`connector_connections_open{port="aci"}`) == "0" }, "none once they closed")
}

// TestQueueGaugesCountThreadsHeld: connector_queue_running_actions counts
// the actions holding a worker thread, and _pending_actions those waiting
// (for a thread, or for their Resume: what MaximumQueueSize bounds). An
// action paused before it started holds no thread: it was counted as
// running (every Paused action was) and not as pending (only Queued ones
// were), so a queue of paused actions looked busy and empty.
func TestQueueGaugesCountThreadsHeld(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "[Service]\nServicePort=0\n")
	s := startServer(t, cfg, newTestRepo())
	defer stop(t, s)
	svc := "http://" + s.ServiceAddr().String()

	aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	tok := between(aci(t, s, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>", "</token>")
	require.NotEmpty(t, tok)
	require.Contains(t, aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=Pause&Token="+url.QueryEscape(tok)), "<status>Paused</status>")
	_, page := get(t, nil, svc+"/metrics")
	require.Equal(t, "1", metric(page, `connector_queue_actions{queue="fetch",state="paused"}`))
	require.Equal(t, "0", metric(page, `connector_queue_running_actions{queue="fetch"}`), "no thread is held")
	require.Equal(t, "1", metric(page, `connector_queue_pending_actions{queue="fetch"}`))
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// TestServicePortRoles: with roles, /metrics and Stop need ServiceStatus and
// ServiceControl; a refused scrape is HTTP 403 with an ACI error.
func TestServicePortRoles(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "[Service]\nServicePort=0\n[AuthorizationRoles]\n0=Elsewhere\n1=Local\n"+
		"[Elsewhere]\nStandardRoles=*\nClients=10.0.0.0/8\n[Local]\nStandardRoles=Query\nClients=localhost\n")
	s := startServer(t, cfg, newTestRepo())
	defer stop(t, s)
	svc := "http://" + s.ServiceAddr().String()
	resp, body := get(t, nil, svc+"/metrics")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, body, "ERRORPERMISSIONDENIED")
	_, body = get(t, nil, svc+"/action=Stop")
	require.Contains(t, body, "ERRORPERMISSIONDENIED")
	select {
	case <-s.StopRequested():
		t.Fatal("a refused Stop stopped the server")
	default:
	}
	require.Contains(t, aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus"), "SUCCESS")
}

// TestTLSStartErrorsNameTheKey: a certificate that does not load stops
// start-up, naming the file, line, section and key, before anything is
// created.
func TestTLSStartErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg, err := config.Parse("test.cfg", []byte("[Server]\nPort=0\nDataDirectory="+data+"\nSSLConfig=TLS\n[TLS]\nSSLCertificate="+
		filepath.Join(dir, "missing.crt")+"\nSSLPrivateKey="+filepath.Join(dir, "missing.key")+"\n"), nil)
	require.NoError(t, err)
	_, err = Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
	require.ErrorContains(t, err, "config test.cfg:6: [TLS] SSLCertificate: open "+filepath.Join(dir, "missing.crt")+": no such file or directory")
	_, serr := os.Stat(data)
	require.True(t, os.IsNotExist(serr), "nothing is created before the configuration is accepted")
}

// TestACIPortOverTLS: the whole server with [Server] SSLConfig answers over
// HTTPS, and the service port links the dashboard with https.
func TestACIPortOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "server CA")
	certPath, keyPath := ca.Localhost(t).Write(t, dir, "server")
	cfg := opsConfig(t, "SSLConfig=TLS\n", "", "[Service]\nServicePort=0\nSSLConfig=TLS\n[TLS]\nSSLCertificate="+certPath+"\nSSLPrivateKey="+keyPath+"\n")
	s := startServer(t, cfg, newTestRepo())
	defer stop(t, s)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	defer c.CloseIdleConnections()
	_, body := get(t, c, "https://"+s.Addr().String()+"/action=GetVersion")
	require.Contains(t, body, "<response>SUCCESS</response>")
	_, body = get(t, c, "https://"+s.ServiceAddr().String()+"/")
	require.Contains(t, body, `href="https://127.0.0.1:`+portOf(s.Addr())+`/action=Admin"`)
}

// TestSSLIdentitiesWithoutClientCertificatesWarn: roles with members by
// certificate (SSLIdentities) on a server none of whose ports asks clients
// for a certificate match nobody by certificate; start-up says so, naming
// the roles. It said nothing: the administrators a role listed by
// certificate were refused, with nothing to say why. With a port that
// asks (SSLCACertificate), nothing is said.
func TestSSLIdentitiesWithoutClientCertificatesWarn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "server CA")
	certPath, keyPath := ca.Localhost(t).Write(t, dir, "server")
	caPath := ca.WriteCA(t, dir, "clients")
	roles := "[AuthorizationRoles]\n0=Admins\n1=Local\n[Admins]\nStandardRoles=Admin\nSSLIdentities=admin.example.com\n" +
		"[Local]\nStandardRoles=*\nClients=localhost\n"
	tlsSection := "[TLS]\nSSLCertificate=" + certPath + "\nSSLPrivateKey=" + keyPath + "\n"
	for _, c := range []struct {
		name, server, extra string
		warns               bool
	}{
		{"plain", "", roles, true},
		{"TLS without client certificates", "SSLConfig=TLS\n", roles + tlsSection, true},
		{"TLS asking for client certificates", "SSLConfig=TLS\n", roles + tlsSection + "SSLCACertificate=" + caPath + "\n", false},
	} {
		var logs testlog.Buffer
		s, err := Start(opsConfig(t, c.server, "", c.extra), Options{Port: -1, LogOutput: &logs,
			Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
		require.NoError(t, err, c.name)
		stop(t, s)
		if c.warns {
			require.Contains(t, logs.String(), "roles list SSLIdentities, but no port asks clients for a certificate", c.name)
			require.Contains(t, logs.String(), "roles=Admins", c.name)
		} else {
			require.NotContains(t, logs.String(), "no port asks clients for a certificate", c.name)
		}
	}
}

// TestIngestCFSOverTLS: [Ingestion] SSLConfig makes CFS deliveries go over
// HTTPS, checking the CFS server's certificate against SSLCACertificate: a
// server of another authority is refused.
func TestIngestCFSOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "CFS CA")
	other := testpki.NewCA(t, "other CA")
	var mu sync.Mutex
	var got []string
	received := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	cfs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		got = append(got, r.Form.Get("action"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><autnresponse><action>INGEST</action><response>SUCCESS</response><responsedata><token>MTI3LjAuMC4xOjcwMDA6SU5HRVNUOjA=</token></responsedata></autnresponse>`)
	}))
	cfs.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Localhost(t).TLS(t)}, MinVersion: tls.VersionTLS12}
	cfs.StartTLS()
	defer cfs.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(cfs.URL, "https://"))

	deliver := func(caFile string) error {
		cfg := opsConfig(t, "", "IngesterType=CFS\nIngestHost="+host+"\nIngestPort="+port+"\nSSLConfig=CFS\n", "[CFS]\nSSLCACertificate="+caFile+"\n")
		var target ingest.Target
		s, err := Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(d Deps) (fetch.Repository, error) {
			target = d.Target
			return newTestRepo(), nil
		}})
		require.NoError(t, err)
		defer stop(t, s)
		return target.Add(context.Background(), []*ingest.Document{{Reference: "http://x/1", Content: "hello"}})
	}
	require.NoError(t, deliver(ca.WriteCA(t, dir, "cfs-ca")))
	n := received()
	require.NotZero(t, n)
	err := deliver(other.WriteCA(t, dir, "other-ca"))
	require.ErrorIs(t, err, ingest.ErrDelivery)
	require.ErrorContains(t, err, "certificate signed by unknown authority")
	require.Equal(t, n, received(), "nothing reached a server the authority did not sign")
}

// TestActionEndedLogLine: each action's end is one structured line with
// its token, action, tasks, client, role, status, times and counts.
func TestActionEndedLogLine(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "[Logging]\nLogFormat=json\n")
	var logs testlog.Buffer
	s, err := Start(cfg, Options{Port: -1, LogOutput: &logs, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
	require.NoError(t, err)
	defer stop(t, s)
	tok := between(aci(t, s, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask&Mode=instant"), "<token>", "</token>")
	require.NotEmpty(t, tok)
	var line map[string]any
	testwait.For(t, 10*time.Second, func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `"msg":"action ended"`) {
				require.NoError(t, json.Unmarshal([]byte(l), &line))
				return true
			}
		}
		return false
	}, "the action ended line")
	require.Equal(t, tok, line["token"])
	require.Equal(t, "SYNCHRONIZE", line["action"])
	require.Equal(t, "MYTASK", line["tasks"])
	require.Equal(t, "127.0.0.1", line["client"])
	require.Equal(t, "Admin,ServiceControl,Query,ServiceStatus", line["role"])
	require.Equal(t, "Finished", line["status"])
	require.Contains(t, line, "queued")
	require.Contains(t, line, "run_s")
	require.Contains(t, line["counts"], "seen")
	require.Equal(t, 1, strings.Count(logs.String(), `"msg":"action ended"`))
}

// TestDefaultAllowedHosts: bound to loopback, the machine's loopback
// names; bound to every interface, its host name and addresses too.
func TestDefaultAllowedHosts(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"localhost", "127.0.0.1", "::1"}, allowedHosts(config.Server{Host: "127.0.0.1"}))
	require.Equal(t, []string{"localhost", "127.0.0.1", "::1", "192.0.2.5"}, allowedHosts(config.Server{Host: "192.0.2.5"}))
	all := allowedHosts(config.Server{Host: "0.0.0.0"})
	name, _ := os.Hostname()
	require.Contains(t, all, name)
	require.Contains(t, all, "0.0.0.0")
	require.Equal(t, []string{"*"}, allowedHosts(config.Server{Host: "0.0.0.0", AllowedHosts: []string{"*"}}))
}

// TestServicePortGetStatusIsTheACIPorts: GetStatus on the service port is the
// ACI port's reply (service.go says so): its aciport is the ACI port, where
// a client that found the server by its service port sends its actions, and
// its supportedactions are the ACI port's actions. It used to print the
// service port as aciport, and list the fetch actions beside the service
// port's own actions, which answer no fetch action.
func TestServicePortGetStatusIsTheACIPorts(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "[Service]\nServicePort=0\n")
	s := startServer(t, cfg, newTestRepo())
	defer stop(t, s)
	_, svc := get(t, nil, "http://"+s.ServiceAddr().String()+"/action=GetStatus")
	port := portOf(s.Addr())
	require.Contains(t, svc, "<aciport>"+port+"</aciport>", "the ACI port, not the service port "+portOf(s.ServiceAddr()))
	ours := aci(t, s, "action=GetStatus")
	require.Equal(t, between(ours, "<supportedactions>", "</supportedactions>"), between(svc, "<supportedactions>", "</supportedactions>"))
	require.Contains(t, svc, `<action action="queueinfo"/>`)
	require.NotContains(t, svc, `<action action="stop"/>`)
}

// TestGetStatusNamesTheServicePort: GetStatus says the service port after
// the ACI port, as IDOL's GetStatus does (aciport, serviceport), so that a
// client that found the ACI port learns where to send service actions
// (GetStatusInfo, Stop) and scrape /metrics. A server without a service
// port has no serviceport element.
func TestGetStatusNamesTheServicePort(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "[Service]\nServicePort=0\n")
	s := startServer(t, cfg, newTestRepo())
	defer stop(t, s)
	want := "<aciport>" + portOf(s.Addr()) + "</aciport><serviceport>" + portOf(s.ServiceAddr()) + "</serviceport>"
	require.Contains(t, aci(t, s, "action=GetStatus"), want)
	_, svc := get(t, nil, "http://"+s.ServiceAddr().String()+"/action=GetStatus")
	require.Contains(t, svc, want)

	plain := startServer(t, testConfig(t, ""), newTestRepo())
	defer stop(t, plain)
	require.NotContains(t, aci(t, plain, "action=GetStatus"), "<serviceport>")
}

// TestAESKeyFileNotARegularFileStopsStartUp: a [Security] AESKeyFile that
// is a FIFO, a folder or a device stops start-up with an error naming the
// key and the file. The key is read only when a secret needs it, so the
// server started, and every request with a secret failed later.
func TestAESKeyFileNotARegularFileStopsStartUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "aes.ky")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, path := range []string{fifo, dir, "/dev/zero"} {
		cfg := testConfig(t, "[Security]\nAESKeyFile="+path+"\n")
		s, err := Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
		if err == nil {
			stop(t, s)
		}
		require.Error(t, err, path)
		require.ErrorContains(t, err, "[Security] AESKeyFile: "+path+" is not a regular file (")
	}
}

// TestAESKeyFileOthersCanReadStopsStartUp: a [Security] AESKeyFile that
// other users may read (0644, as autpassword -x makes it under the usual
// umask) stops start-up with an error naming the key, the file, its mode
// and the fix. The server started, and the key that decrypts every secret
// of the configuration and the store stayed readable by every user. One
// its group may read (0640, as docs/deploy.md installs /etc/connector's
// files) is fine.
func TestAESKeyFileOthersCanReadStopsStartUp(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "aes.ky")
	_, err := secret.EnsureKeyFile(path)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, 0o644))
	cfg := testConfig(t, "[Security]\nAESKeyFile="+path+"\n")
	s, err := Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
	if err == nil {
		stop(t, s)
	}
	require.ErrorContains(t, err, "[Security] AESKeyFile: secret: key file "+path+": other users may read or write it (mode 0644)")
	require.ErrorContains(t, err, "chmod 600 it")

	for _, mode := range []os.FileMode{0o600, 0o640} { // 0640: its group may read it
		require.NoError(t, os.Chmod(path, mode))
		s = startServer(t, cfg, newTestRepo())
		stop(t, s)
	}
}

// TestExpiredTLSCertificateAtStartIsLogged: a port whose certificate has
// expired (a renewal that failed before a restart) starts, serving it (there
// is no other to serve, and SIGHUP or the periodic check takes the renewed
// one), with an error line naming the port, the file and the date, for
// each port. It started without a word: the log said "connector started
// tls=true" while every client that checks certificates was refused, and
// the same certificate given by a reload is refused with an error.
func TestExpiredTLSCertificateAtStartIsLogged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "server CA")
	expired := ca.Issue(t, testpki.Leaf{CommonName: "localhost", DNS: []string{"localhost"}, NotAfter: time.Now().Add(-time.Hour)})
	certPath, keyPath := expired.Write(t, dir, "server")
	cfg := opsConfig(t, "SSLConfig=TLS\n", "", "[Service]\nServicePort=0\nSSLConfig=TLS\n[TLS]\nSSLCertificate="+certPath+"\nSSLPrivateKey="+keyPath+"\n")
	var logs testlog.Buffer
	s, err := Start(cfg, Options{Port: -1, LogOutput: &logs, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
	require.NoError(t, err, "an expired certificate does not stop the start")
	defer stop(t, s)
	require.Equal(t, 2, strings.Count(logs.String(), "level=ERROR msg=\"TLS certificate has expired"), logs.String())
	for _, port := range []string{"port=ACI", "port=service"} {
		require.Contains(t, logs.String(), port+" certificate="+certPath)
	}
	require.Contains(t, logs.String(), "not_after=")
}

// TestTLSFilesChangedAreReloaded: a certificate and key renewed in place,
// for the ACI and the service port alike, are served once the periodic
// check sees them, without a SIGHUP; a certificate whose key is not yet
// in place (a renewal written file by file) is refused once, naming the
// file, and the pair is taken when its key follows.
func TestTLSFilesChangedAreReloaded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "server CA")
	first := ca.Localhost(t)
	certPath, keyPath := first.Write(t, dir, "server")
	cfg := opsConfig(t, "SSLConfig=TLS\n", "", "[Service]\nServicePort=0\nSSLConfig=TLS\n[TLS]\nSSLCertificate="+certPath+"\nSSLPrivateKey="+keyPath+"\n")
	var logs testlog.Buffer
	s, err := Start(cfg, Options{Port: -1, LogOutput: &logs, TLSCheckInterval: 20 * time.Millisecond,
		Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
	require.NoError(t, err)
	defer stop(t, s)
	require.Equal(t, first.Serial(t), ca.ServedSerial(s.Addr().String()))

	renewed := ca.Localhost(t)
	testpki.Replace(t, certPath, renewed.CertPEM) // the key follows later
	// Both ports check the files: wait for both refusals before the key
	// follows, or a port that had not looked yet sees the whole pair.
	testwait.For(t, 10*time.Second, func() bool { return strings.Count(logs.String(), "new TLS certificate refused") >= 2 }, "the half-written pair to be refused by both ports")
	require.Contains(t, logs.String(), certPath+" and "+keyPath+": tls: private key does not match public key")
	for _, addr := range []string{s.Addr().String(), s.ServiceAddr().String()} {
		require.Equal(t, first.Serial(t), ca.ServedSerial(addr), "the first pair stays meanwhile")
	}
	testpki.Replace(t, keyPath, renewed.KeyPEM)
	for _, addr := range []string{s.Addr().String(), s.ServiceAddr().String()} {
		testwait.For(t, 10*time.Second, func() bool { return ca.ServedSerial(addr) == renewed.Serial(t) }, "%s to serve the renewed pair", addr)
	}
	require.Equal(t, 2, strings.Count(logs.String(), "new TLS certificate refused"), "one refusal per port, not one per check")
}
