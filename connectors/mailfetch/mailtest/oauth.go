package mailtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// OAuthServer is a token endpoint and an introspection endpoint in one test
// server: the token endpoint grants access tokens for refresh tokens it
// knows (grant_type=refresh_token) and for signed JWT assertions
// (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, as a service
// account sends them; the assertion's "sub" claim names the user); the
// introspection endpoint (RFC 7662, as Dovecot's oauth2 passdb calls it)
// says which user an access token belongs to. Refresh tokens can be
// revoked.
type OAuthServer struct {
	URL string // base URL: URL+"/token", URL+"/introspect"

	srv   *httptest.Server
	mu    sync.Mutex
	users map[string]string // refresh token → user
	live  map[string]string // access token → user
	seq   atomic.Int64
	// Introspections counts introspection calls.
	Introspections atomic.Int64
	// Grants counts access tokens granted.
	Grants atomic.Int64
	// Assertions records the "sub" of every JWT assertion accepted.
	assertions []string
	keys       map[string]*rsa.PublicKey // service accounts by client_email
	consent    string                    // user the authorization endpoint consents for
	challenges map[string]string         // PKCE challenge by code
	// TTL is the lifetime of the access tokens granted (default an hour).
	TTL time.Duration
}

// StartOAuthServer starts the server; it stops with the test.
func StartOAuthServer(t testing.TB) *OAuthServer {
	o := &OAuthServer{users: map[string]string{}, live: map[string]string{}, TTL: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", o.token)
	mux.HandleFunc("/introspect", o.introspect)
	mux.HandleFunc("/auth", o.authorize)
	o.srv = httptest.NewServer(mux)
	o.URL = o.srv.URL
	t.Cleanup(o.srv.Close)
	return o
}

// AddRefreshToken makes refresh grant access tokens for user.
func (o *OAuthServer) AddRefreshToken(refresh, user string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users[refresh] = user
}

// RevokeRefreshToken makes refresh invalid (the token endpoint answers
// invalid_grant, as Google does for a revoked token) and ends the access
// tokens granted for its user.
func (o *OAuthServer) RevokeRefreshToken(refresh string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	user := o.users[refresh]
	delete(o.users, refresh)
	for a, u := range o.live {
		if u == user {
			delete(o.live, a)
		}
	}
}

// AddAccessToken makes access valid for user without a grant.
func (o *OAuthServer) AddAccessToken(access, user string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.live[access] = user
}

// UserOf returns the user an access token is valid for, or "".
func (o *OAuthServer) UserOf(access string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.live[access]
}

// Assertions returns the subjects of the JWT assertions accepted so far.
func (o *OAuthServer) Assertions() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.assertions...)
}

func (o *OAuthServer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var user string
	switch r.PostForm.Get("grant_type") {
	case "refresh_token":
		o.mu.Lock()
		user = o.users[r.PostForm.Get("refresh_token")]
		o.mu.Unlock()
		if user == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`))
			return
		}
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		sub := o.jwtSubject(r.PostForm.Get("assertion"))
		if sub == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"no subject"}`))
			return
		}
		user = sub
		o.mu.Lock()
		o.assertions = append(o.assertions, sub)
		o.mu.Unlock()
	case "authorization_code":
		code := r.PostForm.Get("code")
		o.mu.Lock()
		user = o.users["code:"+code]
		challenge := o.challenges[code]
		delete(o.users, "code:"+code) // a code is good once
		o.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if challenge != "" && base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
			user = ""
		}
		if user == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"bad code"}`))
			return
		}
	default:
		http.Error(w, "unsupported grant_type", http.StatusBadRequest)
		return
	}
	access := "at-" + strings.ReplaceAll(user, "@", "_") + "-" + itoa(o.seq.Add(1))
	o.mu.Lock()
	o.live[access] = user
	o.mu.Unlock()
	o.Grants.Add(1)
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(o.TTL.Seconds())}
	if r.PostForm.Get("grant_type") == "authorization_code" {
		resp["refresh_token"] = "rt-" + itoa(o.seq.Add(1))
		o.mu.Lock()
		o.users[resp["refresh_token"].(string)] = user
		o.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// Consent makes the authorization endpoint (URL+"/auth") grant user's
// consent: it redirects the browser to the request's redirect_uri with a
// fresh code (and the request's state), which the token endpoint exchanges
// once, checking the PKCE verifier, for a refresh token of user. Without
// Consent the endpoint redirects with error=access_denied.
func (o *OAuthServer) Consent(user string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.consent = user
}

func (o *OAuthServer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	o.mu.Lock()
	user := o.consent
	if user == "" || q.Get("response_type") != "code" || q.Get("client_id") == "" {
		back.Set("error", "access_denied")
	} else {
		code := "code-" + itoa(o.seq.Add(1))
		o.users["code:"+code] = user
		if o.challenges == nil {
			o.challenges = map[string]string{}
		}
		if q.Get("code_challenge_method") == "S256" {
			o.challenges[code] = q.Get("code_challenge")
		}
		back.Set("code", code)
	}
	o.mu.Unlock()
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (o *OAuthServer) introspect(w http.ResponseWriter, r *http.Request) {
	o.Introspections.Add(1)
	_ = r.ParseForm()
	tok := r.PostForm.Get("token")
	if tok == "" {
		tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	w.Header().Set("Content-Type", "application/json")
	if user := o.UserOf(tok); user != "" {
		_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "username": user})
		return
	}
	_, _ = w.Write([]byte(`{"active":false}`))
}

func itoa(n int64) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{digits[n%10]}, b...)
		n /= 10
	}
	return string(b)
}

// ServiceAccountKey writes a service account key file (the JSON Google's
// console gives) for email, whose token_uri is this server, and registers
// its public key: JWT assertions signed with it are accepted. It returns
// the file's path.
func (o *OAuthServer) ServiceAccountKey(t testing.TB, email string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "mailtest",
		"private_key_id": "k1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      "1234567890",
		"token_uri":      o.URL + "/token",
	})
	p := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	if o.keys == nil {
		o.keys = map[string]*rsa.PublicKey{}
	}
	o.keys[email] = &key.PublicKey
	o.mu.Unlock()
	return p
}

// jwtSubject checks an RS256 assertion signed by a registered service
// account and returns its "sub" claim, or "".
func (o *OAuthServer) jwtSubject(assertion string) string {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return ""
	}
	var claims struct {
		Iss, Sub, Scope string
		Exp             int64
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	o.mu.Lock()
	pub := o.keys[claims.Iss]
	o.mu.Unlock()
	if pub == nil {
		return ""
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil || claims.Exp < time.Now().Unix() {
		return ""
	}
	return claims.Sub
}
