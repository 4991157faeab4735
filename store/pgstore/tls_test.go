package pgstore

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
)

// testCA is a certificate authority made for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf is a server certificate for ip signed by ca, and its key, in PEM.
func (ca testCA) leaf(t *testing.T, ip string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip}, IPAddresses: []net.IP{net.ParseIP(ip)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	k, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

// A shared store whose TLS settings are wrong (the server's certificate
// does not verify against sslrootcert, or names another host; a server
// without TLS where sslmode requires it) used to be reported as "the
// shared database is unavailable", as if it could not be reached: an
// operator looked at the network and the server, and a node retried a
// call that cannot succeed. It is ErrTLS now, its text says it is a
// misconfiguration of the connection's TLS settings, and it is logged at
// level error (without the password). With the right authority the same
// server is reached, so the test's server speaks TLS as it should.
func TestTLSMisconfigurationSaysSo(t *testing.T) {
	t.Parallel()
	ca, other := newTestCA(t, "connector test CA"), newTestCA(t, "another CA")
	crt, key := ca.leaf(t, "127.0.0.1")
	pg := pgtest.StartT(t, pgtest.Options{Settings: []string{"ssl = on"},
		Files: map[string][]byte{"server.crt": crt, "server.key": key}})
	dir := t.TempDir()
	caFile, otherFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other.pem")
	require.NoError(t, os.WriteFile(caFile, ca.pem, 0o600))
	require.NoError(t, os.WriteFile(otherFile, other.pem, 0o600))
	base := pg.DatabaseT(t)
	with := func(url, params string) string {
		url = strings.Replace(url, "sslmode=disable", params, 1)
		return strings.Replace(url, "postgres://connector@", "postgres://connector:hunter2@", 1)
	}

	// The right authority: reached.
	s, err := Open(ctx, Config{URL: with(base, "sslmode=verify-full&sslrootcert="+caFile)})
	require.NoError(t, err, "the server speaks TLS with a certificate of the test's authority")
	require.NoError(t, s.Close())

	// (A certificate for another host name fails crypto/tls's
	// verification as an unknown authority does:
	// TestTLSErrorsAreNotUnavailable has it.)
	wrong := map[string]string{
		"unknown authority":             with(base, "sslmode=verify-full&sslrootcert="+otherFile),
		"unknown authority (verify-ca)": with(base, "sslmode=verify-ca&sslrootcert="+otherFile),
		"no TLS on the server":          with(server.DatabaseT(t), "sslmode=require"),
	}
	for name, url := range wrong {
		var logged syncBuffer
		s, err := Open(ctx, Config{URL: url, Logger: slog.New(slog.NewJSONHandler(&logged, nil))})
		if s != nil {
			s.Close()
		}
		t.Logf("%s: %v", name, err)
		require.ErrorIs(t, err, ErrTLS, name)
		require.NotErrorIs(t, err, ErrUnavailable, name)
		require.Contains(t, err.Error(), "fails on its TLS settings", name)
		require.NotContains(t, err.Error(), "hunter2", name)
		require.NotContains(t, logged.String(), "hunter2", name)
		var rec map[string]any
		line, _, _ := strings.Cut(logged.String(), "\n")
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "%s: logged: %s", name, logged.String())
		require.Equal(t, "ERROR", rec["level"], name)
		require.Contains(t, rec["msg"], "TLS settings", name)
	}
}

// The same at run time, from the error values pgx returns (the pool
// connects as it needs: a certificate replaced or expired on the server
// shows there). A connection that made several attempts (hosts, or
// sslmode=prefer's with and without TLS) is a misconfiguration only if
// each failed on TLS: one that was refused may be out of reach.
func TestTLSErrorsAreNotUnavailable(t *testing.T) {
	tlsErrs := map[string]error{
		"verification":  fmt.Errorf("tls error: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
		"verify-ca":     fmt.Errorf("failed to write startup message: %w", x509.UnknownAuthorityError{}),
		"expired":       x509.CertificateInvalidError{Reason: x509.Expired},
		"host name":     &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "db"}},
		"refused":       fmt.Errorf("tls error: %w", errors.New("server refused TLS connection")),
		"alert":         &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")},
		"not TLS":       tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"},
		"every attempt": errors.Join(x509.UnknownAuthorityError{}, errors.New("server refused TLS connection")),
	}
	for name, err := range tlsErrs {
		var logged bytes.Buffer
		s := &Store{display: "db", log: slog.New(slog.NewJSONHandler(&logged, nil))}
		got := s.fail("claim", err)
		require.ErrorIs(t, got, ErrTLS, name)
		require.NotErrorIs(t, got, ErrUnavailable, name)
		require.ErrorIs(t, got, err, name)
		var rec map[string]any
		require.NoError(t, json.Unmarshal(logged.Bytes(), &rec), "%s: one line logged", name)
		require.Equal(t, "ERROR", rec["level"], name)
		require.Contains(t, rec["msg"], "TLS settings", name)
		require.Equal(t, "claim", rec["call"], name)
	}
	// One attempt refused: out of reach, as before.
	mixed := errors.Join(errors.New("server refused TLS connection"), &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	s := &Store{display: "db", log: slog.New(slog.DiscardHandler)}
	got := s.fail("claim", mixed)
	require.ErrorIs(t, got, ErrUnavailable)
	require.NotErrorIs(t, got, ErrTLS)
}
