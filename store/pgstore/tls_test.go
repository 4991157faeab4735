package pgstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testpki"
)

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
	ca, other := testpki.NewCA(t, "connector test CA"), testpki.NewCA(t, "another CA")
	// Not ca.Localhost: its DNS name and ::1 are not what the test wants.
	leaf := ca.Issue(t, testpki.Leaf{CommonName: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	pg := pgtest.StartT(t, pgtest.Options{Settings: []string{"ssl = on"},
		Files: map[string][]byte{"server.crt": leaf.CertPEM, "server.key": leaf.KeyPEM}})
	dir := t.TempDir()
	caFile, otherFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other.pem")
	require.NoError(t, os.WriteFile(caFile, ca.PEM, 0o600))
	require.NoError(t, os.WriteFile(otherFile, other.PEM, 0o600))
	base := pg.DatabaseT(t)
	// with is url with the password hunter2 and the query params, built
	// with net/url: the checks below that hunter2 is never shown, and the
	// sslmode cases, test nothing if either is not in the URL.
	with := func(raw string, params url.Values) string {
		t.Helper()
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.NotNil(t, u.User, "pgtest's URL names a user: %s", raw)
		u.User = url.UserPassword(u.User.Username(), "hunter2")
		q := u.Query()
		for k, v := range params {
			q[k] = v
		}
		u.RawQuery = q.Encode()
		out := u.String()
		require.Contains(t, out, ":hunter2@")
		require.Contains(t, out, "sslmode="+params.Get("sslmode"))
		return out
	}
	tlsParams := func(mode, rootcert string) url.Values {
		v := url.Values{"sslmode": {mode}}
		if rootcert != "" {
			v.Set("sslrootcert", rootcert)
		}
		return v
	}

	// The right authority: reached.
	s, err := Open(ctx, Config{URL: with(base, tlsParams("verify-full", caFile))})
	require.NoError(t, err, "the server speaks TLS with a certificate of the test's authority")
	require.NoError(t, s.Close())

	// (A certificate for another host name fails crypto/tls's
	// verification as an unknown authority does:
	// TestTLSErrorsAreNotUnavailable has it.)
	wrong := map[string]string{
		"unknown authority":             with(base, tlsParams("verify-full", otherFile)),
		"unknown authority (verify-ca)": with(base, tlsParams("verify-ca", otherFile)),
		"no TLS on the server":          with(server.DatabaseT(t), tlsParams("require", "")),
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

// connectError is the error pgx returns when it cannot make a
// connection, each attempt failing with the error given for its address
// (pgconn.ConnectError cannot be made outside pgconn: the test's dialer
// fails instead, and pgconn wraps its errors as it wraps those of TLS).
func connectError(t *testing.T, byAddr map[string]error) error {
	t.Helper()
	var hosts []string
	for addr := range byAddr {
		hosts = append(hosts, addr)
	}
	slices.Sort(hosts)
	cfg, err := pgconn.ParseConfig("postgres://u@" + strings.Join(hosts, ",") + "/db?sslmode=disable&connect_timeout=5")
	require.NoError(t, err)
	cfg.DialFunc = func(_ context.Context, _, addr string) (net.Conn, error) {
		if err, ok := byAddr[addr]; ok {
			return nil, err
		}
		return nil, fmt.Errorf("the test dialled %s, which it did not expect", addr)
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if conn != nil {
		conn.Close(ctx)
	}
	var ce *pgconn.ConnectError
	require.ErrorAs(t, err, &ce)
	return err
}

// The same at run time, from the error values pgx returns (the pool
// connects as it needs: a certificate replaced or expired on the server
// shows there). A connection that made several attempts (hosts, or
// sslmode=prefer's with and without TLS) is a misconfiguration only if
// each failed on TLS: one that was refused may be out of reach. A TLS
// error on a connection already made (no ConnectError: a peer's alert
// or a bad record in the middle of a query) is a broken connection,
// ErrUnavailable: it used to be ErrTLS, "a misconfiguration", logged at
// level error.
func TestTLSErrorsAreNotUnavailable(t *testing.T) {
	const one = "127.0.0.1:1"
	tlsErrs := map[string]error{
		"verification": fmt.Errorf("tls error: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
		"verify-ca":    fmt.Errorf("failed to write startup message: %w", x509.UnknownAuthorityError{}),
		"expired":      x509.CertificateInvalidError{Reason: x509.Expired},
		"host name":    &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "db"}},
		"refused":      fmt.Errorf("tls error: %w", errors.New("server refused TLS connection")),
		"alert":        &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")},
		"not TLS":      tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"},
	}
	for name, inner := range tlsErrs {
		err := connectError(t, map[string]error{one: inner})
		var logged bytes.Buffer
		s := &Store{display: "db", log: slog.New(slog.NewJSONHandler(&logged, nil))}
		got := s.fail("claim", err)
		require.ErrorIs(t, got, ErrTLS, name)
		require.NotErrorIs(t, got, ErrUnavailable, name)
		require.ErrorIs(t, got, inner, name)
		var rec map[string]any
		require.NoError(t, json.Unmarshal(logged.Bytes(), &rec), "%s: one line logged", name)
		require.Equal(t, "ERROR", rec["level"], name)
		require.Contains(t, rec["msg"], "TLS settings", name)
		require.Equal(t, "claim", rec["call"], name)
	}
	// Every attempt failed on TLS: a misconfiguration.
	s := &Store{display: "db", log: slog.New(slog.DiscardHandler)}
	every := connectError(t, map[string]error{one: x509.UnknownAuthorityError{}, "127.0.0.1:2": errors.New("server refused TLS connection")})
	require.ErrorIs(t, s.fail("claim", every), ErrTLS)
	// One attempt refused: out of reach, as before.
	mixed := connectError(t, map[string]error{one: errors.New("server refused TLS connection"),
		"127.0.0.1:2": &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}})
	got := s.fail("claim", mixed)
	require.ErrorIs(t, got, ErrUnavailable)
	require.NotErrorIs(t, got, ErrTLS)
	// A TLS alert on a connection already made: broken, not misconfigured,
	// and not logged (ErrUnavailable is the caller's to report).
	var logged bytes.Buffer
	s = &Store{display: "db", log: slog.New(slog.NewJSONHandler(&logged, nil))}
	alert := fmt.Errorf("failed to receive message: %w", &net.OpError{Op: "remote error", Err: errors.New("tls: bad record MAC")})
	got = s.fail("claim", alert)
	require.ErrorIs(t, got, ErrUnavailable)
	require.NotErrorIs(t, got, ErrTLS)
	require.Empty(t, logged.String())
}

// While TLS stays broken, every claim, tick, retry and request fails with
// ErrTLS, several a second; each used to log the same line at level
// error. It is logged at level error once, at debug level after, and
// again at level error once a connection was made (connected) and TLS
// fails anew.
func TestTLSErrorIsLoggedOncePerChange(t *testing.T) {
	err := connectError(t, map[string]error{"127.0.0.1:1": x509.CertificateInvalidError{Reason: x509.Expired}})
	var logged bytes.Buffer
	s := &Store{display: "db", log: slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	levels := func() map[string]int {
		n := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
			n[rec["level"].(string)]++
		}
		logged.Reset()
		return n
	}
	for range 5 {
		require.ErrorIs(t, s.fail("claim", err), ErrTLS)
	}
	require.Equal(t, map[string]int{"ERROR": 1, "DEBUG": 4}, levels())
	s.connected()
	require.Equal(t, map[string]int{"INFO": 1}, levels(), "the connection works again")
	s.connected()
	require.Empty(t, logged.String(), "said once")
	for range 3 {
		require.ErrorIs(t, s.fail("claim", err), ErrTLS)
	}
	require.Equal(t, map[string]int{"ERROR": 1, "DEBUG": 2}, levels())
}
