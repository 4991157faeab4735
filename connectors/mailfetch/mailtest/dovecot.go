// Package mailtest starts the real mail servers the Google Mail connector is
// tested against, and writes the mail they serve. It is a test helper
// package: tests and benchmarks import it; the connector never does.
//
//   - Dovecot from Debian (dovecot-core, dovecot-imapd), started as an
//     unprivileged process on 127.0.0.1 with all its state in one temporary
//     folder: a Maildir the test writes, plain login from a passwd file, and
//     XOAUTH2/OAUTHBEARER through Dovecot's oauth2 passdb against a token
//     introspection endpoint the test serves (Introspector). Plain IMAP,
//     STARTTLS and implicit TLS listen on ports of their own, with a
//     certificate made for the run.
//   - hoodiecrow-imap from npm, an IMAP server that speaks Gmail's
//     X-GM-EXT-1 (Hoodiecrow), installed into a cache folder when missing.
//
// A test needing a server fails, never skips, when the server is missing:
// `make test` installs them.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connectorhq/connector/internal/testport"
)

// DovecotBinary is Debian's Dovecot master.
const DovecotBinary = "/usr/sbin/dovecot"

// DovecotOptions configure StartDovecot.
type DovecotOptions struct {
	// Users and their passwords (plain login). Every user gets a home with
	// an empty Maildir.
	Users map[string]string
	// IntrospectionURL, when set, enables XOAUTH2 and OAUTHBEARER through
	// Dovecot's oauth2 passdb, which POSTs each token to this URL.
	IntrospectionURL string
	// Config is added to the generated dovecot.conf.
	Config string
}

// Dovecot is a running Dovecot.
type Dovecot struct {
	Dir      string // everything lives here
	Addr     string // plain IMAP (STARTTLS offered) on 127.0.0.1
	TLSAddr  string // implicit TLS (imaps) on 127.0.0.1
	CAFile   string // PEM of the certificate both listeners present (self-signed, for 127.0.0.1 and localhost)
	cmd      *exec.Cmd
	uid, gid int // owner of the files when run as root; -1 otherwise
	seq      atomic.Int64
	done     chan struct{}
}

// StartDovecot starts Dovecot for the test and stops it (by PID) when the
// test ends. It fails the test when Dovecot is not installed.
func StartDovecot(t testing.TB, o DovecotOptions) *Dovecot {
	t.Helper()
	d, err := startDovecot(o)
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("mailtest: stop dovecot: %v", err)
		}
	})
	return d
}

// StartDovecotProcess is StartDovecot for programs that are not tests
// (benchmarks); the caller calls Stop. Dovecot is killed by the kernel
// when the calling process ends without calling it (Pdeathsig).
func StartDovecotProcess(o DovecotOptions) (*Dovecot, error) { return startDovecot(o) }

// startDovecot starts Dovecot, in a new folder on new ports again when a
// port it was given was taken before it bound it (another test's pick).
func startDovecot(o DovecotOptions) (d *Dovecot, err error) {
	err = testport.Retry(func() error {
		d, err = startDovecotOnce(o)
		return err
	})
	return d, err
}

// pickPorts is testport.PickN; a test replaces it.
var pickPorts = testport.PickN

func startDovecotOnce(o DovecotOptions) (*Dovecot, error) {
	if _, err := os.Stat(DovecotBinary); err != nil {
		return nil, fmt.Errorf("dovecot is not installed (%v): install the Debian packages dovecot-core and dovecot-imapd (make test does)", err)
	}
	// Unix socket paths are limited to 108 bytes: keep the folder short.
	dir, err := os.MkdirTemp("", "dc")
	if err != nil {
		return nil, err
	}
	d := &Dovecot{Dir: dir, uid: -1, gid: -1, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	userName, groupName := "nobody", "nogroup"
	if os.Geteuid() == 0 {
		d.uid, d.gid = 65534, 65534
		if u, err := user.Lookup("nobody"); err == nil {
			d.uid, _ = strconv.Atoi(u.Uid)
			d.gid, _ = strconv.Atoi(u.Gid)
			if g, err := user.LookupGroupId(u.Gid); err == nil {
				groupName = g.Name
			}
		}
	} else {
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		userName = u.Username
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			groupName = g.Name
		}
	}
	for _, sub := range []string{"run", "log", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	var passwd strings.Builder
	for name, pw := range o.Users {
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s\n", name, pw)
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(d.Maildir(name), sub), 0o755); err != nil {
				return nil, err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd.String()), 0o644); err != nil {
		return nil, err
	}
	d.CAFile = filepath.Join(dir, "cert.pem")
	if err := writeCertificate(d.CAFile, filepath.Join(dir, "key.pem")); err != nil {
		return nil, err
	}
	ports, err := pickPorts(2)
	if err != nil {
		return nil, err
	}
	d.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	d.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	mechs := "plain login"
	oauth := ""
	if o.IntrospectionURL != "" {
		mechs += " xoauth2 oauthbearer"
		ext := filepath.Join(dir, "oauth2.conf.ext")
		conf := "introspection_mode = post\nintrospection_url = " + o.IntrospectionURL +
			"\nforce_introspection = yes\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n"
		if err := os.WriteFile(ext, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		oauth = fmt.Sprintf("passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = %s\n}\n", ext)
	}
	conf := fmt.Sprintf(`protocols = imap
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/run/state
log_path = %[1]s/log/dovecot.log
info_log_path = %[1]s/log/dovecot.log
ssl = yes
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = no
default_internal_user = %[2]s
default_internal_group = %[3]s
default_login_user = %[2]s
mail_location = maildir:~/Maildir
mail_uid = %[2]s
mail_gid = %[3]s
mail_fsync = never
first_valid_uid = 0
first_valid_gid = 0
auth_mechanisms = %[4]s
mail_plugins = $mail_plugins
protocol imap {
  mail_max_userip_connections = 100
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[5]d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[6]d
    ssl = yes
  }
}
service stats {
  unix_listener stats-reader {
    user = %[2]s
  }
  unix_listener stats-writer {
    user = %[2]s
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
  mechanisms = plain login
}
%[7]s
userdb {
  driver = static
  args = uid=%[2]s gid=%[3]s home=%[1]s/home/%%u
}
%[8]s
`, dir, userName, groupName, mechs, ports[0], ports[1], oauth, o.Config)
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := d.chown(dir); err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	d.cmd = exec.Command(DovecotBinary, "-F", "-c", confPath)
	d.cmd.Stderr = &stderr
	d.cmd.Stdout = &stderr
	// Pdeathsig: Dovecot dies with the process that started it, even
	// killed (a mailbench interrupted, a test binary ended by -timeout),
	// which never calls Stop; its own processes exit when their master
	// has gone.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if d.uid >= 0 {
		d.cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(d.uid), Gid: uint32(d.gid)}
	}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dovecot: %w", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	// Ready when the imaps listener completes a handshake with this
	// start's own certificate: it is this Dovecot, not another server on
	// a port this one could not bind, and its master binds every
	// listener before it serves any.
	roots := x509.NewCertPool()
	if pem, err := os.ReadFile(d.CAFile); err != nil || !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("dovecot: read back its certificate: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		dialer := &net.Dialer{Timeout: time.Second}
		if c, err := tls.DialWithDialer(dialer, "tcp", d.TLSAddr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}); err == nil {
			_ = c.Close()
			break
		}
		select {
		case <-d.done:
			log, _ := os.ReadFile(filepath.Join(dir, "log", "dovecot.log"))
			if testport.Taken(append(stderr.Bytes(), log...)) {
				return nil, fmt.Errorf("dovecot exited at start: %w: %s%s", testport.ErrTaken, stderr.String(), log)
			}
			return nil, fmt.Errorf("dovecot exited at start: %s%s", stderr.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			_ = d.Stop()
			return nil, errors.New("dovecot did not listen within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ok = true
	return d, nil
}

// Stop stops Dovecot by its PID (SIGTERM, then SIGKILL after 10 s) and
// removes its folder.
func (d *Dovecot) Stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return os.RemoveAll(d.Dir)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
	d.cmd = nil
	return os.RemoveAll(d.Dir)
}

// Log returns Dovecot's log so far.
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "log", "dovecot.log"))
	return string(b)
}

// Maildir is the Maildir of user.
func (d *Dovecot) Maildir(user string) string {
	return filepath.Join(d.Dir, "home", user, "Maildir")
}

// folderDir is the Maildir++ folder of a mailbox name ("INBOX", or a name
// with "." as hierarchy separator, written as ".Name").
func (d *Dovecot) folderDir(user, folder string) string {
	if strings.EqualFold(folder, "INBOX") || folder == "" {
		return d.Maildir(user)
	}
	return filepath.Join(d.Maildir(user), "."+folder)
}

// Deliver writes raw as a message of folder in user's Maildir, with the
// Maildir flags given (a subset of "DFPRST": draft, flagged, passed,
// replied, seen, trashed), as a delivery agent would. A new folder is
// created. It returns the file's path.
func (d *Dovecot) Deliver(user, folder string, raw []byte, flags string) (string, error) {
	dir := d.folderDir(user, folder)
	if _, err := os.Stat(filepath.Join(dir, "cur")); err != nil {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				return "", err
			}
		}
		if err := d.chown(filepath.Join(d.Dir, "home")); err != nil {
			return "", err
		}
	}
	n := d.seq.Add(1)
	name := fmt.Sprintf("%d.M%dP%d.mailtest,S=%d:2,%s", time.Now().Unix(), n, os.Getpid(), len(raw), flags)
	tmp := filepath.Join(dir, "tmp", name)
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return "", err
	}
	if err := d.chownFile(tmp); err != nil {
		return "", err
	}
	final := filepath.Join(dir, "cur", name)
	return final, os.Rename(tmp, final)
}

// MustDeliver is Deliver that fails the test on error.
func (d *Dovecot) MustDeliver(t testing.TB, user, folder string, raw []byte, flags string) string {
	t.Helper()
	p, err := d.Deliver(user, folder, raw, flags)
	if err != nil {
		t.Fatalf("mailtest: deliver: %v", err)
	}
	return p
}

// ResetUIDValidity makes Dovecot give folder a new UIDVALIDITY: it removes
// the folder's index and UID list, so the next SELECT renumbers the
// messages, as after a restore from backup. Dovecot must not have the
// folder selected meanwhile. Dovecot's record of the last UIDVALIDITY it
// gave (dovecot-uidvalidity*, in the Maildir's root, which is INBOX's
// folder) stays: without it the next one is the clock's second, which is
// the old one when the folder was read within that second.
func (d *Dovecot) ResetUIDValidity(user, folder string) error {
	dir := d.folderDir(user, folder)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "dovecot") && !strings.HasPrefix(e.Name(), "dovecot-uidvalidity") {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Dovecot) chown(root string) error {
	if d.uid < 0 {
		return nil
	}
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, d.uid, d.gid)
	})
}

func (d *Dovecot) chownFile(p string) error {
	if d.uid < 0 {
		return nil
	}
	return os.Lchown(p, d.uid, d.gid)
}

// writeCertificate writes a self-signed certificate for 127.0.0.1 and
// localhost, valid for a day.
func writeCertificate(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}
