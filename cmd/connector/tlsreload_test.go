package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testpki"
	"github.com/connectorhq/connector/internal/testwait"
)

// TestSIGHUPReloadsTheTLSCertificate: a certificate and key renewed in
// place are served from the next handshake on after a SIGHUP, without a
// restart; a new pair that does not load (a certificate with another
// key's file) is refused with an error line naming the files, and the
// port keeps serving the pair it had. Before, the port served the
// certificate it started with until the next restart: a short-lived
// certificate expired under it.
func TestSIGHUPReloadsTheTLSCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "server CA")
	first := ca.Localhost(t)
	certPath, keyPath := first.Write(t, dir, "server")
	logFile := filepath.Join(dir, "connector.log")
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[Server]\nDataDirectory=%s\nSSLConfig=TLS\n[TLS]\nSSLCertificate=%s\nSSLPrivateKey=%s\n[Logging]\nLogFile=%s\n",
		filepath.Join(dir, "data"), certPath, keyPath, logFile)), 0o600))
	cmd := startLoggingWith(t, cfg, logFile)
	addr := between(fileText(logFile), "address=", " ")
	require.Equal(t, first.Serial(t), ca.ServedSerial(addr))

	renewed := ca.Localhost(t)
	testpki.Replace(t, certPath, renewed.CertPEM)
	testpki.Replace(t, keyPath, renewed.KeyPEM)
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	testwait.For(t, 10*time.Second, func() bool { return ca.ServedSerial(addr) == renewed.Serial(t) }, "the renewed certificate to be served")
	require.Contains(t, fileText(logFile), "TLS certificate loaded")

	// A certificate whose key is not the one in SSLPrivateKey: refused,
	// the renewed pair stays.
	other := ca.Localhost(t)
	testpki.Replace(t, certPath, other.CertPEM)
	testpki.Replace(t, keyPath, renewed.KeyPEM)
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	testwait.For(t, 10*time.Second, func() bool { return strings.Contains(fileText(logFile), "new TLS certificate refused") }, "the refusal to be logged")
	line := ""
	for _, l := range strings.Split(fileText(logFile), "\n") {
		if strings.Contains(l, "new TLS certificate refused") {
			line = l
		}
	}
	require.Contains(t, line, certPath, "the line names the certificate")
	require.Contains(t, line, "[TLS] SSLCertificate", "and the section and key")
	require.Equal(t, renewed.Serial(t), ca.ServedSerial(addr), "the port keeps the pair it had")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a clean shutdown")
}
