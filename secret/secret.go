// Package secret keeps secrets (passwords, tokens) out of everything the
// connector shows or stores. It reads and writes IDOL's encrypted-password
// form, and it redacts secrets for display.
//
// # IDOL's encrypted-password form
//
// IDOL's autpassword tool (autpassword -e -tAES -oKeyFile=FILE PASSWORD)
// prints base64 of a small INI block:
//
//	[PASSWORD]
//	Type=AES
//	KeyFile=C:/path/MyKeyFile.ky
//	Password=<base64 of a 16-byte IV followed by AES-256-CBC ciphertext, PKCS#7 padded>
//
// and the key file (autpassword -x -tAES -oKeyFile=FILE) holds the 256-bit
// key as 64 hexadecimal digits. This package decrypts that form with one
// key (Key), and produces it (Key.Encrypt) so that `connector password`
// and the server's own sealing of request secrets write the same form IDOL
// does. The KeyFile line is a label only: the connector never opens the
// path a value names (a client could name any file); it decrypts with its
// own key and refuses a value that does not decrypt with it. Type=Basic
// (IDOL's fixed-key obfuscation, whose key is not public) is refused with a
// message saying to use -tAES.
//
// # Redaction
//
// Redacted is what a secret is shown as. RedactURLs hides the password of
// every URL in a text (http://user:[REDACTED]@host/) and its query's
// credentials (?access_token=[REDACTED]), and SensitiveName
// tells names that look like secrets (a password, token, key, secret…),
// which are hidden even when no schema marks them.
package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/connectorhq/connector/internal/readfile"
	"github.com/connectorhq/connector/internal/syncdir"
)

// Redacted replaces a secret wherever it would be shown.
const Redacted = "[REDACTED]"

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// Key is an AES-256 key read from a key file.
type Key struct {
	path string
	k    [KeySize]byte
}

// Path returns the key file's path (absolute when it could be made so).
func (k *Key) Path() string { return k.path }

// Check returns a value that is the same for two keys exactly when the
// keys are the same, and tells nothing about the key: HMAC-SHA-256 of a
// fixed text under the key, hex-encoded. The nodes of a cluster compare
// theirs (a secret one node encrypts, another must decrypt).
func (k *Key) Check() string {
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte("connector: AESKeyFile check"))
	return hex.EncodeToString(m.Sum(nil))
}

// ErrKeyFile: the key file is missing, unreadable or not a key.
var ErrKeyFile = errors.New("secret: key file")

// LoadKeyFile reads a key file: 64 hexadecimal digits (as autpassword -x
// writes them; surrounding white space and a UTF-8 byte order mark are
// ignored) or exactly 32 raw bytes. A key file other users may read or
// write is refused (CheckKeyFileMode).
// The error names the path but never the file's content.
func LoadKeyFile(path string) (*Key, error) {
	// A key file is 65 bytes or so: a FIFO, a device or a big file named
	// by mistake is refused, not read for ever.
	data, err := readfile.Regular(path, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, errors.Unwrap(err))
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, errors.Unwrap(err))
	}
	if err := CheckKeyFileMode(path, fi.Mode()); err != nil {
		return nil, err
	}
	return parseKey(path, data)
}

// CheckKeyFileMode refuses a key file (at path, of mode m) that users
// other than its owner and its group may read or write, or that its group
// may write (any of the bits 026): the key decrypts every secret the
// connector keeps (the configuration's, the store's, the token files'), and
// whoever may write it may put a key of their own in its place, with which
// the secrets of later requests are then encrypted. Its group may read it,
// as PostgreSQL lets its group read a server key: the unit of
// docs/deploy.md installs the files of /etc/connector as root's, mode
// 0640, group connector. Windows has no such modes: nothing is refused
// there.
func CheckKeyFileMode(path string, m fs.FileMode) error {
	if runtime.GOOS == "windows" || m.Perm()&0o026 == 0 {
		return nil
	}
	return fmt.Errorf("%w %s: other users may read or write it (mode %04o): it decrypts every secret the connector keeps; "+
		"chmod 600 it (or 640, its group being the connector's)", ErrKeyFile, path, m.Perm())
}

func parseKey(path string, data []byte) (*Key, error) {
	k := &Key{path: absPath(path)}
	// A UTF-8 byte order mark (Windows Notepad's "UTF-8 with BOM") before
	// the digits is skipped, as the configuration file's is.
	if t := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))); len(t) == 2*KeySize {
		if _, err := hex.Decode(k.k[:], t); err == nil {
			return k, nil
		}
	}
	if len(data) == KeySize {
		copy(k.k[:], data)
		return k, nil
	}
	return nil, fmt.Errorf("%w %s: not an AES-256 key (64 hexadecimal digits)", ErrKeyFile, path)
}

// EnsureKeyFile loads the key file at path, creating it first (mode 0600,
// a fresh random key as 64 hexadecimal digits, its folder 0700 if missing)
// when it does not exist.
//
// The key is written whole to a temporary file beside path, synced, and
// then linked to path, which fails if a key file appeared there meanwhile
// (that key is loaded and returned instead); the folder is synced after.
// So no caller ever reads a key file half written, however many find it
// missing at once (two servers or cluster nodes started together on one
// AESKeyFile, `connector password` run while the server makes the key),
// all of them get the same key, and a crash leaves either no key file or
// a whole one, which a secret encrypted with it outlives: the file is on
// disk before the key encrypts anything. (Created in place and then
// written, a file found meanwhile was read empty: "not an AES-256 key",
// and a crash in between left an empty key file behind.)
func EnsureKeyFile(path string) (*Key, error) {
	k, err := LoadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	var raw [KeySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	switch err := writeNewFile(path, []byte(hex.EncodeToString(raw[:])+"\n")); {
	case errors.Is(err, fs.ErrExist): // created by someone else meanwhile
		return LoadKeyFile(path)
	case err != nil:
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	return &Key{path: absPath(path), k: raw}, nil
}

// writeNewFile makes a file of mode 0600 holding data at path, whole or
// not at all: written and synced under a temporary name in path's folder,
// linked to path (fs.ErrExist when path exists: nothing is replaced), and
// the folder synced. On a file system without hard links it is created
// with O_EXCL and written in place.
func writeNewFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeClose(tmp, data); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return writeInPlace(path, data)
	}
	_ = os.Remove(tmp.Name()) // before the folder's sync: no second name left by a crash
	return syncdir.Sync(dir)
}

// writeInPlace is writeNewFile where links cannot be made: the file is
// created with O_EXCL (fs.ErrExist when path exists) and written there.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := writeClose(f, data); err != nil {
		_ = os.Remove(path)
		return err
	}
	return syncdir.Sync(filepath.Dir(path))
}

// writeClose writes data to f, syncs and closes it.
func writeClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return filepath.ToSlash(a)
	}
	return filepath.ToSlash(p)
}

// Encrypt returns plain in IDOL's encrypted-password form (Type=AES, with
// this key's path as KeyFile and a fresh random IV).
func (k *Key) Encrypt(plain string) (string, error) {
	block, err := aes.NewCipher(k.k[:])
	if err != nil {
		return "", err
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := make([]byte, aes.BlockSize+len(plain)+pad)
	if _, err := rand.Read(buf[:aes.BlockSize]); err != nil {
		return "", fmt.Errorf("secret: random IV: %w", err)
	}
	copy(buf[aes.BlockSize:], plain)
	for i := len(buf) - pad; i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, buf[:aes.BlockSize]).CryptBlocks(buf[aes.BlockSize:], buf[aes.BlockSize:])
	text := "[PASSWORD]\nType=AES\nKeyFile=" + k.path + "\nPassword=" + base64.StdEncoding.EncodeToString(buf) + "\n"
	return base64.StdEncoding.EncodeToString([]byte(text)), nil
}

// ErrDecrypt: a value in the encrypted form could not be decrypted. Its
// message never contains the value.
var ErrDecrypt = errors.New("secret: cannot decrypt")

// form is a parsed encrypted-password block.
type form struct {
	typ, keyFile, password string
}

// parseForm reads v as IDOL's encrypted-password form; ok is false when v
// is not in that form (a password in clear).
func parseForm(v string) (form, bool) {
	v = strings.TrimSpace(v)
	if len(v) < 16 || len(v) > 64<<10 {
		return form{}, false
	}
	var raw []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			raw = b
			break
		}
	}
	text := strings.ReplaceAll(string(raw), "\r\n", "\n")
	head, rest, _ := strings.Cut(strings.TrimLeft(text, " \t\n"), "\n")
	if !strings.EqualFold(strings.TrimSpace(head), "[PASSWORD]") {
		return form{}, false
	}
	var f form
	for _, line := range strings.Split(rest, "\n") {
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "type":
			f.typ = strings.TrimSpace(value)
		case "keyfile":
			f.keyFile = strings.TrimSpace(value)
		case "password":
			f.password = strings.TrimSpace(value)
		}
	}
	return f, true
}

// IsEncrypted reports whether v is in IDOL's encrypted-password form.
func IsEncrypted(v string) bool {
	_, ok := parseForm(v)
	return ok
}

// Check validates the shape of an encrypted value without a key: it is nil
// for a value in clear and for a well-formed Type=AES value, and says what
// is wrong otherwise (never quoting the value).
func Check(v string) error {
	f, ok := parseForm(v)
	if !ok {
		return nil
	}
	return f.check()
}

func (f form) check() error {
	switch {
	case strings.EqualFold(f.typ, "AES"):
	case f.typ == "":
		return fmt.Errorf("%w: the encrypted form has no Type", ErrDecrypt)
	default:
		return fmt.Errorf("%w: encryption Type=%s is not supported; encrypt with autpassword -e -tAES (or connector password)", ErrDecrypt, f.typ)
	}
	ct, err := base64.StdEncoding.DecodeString(f.password)
	if err != nil || len(ct) < 2*aes.BlockSize || len(ct)%aes.BlockSize != 0 {
		return fmt.Errorf("%w: the encrypted form's Password is not AES-CBC ciphertext", ErrDecrypt)
	}
	return nil
}

// Decrypt returns the password of an encrypted value, or v itself when v
// is in clear. A value that is in the form but does not decrypt with k
// (another key, a damaged value, an unsupported Type) is an error wrapping
// ErrDecrypt; so is one whose password is not UTF-8, which is what
// another key gives (the form has no MAC: its padding alone let about one
// value in 256 of another key through, as random bytes).
func (k *Key) Decrypt(v string) (string, error) {
	f, ok := parseForm(v)
	if !ok {
		return v, nil
	}
	if err := f.check(); err != nil {
		return "", err
	}
	if k == nil {
		return "", fmt.Errorf("%w: no key file is configured", ErrDecrypt)
	}
	ct, _ := base64.StdEncoding.DecodeString(f.password)
	block, err := aes.NewCipher(k.k[:])
	if err != nil {
		return "", err
	}
	out := make([]byte, len(ct)-aes.BlockSize)
	cipher.NewCBCDecrypter(block, ct[:aes.BlockSize]).CryptBlocks(out, ct[aes.BlockSize:])
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize || pad > len(out) {
		return "", k.wrongKey()
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return "", k.wrongKey()
		}
	}
	// The form has no MAC: under a wrong key about one value in 256 ends
	// in a byte 1, valid padding, before random bytes. Every password
	// the connector is given is UTF-8 (requests and configuration files
	// are read as UTF-8), and random bytes hardly ever are (15 of them
	// about once in 6,000, and longer ones far less often): a value
	// that decrypts to anything else was encrypted with another key.
	plain := out[:len(out)-pad]
	if !utf8.Valid(plain) {
		// Or a password that is not UTF-8: what autpassword makes of one
		// typed in a Windows code page. Both are said: the error alone
		// sent whoever moved IDOL's values over to check the right key.
		return "", fmt.Errorf("%w, or its password is not UTF-8 text (autpassword given a password in a Windows code page: encrypt it again with connector password)", k.wrongKey())
	}
	return string(plain), nil
}

func (k *Key) wrongKey() error {
	return fmt.Errorf("%w: the value was not encrypted with the key in %s", ErrDecrypt, k.path)
}

// SensitiveName reports whether a parameter or setting name looks like it
// holds a secret, such as a password, a token or a key. It is the one rule
// for names that no settings schema marks secret (a parameter an action
// ignores, a misspelt setting, a line without its =): their values are
// redacted wherever they are shown, and an ignored parameter's value is
// not kept. A name ([Section] prefix and case aside) looks secret when
//
//   - it contains passw (password, passwd, and password misspelt:
//     passwrd, passwod; or in German, passwort), pasw (pasword, paswd),
//     pwd, passphrase, secret, credential, apikey (api_key, api-key),
//     authorization or cookie;
//   - it contains token, unless it is Token alone (the ACI action token,
//     shown by design) or ends in Url, Uri, File or Path (it says where a
//     token is: OAuthTokenUrl, OAuthTokenFile);
//   - it ends in key (ApiKey, AccessKey, SigningKey) or auth (X-Auth),
//     but not OAuth.
//
// Settings that merely mention a secret (BasicAuthUsername, AuthMethod,
// AESKeyFile, OAuthClientID) do not look secret.
func SensitiveName(name string) bool {
	name = strings.TrimSpace(name)
	if strings.HasPrefix(name, "[") {
		if i := strings.IndexByte(name, ']'); i > 0 {
			name = strings.TrimSpace(name[i+1:])
		}
	}
	// One pass over the name, trying only the words that start with each
	// letter (most letters start none): it is asked of every parameter of
	// every request (the request log).
	token := false
	for i := 0; i < len(name); i++ {
		c := lowerASCII(name[i])
		for _, w := range sensitiveByFirst[c] {
			if hasPrefixFold(name[i:], w) {
				return true
			}
		}
		token = token || (c == 't' && hasPrefixFold(name[i:], "token"))
	}
	if token && !(len(name) == len("token") ||
		hasSuffixFold(name, "url") || hasSuffixFold(name, "uri") || hasSuffixFold(name, "file") || hasSuffixFold(name, "path")) {
		return true
	}
	return hasSuffixFold(name, "key") || (hasSuffixFold(name, "auth") && !hasSuffixFold(name, "oauth"))
}

// sensitiveWords make a name look secret wherever they are in it
// (SensitiveName); lower case.
var sensitiveWords = [...]string{"passw", "pasw", "pwd", "passphrase", "secret", "credential",
	"apikey", "api_key", "api-key", "authorization", "cookie"}

// sensitiveByFirst is sensitiveWords by their first letter.
var sensitiveByFirst = func() (t [256][]string) {
	for _, w := range sensitiveWords {
		t[w[0]] = append(t[w[0]], w)
	}
	return t
}()

// hasPrefixFold reports whether s starts with prefix (lower-case ASCII) in
// any case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerASCII(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// hasSuffixFold reports whether s ends in suffix (lower-case ASCII) in any
// case.
func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && hasPrefixFold(s[len(s)-len(suffix):], suffix)
}

// lowerASCII is c with an ASCII capital letter made small.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// RedactURLs returns s with the password of every URL it contains
// replaced by Redacted: "http://user:pw@host/" becomes
// "http://user:[REDACTED]@host/", and so does "http://user:p#w@host/", a
// password typed with a '/', '?', '#' or '\' in it unencoded, or with
// white space or a quote ("http://user:p w@host/": passwordPast), and
// "http:\\user:pw@host/", a URL spelt as browsers read it
// (authorityStart). A user name alone is kept. The value of every query
// or fragment parameter of a URL whose name looks secret is replaced too
// (redactQuerySecrets): "https://host/?access_token=t&x=1" becomes
// "https://host/?access_token=[REDACTED]&x=1". It takes time linear in
// the length of s, whatever s holds (lookahead).
func RedactURLs(s string) string {
	return redactQuerySecrets(redactPasswords(s))
}

// redactPasswords is RedactURLs for the passwords of user information
// only.
func redactPasswords(s string) string {
	if strings.IndexByte(s, '@') < 0 || strings.IndexByte(s, ':') < 0 {
		return s
	}
	var b strings.Builder // written only once a password is found
	copied := 0           // bytes of s already in b
	ahead := newLookahead(s)
	for pos := 0; ; {
		start := authorityStart(s[pos:])
		if start < 0 {
			break
		}
		start += pos
		// The authority ends at the first '/', '?', '#', white space or
		// quote; the user information is what precedes its last '@'.
		end := start
		for end < len(s) && !strings.ContainsRune(hostEnds, rune(s[end])) {
			end++
		}
		auth := s[start:end]
		at := strings.LastIndexByte(auth, '@')
		colon := strings.IndexByte(auth, ':')
		if at < 0 && colon >= 0 {
			if a, e := ahead.passwordPast(start, end, start+colon); a >= 0 {
				at, end = a-start, e
			}
		}
		pos = end
		if at < 0 || colon < 0 || colon > at {
			continue
		}
		// s[copied:start+colon+1] is what precedes this URL's password.
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[copied : start+colon+1])
		b.WriteString(Redacted)
		copied = start + at
	}
	if copied == 0 {
		return s // no password: no copy
	}
	b.WriteString(s[copied:])
	return b.String()
}

// redactQuerySecrets returns s with the value of every query or
// fragment parameter whose name looks secret (querySecretName) of every
// URL in s replaced by Redacted. A URL's parameters begin at the first
// '?' or '#' after its scheme, and it ends at white space or a quote. A
// parameter ends at '&' or '#', and one whose name does not look secret
// at a '?' too, so that the query of a URL in its value is read as well
// (?next=https://h/?token=t). A secret's value, which may hold a '?',
// runs to the next '&' or '#'. An empty value is left as it is. It
// takes time linear in the length of s: each byte is read once after
// authorityStart has passed it.
func redactQuerySecrets(s string) string {
	if strings.IndexByte(s, '=') < 0 || strings.IndexByte(s, ':') < 0 {
		return s
	}
	var b strings.Builder // written only once a value is redacted
	copied := 0           // bytes of s already in b
	for pos := 0; pos < len(s); {
		start := authorityStart(s[pos:])
		if start < 0 {
			break
		}
		start += pos
		end := start
		for end < len(s) && !strings.ContainsRune(lookaheadSets[textEnd], rune(s[end])) {
			end++
		}
		i := start + strings.IndexAny(s[start:end], "?#")
		pos = end
		if i < start {
			continue
		}
		for i < end {
			i++ // past the '?', '#' or '&' that begins the parameter
			nameEnd := i
			for nameEnd < end && !strings.ContainsRune("=?#&", rune(s[nameEnd])) {
				nameEnd++
			}
			if nameEnd == end || s[nameEnd] != '=' {
				i = nameEnd
				continue
			}
			seps := "?#&"
			secret := querySecretName(s[i:nameEnd])
			if secret {
				seps = "#&"
			}
			v := nameEnd + 1
			vEnd := v
			for vEnd < end && !strings.ContainsRune(seps, rune(s[vEnd])) {
				vEnd++
			}
			i = vEnd
			if !secret || vEnd == v || s[v:vEnd] == Redacted {
				continue
			}
			if b.Len() == 0 {
				b.Grow(len(s))
			}
			b.WriteString(s[copied:v])
			b.WriteString(Redacted)
			copied = vEnd
		}
	}
	if copied == 0 {
		return s
	}
	b.WriteString(s[copied:])
	return b.String()
}

// querySecretName reports whether a URL's query or fragment parameter
// named name (percent-encoded as in the URL) holds a credential: its
// name looks secret (SensitiveName), or it is token (which in a URL is
// one, unlike the ACI action's Token parameter), sig or a name ending in
// signature (a signed URL's: Azure's sig, S3's X-Amz-Signature).
func querySecretName(name string) bool {
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	return SensitiveName(name) || strings.EqualFold(name, "token") || strings.EqualFold(name, "sig") || hasSuffixFold(name, "signature")
}

// authorityStart returns where the authority of the first URL in s
// begins, or -1: after "://", whatever the scheme; and for the schemes
// the WHATWG URL parser calls special (http, https, ws, wss, ftp: the
// crawl's and browsers' parser) after the ':' and any run of '/' and '\'
// that follows it, none included, as that parser reads them
// (http:\\u:p@h/, http:/u:p@h/ and http:u:p@h/ are http://u:p@h/).
func authorityStart(s string) int {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], ':')
		if j < 0 {
			return -1
		}
		j += i
		if specialScheme(s[:j]) {
			k := j + 1
			for k < len(s) && (s[k] == '/' || s[k] == '\\') {
				k++
			}
			return k
		}
		if strings.HasPrefix(s[j:], "://") {
			return j + 3
		}
		i = j + 1
	}
}

// specialScheme reports whether s ends in the name of a special scheme
// (http, https, ws, wss, ftp; in any case) that stands whole: at its start
// or after a character that cannot be in a scheme.
func specialScheme(s string) bool {
	i := len(s)
	for i > 0 && isSchemeChar(s[i-1]) {
		i--
	}
	name := s[i:]
	for _, w := range [...]string{"http", "https", "ws", "wss", "ftp"} {
		if len(name) == len(w) && hasPrefixFold(name, w) {
			return true
		}
	}
	return false
}

func isSchemeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// passwordPast finds the password of a URL written with a '/', '?', '#',
// '\', white space or a quote in it unencoded (http://u:hunter#2@h/, as a
// password is typed; http://u:pa ss@h/), where the authority seemed to
// end: the URL's authority begins at start in the text, and its first
// such character is at auth, with a ':' at colon and no '@' before it.
// When what follows the ':' can be no port (it is not digits; or digits,
// or nothing, then a '#', which never comes between a port and user
// information) and an '@' follows (before white space or a quote; or,
// when the authority seemed to end at one, before a '/', '?', '#' or
// '\'), it returns the index of the '@' that ends the user information
// (the last one before the host's end) and the end of the authority; at
// < 0 when there is no such password. An IPv6 literal ([::1]) has no user
// information before its ':'; neither has a host:port followed by a path
// or a query with an '@' in it (http://h:8080/@user), which stays whole.
func (l *lookahead) passwordPast(start, auth, colon int) (at, end int) {
	s := l.s
	if auth >= len(s) || s[start] == '[' {
		return -1, 0
	}
	port := s[colon+1 : auth]
	if strings.Trim(port, "0123456789") == "" && s[auth] != '#' {
		return -1, 0 // host:port, then a path or a query
	}
	// The '@' is looked for up to white space or a quote, which end a URL
	// in a text; past them too up to a '/', '?', '#' or '\' when the
	// authority seemed to end at one: no URL ends after a ':' that begins
	// no port, and the URL parsers read on (the WHATWG parser, the
	// crawl's and browsers', drops a tab or line break and encodes a
	// space or quote in user information).
	lim := l.next(textEnd, auth)
	if lim == auth {
		lim = l.next(pathStart, auth)
	}
	first := l.next(atSign, auth)
	if first >= lim {
		return -1, 0
	}
	end = min(l.next(hostEnd, first+1), lim)
	return strings.LastIndexByte(s[:end], '@'), end
}

// hostEnds end a URL's authority: a path, query or fragment, white space
// or a quote.
const hostEnds = "/?#\\ \t\r\n\"'<>"

// lookahead finds, for passwordPast, the next byte of one of a few sets
// in a text at or after a position. It keeps its last answer for each
// set, and the positions asked only grow as RedactURLs goes through the
// text, so each stretch of it is scanned about once. Scanned afresh for
// each URL, a text of many URLs whose lookahead finds no '@'
// ("ftp:x:y#ftp:x:y#… @") cost time quadratic in its length: 18 s for a
// parameter of 128 KiB, which the request log redacts for any client,
// before its role is checked.
type lookahead struct {
	s    string
	sets [len(lookaheadSets)]struct{ from, at int } // no byte of the set in s[from:at]; at is one, or len(s)
}

// The sets of lookahead.next.
const (
	textEnd   = iota // white space or a quote: where a URL ends in a text
	pathStart        // '/', '?', '#' or '\'
	atSign           // '@'
	hostEnd          // hostEnds
)

var lookaheadSets = [...]string{textEnd: " \t\r\n\"'<>", pathStart: "/?#\\", atSign: "@", hostEnd: hostEnds}

func newLookahead(s string) *lookahead {
	l := &lookahead{s: s}
	for i := range l.sets {
		l.sets[i].at = -1 // nothing known
	}
	return l
}

// next returns the index of the first byte of set in s at or after i, or
// len(s).
func (l *lookahead) next(set, i int) int {
	c := &l.sets[set]
	if c.from <= i && i <= c.at {
		return c.at
	}
	c.from, c.at = i, len(l.s)
	if j := strings.IndexAny(l.s[i:], lookaheadSets[set]); j >= 0 {
		c.at = i + j
	}
	return c.at
}

// LogURL is a URL as a log shows it, where its credentials must not show
// (docs/security.md): the password of its user information is redacted as
// RedactURLs does (user:[REDACTED]@), and its query, which may carry a
// token (?access_token=…), is cut to "?…". A URL without either is
// returned as it is, without a copy.
func LogURL(u string) string {
	u = RedactURLs(u)
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i+1] + "…"
	}
	return u
}

// HasURLPassword reports whether s contains a URL with a password in its
// user information.
func HasURLPassword(s string) bool { return redactPasswords(s) != s }

// Scrub returns text with each secret replaced by Redacted wherever it
// shows in a form a service's echo of a request would give it: as sent,
// percent-encoded (a form body, a query, a path), JSON-escaped and base64
// (a Basic Authorization header). It is for text a remote party wrote about a
// request the connector sent (an error body that quotes the request's
// Authorization header or its form), scrubbed where that text is read,
// with the secrets that request carried; empty secrets are ignored, and
// text without any is returned as it is.
//
// A form shorter than minSubstring bytes (a password of a few characters)
// is replaced only where it stands whole: not inside a longer word or
// number (wholeAt). Replaced inside words, the password "a" turned
// `"invalid_grant"` into `"inv[REDACTED]lid_gr[REDACTED]nt"`: the text
// was unreadable, a JSON error no longer parsed, and the pattern of the
// replacements told the password to whoever read it. Given whole, as an
// echo gives it (password=a&, "a", user:a@), it is still replaced.
func Scrub(text string, secrets ...string) string {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range [...]string{s, url.QueryEscape(s), url.PathEscape(s), base64.StdEncoding.EncodeToString([]byte(s)),
			jsonEscape(s, true), jsonEscape(s, false)} {
			switch {
			case !strings.Contains(text, form):
			case len(form) >= minSubstring:
				text = strings.ReplaceAll(text, form, Redacted)
			default:
				text = replaceWhole(text, form)
			}
		}
	}
	return text
}

// minSubstring is the length from which Scrub replaces a secret's form
// wherever it occurs, inside words too: a text of a service (an error
// body) holds a given string of 8 or more bytes by chance hardly ever,
// while a shorter one ("a", "401", "test") is in ordinary words and
// numbers.
const minSubstring = 8

// replaceWhole returns text with every occurrence of form that stands
// whole (wholeAt) replaced by Redacted.
func replaceWhole(text, form string) string {
	var b strings.Builder
	copied, replaced := 0, false
	for i := 0; i <= len(text)-len(form); {
		j := strings.Index(text[i:], form)
		if j < 0 {
			break
		}
		j += i
		if !wholeAt(text, j, j+len(form)) {
			i = j + 1
			continue
		}
		b.WriteString(text[copied:j])
		b.WriteString(Redacted)
		copied, replaced = j+len(form), true
		i = copied
	}
	if !replaced {
		return text
	}
	b.WriteString(text[copied:])
	return b.String()
}

// wholeAt reports whether text[start:end] stands whole: neither the
// character before it nor the one after it is a letter or a digit. An
// escape just before it (%3D, \u0026, \n: the = or & of an encoded form
// body) counts as a separator, although it ends in one.
func wholeAt(text string, start, end int) bool {
	if r, _ := utf8.DecodeRuneInString(text[end:]); end < len(text) && isWordRune(r) {
		return false
	}
	if start == 0 {
		return true
	}
	if r, _ := utf8.DecodeLastRuneInString(text[:start]); !isWordRune(r) {
		return true
	}
	isHex := func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
	switch {
	case start >= 3 && text[start-3] == '%' && isHex(text[start-2]) && isHex(text[start-1]):
		return true // %3D
	case start >= 6 && text[start-6] == '\\' && text[start-5] == 'u' &&
		isHex(text[start-4]) && isHex(text[start-3]) && isHex(text[start-2]) && isHex(text[start-1]):
		return true // \u0026
	case start >= 2 && text[start-2] == '\\':
		return true // \n, \t
	}
	return false
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// jsonEscape is s as a JSON string's content (without its quotes), with
// or without the escaping of <, > and & that Go's encoder adds.
func jsonEscape(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(s)
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(b.String()), `"`), `"`)
}

// AuthorizationSecrets returns the secrets an Authorization header value
// carries, for Scrub: its credentials ("Bearer TOKEN": the token; "Basic
// B64": B64, and the user:password it decodes to and the password).
func AuthorizationSecrets(header string) []string {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	if !ok || cred == "" {
		return nil
	}
	out := []string{cred}
	if strings.EqualFold(scheme, "Basic") {
		if b, err := base64.StdEncoding.DecodeString(cred); err == nil {
			out = append(out, string(b))
			if _, pw, ok := strings.Cut(string(b), ":"); ok {
				out = append(out, pw)
			}
		}
	}
	return out
}
