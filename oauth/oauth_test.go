package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/secret"
)

func testKey(t *testing.T) *secret.Key {
	k, err := secret.EnsureKeyFile(filepath.Join(t.TempDir(), "aes.ky"))
	require.NoError(t, err)
	return k
}

// browser follows the consent URL the way a person's browser would: to the
// provider, which redirects to the loopback address.
func browser(t *testing.T, consent string) (int, string) {
	resp, err := http.Get(consent)
	if err != nil {
		t.Errorf("browser: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	buf := new(strings.Builder)
	_, _ = bufioCopy(buf, resp)
	return resp.StatusCode, buf.String()
}

func bufioCopy(b *strings.Builder, resp *http.Response) (int64, error) {
	data := make([]byte, 4096)
	n, _ := resp.Body.Read(data)
	b.Write(data[:n])
	return int64(n), nil
}

func TestAuthorizeSavesAnEncryptedRefreshTokenAndRefreshes(t *testing.T) {
	srv := mailtest.StartOAuthServer(t)
	srv.Consent("alice@example.com")
	cfg := Config{ClientID: "client-1", ClientSecret: "s3cret", AuthURL: srv.URL + "/auth", TokenURL: srv.URL + "/token",
		Scopes: []string{"https://mail.google.com/"}, AuthParams: GoogleAuthParams}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	page := make(chan string, 1)
	tok, err := Authorize(ctx, cfg, func(u string) {
		q, err := url.Parse(u)
		require.NoError(t, err)
		require.Equal(t, "offline", q.Query().Get("access_type"))
		require.Equal(t, "S256", q.Query().Get("code_challenge_method"))
		require.True(t, strings.HasPrefix(q.Query().Get("redirect_uri"), "http://127.0.0.1:"))
		go func() { _, p := browser(t, u); page <- p }()
	})
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	select {
	case p := <-page:
		require.Contains(t, p, "The connector is authorized")
	case <-ctx.Done():
		t.Fatal("the browser got no page")
	}

	f := TokenFile{Path: filepath.Join(t.TempDir(), "tokens", "mail.token"), Key: testKey(t)}
	require.NoError(t, f.Save(tok, cfg.ClientID, cfg.Scopes))
	st, err := os.Stat(f.Path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	dst, err := os.Stat(filepath.Dir(f.Path))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), dst.Mode().Perm())
	data, err := os.ReadFile(f.Path)
	require.NoError(t, err)
	require.NotContains(t, string(data), tok.RefreshToken, "the refresh token is stored encrypted")

	src, err := f.TokenSource(ctx, cfg)
	require.NoError(t, err)
	at, err := src.Token()
	require.NoError(t, err)
	require.Equal(t, "alice@example.com", srv.UserOf(at.AccessToken))
	at2, err := src.Token()
	require.NoError(t, err)
	require.Equal(t, at.AccessToken, at2.AccessToken, "a valid access token is reused")
}

func TestAuthorizeRefusedConsent(t *testing.T) {
	srv := mailtest.StartOAuthServer(t) // no Consent: access_denied
	cfg := Config{ClientID: "c", AuthURL: srv.URL + "/auth", TokenURL: srv.URL + "/token"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Authorize(ctx, cfg, func(u string) { go browser(t, u) })
	require.ErrorContains(t, err, "access_denied")
}

func TestAuthorizeIgnoresAForgedRedirect(t *testing.T) {
	srv := mailtest.StartOAuthServer(t)
	srv.Consent("alice@example.com")
	cfg := Config{ClientID: "c", AuthURL: srv.URL + "/auth", TokenURL: srv.URL + "/token"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := Authorize(ctx, cfg, func(u string) {
		q, _ := url.Parse(u)
		redirect := q.Query().Get("redirect_uri")
		go func() {
			// Another page posts a code with the wrong state: refused.
			resp, err := http.Get(redirect + "?code=evil&state=wrong")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("forged redirect answered %d", resp.StatusCode)
				}
			}
			browser(t, u)
		}()
	})
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
}

func TestAuthorizeEndsWithTheContext(t *testing.T) {
	cfg := Config{ClientID: "c", AuthURL: "http://127.0.0.1:1/auth", TokenURL: "http://127.0.0.1:1/token"}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Authorize(ctx, cfg, func(string) {})
	require.ErrorContains(t, err, "no redirect came back")
}

func TestLoopbackRedirectOnly(t *testing.T) {
	for _, ok := range []string{"", "http://127.0.0.1/", "http://localhost:7878/", "http://[::1]:0/cb"} {
		_, _, err := LoopbackRedirect(ok)
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"https://127.0.0.1/", "http://example.com/", "http://10.0.0.1/", "http://127.0.0.1/?x=1", "http://u:p@127.0.0.1/"} {
		_, _, err := LoopbackRedirect(bad)
		require.Error(t, err, bad)
	}
}

func TestTokenFileRefusals(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	f := TokenFile{Path: filepath.Join(dir, "x.token"), Key: key}
	_, err := f.Load()
	require.ErrorContains(t, err, "run `connector oauth")
	require.ErrorIs(t, f.Save(&oauth2.Token{AccessToken: "only-access"}, "c", nil), ErrNoRefreshToken)

	require.NoError(t, f.Save(&oauth2.Token{RefreshToken: "rt-secret"}, "c", nil))
	require.NoError(t, os.Chmod(f.Path, 0o644))
	_, err = f.Load()
	require.ErrorContains(t, err, "readable by other users")
	require.NotContains(t, err.Error(), "rt-secret")

	require.NoError(t, os.Chmod(f.Path, 0o600))
	other := TokenFile{Path: f.Path, Key: testKey(t)}
	_, err = other.Load()
	require.ErrorIs(t, err, secret.ErrDecrypt, "another key cannot read it")

	require.NoError(t, os.WriteFile(f.Path, []byte(`{"refresh_token":"in-clear"}`), 0o600))
	_, err = f.Load()
	require.ErrorContains(t, err, "not encrypted")
	require.NotContains(t, err.Error(), "in-clear")
}

func TestRevokedRefreshTokenSaysSo(t *testing.T) {
	srv := mailtest.StartOAuthServer(t)
	srv.AddRefreshToken("rt-1", "alice@example.com")
	f := TokenFile{Path: filepath.Join(t.TempDir(), "t"), Key: testKey(t)}
	require.NoError(t, f.Save(&oauth2.Token{RefreshToken: "rt-1"}, "c", nil))
	srv.RevokeRefreshToken("rt-1")
	src, err := f.TokenSource(context.Background(), Config{ClientID: "c", TokenURL: srv.URL + "/token"})
	require.NoError(t, err)
	_, err = src.Token()
	require.ErrorContains(t, err, "invalid_grant: Token has been expired or revoked.")
	require.NotContains(t, err.Error(), "rt-1")
}

// A token file ([Task] OAuthTokenFile) that is a FIFO is refused at once:
// os.ReadFile waited for a writer for ever, holding the action, which Stop
// cannot interrupt (and /dev/zero was read until memory ran out).
func TestTokenFileThatIsNoFileIsRefused(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "x.token")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	f := TokenFile{Path: fifo, Key: testKey(t)}
	err := testwait.Return(t, 10*time.Second, func() error { _, err := f.Load(); return err }, "the token file's load to end")
	require.ErrorIs(t, err, ErrTokenFile)
	require.ErrorContains(t, err, "not a regular file (a FIFO)")
}

// TestTokenEndpointEchoIsScrubbed: a token endpoint whose error quotes the
// request (its form, with the client secret and the refresh token, or its
// Authorization header, with the client's credentials) had that quote
// shown as the provider's message, in the action's error, GetStatus, the
// log and the store (Webex, Google Mail; Objective's Keycloak grant reads
// its answers through TokenClient too). Whatever TokenClient reads of a
// refusal is scrubbed of the secrets its request carried, in the forms an
// echo gives them (as sent, percent-encoded, JSON-escaped, base64).
func TestTokenEndpointEchoIsScrubbed(t *testing.T) {
	const clientSecret, refresh = `cs-s3cret&<"x`, "rt-s3cret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client",
			"error_description": "you sent " + r.Header.Get("Authorization") + " " + string(body) + " secret " + form.Get("client_secret") + " token " + form.Get("refresh_token")})
	}))
	defer srv.Close()
	// x/oauth2 tries the client's credentials in the Authorization header,
	// then, refused, in the form: the endpoint quotes both.
	{
		f := TokenFile{Path: filepath.Join(t.TempDir(), "t"), Key: testKey(t)}
		require.NoError(t, f.Save(&oauth2.Token{RefreshToken: refresh}, "c", nil))
		src, err := f.TokenSource(context.Background(), Config{ClientID: "c", ClientSecret: clientSecret, TokenURL: srv.URL + "/token"})
		require.NoError(t, err)
		_, err = src.Token()
		require.ErrorContains(t, err, "the token endpoint answered invalid_client: you sent ")
		for _, leak := range []string{"s3cret", base64.StdEncoding.EncodeToString([]byte("c:" + url.QueryEscape(clientSecret)))} {
			require.NotContains(t, err.Error(), leak)
		}
		require.True(t, strings.Contains(err.Error(), "[REDACTED]"), "%v", err)
	}
}

// TestShortClientSecretLeavesTheRefusalReadable: a client secret of one
// letter is scrubbed from the token endpoint's echo where the echo gives
// it whole (client_secret=i), and the refusal still says what it is. On
// main the secret "i" was replaced inside every word: the error read
// "the token endpoint answered [REDACTED]nval[REDACTED]d_cl[REDACTED]ent",
// without the description (its JSON key was garbled too).
func TestShortClientSecretLeavesTheRefusalReadable(t *testing.T) {
	const clientSecret = "i"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client",
			"error_description": "you sent " + string(body)})
	}))
	defer srv.Close()
	f := TokenFile{Path: filepath.Join(t.TempDir(), "t"), Key: testKey(t)}
	require.NoError(t, f.Save(&oauth2.Token{RefreshToken: "rt-s3cret-token"}, "c", nil))
	src, err := f.TokenSource(context.Background(), Config{ClientID: "c", ClientSecret: clientSecret, TokenURL: srv.URL + "/token"})
	require.NoError(t, err)
	_, err = src.Token()
	require.ErrorContains(t, err, "the token endpoint answered invalid_client: you sent ")
	require.Contains(t, err.Error(), "client_secret=[REDACTED]", "the secret, given whole, is scrubbed")
	require.NotContains(t, err.Error(), "client_secret=i")
}

// webexTokens is a token endpoint (Webex's stand-in) and a token file
// holding a refresh token it issued.
func webexTokens(t *testing.T, rotate bool) (*webextest.Server, TokenFile, Config) {
	srv := webextest.New(webextest.Options{RotateRefreshTokens: rotate})
	t.Cleanup(srv.Close)
	f := TokenFile{Path: filepath.Join(t.TempDir(), "webex.token"), Key: testKey(t)}
	require.NoError(t, f.Save(&oauth2.Token{RefreshToken: srv.IssueRefreshToken()}, "client-id", nil))
	return srv, f, Config{ClientID: "client-id", ClientSecret: "client-secret", TokenURL: srv.URL + "/access_token"}
}

// TestTwoSourcesOfOneFileShareARotatedToken: two token sources of one
// file (two actions of a task, the source a 401 renewal makes beside the
// one in use, the Google Mail connector's source of each action) with a
// provider that rotates refresh tokens. On main each source refreshed
// with the refresh token it had read when it was made: after the first
// one's refresh rotated it (and saved the new one), the second sent the
// spent one and got invalid_grant, and kept getting it for as long as it
// lived, though the file held a good token. A provider that revokes a
// token family when a spent refresh token comes back loses the grant for
// good. Each refresh now starts from the file's token when another source
// has replaced it.
func TestTwoSourcesOfOneFileShareARotatedToken(t *testing.T) {
	srv, f, cfg := webexTokens(t, true)
	ctx := context.Background()
	s1, err := f.TokenSource(ctx, cfg)
	require.NoError(t, err)
	s2, err := f.TokenSource(ctx, cfg)
	require.NoError(t, err)
	_, err = s1.Token()
	require.NoError(t, err)
	_, err = s2.Token()
	require.NoError(t, err, "the second source refreshes with the token the first one rotated")
	require.Equal(t, 2, srv.Refreshes())
	// The file holds the last token issued: a source made after a restart
	// refreshes with it.
	s3, err := f.TokenSource(ctx, cfg)
	require.NoError(t, err)
	_, err = s3.Token()
	require.NoError(t, err)
}

// TestSourceTakesANewAuthorization: the provider refused the refresh
// token (invalid_grant: revoked, expired) and the administrator ran
// `connector oauth` again, as the error says to. On main the running
// server's source kept refreshing with the refused token until the server
// restarted: every action ended with invalid_grant. The next refresh now
// uses the token the new authorization wrote.
func TestSourceTakesANewAuthorization(t *testing.T) {
	srv, f, cfg := webexTokens(t, false)
	src, err := f.TokenSource(context.Background(), cfg)
	require.NoError(t, err)
	srv.RevokeRefreshTokens()
	_, err = src.Token()
	require.ErrorContains(t, err, "invalid_grant")
	require.NoError(t, f.Save(&oauth2.Token{RefreshToken: srv.IssueRefreshToken()}, "client-id", nil))
	tok, err := src.Token()
	require.NoError(t, err, "the new authorization is used without a restart")
	require.NotEmpty(t, tok.AccessToken)
}

// TestSaveSyncsTheFolderAfterTheRename: a token file is saved whole under
// a temporary name, renamed into place and then its folder synced, so
// that the rename outlives a power loss. Before, the folder was not
// synced: after a crash the folder could still name the file the rename
// replaced, the refresh token before a rotation, which the provider had
// already spent (refused at the next refresh, and some providers revoke
// the whole grant when a spent token comes back): the task stopped until
// someone ran `connector oauth` again. Not parallel: syncTokenDir is the
// package's.
func TestSaveSyncsTheFolderAfterTheRename(t *testing.T) {
	key := testKey(t)
	dir := filepath.Join(t.TempDir(), "tokens")
	f := TokenFile{Path: filepath.Join(dir, "task.token"), Key: key}
	var synced []string
	orig := syncTokenDir
	defer func() { syncTokenDir = orig }()
	syncTokenDir = func(d string) error {
		// Synced once the file has its new content under its name.
		tok, err := f.Load()
		require.NoError(t, err)
		synced = append(synced, d+" holding "+tok.RefreshToken)
		return orig(d)
	}
	require.NoError(t, f.Save(&oauth2.Token{RefreshToken: "rt-1"}, "c", nil))
	require.NoError(t, f.Save(&oauth2.Token{RefreshToken: "rt-2"}, "c", nil))
	require.Equal(t, []string{dir + " holding rt-1", dir + " holding rt-2"}, synced)

	// A folder that cannot be synced fails the save, saying so.
	syncTokenDir = func(string) error { return syscall.EIO }
	err := f.Save(&oauth2.Token{RefreshToken: "rt-3"}, "c", nil)
	require.ErrorIs(t, err, syscall.EIO)
	require.ErrorContains(t, err, f.Path)
	require.NotContains(t, err.Error(), "rt-3")
}
