package tlsconf

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/testpki"
	"github.com/connectorhq/connector/secret"
)

func TestServerConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	certPath, keyPath := ca.Localhost(t).Write(t, dir, "server")
	caPath := ca.WriteCA(t, dir, "ca")

	c, err := Server(&config.SSLOptions{Method: "Negotiate", Certificate: certPath, PrivateKey: keyPath}, nil)
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), c.MinVersion)
	require.Equal(t, tls.NoClientCert, c.ClientAuth)
	require.Len(t, c.Certificates, 1)

	c, err = Server(&config.SSLOptions{Method: "TLSV1.3", Certificate: certPath, PrivateKey: keyPath, CACertificate: caPath, CheckCertificate: true}, nil)
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS13), c.MinVersion)
	require.Equal(t, tls.RequireAndVerifyClientCert, c.ClientAuth)
	require.NotNil(t, c.ClientCAs)

	c, err = Server(&config.SSLOptions{Method: "TLSV1.2", Certificate: certPath, PrivateKey: keyPath, CACertificate: caPath}, nil)
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), c.MaxVersion)
	require.Equal(t, tls.VerifyClientCertIfGiven, c.ClientAuth, "SSLCheckCertificate=false: a certificate is checked if given")
}

func TestClientConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	caPath := ca.WriteCA(t, dir, "ca")
	c, err := Client(&config.SSLOptions{CACertificate: caPath, CheckCertificate: true}, nil)
	require.NoError(t, err)
	require.NotNil(t, c.RootCAs)
	require.False(t, c.InsecureSkipVerify)
	require.Empty(t, c.Certificates)
	certPath, keyPath := ca.Issue(t, testpki.Leaf{CommonName: "connector", Client: true}).Write(t, dir, "client")
	c, err = Client(&config.SSLOptions{Certificate: certPath, PrivateKey: keyPath, CheckCertificate: true}, nil)
	require.NoError(t, err)
	require.Nil(t, c.RootCAs, "the system's authorities")
	require.Len(t, c.Certificates, 1)
}

// TestEncryptedKeys: a key in the traditional encrypted PEM form loads with
// its password, given in clear or in IDOL's encrypted-password form; a
// wrong or missing password, and an encrypted PKCS #8 key, are refused
// naming the key.
func TestEncryptedKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	leaf := ca.Localhost(t)
	certPath, plainKeyPath := leaf.Write(t, dir, "server")
	block, _ := pem.Decode(leaf.KeyPEM)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	enc, err := x509.EncryptPEMBlock(rand.Reader, "PRIVATE KEY", der, []byte("s3cret"), x509.PEMCipherAES256) //nolint:staticcheck // the legacy form under test
	require.NoError(t, err)
	encPath := filepath.Join(dir, "enc.key")
	require.NoError(t, os.WriteFile(encPath, pem.EncodeToMemory(enc), 0o600))

	o := &config.SSLOptions{Certificate: certPath, PrivateKey: encPath, PrivateKeyPassword: "s3cret"}
	_, err = Server(o, nil)
	require.NoError(t, err)

	key, err := secret.EnsureKeyFile(filepath.Join(dir, "aes.ky"))
	require.NoError(t, err)
	sealed, err := key.Encrypt("s3cret")
	require.NoError(t, err)
	_, err = Server(&config.SSLOptions{Certificate: certPath, PrivateKey: encPath, PrivateKeyPassword: sealed}, key)
	require.NoError(t, err)

	for _, c := range []struct {
		o       config.SSLOptions
		wantKey string
		want    string
	}{
		{config.SSLOptions{Certificate: certPath, PrivateKey: encPath, PrivateKeyPassword: "wrong"}, "SSLPrivateKeyPassword", "does not decrypt"},
		{config.SSLOptions{Certificate: certPath, PrivateKey: encPath}, "SSLPrivateKey", "is encrypted: give its password in SSLPrivateKeyPassword"},
		{config.SSLOptions{Certificate: certPath, PrivateKey: plainKeyPath, PrivateKeyPassword: "x"}, "SSLPrivateKeyPassword", "is not encrypted"},
		{config.SSLOptions{Certificate: certPath, PrivateKey: encPath, PrivateKeyPassword: sealed}, "SSLPrivateKeyPassword", "no [Security] AESKeyFile"},
		{config.SSLOptions{Certificate: filepath.Join(dir, "missing.crt"), PrivateKey: plainKeyPath}, "SSLCertificate", "no such file"},
		{config.SSLOptions{Certificate: certPath, PrivateKey: certPath}, "SSLPrivateKey", "holds no PEM private key"},
		{config.SSLOptions{Certificate: certPath, PrivateKey: plainKeyPath, CACertificate: plainKeyPath}, "SSLCACertificate", "holds no PEM certificate"},
		{config.SSLOptions{Method: "SSLV3", Certificate: certPath, PrivateKey: plainKeyPath}, "SSLMethod", "not an SSLMethod"},
	} {
		_, err := Server(&c.o, nil)
		require.ErrorContains(t, err, c.want)
		var ke *KeyError
		require.ErrorAs(t, err, &ke)
		require.Equal(t, c.wantKey, ke.Key)
		require.NotContains(t, err.Error(), "s3cret")
	}

	pk8 := filepath.Join(dir, "pk8.key")
	require.NoError(t, os.WriteFile(pk8, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600))
	_, err = Server(&config.SSLOptions{Certificate: certPath, PrivateKey: pk8, PrivateKeyPassword: "x"}, nil)
	require.ErrorContains(t, err, "encrypted PKCS #8 key, which this server cannot read; convert it")

	cerr := ConfigError("c.cfg", &config.SSLOptions{Section: "TLS", Line: 4, Lines: map[string]int{"SSLPrivateKey": 6}}, &KeyError{"SSLPrivateKey", os.ErrNotExist})
	require.EqualError(t, cerr, "config c.cfg:6: [TLS] SSLPrivateKey: file does not exist")
}

// A TLS section that names a FIFO, a device or a huge file by mistake gets
// an error naming the key, at once: os.ReadFile waited for ever on a FIFO
// (start-up hung, deaf to Ctrl-C) and read a device such as /dev/zero
// until memory ran out.
func TestFilesThatAreNoPEMFileAreRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	certPath, keyPath := ca.Localhost(t).Write(t, dir, "server")
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	huge := filepath.Join(dir, "huge.pem")
	require.NoError(t, os.WriteFile(huge, nil, 0o600))
	require.NoError(t, os.Truncate(huge, 16<<20+1))
	for _, tc := range []struct {
		key, want string
		o         config.SSLOptions
	}{
		{"SSLCertificate", "not a regular file (a FIFO)", config.SSLOptions{Certificate: fifo, PrivateKey: keyPath}},
		{"SSLPrivateKey", "not a regular file (a FIFO)", config.SSLOptions{Certificate: certPath, PrivateKey: fifo}},
		{"SSLCACertificate", "not a regular file (a FIFO)", config.SSLOptions{Certificate: certPath, PrivateKey: keyPath, CACertificate: fifo}},
		{"SSLCertificate", "not a regular file (a folder)", config.SSLOptions{Certificate: dir, PrivateKey: keyPath}},
		{"SSLCertificate", "more than 16777216 bytes", config.SSLOptions{Certificate: huge, PrivateKey: keyPath}},
	} {
		done := make(chan error, 1)
		go func() { _, err := Server(&tc.o, nil); done <- err }()
		select {
		case err := <-done:
			var ke *KeyError
			require.ErrorAs(t, err, &ke, tc.want)
			require.Equal(t, tc.key, ke.Key)
			require.ErrorContains(t, err, tc.want)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s naming %s: still loading after 10s", tc.key, tc.want)
		}
	}
}

// TestReloader: a listening port's configuration serves, from the next
// handshake on, the pair its files hold after Reload; a pair that does
// not load, does not match, or has expired is refused naming the file, and
// the one loaded before stays. Changed tells a file replaced in place.
func TestReloader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	first := ca.Localhost(t)
	certPath, keyPath := first.Write(t, dir, "server")
	o := &config.SSLOptions{Method: "Negotiate", Certificate: certPath, PrivateKey: keyPath}
	r, err := NewReloader(o, nil)
	require.NoError(t, err)
	require.False(t, r.Changed())
	served := func() string {
		t.Helper()
		ln, err := tls.Listen("tcp", "127.0.0.1:0", r.Config())
		require.NoError(t, err)
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		return ca.ServedSerial(ln.Addr().String())
	}
	require.Equal(t, first.Serial(t), served())

	put := func(i testpki.Issued, key []byte) {
		t.Helper()
		testpki.Replace(t, certPath, i.CertPEM)
		testpki.Replace(t, keyPath, key)
	}
	renewed := ca.Localhost(t)
	put(renewed, renewed.KeyPEM)
	require.True(t, r.Changed())
	leaf, err := r.Reload()
	require.NoError(t, err)
	require.Equal(t, renewed.Serial(t), leaf.SerialNumber.String())
	require.False(t, r.Changed())
	require.Equal(t, renewed.Serial(t), served())

	for _, c := range []struct {
		name string
		cert testpki.Issued
		key  []byte
		want string
	}{
		{"another key", ca.Localhost(t), renewed.KeyPEM, "SSLCertificate: " + certPath + " and " + keyPath + ": tls: private key does not match public key"},
		{"expired", ca.Issue(t, testpki.Leaf{CommonName: "localhost", DNS: []string{"localhost"}, NotAfter: time.Now().Add(-time.Minute)}), nil, "SSLCertificate: " + certPath + " expired on "},
		{"no key", ca.Localhost(t), []byte("not a key"), "SSLPrivateKey: " + keyPath + " holds no PEM private key"},
	} {
		key := c.key
		if key == nil {
			key = c.cert.KeyPEM
		}
		put(c.cert, key)
		require.True(t, r.Changed(), c.name)
		_, err := r.Reload()
		require.ErrorContains(t, err, c.want, c.name)
		require.False(t, r.Changed(), "%s: a refused pair is reported once", c.name)
		require.Equal(t, renewed.Serial(t), served(), "%s: the pair loaded before stays", c.name)
		require.Equal(t, renewed.Serial(t), r.Current().SerialNumber.String())
	}
}

// TestKeyAfterOtherPEMBlocks: the private key is the file's first private
// key block, whatever comes before it: a certificate (one PEM file with
// the certificate and its key, named by SSLCertificate and SSLPrivateKey
// both, as `openssl pkcs12 -nodes` and many tools write it) or the EC
// PARAMETERS block `openssl ecparam -genkey` writes before its key. Before,
// only the first block was looked at: such a file was refused as holding
// "no PEM private key", and its encrypted key as "not encrypted; remove
// SSLPrivateKeyPassword", though crypto/tls reads it.
func TestKeyAfterOtherPEMBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	leaf := ca.Localhost(t)
	block, _ := pem.Decode(leaf.KeyPEM)
	enc, err := x509.EncryptPEMBlock(rand.Reader, "PRIVATE KEY", block.Bytes, []byte("s3cret"), x509.PEMCipherAES256) //nolint:staticcheck // the legacy form under test
	require.NoError(t, err)
	ecParams := []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")
	write := func(name string, parts ...[]byte) string {
		p := filepath.Join(dir, name)
		var b []byte
		for _, part := range parts {
			b = append(b, part...)
		}
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	certPath, _ := leaf.Write(t, dir, "server")
	both := write("both.pem", leaf.CertPEM, leaf.KeyPEM)
	bothEnc := write("both-enc.pem", leaf.CertPEM, pem.EncodeToMemory(enc))
	paramsEnc := write("params-enc.key", ecParams, pem.EncodeToMemory(enc))
	for _, o := range []config.SSLOptions{
		{Certificate: both, PrivateKey: both},
		{Certificate: bothEnc, PrivateKey: bothEnc, PrivateKeyPassword: "s3cret"},
		{Certificate: certPath, PrivateKey: paramsEnc, PrivateKeyPassword: "s3cret"},
	} {
		c, err := Server(&o, nil)
		require.NoError(t, err, "%s", o.PrivateKey)
		require.Len(t, c.Certificates, 1)
	}
	_, err = Server(&config.SSLOptions{Certificate: bothEnc, PrivateKey: bothEnc}, nil)
	require.ErrorContains(t, err, "is encrypted: give its password in SSLPrivateKeyPassword")
	_, err = Server(&config.SSLOptions{Certificate: both, PrivateKey: both, PrivateKeyPassword: "s3cret"}, nil)
	require.ErrorContains(t, err, "is not encrypted")
}

// TestDamagedCACertificateIsRefused: an SSLCACertificate bundle with a
// certificate that does not read (its base64 broken, or its DER cut by an
// editor) is refused naming the file and the certificate's line, on a
// listening port and for outgoing connections, as OpenSSL (IDOL) refuses
// it. Before, the certificate was skipped without a word: the port
// started, and refused every client that authority signed, or the CFS
// server it signed, as "signed by unknown authority", with the
// authority in the file for all to see.
func TestDamagedCACertificateIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, other := testpki.NewCA(t, "test CA"), testpki.NewCA(t, "other CA")
	certPath, keyPath := ca.Localhost(t).Write(t, dir, "server")
	block, _ := pem.Decode(other.PEM)
	cut := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes[:len(block.Bytes)-20]})
	lines := strings.Split(string(other.PEM), "\n")
	lines[3] = lines[3][:10] + "*" + lines[3][11:] // no base64 character
	broken := []byte(strings.Join(lines, "\n"))
	line := strings.Count(string(ca.PEM), "\n") + 2 // after the good one and a comment line
	for name, damaged := range map[string][]byte{"cut": cut, "broken": broken} {
		caPath := filepath.Join(dir, name+".crt")
		bundle := append(append(append([]byte{}, ca.PEM...), "# other CA\n"...), damaged...)
		require.NoError(t, os.WriteFile(caPath, bundle, 0o600))
		o := config.SSLOptions{Certificate: certPath, PrivateKey: keyPath, CACertificate: caPath, CheckCertificate: true}
		_, err := Server(&o, nil)
		var ke *KeyError
		require.ErrorAs(t, err, &ke, name)
		require.Equal(t, "SSLCACertificate", ke.Key)
		require.ErrorContains(t, err, fmt.Sprintf("%s:%d: the certificate", caPath, line), name)
		_, err = Client(&config.SSLOptions{CACertificate: caPath, CheckCertificate: true}, nil)
		require.ErrorAs(t, err, &ke, name)
		require.ErrorContains(t, err, fmt.Sprintf("%s:%d", caPath, line), name)
	}
	// Two good authorities, and blocks that are no certificate (a CRL, as
	// OpenSSL's bundles may hold), load.
	bundle := append(append(append([]byte{}, ca.PEM...), other.PEM...), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}})...)
	caPath := filepath.Join(dir, "two.crt")
	require.NoError(t, os.WriteFile(caPath, bundle, 0o600))
	c, err := Client(&config.SSLOptions{CACertificate: caPath, CheckCertificate: true}, nil)
	require.NoError(t, err)
	require.True(t, c.RootCAs.Equal(func() *x509.CertPool { p := ca.Pool(); p.AddCert(other.Cert); return p }()))
}

// TestDamagedCertificateChainIsRefused: an SSLCertificate file whose
// chain holds a certificate that does not read (an intermediate damaged
// in an editor) is refused naming the file and the line, at start-up and
// at a reload. Before, crypto/tls skipped a block whose base64 is broken
// and sent a cut one as it was: the port started, and every client that
// checks certificates refused the chain it was served.
func TestDamagedCertificateChainIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, other := testpki.NewCA(t, "test CA"), testpki.NewCA(t, "intermediate")
	leaf := ca.Localhost(t)
	_, keyPath := leaf.Write(t, dir, "server")
	block, _ := pem.Decode(other.PEM)
	cut := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes[:len(block.Bytes)-20]})
	lines := strings.Split(string(other.PEM), "\n")
	lines[3] = lines[3][:10] + "*" + lines[3][11:] // no base64 character
	broken := []byte(strings.Join(lines, "\n"))
	line := strings.Count(string(leaf.CertPEM), "\n") + 1
	for name, damaged := range map[string][]byte{"cut": cut, "broken": broken} {
		certPath := filepath.Join(dir, name+".crt")
		require.NoError(t, os.WriteFile(certPath, append(append([]byte{}, leaf.CertPEM...), damaged...), 0o600))
		_, err := Server(&config.SSLOptions{Certificate: certPath, PrivateKey: keyPath}, nil)
		var ke *KeyError
		require.ErrorAs(t, err, &ke, name)
		require.Equal(t, "SSLCertificate", ke.Key)
		require.ErrorContains(t, err, fmt.Sprintf("%s:%d: the certificate", certPath, line), name)
	}
	// A whole chain loads.
	certPath := filepath.Join(dir, "chain.crt")
	require.NoError(t, os.WriteFile(certPath, append(append([]byte{}, leaf.CertPEM...), other.PEM...), 0o600))
	c, err := Server(&config.SSLOptions{Certificate: certPath, PrivateKey: keyPath}, nil)
	require.NoError(t, err)
	require.Len(t, c.Certificates[0].Certificate, 2)
}

// TestTrustedCertificateBlocks: OpenSSL writes a certificate as a TRUSTED
// CERTIFICATE block (`openssl x509 -trustout`), which it reads in a CA
// file as an authority (IDOL trusts it). It was skipped without a word: in
// a bundle, the authority was missing and its clients refused as "signed
// by unknown authority". One without trust settings (or with an alias
// only) is now read; one with trust settings (-addtrust, -addreject),
// which this server would not apply, is refused naming file and line.
func TestTrustedCertificateBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, other := testpki.NewCA(t, "test CA"), testpki.NewCA(t, "other CA")
	certPath, keyPath := ca.Localhost(t).Write(t, dir, "server")
	trusted := func(aux ...byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: append(append([]byte{}, ca.Cert.Raw...), aux...)})
	}
	clientAuth := []byte{0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02}
	for name, block := range map[string][]byte{
		"plain": trusted(),
		"alias": trusted(0x30, 0x05, 0x0c, 0x03, 'f', 'o', 'o'),
	} {
		caPath := filepath.Join(dir, name+".crt")
		require.NoError(t, os.WriteFile(caPath, append(append([]byte{}, other.PEM...), block...), 0o600))
		c, err := Client(&config.SSLOptions{CACertificate: caPath, CheckCertificate: true}, nil)
		require.NoError(t, err, name)
		require.True(t, c.RootCAs.Equal(func() *x509.CertPool { p := ca.Pool(); p.AddCert(other.Cert); return p }()), name)
		_, err = Server(&config.SSLOptions{Certificate: certPath, PrivateKey: keyPath, CACertificate: caPath, CheckCertificate: true}, nil)
		require.NoError(t, err, name)
	}
	line := strings.Count(string(other.PEM), "\n") + 1
	for name, block := range map[string][]byte{
		"trust":   trusted(append([]byte{0x30, 0x0c, 0x30, 0x0a}, clientAuth...)...),
		"reject":  trusted(append([]byte{0x30, 0x0c, 0xa0, 0x0a}, clientAuth...)...),
		"garbage": trusted(0x01, 0x02),
	} {
		caPath := filepath.Join(dir, name+".crt")
		require.NoError(t, os.WriteFile(caPath, append(append([]byte{}, other.PEM...), block...), 0o600))
		_, err := Client(&config.SSLOptions{CACertificate: caPath, CheckCertificate: true}, nil)
		var ke *KeyError
		require.ErrorAs(t, err, &ke, name)
		require.Equal(t, "SSLCACertificate", ke.Key)
		require.ErrorContains(t, err, fmt.Sprintf("%s:%d: the certificate", caPath, line), name)
	}
	// In an SSLCertificate chain, trust settings are of no matter (OpenSSL
	// ignores them there): the block is served, not dropped.
	leaf := ca.Localhost(t)
	_, leafKey := leaf.Write(t, dir, "leaf")
	chainPath := filepath.Join(dir, "chain.crt")
	require.NoError(t, os.WriteFile(chainPath, append(append([]byte{}, leaf.CertPEM...), trusted(append([]byte{0x30, 0x0c, 0x30, 0x0a}, clientAuth...)...)...), 0o600))
	c, err := Server(&config.SSLOptions{Certificate: chainPath, PrivateKey: leafKey}, nil)
	require.NoError(t, err)
	require.Len(t, c.Certificates[0].Certificate, 2)
	require.Equal(t, ca.Cert.Raw, c.Certificates[0].Certificate[1])
}

// TestKeyWithByteOrderMark: a PEM private key saved with a UTF-8 byte
// order mark before its BEGIN line (Windows Notepad's "UTF-8 with BOM")
// loads, as the certificate saved so does and as the AESKeyFile does.
// Before, the mark hid the key's BEGIN line from the PEM reader: the port
// did not start, saying the file "holds no PEM private key", though it
// visibly held one.
func TestKeyWithByteOrderMark(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	leaf := ca.Localhost(t)
	certPath, _ := leaf.Write(t, dir, "server")
	bom := []byte("\xef\xbb\xbf")
	keyPath := filepath.Join(dir, "bom.key")
	require.NoError(t, os.WriteFile(keyPath, append(bom, leaf.KeyPEM...), 0o600))
	bomCert := filepath.Join(dir, "bom.crt")
	require.NoError(t, os.WriteFile(bomCert, append(bom, leaf.CertPEM...), 0o600))
	for _, cert := range []string{certPath, bomCert} {
		c, err := Server(&config.SSLOptions{Certificate: cert, PrivateKey: keyPath}, nil)
		require.NoError(t, err, cert)
		require.Len(t, c.Certificates, 1)
		c, err = Client(&config.SSLOptions{Certificate: cert, PrivateKey: keyPath}, nil)
		require.NoError(t, err, cert)
		require.Len(t, c.Certificates, 1)
	}
	// The certificate and its key in one file, saved with the mark.
	both := filepath.Join(dir, "both.pem")
	require.NoError(t, os.WriteFile(both, append(append(bom, leaf.KeyPEM...), leaf.CertPEM...), 0o600))
	_, err := Server(&config.SSLOptions{Certificate: both, PrivateKey: both}, nil)
	require.NoError(t, err)
}

// TestKeyThatIsNoTLSKeyNamesSSLPrivateKey: a private key block that
// crypto/tls cannot read (an OpenSSH key from ssh-keygen, a DSA key, a
// damaged one) is refused as SSLPrivateKey's fault, naming the file and
// the kind of block. It was refused as SSLCertificate's ("tls: failed to
// parse private key", at the SSLCertificate line), sending the reader to
// the certificate, which was fine. A key that reads but belongs to another
// certificate is still told as the pair's mismatch.
func TestKeyThatIsNoTLSKeyNamesSSLPrivateKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	certPath, _ := ca.Localhost(t).Write(t, dir, "server")
	_, otherKey := ca.Localhost(t).Write(t, dir, "other")
	write := func(name, typ string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte("openssh-key-v1\x00not a TLS key")}), 0o600))
		return p
	}
	for _, tc := range []struct{ path, says string }{
		{write("id_ed25519", "OPENSSH PRIVATE KEY"), "an OpenSSH key"},
		{write("dsa.key", "DSA PRIVATE KEY"), "its DSA PRIVATE KEY block is not a private key this server reads"},
		{write("damaged.key", "PRIVATE KEY"), "its PRIVATE KEY block is not a private key this server reads"},
	} {
		_, err := Server(&config.SSLOptions{Certificate: certPath, PrivateKey: tc.path}, nil)
		var ke *KeyError
		require.ErrorAs(t, err, &ke)
		require.Equal(t, "SSLPrivateKey", ke.Key, "%v", err)
		require.ErrorContains(t, err, tc.path)
		require.ErrorContains(t, err, tc.says)
	}
	_, err := Server(&config.SSLOptions{Certificate: certPath, PrivateKey: otherKey}, nil)
	var ke *KeyError
	require.ErrorAs(t, err, &ke)
	require.Equal(t, "SSLCertificate", ke.Key)
	require.ErrorContains(t, err, "private key does not match public key")
}
