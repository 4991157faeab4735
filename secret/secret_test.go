package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The key and value autpassword printed in OpenText's public Media Server
// tutorial (opentext-idol/idol-rich-media-tutorials, Milestone guide):
//
//	autpassword.exe -x -tAES -oKeyFile=./MyKeyFile.ky
//	autpassword -e -tAES -oKeyFile=./MyKeyFile.ky MyPassword
const (
	idolKeyHex = "9b7aff82f1fa766985152790402a48f0ade3a20f196629b18e2eeb0c1735ff5f"
	idolValue  = "W1BBU1NXT1JEXQpUeXBlPUFFUwpLZXlGaWxlPUM6L01pY3JvRm9jdXMvTWVkaWFTZXJ2ZXJfMTIuOC4yX1dJTkRPV1NfWDg2XzY0L015S2V5RmlsZS5reQpQYXNzd29yZD05UmwyUzlrNXdyODNGWnR5dUhZU1VaVjNMRkQrUGV1L2dzWHZnWFVGVWRBPQ=="
)

func writeKey(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "MyKeyFile.ky")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// TestEnsureKeyFileFirstUseAtOnce: callers that find no key file at the
// same moment (two servers or cluster nodes started together on one
// AESKeyFile, `connector password` while the server makes the key) all get
// the one key that is then in the file. Before, the file was created empty
// and then written, so a caller that found it meanwhile read it empty and
// failed with "not an AES-256 key" (about one call in 16 here), and a crash
// in between left an empty key file that refused every later secret.
func TestEnsureKeyFileFirstUseAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const paths, callers = 100, 4
	for i := range paths {
		p := filepath.Join(dir, strconv.Itoa(i), "aes.ky")
		keys := make([]*Key, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for c := range callers {
			wg.Add(1)
			go func() { defer wg.Done(); keys[c], errs[c] = EnsureKeyFile(p) }()
		}
		wg.Wait()
		for c := range callers {
			require.NoError(t, errs[c], "caller %d of %s", c, p)
			require.Equal(t, keys[0].k, keys[c].k, "caller %d of %s got another key", c, p)
		}
		onDisk, err := LoadKeyFile(p)
		require.NoError(t, err)
		require.Equal(t, keys[0].k, onDisk.k)
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		ents, err := os.ReadDir(filepath.Dir(p))
		require.NoError(t, err)
		require.Len(t, ents, 1, "only the key file is left in its folder")
	}
}

func TestDecryptsWhatAutpasswordWrote(t *testing.T) {
	k, err := LoadKeyFile(writeKey(t, idolKeyHex+"\n"))
	require.NoError(t, err)
	require.True(t, IsEncrypted(idolValue))
	require.NoError(t, Check(idolValue))
	got, err := k.Decrypt(idolValue)
	require.NoError(t, err)
	require.Equal(t, "MyPassword", got)
}

func TestEncryptRoundTripsInIDOLForm(t *testing.T) {
	k, err := EnsureKeyFile(filepath.Join(t.TempDir(), "keys", "aes.ky"))
	require.NoError(t, err)
	st, err := os.Stat(k.Path())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	for _, pw := range []string{"", "x", "exactly16bytes!!", "pässwörd with spaces and = signs"} {
		v, err := k.Encrypt(pw)
		require.NoError(t, err)
		raw, err := base64.StdEncoding.DecodeString(v)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(raw), "[PASSWORD]\nType=AES\nKeyFile="+k.Path()+"\nPassword="), string(raw))
		if len(pw) > 8 { // a short one may occur in random base64
			require.NotContains(t, string(raw), pw)
		}
		got, err := k.Decrypt(v)
		require.NoError(t, err)
		require.Equal(t, pw, got)
	}
	// The same file loads back to the same key.
	k2, err := EnsureKeyFile(k.Path())
	require.NoError(t, err)
	v, err := k.Encrypt("again")
	require.NoError(t, err)
	got, err := k2.Decrypt(v)
	require.NoError(t, err)
	require.Equal(t, "again", got)
}

func TestDecryptRefusesWithoutQuoting(t *testing.T) {
	k, err := LoadKeyFile(writeKey(t, idolKeyHex))
	require.NoError(t, err)
	other, err := EnsureKeyFile(filepath.Join(t.TempDir(), "other.ky"))
	require.NoError(t, err)
	v, err := other.Encrypt("hunter2hunter2")
	require.NoError(t, err)
	_, err = k.Decrypt(v)
	require.ErrorIs(t, err, ErrDecrypt)
	require.NotContains(t, err.Error(), v)

	basic := base64.StdEncoding.EncodeToString([]byte("[PASSWORD]\nType=Basic\nPassword=abcd\n"))
	require.ErrorContains(t, Check(basic), "Type=Basic is not supported")
	_, err = k.Decrypt(basic)
	require.ErrorIs(t, err, ErrDecrypt)

	short := base64.StdEncoding.EncodeToString([]byte("[PASSWORD]\nType=AES\nPassword=AAAA\n"))
	require.ErrorContains(t, Check(short), "not AES-CBC ciphertext")

	// A password in clear is returned as it is.
	got, err := k.Decrypt("plain password")
	require.NoError(t, err)
	require.Equal(t, "plain password", got)
	require.NoError(t, Check("plain password"))
}

func TestKeyFileErrorsNeverShowContent(t *testing.T) {
	_, err := LoadKeyFile(writeKey(t, "not a key but a secret-ish text"))
	require.ErrorIs(t, err, ErrKeyFile)
	require.NotContains(t, err.Error(), "secret-ish")
	_, err = LoadKeyFile(filepath.Join(t.TempDir(), "missing.ky"))
	require.ErrorIs(t, err, os.ErrNotExist)
	k, err := LoadKeyFile(writeKey(t, strings.Repeat("k", 32)))
	require.NoError(t, err)
	require.NotNil(t, k)
}

// A key file path that names a FIFO by mistake is refused at once: it was
// read with os.ReadFile, which waits for a writer for ever.
func TestKeyFileIsARegularFile(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "aes.ky")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() { _, err := LoadKeyFile(fifo); done <- err }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrKeyFile)
		require.EqualError(t, err, "secret: key file "+fifo+": not a regular file (a FIFO)")
	case <-time.After(10 * time.Second):
		t.Fatal("LoadKeyFile of a FIFO still waiting after 10s")
	}
}

// requireRedacted checks RedactURLs and HasURLPassword on each text
// (key) against what RedactURLs should make of it (value).
func requireRedacted(t *testing.T, cases map[string]string) {
	t.Helper()
	for in, want := range cases {
		require.Equal(t, want, RedactURLs(in), in)
		require.Equal(t, want != in, HasURLPassword(in), in)
	}
}

func TestRedactURLs(t *testing.T) {
	requireRedacted(t, map[string]string{
		"http://user:pw@host/x":                     "http://user:[REDACTED]@host/x",
		"a=https://u:p%40ss@h:8080?q=1&b=http://h/": "a=https://u:[REDACTED]@h:8080?q=1&b=http://h/",
		"http://user@host/":                         "http://user@host/",
		"http://host/a@b":                           "http://host/a@b",
		"x http://a:b@c y ftp://d:e@f":              "x http://a:[REDACTED]@c y ftp://d:[REDACTED]@f",
		"no url at all: a@b":                        "no url at all: a@b",
		"http://a:b:c@d@e/":                         "http://a:[REDACTED]@e/",
		"Url0=http://127.0.0.1:8000/,http://u:s@h/": "Url0=http://127.0.0.1:8000/,http://u:[REDACTED]@h/",
	})
	require.True(t, SensitiveName("[MyTask]BasicAuthPassword"))
	require.True(t, SensitiveName("client_secret"))
	require.False(t, SensitiveName("Token"))
	// The same answer as lower-casing the name's ASCII letters first,
	// whatever its case and characters.
	for _, name := range []string{"", "p", "PASSWORD", "xPassWordx", "passwor", "SeCrEt", "secre", "ſecret", "passwordİ",
		"\xffsecret\xfe", "pass\xffword", "PASSWORD_SECRET", "Päsword", "KSecret", "Token", "[T]Url", "API_KEY", "Api-Key",
		"ApiKey\xff", "ApiKeY", "\xffAuth"} {
		require.Equal(t, SensitiveName(asciiLower(name)), SensitiveName(name), "%q", name)
	}
	var sensitive bool
	require.Zero(t, testing.AllocsPerRun(10, func() { sensitive = SensitiveName("[MyTask]BasicAuthUser") }))
	require.False(t, sensitive)
}

// TestRedactURLsPasswordWithDelimiters: a password written unencoded with
// a '/', '?', '#' or '\' in it (hunter#2, as typed) is redacted whole.
// Before, the URL's authority was taken to end there, it had no '@' and
// no password was seen: Bogus=http://u:hunter#2@h/, an ignored parameter,
// was queued, stored and shown by GetActionParameters and GetRequestLog
// in clear, and an Url override's refusal quoted it. A URL without user
// information stays as it is, an '@' in its path, query or fragment too.
func TestRedactURLsPasswordWithDelimiters(t *testing.T) {
	t.Parallel()
	requireRedacted(t, map[string]string{
		"Bogus=http://u:hunter#2@h/":                 "Bogus=http://u:[REDACTED]@h/",
		"http://u:hun/ter2@h/x":                      "http://u:[REDACTED]@h/x",
		"http://u:hun?ter2@h:8080/x?q=1":             "http://u:[REDACTED]@h:8080/x?q=1",
		`http://u:hun\\ter2@h/`:                      "http://u:[REDACTED]@h/",
		"http://u:p#a@b@host/":                       "http://u:[REDACTED]@host/",
		"http://u:12#34@h/":                          "http://u:[REDACTED]@h/",
		"x http://u:a#b@h/ and https://v:c/d@i/@j y": "x http://u:[REDACTED]@h/ and https://v:[REDACTED]@i/@j y",
		`port 'http://u:SEC#RET@h/' is not a number`: `port 'http://u:[REDACTED]@h/' is not a number`,
		// No password: as they are.
		"http://host/a@b":                 "http://host/a@b",
		"https://medium.com/@user":        "https://medium.com/@user",
		"http://host:8080/@user":          "http://host:8080/@user",
		"http://host:8080/x?mail=a@b.com": "http://host:8080/x?mail=a@b.com",
		"http://host:8080?mail=a@b.com":   "http://host:8080?mail=a@b.com",
		"http://[::1]/a@b":                "http://[::1]/a@b",
		"http://[::1]:80/a?x=y@z":         "http://[::1]:80/a?x=y@z",
		"http://host:abc/no-at-sign":      "http://host:abc/no-at-sign",
		"http://u:pw@h/":                  "http://u:[REDACTED]@h/",
	})
	require.Equal(t, "http://u:"+Redacted+"@h/a?…", LogURL("http://u:pw?x@h/a?access_token=t"))
}

// TestRedactURLsPasswordWithSpaces: a password written unencoded with
// white space, a line break or a quote in it (a pass phrase, or %20, %0A,
// %22 decoded from a request's parameter) is redacted whole. The URL
// parsers read on past them (the WHATWG parser, the crawl's, drops a tab
// or line break and encodes a space or quote in user information), and a
// URL never ends after a ':' that begins no port. Before, the URL was
// taken to end there, it had no '@' and no password was seen:
// [MyTask]Url=http://u:pa%0Ass@h/ was accepted as a start URL carrying
// no password, and was queued, stored and shown by GetRequestLog with its
// password in clear. A host:port followed by white space ends the URL as
// before.
func TestRedactURLsPasswordWithSpaces(t *testing.T) {
	t.Parallel()
	requireRedacted(t, map[string]string{
		"http://u:pa ss@h/":                   "http://u:[REDACTED]@h/",
		"Url=http://u:pa\nss@h/x":             "Url=http://u:[REDACTED]@h/x",
		"http://u:pa\r\nss@h/":                "http://u:[REDACTED]@h/",
		"http://u:pa\tss@h:8080/?q=1":         "http://u:[REDACTED]@h:8080/?q=1",
		"http://u:correct horse battery@h/":   "http://u:[REDACTED]@h/",
		`http://u:pa"ss@h/`:                   "http://u:[REDACTED]@h/",
		"http://u:pa'ss@h/":                   "http://u:[REDACTED]@h/",
		"http://u:pa<ss>@h/":                  "http://u:[REDACTED]@h/",
		"x http://u:a b@h/ y http://v:c@i/ z": "x http://u:[REDACTED]@h/ y http://v:[REDACTED]@i/ z",
		"http://u:pa ss@h and mail a@b":       "http://u:[REDACTED]@h and mail a@b",
		// No password: as they are.
		"http://h:8080 and mail bob@x.com":     "http://h:8080 and mail bob@x.com",
		`"http://h:8080" failed for bob@x.com`: `"http://h:8080" failed for bob@x.com`,
		"see http://h/ or mail bob@x.com":      "see http://h/ or mail bob@x.com",
		"http://h: x@y":                        "http://h: x@y",
		"http://[::1] x@y":                     "http://[::1] x@y",
		"http://h:8080#f x@y":                  "http://h:8080#f x@y",
		"http://h:abc/ then x@y":               "http://h:abc/ then x@y",
	})
}

// TestRedactURLsTakesLinearTime: RedactURLs reads a text of many URLs
// whose password lookahead (passwordPast) finds no '@' in time linear in
// its length. Before, each URL scanned the rest of the text afresh: 1 MiB
// of "ftp:x:y#" then " @" took about 20 minutes of CPU, 128 KiB 18 s, and
// the request log redacts every parameter of every request that way, for
// any client, before its role is checked. (A bound on a hang, not on
// speed: the text here takes milliseconds.)
func TestRedactURLsTakesLinearTime(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, unit := range []string{"ftp:x:y#", "http://x:y#", "ws:a:b/", "ftp:x:y ", "http://a:b\t", "http://a:b\"", "http://[x:y#", "http://h/?a=b?", "ws:?token=x&"} {
			for _, tail := range []string{" @", "/@"} {
				RedactURLs(strings.Repeat(unit, (1<<20)/len(unit)) + tail)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("still redacting 14 texts of 1 MiB after a minute: the time grows with the square of the length")
	}
}

func TestLogURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://host/a":                                 "http://host/a",
		"http://alice:hunter2@host/a":                   "http://alice:" + Redacted + "@host/a",
		"http://host/a?access_token=tok3n&x=1":          "http://host/a?…",
		"https://alice:hunter2@host/x?access_token=t#f": "https://alice:" + Redacted + "@host/x?…",
	} {
		if got := LogURL(in); got != want {
			t.Errorf("LogURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	const pw = `s3cr&t/"x y`
	basic := base64.StdEncoding.EncodeToString([]byte("alice:" + pw))
	echo := "you sent Basic " + basic + " and client_secret=" + url.QueryEscape(pw) + " path /" + url.PathEscape(pw) +
		" raw " + pw + " b64 " + base64.StdEncoding.EncodeToString([]byte(pw))
	got := Scrub(echo, AuthorizationSecrets("Basic "+basic)...)
	require.NotContains(t, got, "s3cr")
	require.NotContains(t, got, basic)
	require.Equal(t, "you sent Basic [REDACTED] and client_secret=[REDACTED] path /[REDACTED] raw [REDACTED] b64 [REDACTED]", got)
	require.Equal(t, "bearer [REDACTED] refused", Scrub("bearer at-123 refused", AuthorizationSecrets("Bearer at-123")...))
	require.Equal(t, `{"d":"[REDACTED] and [REDACTED]"}`, Scrub(`{"d":"s3cr\u0026t/\"x y and s3cr&t/\"x y"}`, pw))
	require.Equal(t, "nothing to hide", Scrub("nothing to hide", "", "absent"))
	require.Nil(t, AuthorizationSecrets(""))
	require.Nil(t, AuthorizationSecrets("Bearer"))
}

// TestScrubShortSecrets: a secret of a few characters is replaced where an
// echo gives it whole, never inside other words and numbers. (Before, the
// password "a" was replaced in every word of the text: a service's
// `{"error":"invalid_grant"}` became `{"error":"inv[REDACTED]lid_gr[REDACTED]nt"}`,
// which no longer told the error, and whose pattern told the password.)
func TestScrubShortSecrets(t *testing.T) {
	t.Parallel()
	body := `{"error":"invalid_grant","error_description":"bad request: HTTP 401"}`
	require.Equal(t, body, Scrub(body, "a", "1", "r", "40"), "short secrets inside words and numbers are left")
	for in, want := range map[string]string{
		"you sent password=a&user=alice":         "you sent password=[REDACTED]&user=alice",
		`{"password":"a","user":"alice"}`:        `{"password":"[REDACTED]","user":"alice"}`,
		"url https://alice:a@host/ refused":      "url https://alice:[REDACTED]@host/ refused",
		"a":                                      "[REDACTED]",
		"body pw%3Da%26user%3Dalice":             "body pw%3D[REDACTED]%26user%3Dalice",
		`{"q":"pw\u003da\u0026u=1"}`:             `{"q":"pw\u003d[REDACTED]\u0026u=1"}`,
		"Basic YWxpY2U6YQ== and YQ== (b64 of a)": "Basic YWxpY2U6YQ== and [REDACTED] (b64 of [REDACTED])",
	} {
		require.Equal(t, want, Scrub(in, "a"), "Scrub(%q)", in)
	}
	// From minSubstring bytes on, a secret is replaced inside words too.
	require.Equal(t, "x[REDACTED]y", Scrub("xs3cr3t-pwy", "s3cr3t-pw"))
	require.Equal(t, "xs3cr3ty", Scrub("xs3cr3ty", "s3cr3t"))
	require.Equal(t, "éé2 [REDACTED]", Scrub("éé2 é2", "é2"), "letters beyond ASCII are letters")
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// TestSensitiveName: the names that look like they hold a secret, and
// names that mention one without holding it. (Before, only names with
// password or secret looked secret: ApiKey, AccessToken, X-Auth or a
// Cookie that an action ignores were shown in GetActionParameters, the
// request log and the log, and kept in clear in the store.)
func TestSensitiveName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"BasicAuthPassword", "[MyTask]LoginPassword", "client_secret", "OAuthClientSecret",
		"DbPasswd", "DbPwd", "Passphrase", "Credentials", "AWS_CREDENTIAL", "ApiKey", "api_key", "X-Api-Key", "API-KEY-ID",
		"AccessToken", "refresh_token", "X-Auth-Token", "TokenSecret", "[T]AuthToken", "AccessKey", "SigningKey", "Key",
		"PrivateKey", "X-Auth", "HttpAuth", "Authorization", "Cookie", "SessionCookie", "GitHubToken", " apikey ",
		// Password misspelt (a setting no schema has, so an action
		// ignores it, and its value was kept in the store, the request log
		// and GetActionParameters in clear), or in German.
		"[MyTask]BasicAuthPasword", "LoginPasswrd", "Passwort", "DbPaswd", "ProxyPasswod"} {
		require.True(t, SensitiveName(name), "%q looks secret", name)
	}
	for _, name := range []string{"", "Token", " token", "[MyTask]Url", "BasicAuthUsername", "AuthMethod", "OAuthClientID",
		"OAuthTokenUrl", "OAuthTokenFile", "TokenPath", "OAuthRedirectUrl", "OAuth", "UseOAuth", "AESKeyFile",
		"ServiceAccountKeyFile", "Keywords", "Author", "Depth", "ConfigSection", "Identifiers", "QueueAction", "ActionID",
		"PassThrough", "Bypass", "Compass"} {
		require.False(t, SensitiveName(name), "%q does not look secret", name)
	}
}

// TestDecryptWithAnotherKeyNeverReturnsGarbage: a value encrypted with
// another key is refused whatever its IV. IDOL's form has no MAC, so the
// only sign of a wrong key was the padding; about one value in 256
// decrypts under a wrong key to a last byte of 1, which is valid padding,
// and before, Decrypt returned the 15 random bytes before it as the
// password (sent to a site, or an IMAP or token endpoint, as if right)
// instead of saying the value was not encrypted with the key. Here the
// ciphertext stays and the IV's last byte takes each of its 256 values:
// the plaintext under the wrong key ends in each byte once, 0x01 included.
func TestDecryptWithAnotherKeyNeverReturnsGarbage(t *testing.T) {
	t.Parallel()
	right, err := LoadKeyFile(writeKey(t, idolKeyHex))
	require.NoError(t, err)
	wrong, err := LoadKeyFile(writeKey(t, strings.Repeat("5a", KeySize)))
	require.NoError(t, err)
	block, err := aes.NewCipher(right.k[:])
	require.NoError(t, err)
	buf := make([]byte, 2*aes.BlockSize) // a zero IV, then the ciphertext
	cipher.NewCBCEncrypter(block, buf[:aes.BlockSize]).CryptBlocks(buf[aes.BlockSize:],
		[]byte("hunter2\x09\x09\x09\x09\x09\x09\x09\x09\x09")) // 7 bytes and PKCS#7 padding
	value := func() string {
		return base64.StdEncoding.EncodeToString([]byte("[PASSWORD]\nType=AES\nKeyFile=x.ky\nPassword=" +
			base64.StdEncoding.EncodeToString(buf) + "\n"))
	}
	got, err := right.Decrypt(value())
	require.NoError(t, err)
	require.Equal(t, "hunter2", got)
	for b := range 256 {
		buf[aes.BlockSize-1] = byte(b)
		got, err := wrong.Decrypt(value())
		require.ErrorIs(t, err, ErrDecrypt, "IV ending in %#02x: the wrong key gave %q", b, got)
		require.Empty(t, got)
	}
}

// TestDecryptNotUTF8SaysSo: a value whose password is not UTF-8 (what
// autpassword makes of a password in a Windows code page, pässwort in
// Windows-1252) is refused saying so, besides the other key it may also
// be. Before, the error said only that the value was not encrypted with
// the key: whoever moved IDOL's values over checked the key file again
// and again, and it was the right one.
func TestDecryptNotUTF8SaysSo(t *testing.T) {
	t.Parallel()
	k, err := LoadKeyFile(writeKey(t, idolKeyHex))
	require.NoError(t, err)
	v, err := k.Encrypt("p\xe4sswort")
	require.NoError(t, err)
	got, err := k.Decrypt(v)
	require.ErrorIs(t, err, ErrDecrypt)
	require.Empty(t, got)
	require.ErrorContains(t, err, "was not encrypted with the key in "+k.Path()+", or its password is not UTF-8 text")
	require.NotContains(t, err.Error(), "sswort")
}

// TestRedactURLsAsBrowsersReadThem: an http(s), ws(s) or ftp URL has its
// user information after any run of '/' and '\' that follows its scheme,
// none included (the WHATWG URL parser, which the crawl and browsers use,
// reads http:\\u:p@h/, http:/u:p@h/, http:u:p@h/ and http:///u:p@h/ all as
// http://u:p@h/). Before, only "://" was looked for: such a URL kept its
// password in GetActionParameters, the request log, the queue, the store
// and error replies, and a start URL written so was not refused as one
// carrying a password.
func TestRedactURLsAsBrowsersReadThem(t *testing.T) {
	t.Parallel()
	requireRedacted(t, map[string]string{
		`http:\\alice:hunter2@h/`:              `http:\\alice:[REDACTED]@h/`,
		`http:/alice:hunter2@h/`:               `http:/alice:[REDACTED]@h/`,
		`http:alice:hunter2@h/x`:               `http:alice:[REDACTED]@h/x`,
		`HTTPS:\/alice:hunter2@h:8443/`:        `HTTPS:\/alice:[REDACTED]@h:8443/`,
		`http:///alice:hunter2@h/`:             `http:///alice:[REDACTED]@h/`,
		`wss:alice:hunter2@h/`:                 `wss:alice:[REDACTED]@h/`,
		`Url=http:\\u:p@h/,ftp:/v:q@i/`:        `Url=http:\\u:[REDACTED]@h/,ftp:/v:[REDACTED]@i/`,
		`x http:u:hun#ter@h/ y`:                `x http:u:[REDACTED]@h/ y`,
		"at 10:30 http:alice@h and a:b@c":      "at 10:30 http:alice@h and a:b@c",
		`xhttp:u:p@h/`:                         `xhttp:u:p@h/`,
		`mailto:u:p@h`:                         `mailto:u:p@h`,
		`http:8080@h/`:                         `http:8080@h/`,
		`http:\\h:8080/@user`:                  `http:\\h:8080/@user`,
		"http://u:p@h/ and http:\\\\v:q@i/ ok": `http://u:[REDACTED]@h/ and http:\\v:[REDACTED]@i/ ok`,
	})
}

// TestKeyFileWithByteOrderMark: a key file saved by Windows Notepad as
// "UTF-8 with BOM" (the 64 digits pasted in, or autpassword's file opened
// and saved) was refused as "not an AES-256 key", though its digits are
// the key; the configuration file's BOM is skipped, and so is this one.
// A raw 32-byte key that begins with the BOM's bytes stays that key.
func TestKeyFileWithByteOrderMark(t *testing.T) {
	want, err := LoadKeyFile(writeKey(t, idolKeyHex+"\n"))
	require.NoError(t, err)
	k, err := LoadKeyFile(writeKey(t, "\xef\xbb\xbf"+idolKeyHex+"\r\n"))
	require.NoError(t, err)
	require.Equal(t, want.Check(), k.Check())
	raw := "\xef\xbb\xbf" + strings.Repeat("k", 29)
	k, err = LoadKeyFile(writeKey(t, raw))
	require.NoError(t, err)
	require.Equal(t, raw, string(k.k[:]))
}

// TestKeyFileOthersCanReadIsRefused: a key file that users other than its
// owner and its group may read or write, or that its group may write, is
// refused, as ssh refuses such a private key: the key decrypts every
// secret of the configuration and the store, and one who may write it may
// put a key of theirs in its place. It was read whatever its mode (a key
// file made by autpassword -x under the usual umask is 0644). Its group
// may read it (PostgreSQL's rule for a server key): docs/deploy.md
// installs the files of /etc/connector as root's, 0640, group connector.
func TestKeyFileOthersCanReadIsRefused(t *testing.T) {
	t.Parallel()
	p := writeKey(t, idolKeyHex)
	for _, mode := range []os.FileMode{0o644, 0o604, 0o602, 0o666, 0o660, 0o620, 0o646} {
		require.NoError(t, os.Chmod(p, mode))
		_, err := LoadKeyFile(p)
		require.ErrorIs(t, err, ErrKeyFile, "mode %04o", mode)
		require.EqualError(t, err, fmt.Sprintf("secret: key file %s: other users may read or write it (mode %04o): "+
			"it decrypts every secret the connector keeps; chmod 600 it (or 640, its group being the connector's)", p, mode), "mode %04o", mode)
		_, err = EnsureKeyFile(p)
		require.ErrorIs(t, err, ErrKeyFile, "mode %04o", mode)
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o640, 0o440, 0o700, 0o750, 0o601} {
		require.NoError(t, os.Chmod(p, mode))
		_, err := LoadKeyFile(p)
		require.NoError(t, err, "mode %04o", mode)
	}
}

// TestRedactURLsHidesQuerySecrets: the value of a query or fragment
// parameter of a URL whose name looks secret (SensitiveName, and token,
// sig and signature, which in a URL are credentials: ?token=, Azure's
// sig=, X-Amz-Signature=) is redacted, in a nested URL's query too.
// Before, only the password of the user information was:
// Note=https://h/x?access_token=..., or a MaxResults a client mistyped
// with one, was shown in clear by GetRequestLog, GetActionParameters,
// the log and the error reply that quoted it. HasURLPassword still
// answers for the user information's password only.
func TestRedactURLsHidesQuerySecrets(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://h/x?access_token=abc":                      "https://h/x?access_token=[REDACTED]",
		"https://h/x?a=1&token=abc&b=2":                     "https://h/x?a=1&token=[REDACTED]&b=2",
		"https://h/x?Password=p%26w&b=2#f":                  "https://h/x?Password=[REDACTED]&b=2#f",
		"https://app/cb#access_token=abc&state=s":           "https://app/cb#access_token=[REDACTED]&state=s",
		"https://acct.blob/c?sv=1&sig=abc%3D&se=2":          "https://acct.blob/c?sv=1&sig=[REDACTED]&se=2",
		"https://s3/o?X-Amz-Credential=a&X-Amz-Signature=b": "https://s3/o?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]",
		"https://h/?api%5Fkey=abc":                          "https://h/?api%5Fkey=[REDACTED]",
		"https://h/?a=b?token=abc":                          "https://h/?a=b?token=[REDACTED]",
		"https://h/?next=https://i/?token=abc&x=1":          "https://h/?next=https://i/?token=[REDACTED]&x=1",
		"https://h/?password=a?b&x=1":                       "https://h/?password=[REDACTED]&x=1",
		`invalid value "https://h/?token=abc" for Url`:      `invalid value "https://h/?token=[REDACTED]" for Url`,
		"x https://h/?secret=a y http://i/?key=b z":         "x https://h/?secret=[REDACTED] y http://i/?key=[REDACTED] z",
		"http://u:pw@h/?token=t":                            "http://u:[REDACTED]@h/?token=[REDACTED]",
		"Url=http://h/?token=a,http://i/?apikey=b":          "Url=http://h/?token=[REDACTED]",
		// Nothing secret: as they are.
		"https://h/x?q=token&page=2":            "https://h/x?q=token&page=2",
		"https://h/x?token=":                    "https://h/x?token=",
		"https://h/x?tokenurl=https://i/":       "https://h/x?tokenurl=https://i/",
		"see ?token=abc without a URL":          "see ?token=abc without a URL",
		"https://h/x? token=abc":                "https://h/x? token=abc",
		"https://h/x?token=" + Redacted + "&a=": "https://h/x?token=" + Redacted + "&a=",
	} {
		require.Equal(t, want, RedactURLs(in), in)
		require.Equal(t, strings.Contains(in, "u:pw@"), HasURLPassword(in), in)
	}
}
