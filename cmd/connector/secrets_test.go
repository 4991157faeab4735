package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/server"
)

// TestSecretsNeverInClear is the regression test of issue 9 item 10 on the
// assembled server: a password given as an override (in the URI, and in a
// POST body's Config fragment) reaches the site, and appears in clear in
// none of GetRequestLog, GetActionParameters, the log (at debug level),
// the IDX output or any file of the data folder (the store); a malformed
// request's Authorization and Cookie headers are never echoed.
func TestSecretsNeverInClear(t *testing.T) {
	t.Parallel()
	const password = "Tr0ub4dor&3-horse"
	var authorised, refused atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "crawler" || p != password {
			refused.Add(1)
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		authorised.Add(1)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><head><title>page %s</title></head><body><a href="/next">next</a></body></html>`, r.URL.Path)
	}))
	defer site.Close()
	dir := t.TempDir()
	cfg, err := config.Parse("secrets.cfg", []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
[Logging]
LogLevel=debug
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=MyTask
[MyTask]
Url=%s/
BasicAuthUsername=crawler
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), site.URL)), httpfetch.TaskKeys)
	require.NoError(t, err)
	var logs testlog.Buffer
	srv, err := server.Start(cfg, server.Options{Port: 0, LogOutput: &logs,
		Repository: func(d server.Deps) (fetch.Repository, error) {
			return httpfetch.New(httpfetch.Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger})
		}})
	require.NoError(t, err)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	}
	defer stop()
	base := "http://" + srv.Addr().String()
	get := func(path string) string {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	token := func(reply string) string {
		tok := between(reply, "<token>", "</token>")
		require.NotEmpty(t, tok, reply)
		return tok
	}
	var shown strings.Builder // everything the server showed

	// Paused, so that the actions' parameters can be read while queued.
	shown.WriteString(get("/action=QueueInfo&QueueName=fetch&QueueAction=Pause"))
	t1 := token(get("/action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&%5BMyTask%5DBasicAuthPassword=" + url.QueryEscape(password)))
	frag := base64.StdEncoding.EncodeToString([]byte("[MyTask]\nBasicAuthPassword=" + password + "\n"))
	resp, err := http.Post(base+"/", "application/x-www-form-urlencoded", strings.NewReader(
		"action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&Config="+url.QueryEscape(frag)))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t2 := token(string(body))
	for _, tok := range []string{t1, t2} {
		p := get("/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token=" + url.QueryEscape(tok))
		require.Contains(t, p, "<response>SUCCESS</response>", p)
		shown.WriteString(p)
	}
	shown.WriteString(get("/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters"))
	// A malformed request carrying the password in its headers.
	c, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	basic := base64.StdEncoding.EncodeToString([]byte("crawler:" + password))
	_, err = c.Write([]byte("GET /action=GetVersion HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic " + basic +
		"\r\nCookie: pw=" + password + "\r\nnot a header\r\n\r\n"))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, _ := io.ReadAll(c)
	c.Close()
	require.Contains(t, string(raw), "ERRORBADREQUEST")
	shown.Write(raw)

	shown.WriteString(get("/action=QueueInfo&QueueName=fetch&QueueAction=Resume"))
	for _, tok := range []string{t1, t2} {
		testwait.For(t, 20*time.Second, func() bool {
			s := get("/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(tok))
			return strings.Contains(s, "<status>Finished</status>")
		}, "the action finishes")
	}
	require.Equal(t, int32(6), authorised.Load(), "both runs fetched robots.txt and both pages with the password")
	require.Zero(t, refused.Load())
	log := get("/action=GetRequestLog")
	require.Contains(t, log, "BasicAuthPassword=%5BREDACTED%5D")
	shown.WriteString(log)
	stop()

	leaks := []string{password, basic, url.QueryEscape(password)}
	scanForSecrets(t, "the replies", []byte(shown.String()), leaks)
	scanForSecrets(t, "the log", []byte(logs.String()), leaks)
	scanFolderForSecrets(t, dir, leaks)
	out, err := os.ReadDir(filepath.Join(dir, "out"))
	require.NoError(t, err)
	require.NotEmpty(t, out, "the IDX output was written (and checked)")
}

// TestPasswordCommand: `connector password` prints IDOL's encrypted form,
// which the key file decrypts back; it refuses a password given as an
// argument.
func TestPasswordCommand(t *testing.T) {
	t.Parallel()
	keyPath := filepath.Join(t.TempDir(), "keys", "aes.ky")
	var out, errOut bytes.Buffer
	code := passwordMain([]string{"-keyfile", keyPath}, strings.NewReader("s3cret pass\n"), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	v := strings.TrimSpace(out.String())
	require.True(t, secret.IsEncrypted(v))
	k, err := secret.LoadKeyFile(keyPath)
	require.NoError(t, err)
	got, err := k.Decrypt(v)
	require.NoError(t, err)
	require.Equal(t, "s3cret pass", got)
	require.Equal(t, 2, passwordMain([]string{"-keyfile", keyPath, "s3cret"}, strings.NewReader(""), &out, &errOut))
	require.Equal(t, 2, passwordMain([]string{"-keyfile", keyPath}, strings.NewReader(""), &out, &errOut))
	errOut.Reset()
	require.Equal(t, 2, passwordMain([]string{"-keyfile", keyPath}, strings.NewReader("p\xe4sswort\n"), &out, &errOut), "Latin-1, not UTF-8")
	require.Contains(t, errOut.String(), "not UTF-8")
}

// TestPasswordCommandSaysWhenItMakesAKey: `connector password` that finds
// no key file makes one, and says so on standard error, with the file's
// absolute path: the value it prints decrypts only with that new key. Run
// in another folder than the server's (a relative AESKeyFile, or
// DataDirectory, is taken from the folder a program runs in), it made a
// stray key there without a word, and the server refused the value as
// "not encrypted with the key" it reads. With the key file there, nothing
// is said.
func TestPasswordCommandSaysWhenItMakesAKey(t *testing.T) {
	t.Parallel()
	keyPath := filepath.Join(t.TempDir(), "keys", "aes.ky")
	var out, errOut bytes.Buffer
	require.Equal(t, 0, passwordMain([]string{"-keyfile", keyPath}, strings.NewReader("pw\n"), &out, &errOut), errOut.String())
	require.True(t, secret.IsEncrypted(strings.TrimSpace(out.String())))
	require.Equal(t, "connector password: made a new key file, "+keyPath+
		": only a server whose [Security] AESKeyFile is this file decrypts the value (a relative path is taken from the folder a program runs in)\n", errOut.String())
	out.Reset()
	errOut.Reset()
	require.Equal(t, 0, passwordMain([]string{"-keyfile", keyPath}, strings.NewReader("pw\n"), &out, &errOut), errOut.String())
	require.Empty(t, errOut.String())
	require.True(t, secret.IsEncrypted(strings.TrimSpace(out.String())))
}

// TestPasswordCommandRefusesConfigAndKeyfile: -config and -keyfile are
// one or the other (the usage says so); with both, -keyfile won without a
// word, and a password was encrypted with a key the configuration named
// by -config does not use, so the server could not decrypt it.
func TestPasswordCommandRefusesConfigAndKeyfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "aes.ky")
	cfg := filepath.Join(dir, "c.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte("[Security]\nAESKeyFile="+filepath.Join(dir, "other.ky")+"\n"), 0o600))
	var out, errOut bytes.Buffer
	require.Equal(t, 2, passwordMain([]string{"-config", cfg, "-keyfile", keyPath}, strings.NewReader("pw\n"), &out, &errOut))
	require.Empty(t, out.String())
	require.Contains(t, errOut.String(), "connector password: give -config or -keyfile, not both")
	require.NoFileExists(t, keyPath)
}

// canary is in every secret of the canary tests: passwords, client
// secrets, refresh and access tokens. Its letters survive every text
// encoding (percent, JSON, XML, HTML), so a scan for it finds a secret in
// any of those forms; canaryForms adds the base64 ones.
const canary = "Kn4ryQ7zXw"

// canaryPassword has the characters that each encoding changes.
const canaryPassword = canary + `&<"é+ x`

// canaryForms is what a scan looks for: the canary, and the base64 of each
// secret (alone, and as user:secret in a Basic header) and of the canary
// itself (in whatever text it is embedded: a percent-encoded URL inside a
// base64 Config fragment) at the three byte alignments, without the edge
// characters that depend on the neighbours.
func canaryForms(user string, secrets ...string) []string {
	forms := []string{canary}
	for _, s := range append(secrets, canary) {
		for _, v := range []string{s, user + ":" + s} {
			for pad := range 3 {
				b := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", pad) + v))
				forms = append(forms, b[4:len(b)-4])
			}
		}
	}
	return forms
}

// scanForSecrets reports every place text holds one of forms (a secret
// in one of its encodings: canaryForms).
func scanForSecrets(t *testing.T, where string, text []byte, forms []string) {
	t.Helper()
	for _, f := range forms {
		for n, i := 0, 0; n < 5; n++ {
			j := bytes.Index(text[i:], []byte(f))
			if j < 0 {
				break
			}
			i += j
			t.Errorf("a secret (%q) in %s: …%q…", f, where, text[max(0, i-160):min(len(text), i+len(f)+60)])
			i += len(f)
		}
	}
}

// scanFolderForSecrets scans every file under dir.
func scanFolderForSecrets(t *testing.T, dir string, forms []string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		scanForSecrets(t, p, b, forms)
		return nil
	}))
}

// canaryConfig is the server's part of a canary test's configuration:
// everything under dir, the log at debug level in a file.
func canaryConfig(dir string) string {
	return fmt.Sprintf(`[Server]
DataDirectory=%[1]s/data
[Logging]
LogLevel=debug
LogFile=%[1]s/log/connector.log
[Ingestion]
IngestDirectory=%[1]s/out
`, dir)
}

// canaryServer is a running server of one connector type whose replies
// are all kept for the scan.
type canaryServer struct {
	t     *testing.T
	srv   *server.Server
	base  string
	shown bytes.Buffer
}

func startCanaryServer(t *testing.T, cfgText string) *canaryServer {
	t.Helper()
	cfg, _, err := connectors.Builtin.Parse("canary.cfg", []byte(cfgText))
	require.NoError(t, err)
	var lb testlog.Buffer // the log goes to [Logging] LogFile
	srv, err := server.Start(cfg, server.Options{Port: 0, LogOutput: &lb})
	require.NoError(t, err)
	return &canaryServer{t: t, srv: srv, base: "http://" + srv.Addr().String()}
}

// read keeps and returns a reply's body.
func (c *canaryServer) read(resp *http.Response, err error) string {
	c.t.Helper()
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	c.shown.Write(b)
	return string(b)
}

func (c *canaryServer) get(u string) string { c.t.Helper(); return c.read(http.Get(u)) }

func (c *canaryServer) aci(query string) string { c.t.Helper(); return c.get(c.base + "/" + query) }

func (c *canaryServer) post(body string) string {
	c.t.Helper()
	return c.read(http.Post(c.base+"/", "application/x-www-form-urlencoded", strings.NewReader(body)))
}

// waitEnded waits until the action of a submission's reply has ended.
func (c *canaryServer) waitEnded(reply string) {
	c.t.Helper()
	tok := between(reply, "<token>", "</token>")
	require.NotEmpty(c.t, tok, reply)
	testwait.For(c.t, 60*time.Second, func() bool {
		s := c.aci("action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(tok))
		return strings.Contains(s, "<status>Finished</status>") || strings.Contains(s, "<status>Error</status>")
	}, "the action ends")
}

// showEverything asks for every page that shows actions, requests and
// the server's state.
func (c *canaryServer) showEverything() {
	c.t.Helper()
	for _, q := range []string{
		"action=QueueInfo&QueueName=fetch&QueueAction=GetStatus",
		"action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters",
		"action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus",
		"action=GetRequestLog", "action=GetStatus", "action=TaskList", "action=ThreadStatus", "action=Admin",
	} {
		c.aci(q)
	}
	if a := c.srv.ServiceAddr(); a != nil {
		c.get("http://" + a.String() + "/metrics")
		c.get("http://" + a.String() + "/action=GetStatus")
	}
}

func (c *canaryServer) stop() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(c.t, c.srv.Shutdown(ctx))
}

// TestCanaryHTTP runs the HTTP connector with a canary password through
// what may show it: overrides in the URI and in a Config fragment, a
// fragment whose password line lacks its =, Identifiers and View of a URL
// with the password, parameters the action ignores (a URL with the
// password, ApiKey, AccessToken, X-Auth, Cookie, a name that is such a
// URL) queued, read back and duplicated, an Insert whose reference holds
// it, a fragment line "X-Auth: password", a fragment whose Url holds it
// (refused, and shown by the request log), a site whose pages link and
// redirect to user:password@ URLs and whose errors quote the
// Authorization header;
// then scans every reply (GetStatus, GetActionParameters, GetRequestLog,
// the dashboard, metrics), the debug log file, the IDX output and the data
// folder (journal, bbolt store) for the canary in any encoding.
func TestCanaryHTTP(t *testing.T) {
	t.Parallel()
	pw := canaryPassword
	var site *httptest.Server
	site = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "crawler" || p != pw {
			http.Error(w, "who are you? you sent "+r.Header.Get("Authorization"), http.StatusUnauthorized)
			return
		}
		withCreds := "http://crawler:" + url.QueryEscape(pw) + "@" + strings.TrimPrefix(site.URL, "http://")
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, withCreds+"/target", http.StatusFound)
		case "/refused":
			http.Error(w, "forbidden to "+r.Header.Get("Authorization"), http.StatusForbidden)
		default:
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<html><head><title>page %s</title></head><body><a href="/redirect">r</a>
<a href="%s/linked">l</a> <a href="%s/refused">f</a></body></html>`, r.URL.Path, withCreds, withCreds)
		}
	}))
	defer site.Close()
	dir := t.TempDir()
	c := startCanaryServer(t, canaryConfig(dir)+fmt.Sprintf(`[Service]
ServicePort=0
[FetchTasks]
0=MyTask
[MyTask]
Url=%s/
BasicAuthUsername=crawler
`, site.URL))
	defer c.stop()
	q := url.QueryEscape
	fragment := func(s string) string { return q(base64.StdEncoding.EncodeToString([]byte(s))) }
	withCreds := "http://crawler:" + q(pw) + "@" + strings.TrimPrefix(site.URL, "http://")

	// Parameters the action ignores, with the password in a URL and under
	// names that say key, token or auth; an Insert whose reference holds
	// it; a fragment line without = that starts with such a name. Queued
	// while the queue is paused, read back and duplicated.
	c.aci("action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	ignored := c.aci("action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&Bogus=" + q(withCreds+"/x") +
		"&ApiKey=" + q(pw) + "&AccessToken=" + q(pw) + "&X-Auth=" + q(pw) + "&Cookie=" + q("sid="+pw) +
		"&" + q(withCreds+"/name") + "=1")
	ignoredToken := between(ignored, "<token>", "</token>")
	require.NotEmpty(t, ignoredToken, ignored)
	dup := c.aci("action=QueueInfo&QueueName=fetch&QueueAction=Duplicate&Token=" + q(ignoredToken))
	require.Contains(t, dup, "<token>", dup)
	params := c.aci("action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token=" + q(ignoredToken))
	require.Contains(t, params, `<parameter name="Bogus">http://crawler:[REDACTED]@`, params)
	c.aci("action=QueueInfo&QueueName=fetch&QueueAction=Resume")
	require.Contains(t, c.post("action=Fetch&FetchAction=Insert&ConfigSection=MyTask&InsertXML="+q("<insert><reference>"+withCreds+
		"/doc</reference><file><type>drecontent</type><content>x</content></file></insert>")), "ERRORPARAMINVALID")
	require.Contains(t, c.post("action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&Config="+fragment("[MyTask]\nX-Auth: "+pw+"\n")), "ERROR")
	require.Contains(t, c.post("action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&Config="+fragment("[MyTask]\nUrl="+withCreds+"/\n")), "ERROR")

	sync := c.aci("action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&%5BMyTask%5DBasicAuthPassword=" + q(pw))
	fromFragment := c.post("action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&Config=" + fragment("[MyTask]\nBasicAuthPassword="+pw+"\n"))
	require.Contains(t, c.post("action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&Config="+fragment("[MyTask]\nBasicAuthPassword: "+pw+"\n")), "ERROR")
	require.Contains(t, c.aci("action=Fetch&FetchAction=Collect&TaskSections=MyTask&Identifiers="+q(withCreds+"/linked")), "ERROR")
	c.aci("action=View&Reference=" + q(withCreds+"/linked"))
	c.waitEnded(sync)
	c.waitEnded(fromFragment)
	c.waitEnded(ignored)
	c.waitEnded(dup)
	status := c.aci("action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + q(between(sync, "<token>", "</token>")))
	require.Contains(t, status, "<status>Finished</status>")
	require.Contains(t, status, "/refused</url>", "the refused page is a failure, named")
	c.showEverything()
	c.stop()

	forms := canaryForms("crawler", pw)
	scanForSecrets(t, "the replies", c.shown.Bytes(), forms)
	scanFolderForSecrets(t, dir, forms)
	idx, err := filepath.Glob(filepath.Join(dir, "out", "*.idx"))
	require.NoError(t, err)
	require.NotEmpty(t, idx, "the IDX output was written (and scanned)")
	all := ""
	for _, f := range idx {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		all += string(b)
	}
	require.Contains(t, all, "#DREREFERENCE "+site.URL+"/linked\n", "a link with credentials is indexed by its URL alone")
	require.Contains(t, all, "#DREREFERENCE "+site.URL+"/target\n", "and so is a redirect's target")
}

// echoService answers every request with an error that quotes it: its
// Authorization header and its body. With tokenOK its token endpoint
// (a path with "token") grants a canary access token instead.
func echoService(tokenOK bool) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		msg := "you sent " + r.Header.Get("Authorization") + " with " + string(body)
		switch {
		case strings.Contains(r.URL.Path, "token") && tokenOK:
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + canary, "expires_in": 3600, "token_type": "Bearer"})
		case strings.Contains(r.URL.Path, "token"):
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": msg})
		case strings.HasPrefix(r.URL.Path, "/gmail/"):
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 401, "message": msg, "status": "UNAUTHENTICATED"}})
		default:
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
		}
	}))
}

// TestCanaryREST runs the Objective (basic and OAuth), Webex and Google
// Mail (Gmail API) connectors against a service that quotes, in every
// error, the request it refused (its Authorization header and form: the
// password, client secret, refresh token or access token), with a token
// endpoint that refuses likewise or grants a canary access token, by a
// Synchronize whose ignored parameters carry the password too; then
// scans the replies, the debug log file and the data folder (store,
// journal, token file) for the canary.
func TestCanaryREST(t *testing.T) {
	t.Parallel()
	pw := canaryPassword
	refresh := "rt-" + canary
	forms := canaryForms("indexer", pw, refresh, "at-"+canary)
	tasks := map[string]string{
		"objective-basic": "[Connector]\nType=OBJECTIVE\n[T]\nServerUrl=URL\nUsername=indexer\nPassword=PW\nMaxAttempts=1\n",
		"objective-oauth": "[Connector]\nType=OBJECTIVE\n[T]\nServerUrl=URL\nAuthMethod=OAUTH\nOAuthClientID=c\nOAuthClientSecret=PW\nUsername=indexer\nPassword=PW\nMaxAttempts=1\n",
		"webex":           "[Connector]\nType=WEBEX\n[T]\nWebexApiUrl=URL\nOAuthTokenUrl=URL/access_token\nOAuthClientID=c\nOAuthClientSecret=PW\nMaxAttempts=1\n",
		"gmail-api":       "[Connector]\nType=GOOGLEMAIL\n[T]\nTransport=GMAILAPI\nUsername=a@example.com\nGmailApiUrl=URL/\nOAuthTokenUrl=URL/token\nOAuthClientID=c\nOAuthClientSecret=PW\n",
	}
	for _, tokenOK := range []bool{false, true} {
		svc := echoService(tokenOK)
		defer svc.Close()
		for name, task := range tasks {
			t.Run(fmt.Sprintf("%s/token-granted=%v", name, tokenOK), func(t *testing.T) {
				dir := t.TempDir()
				key, err := secret.EnsureKeyFile(filepath.Join(dir, "data", "aes.ky"))
				require.NoError(t, err)
				require.NoError(t, oauth.TokenFile{Path: filepath.Join(dir, "data", "oauth", "t.token"), Key: key}.Save(&oauth2.Token{RefreshToken: refresh}, "c", nil))
				task = strings.NewReplacer("URL", svc.URL, "PW", pw).Replace(task)
				c := startCanaryServer(t, task+canaryConfig(dir)+"[FetchTasks]\n0=T\n")
				defer c.stop()
				// With parameters the action ignores that carry the
				// password: a URL's, and names that say key, token, auth.
				sync := c.aci("action=Fetch&FetchAction=Synchronize&ConfigSection=T&Bogus=" +
					url.QueryEscape("http://indexer:"+url.QueryEscape(pw)+"@h/") + "&ApiKey=" + url.QueryEscape(pw) +
					"&X-Auth=" + url.QueryEscape(pw) + "&SigningKey=" + url.QueryEscape(pw))
				c.waitEnded(sync)
				status := c.aci("action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(between(sync, "<token>", "</token>")))
				require.Contains(t, status, "<status>Error</status>", "the service refused everything")
				require.Contains(t, status, "you sent ", "the service's own message is kept")
				c.aci("action=View&Reference=x")
				c.showEverything()
				c.stop()
				scanForSecrets(t, "the replies", c.shown.Bytes(), forms)
				scanFolderForSecrets(t, dir, forms)
			})
		}
	}
}

// TestPasswordCommandRefusesMoreLines: `connector password` reads one
// line; a second line (a multi-line paste, `printf 'pw\nmore\n'`) was
// silently dropped and only the first encrypted, so the server was given
// another password than the user meant. Now it is refused, and nothing is
// printed; trailing empty lines (`echo` plus a blank line) are harmless.
func TestPasswordCommandRefusesMoreLines(t *testing.T) {
	t.Parallel()
	keyPath := filepath.Join(t.TempDir(), "aes.ky")
	for _, in := range []string{"pw\nmore\n", "pw\r\nmore", "pw\n\n second"} {
		var out, errOut bytes.Buffer
		require.Equal(t, 2, passwordMain([]string{"-keyfile", keyPath}, strings.NewReader(in), &out, &errOut), "%q", in)
		require.Empty(t, out.String(), "%q", in)
		require.Equal(t, "connector password: standard input has more than one line: give the password alone, on one line\n", errOut.String(), "%q", in)
	}
	require.NoFileExists(t, keyPath)
	var out, errOut bytes.Buffer
	require.Equal(t, 0, passwordMain([]string{"-keyfile", keyPath}, strings.NewReader("pw\n\r\n\n"), &out, &errOut), errOut.String())
	k, err := secret.LoadKeyFile(keyPath)
	require.NoError(t, err)
	got, err := k.Decrypt(strings.TrimSpace(out.String()))
	require.NoError(t, err)
	require.Equal(t, "pw", got)
}
