package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

// browserWriter is stdout: when the consent URL is printed, it follows it
// as a person's browser would.
type browserWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
	t    *testing.T
}

var consentURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/\S*auth\S*\?\S+`)

func (w *browserWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if u := consentURL.FindString(w.buf.String()); u != "" {
		w.once.Do(func() {
			go func() {
				resp, err := http.Get(u)
				if err != nil {
					w.t.Errorf("browser: %v", err)
					return
				}
				resp.Body.Close()
			}()
		})
	}
	return len(p), nil
}

func (w *browserWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestOAuthCommandStoresTheRefreshToken(t *testing.T) {
	srv := mailtest.StartOAuthServer(t)
	srv.Consent("alice@example.com")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mail.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(`[Connector]
Type=GOOGLEMAIL
[Server]
DataDirectory=`+filepath.Join(dir, "data")+`
[FetchTasks]
0=MyMail
[MyMail]
Username=alice@example.com
AuthMethod=XOAUTH2
OAuthClientID=client-1
OAuthClientSecret=shhh
OAuthAuthorizeUrl=`+srv.URL+`/auth
OAuthTokenUrl=`+srv.URL+`/token
`), 0o600))
	out := &browserWriter{t: t}
	var stderr bytes.Buffer
	code := oauthMain([]string{"-config", cfg, "-timeout", "30s"}, out, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Contains(t, out.String(), "Authorized.")
	tokenFile := filepath.Join(dir, "data", "oauth", "mymail.token")
	st, err := os.Stat(tokenFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	key, err := secret.LoadKeyFile(filepath.Join(dir, "data", "aes.ky"))
	require.NoError(t, err)
	tok, err := oauth.TokenFile{Path: tokenFile, Key: key}.Load()
	require.NoError(t, err)
	require.NotContains(t, out.String()+stderr.String(), tok.RefreshToken, "no token is printed")
	require.NotContains(t, out.String()+stderr.String(), "shhh")
	// The token works.
	ts, err := oauth.TokenFile{Path: tokenFile, Key: key}.TokenSource(context.Background(), oauth.Config{ClientID: "client-1", TokenURL: srv.URL + "/token"})
	require.NoError(t, err)
	at, err := ts.Token()
	require.NoError(t, err)
	require.Equal(t, "alice@example.com", srv.UserOf(at.AccessToken))
}

// A Webex task is authorized the same way, against the Webex stand-in's
// integration endpoints, and the token then reads Webex.
func TestOAuthCommandWebex(t *testing.T) {
	srv := webextest.New(webextest.Options{ClientID: "webex-client", ClientSecret: "webex-secret"})
	defer srv.Close()
	alice := srv.AddPerson("alice@example.com", "Alice")
	srv.SetMe(alice, false)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "webex.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(`[Connector]
Type=WEBEX
[Server]
DataDirectory=`+filepath.Join(dir, "data")+`
[FetchTasks]
0=MyWebex
[MyWebex]
WebexApiUrl=`+srv.URL+`
OAuthClientID=webex-client
OAuthClientSecret=webex-secret
OAuthAuthorizeUrl=`+srv.URL+`/authorize
OAuthTokenUrl=`+srv.URL+`/access_token
OAuthRedirectUrl=http://127.0.0.1/
`), 0o600))
	out := &browserWriter{t: t}
	var stderr bytes.Buffer
	code := oauthMain([]string{"-config", cfg, "-timeout", "30s"}, out, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Contains(t, out.String(), "scope=spark%3Akms")
	tokenFile := filepath.Join(dir, "data", "oauth", "mywebex.token")
	key, err := secret.LoadKeyFile(filepath.Join(dir, "data", "aes.ky"))
	require.NoError(t, err)
	ts, err := oauth.TokenFile{Path: tokenFile, Key: key}.TokenSource(context.Background(),
		oauth.Config{ClientID: "webex-client", ClientSecret: "webex-secret", TokenURL: srv.URL + "/access_token"})
	require.NoError(t, err)
	at, err := ts.Token()
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/rooms", nil)
	req.Header.Set("Authorization", "Bearer "+at.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, out.String()+stderr.String(), "webex-secret")
}

func TestOAuthCommandErrors(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 2, oauthMain(nil, &out, &errb))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mail.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte("[FetchTasks]\n0=M\n[M]\nUrl=http://127.0.0.1/\n"), 0o600))
	errb.Reset()
	require.Equal(t, 1, oauthMain([]string{"-config", cfg}, &out, &errb))
	require.Contains(t, errb.String(), "Type=HTTP has no task to authorize")
	require.Contains(t, errb.String(), "GOOGLEMAIL, WEBEX")
	require.NoError(t, os.WriteFile(cfg, []byte("[Connector]\nType=GOOGLEMAIL\n[FetchTasks]\n0=M\n[M]\nUsername=a@b\nPassword=x\n"), 0o600))
	errb.Reset()
	require.Equal(t, 1, oauthMain([]string{"-config", cfg}, &out, &errb))
	require.Contains(t, errb.String(), "has no OAuthClientID")
	errb.Reset()
	require.Equal(t, 1, oauthMain([]string{"-config", cfg, "-task", "Nope"}, &out, &errb))
	require.Contains(t, errb.String(), "no task [Nope]")
	require.NoError(t, os.WriteFile(cfg, []byte("[Connector]\nType=GOOGLEMAIL\n[FetchTasks]\n0=M\n[M]\nUsername=a@b\nImapPrt=1\n"), 0o600))
	errb.Reset()
	require.Equal(t, 1, oauthMain([]string{"-config", cfg}, &out, &errb))
	require.Contains(t, errb.String(), "did you mean ImapPort?")
}

// TestOAuthCommandRefusesATimeoutNotPositive: -timeout 0 (or negative)
// is a usage error (status 2), refused before anything is read or
// started; it printed a consent URL that could never be used and then
// failed with "context deadline exceeded".
func TestOAuthCommandRefusesATimeoutNotPositive(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "absent.cfg")
	for _, d := range []string{"0", "-1m"} {
		var out, errb bytes.Buffer
		require.Equal(t, 2, oauthMain([]string{"-config", cfg, "-timeout", d}, &out, &errb), d)
		require.Empty(t, out.String())
		require.Contains(t, errb.String(), "connector oauth: -timeout ", d)
		require.Contains(t, errb.String(), ": must be positive (how long to wait for the browser)", d)
	}
}
