// Package tlsconf turns a TLS section of the configuration (IDOL's
// SSLConfig keys: SSLMethod, SSLCertificate, SSLPrivateKey,
// SSLPrivateKeyPassword, SSLCACertificate, SSLCheckCertificate) into a
// crypto/tls configuration: for a listening port (the ACI port, the
// service port) or for outgoing connections (CFS ingestion over HTTPS).
//
// TLS 1.2 is the oldest protocol either side speaks. A listening port with
// SSLCACertificate asks clients for a certificate signed by it: required
// with SSLCheckCertificate=true (the default), optional otherwise. Only a
// verified certificate names a client's SSLIdentities (package auth).
// Outgoing connections always verify the server's certificate, against
// SSLCACertificate when given, else the system's authorities.
//
// A listening port's files can be read again while it serves (Reloader):
// each handshake takes the configuration loaded last, and a new pair that
// does not load, match or has expired is refused, keeping the old one.
package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/readfile"
	"github.com/connectorhq/connector/secret"
)

// KeyError says which key of the section is at fault.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// ConfigError wraps an error of Server or Client as the configuration error
// it is: the file, the line of the key at fault, the section and the key.
func ConfigError(file string, o *config.SSLOptions, err error) error {
	var ke *KeyError
	if errors.As(err, &ke) {
		return &config.Error{File: file, Line: o.KeyLine(ke.Key), Section: o.Section, Key: ke.Key, Err: ke.Err}
	}
	return &config.Error{File: file, Line: o.Line, Section: o.Section, Err: err}
}

// Server returns the configuration of a listening port. key decrypts an
// SSLPrivateKeyPassword given in IDOL's encrypted-password form (nil when
// none is).
func Server(o *config.SSLOptions, key *secret.Key) (*tls.Config, error) {
	c, err := base(o)
	if err != nil {
		return nil, err
	}
	if o.Certificate == "" {
		return nil, &KeyError{"SSLCertificate", errors.New("a listening port needs its certificate (SSLCertificate and SSLPrivateKey)")}
	}
	cert, err := keyPair(o, key)
	if err != nil {
		return nil, err
	}
	c.Certificates = []tls.Certificate{cert}
	if o.CACertificate != "" {
		pool, err := caPool(o.CACertificate)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if o.CheckCertificate {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return c, nil
}

// Client returns the configuration of outgoing connections: the server's
// certificate is checked against SSLCACertificate (the system's
// authorities when not given); SSLCertificate and SSLPrivateKey, when
// given, are sent as the client certificate.
func Client(o *config.SSLOptions, key *secret.Key) (*tls.Config, error) {
	c, err := base(o)
	if err != nil {
		return nil, err
	}
	if o.CACertificate != "" {
		if c.RootCAs, err = caPool(o.CACertificate); err != nil {
			return nil, err
		}
	}
	if o.Certificate != "" {
		cert, err := keyPair(o, key)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func base(o *config.SSLOptions) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	switch o.Method {
	case "", "Negotiate":
	case "TLSV1.2":
		c.MaxVersion = tls.VersionTLS12
	case "TLSV1.3":
		c.MinVersion = tls.VersionTLS13
	default:
		return nil, &KeyError{"SSLMethod", fmt.Errorf("%q is not an SSLMethod (expected Negotiate, TLSV1.2 or TLSV1.3)", o.Method)}
	}
	return c, nil
}

// maxPEMBytes bounds a PEM file a TLS section names: a CA bundle of every
// public authority is about 200 KiB.
const maxPEMBytes = 16 << 20

// caPool reads the certificates of an SSLCACertificate file
// (certificates).
func caPool(path string) (*x509.CertPool, error) {
	data, err := readfile.Regular(path, maxPEMBytes)
	if err != nil {
		return nil, &KeyError{"SSLCACertificate", err}
	}
	certs, err := certificates(path, data, true)
	if err != nil {
		return nil, &KeyError{"SSLCACertificate", err}
	}
	if len(certs) == 0 {
		return nil, &KeyError{"SSLCACertificate", fmt.Errorf("%s holds no PEM certificate", path)}
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// certificates reads every certificate of a PEM file (an SSLCACertificate
// bundle, an SSLCertificate chain). One that does not read (its base64
// broken, its END line missing, its DER cut) is an error naming the file
// and its line, as OpenSSL (IDOL) refuses the file: crypto/x509 and
// crypto/tls skipped it without a word (or, in a chain, sent it cut), and
// the port started, refusing every client that authority signed as
// "signed by unknown authority", or serving a chain that no client
// accepts. Blocks that are no certificate (a CRL) are skipped. A TRUSTED
// CERTIFICATE block (`openssl x509 -trustout`), which OpenSSL reads as a
// certificate, is read too: in a CA file (anchors) when it carries no
// trust settings (none, or an alias only: trustedCertificate), in a chain
// whatever they are, as OpenSSL ignores them there. Skipped, an authority
// written so was missing from its bundle without a word, and a chain's
// certificate from the chain served.
func certificates(path string, data []byte, anchors bool) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	begin := []byte("-----BEGIN ")
	for off := 0; ; {
		i := bytes.Index(data[off:], begin)
		if i < 0 {
			return certs, nil
		}
		i += off
		label := data[i+len(begin):]
		trusted := bytes.HasPrefix(label, []byte("TRUSTED CERTIFICATE-----"))
		if !trusted && !bytes.HasPrefix(label, []byte("CERTIFICATE-----")) {
			off = i + len(begin)
			continue
		}
		off = len(data) // the certificate's text ends where the next block begins
		if n := bytes.Index(label, begin); n >= 0 {
			off = i + len(begin) + n
		}
		var cert *x509.Certificate
		var err error
		b, _ := pem.Decode(data[i:off])
		switch {
		case b == nil:
			err = errors.New("is not valid PEM (a character that is not base64, or no END line)")
		case trusted:
			cert, err = trustedCertificate(b.Bytes, anchors)
		default:
			if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
				err = fmt.Errorf("does not parse (%w)", err)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: the certificate %w", path, bytes.Count(data[:i], []byte("\n"))+1, err)
		}
		certs = append(certs, cert)
	}
}

// trustedCertificate reads a TRUSTED CERTIFICATE block's DER: the
// certificate, then OpenSSL's X509_CERT_AUX when present: SEQUENCE {
// trust SEQUENCE OF OID OPTIONAL, reject [0] SEQUENCE OF OID OPTIONAL,
// alias UTF8String OPTIONAL, ... }. Trust settings restrict the purposes
// OpenSSL trusts the authority for, which crypto/x509 cannot: such a block
// is refused as an anchor rather than trusted for every purpose.
func trustedCertificate(der []byte, anchor bool) (*x509.Certificate, error) {
	var raw, aux asn1.RawValue
	rest, err := asn1.Unmarshal(der, &raw)
	if err == nil && len(rest) > 0 {
		if rest, err = asn1.Unmarshal(rest, &aux); err == nil && (len(rest) > 0 || aux.Tag != asn1.TagSequence || !aux.IsCompound) {
			err = errors.New("trailing data after its trust settings")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("does not parse (%w)", err)
	}
	if anchor && len(aux.Bytes) > 0 && (aux.Bytes[0] == 0x30 || aux.Bytes[0] == 0xa0) {
		return nil, errors.New("is a TRUSTED CERTIFICATE with trust settings (openssl x509 -addtrust or -addreject), which this server cannot apply: " +
			"write it without them (openssl x509 -in FILE -out NEW) if it is to be trusted for every purpose")
	}
	cert, err := x509.ParseCertificate(raw.FullBytes)
	if err != nil {
		return nil, fmt.Errorf("does not parse (%w)", err)
	}
	return cert, nil
}

// keyPair loads SSLCertificate and SSLPrivateKey (its first private key
// block: firstKeyBlock; a UTF-8 byte order mark before it is ignored, as
// before the certificates), decrypting a key in the legacy encrypted PEM form
// (Proc-Type: 4,ENCRYPTED) with SSLPrivateKeyPassword.
func keyPair(o *config.SSLOptions, key *secret.Key) (tls.Certificate, error) {
	certPEM, err := readfile.Regular(o.Certificate, maxPEMBytes)
	if err != nil {
		return tls.Certificate{}, &KeyError{"SSLCertificate", err}
	}
	certs, err := certificates(o.Certificate, certPEM, false)
	if err != nil {
		return tls.Certificate{}, &KeyError{"SSLCertificate", err}
	}
	if len(certs) > 0 {
		// As read (TRUSTED CERTIFICATE blocks too, which crypto/tls skips).
		certPEM = nil
		for _, c := range certs {
			certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
	}
	keyPEM, err := readfile.Regular(o.PrivateKey, maxPEMBytes)
	if err != nil {
		return tls.Certificate{}, &KeyError{"SSLPrivateKey", err}
	}
	// A UTF-8 byte order mark (Windows Notepad's "UTF-8 with BOM") hides
	// the BEGIN line that follows it from the PEM reader; the
	// certificates' reader finds their BEGIN lines anywhere.
	keyPEM = bytes.TrimPrefix(keyPEM, []byte("\xef\xbb\xbf"))
	block := firstKeyBlock(keyPEM)
	if block == nil {
		return tls.Certificate{}, &KeyError{"SSLPrivateKey", fmt.Errorf("%s holds no PEM private key", o.PrivateKey)}
	}
	der := block.Bytes
	switch {
	case block.Type == "OPENSSH PRIVATE KEY": // encrypted or not, by its own means
		return tls.Certificate{}, &KeyError{"SSLPrivateKey", fmt.Errorf("%s is an OpenSSH key (ssh-keygen's own format), not a TLS private key: "+
			"give the key of SSLCertificate, in PEM as openssl writes it", o.PrivateKey)}
	case block.Type == "ENCRYPTED PRIVATE KEY":
		return tls.Certificate{}, &KeyError{"SSLPrivateKey", fmt.Errorf("%s is an encrypted PKCS #8 key, which this server cannot read; "+
			"convert it to the traditional encrypted form (openssl pkey -in KEY -traditional -aes256) or store it unencrypted, readable by the connector's user only", o.PrivateKey)}
	case x509.IsEncryptedPEMBlock(block): //nolint:staticcheck // the legacy form is what IDOL's SSLPrivateKeyPassword decrypts
		if o.PrivateKeyPassword == "" {
			return tls.Certificate{}, &KeyError{"SSLPrivateKey", fmt.Errorf("%s is encrypted: give its password in SSLPrivateKeyPassword", o.PrivateKey)}
		}
		pw := o.PrivateKeyPassword
		if secret.IsEncrypted(pw) {
			if key == nil {
				return tls.Certificate{}, &KeyError{"SSLPrivateKeyPassword", errors.New("the password is in the encrypted form but no [Security] AESKeyFile could be read")}
			}
			if pw, err = key.Decrypt(pw); err != nil {
				return tls.Certificate{}, &KeyError{"SSLPrivateKeyPassword", err}
			}
		}
		der, err = x509.DecryptPEMBlock(block, []byte(pw)) //nolint:staticcheck // see above
		if err != nil {
			return tls.Certificate{}, &KeyError{"SSLPrivateKeyPassword", fmt.Errorf("does not decrypt %s", o.PrivateKey)}
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
	case o.PrivateKeyPassword != "":
		return tls.Certificate{}, &KeyError{"SSLPrivateKeyPassword", fmt.Errorf("%s is not encrypted; remove SSLPrivateKeyPassword", o.PrivateKey)}
	}
	// A key crypto/tls cannot read is the key's fault: tls.X509KeyPair
	// says only "failed to parse private key", which the error below
	// would blame on SSLCertificate.
	if !tlsKey(der) {
		if x509.IsEncryptedPEMBlock(block) { //nolint:staticcheck // see above
			// A wrong password may leave valid padding around garbage.
			return tls.Certificate{}, &KeyError{"SSLPrivateKeyPassword", fmt.Errorf("does not decrypt %s "+
				"(or its %s block is not a private key this server reads)", o.PrivateKey, block.Type)}
		}
		return tls.Certificate{}, &KeyError{"SSLPrivateKey", fmt.Errorf("%s: its %s block is not a private key this server reads "+
			"(RSA, ECDSA or Ed25519, in PKCS #1, PKCS #8 or SEC 1 form, as openssl writes them), or it is damaged", o.PrivateKey, block.Type)}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &KeyError{"SSLCertificate", fmt.Errorf("%s and %s: %w", o.Certificate, o.PrivateKey, err)}
	}
	return cert, nil
}

// tlsKey reports whether der is a private key crypto/tls reads (as its
// parsePrivateKey does: PKCS #1, PKCS #8 of RSA, ECDSA or Ed25519, SEC 1).
func tlsKey(der []byte) bool {
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return true
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return true
		}
		return false
	}
	_, err := x509.ParseECPrivateKey(der)
	return err == nil
}

// firstKeyBlock returns the first private key block of a PEM file (of a
// type ending in "PRIVATE KEY"), or nil. Other blocks before it are
// skipped, as crypto/tls skips them: the certificate of a file that holds
// both, the EC PARAMETERS that `openssl ecparam -genkey` writes first.
func firstKeyBlock(data []byte) *pem.Block {
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return nil
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return block
		}
	}
}

// Reloader is a listening port's TLS configuration whose files
// (SSLCertificate, SSLPrivateKey, SSLCACertificate) can be read again while
// the port serves: each handshake uses the configuration loaded last
// (tls.Config.GetConfigForClient), so that certificates renewed in place
// (short-lived ones, an ACME client's) are served without a restart.
// Connections already open keep the certificate they were made with. It is
// safe for concurrent use.
type Reloader struct {
	o   *config.SSLOptions
	key *secret.Key
	now func() time.Time

	mu    sync.Mutex // serializes Reload
	files fileStamps // of the files cur was loaded from
	cur   atomic.Pointer[tls.Config]
	outer *tls.Config
}

// NewReloader loads the configuration of a listening port (as Server
// does).
func NewReloader(o *config.SSLOptions, key *secret.Key) (*Reloader, error) {
	r := &Reloader{o: o, key: key, now: time.Now}
	files := stamp(o)
	c, err := Server(o, key)
	if err != nil {
		return nil, err
	}
	r.files = files
	r.cur.Store(c)
	r.outer = c.Clone()
	r.outer.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.cur.Load(), nil }
	return r, nil
}

// Config returns the configuration to listen with: its handshakes use the
// files loaded last. Its ClientAuth is the section's (it does not change:
// the section's keys are read at start only).
func (r *Reloader) Config() *tls.Config { return r.outer }

// Section returns the TLS section the reloader reads.
func (r *Reloader) Section() *config.SSLOptions { return r.o }

// Reload reads the section's files again and, when they make a valid
// configuration, serves it from the next handshake on. A certificate that
// does not load, does not match its key, or has expired is refused with a
// KeyError naming the key and the file: the port keeps the configuration
// it has. The certificate now served is returned.
func (r *Reloader) Reload() (*x509.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	files := stamp(r.o)
	c, err := Server(r.o, r.key)
	if err != nil {
		r.files = files // a broken version is reported once: Changed is false until it changes again
		return nil, err
	}
	leaf := c.Certificates[0].Leaf
	if now := r.now(); now.After(leaf.NotAfter) {
		r.files = files
		return nil, &KeyError{"SSLCertificate", fmt.Errorf("%s expired on %s", r.o.Certificate, leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	r.files = files
	r.cur.Store(c)
	return leaf, nil
}

// Changed reports whether a file of the section has changed (replaced,
// written, or gone) since it was last loaded, or last failed to load.
func (r *Reloader) Changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return stamp(r.o) != r.files
}

// fileStamps identify the versions of a section's files: device, inode,
// size and modification time of each (zero: missing).
type fileStamps [3]fileStamp

type fileStamp struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func stamp(o *config.SSLOptions) fileStamps {
	var s fileStamps
	for i, p := range []string{o.Certificate, o.PrivateKey, o.CACertificate} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p) // follows a symbolic link: Kubernetes swaps the link
		if err != nil {
			continue
		}
		s[i] = fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			s[i].dev, s[i].ino = uint64(st.Dev), st.Ino //nolint:unconvert // Dev is uint32 on some platforms
		}
	}
	return s
}

// Current returns the certificate served now.
func (r *Reloader) Current() *x509.Certificate { return r.cur.Load().Certificates[0].Leaf }
