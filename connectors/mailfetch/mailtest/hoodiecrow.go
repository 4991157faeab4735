package mailtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// HoodiecrowVersion is the npm package version the tests use.
const HoodiecrowVersion = "2.1.0"

// HoodiecrowDir is where hoodiecrow-imap is installed for the tests:
// $CONNECTOR_TEST_CACHE, else the user's cache folder, under
// connector-test/hoodiecrow-imap-<version>. `make test` installs it there
// (scripts/ensure-npm.sh); InstallHoodiecrow does when it is missing.
func HoodiecrowDir() (string, error) {
	base := os.Getenv("CONNECTOR_TEST_CACHE")
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(c, "connector-test")
	}
	return filepath.Join(base, "hoodiecrow-imap-"+HoodiecrowVersion), nil
}

// InstallHoodiecrow installs hoodiecrow-imap with npm into HoodiecrowDir
// unless it is there, and returns the folder.
func InstallHoodiecrow() (string, error) {
	dir, err := HoodiecrowDir()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "hoodiecrow-imap", "package.json")); err == nil {
		return dir, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("npm is not installed (needed to install hoodiecrow-imap): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error", "hoodiecrow-imap@"+HoodiecrowVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install hoodiecrow-imap@%s: %v: %s", HoodiecrowVersion, err, out)
	}
	return dir, nil
}

// GmailMessage is a message of a Hoodiecrow mailbox.
type GmailMessage struct {
	Raw    string   `json:"raw"`
	Flags  []string `json:"flags,omitempty"`
	Labels []string `json:"X-GM-LABELS,omitempty"`
	MsgID  string   `json:"X-GM-MSGID,omitempty"` // decimal
	UID    uint32   `json:"uid,omitempty"`
}

// Hoodiecrow is a running hoodiecrow-imap server laid out like Gmail:
// INBOX, and [Gmail]/All Mail (\All), Sent Mail, Spam (\Junk), Trash, with
// X-GM-EXT-1, CONDSTORE, SPECIAL-USE, SASL-IR, AUTH-PLAIN and XOAUTH2.
type Hoodiecrow struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
}

// HoodiecrowOptions configure StartHoodiecrow.
type HoodiecrowOptions struct {
	User, Password string
	// AccessToken is accepted with XOAUTH2 for User.
	AccessToken string
	// AllMail are the messages of [Gmail]/All Mail; Inbox those of INBOX.
	AllMail, Inbox []GmailMessage
}

// StartHoodiecrow starts hoodiecrow-imap (installing it first when
// missing) and stops it by PID when the test ends; the kernel kills it
// when the test binary ends without stopping it (Pdeathsig). It fails the test when
// Node.js or the package cannot be had.
func StartHoodiecrow(t testing.TB, o HoodiecrowOptions) *Hoodiecrow {
	t.Helper()
	h, err := startHoodiecrow(o)
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	t.Cleanup(h.Stop)
	return h
}

const hoodiecrowScript = `"use strict";
const fs = require("fs");
const hoodiecrow = require("hoodiecrow-imap");
const conf = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const users = {};
users[conf.user] = {password: conf.password, xoauth2: {accessToken: conf.accessToken, sessionTimeout: 3600 * 1000}};
const server = hoodiecrow({
  plugins: ["ID", "ENABLE", "CONDSTORE", "SPECIAL-USE", "SASL-IR", "AUTH-PLAIN", "XOAUTH2", "X-GM-EXT-1", "UNSELECT"],
  users: users,
  storage: {
    "INBOX": {messages: conf.inbox},
    "": {separator: "/", folders: {"[Gmail]": {flags: ["\\Noselect"], folders: {
      "All Mail": {"special-use": "\\All", messages: conf.allMail},
      "Sent Mail": {"special-use": "\\Sent"},
      "Spam": {"special-use": "\\Junk"},
      "Trash": {"special-use": "\\Trash"}
    }}}}
  }
});
// The X-GM-EXT-1 plugin serves X-GM-MSGID and X-GM-LABELS but does not
// announce the capability, as Gmail does: announce it.
server.registerCapability("X-GM-EXT-1");
server.listen(0, "127.0.0.1", function () {
  console.log("LISTENING " + server.server.address().port);
});
`

func startHoodiecrow(o HoodiecrowOptions) (*Hoodiecrow, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node is not installed (hoodiecrow-imap needs Node.js): %w", err)
	}
	pkg, err := InstallHoodiecrow()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hoodiecrow")
	if err != nil {
		return nil, err
	}
	nz := func(m []GmailMessage) []GmailMessage {
		if m == nil {
			return []GmailMessage{}
		}
		return m
	}
	conf, _ := json.Marshal(map[string]any{"user": o.User, "password": o.Password, "accessToken": o.AccessToken,
		"allMail": nz(o.AllMail), "inbox": nz(o.Inbox)})
	script := filepath.Join(dir, "server.js")
	if err := os.WriteFile(script, []byte(hoodiecrowScript), 0o644); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "conf.json")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, err
	}
	h := &Hoodiecrow{dir: dir, done: make(chan struct{})}
	h.cmd = exec.Command(node, script, confPath)
	h.cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(pkg, "node_modules"))
	// Pdeathsig: it dies with the process that started it, even killed
	// (a test binary ended by -timeout), which never calls Stop.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	h.cmd.Stderr = &stderr
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start hoodiecrow: %w", err)
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				port <- p
			}
		}
	}()
	select {
	case p := <-port:
		h.Addr = net.JoinHostPort("127.0.0.1", p)
		return h, nil
	case <-h.done:
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("hoodiecrow exited at start: %s", stderr.String())
	case <-time.After(30 * time.Second):
		h.Stop()
		return nil, fmt.Errorf("hoodiecrow did not listen within 30s: %s", stderr.String())
	}
}

// Stop stops the server by its PID.
func (h *Hoodiecrow) Stop() {
	if h.cmd != nil && h.cmd.Process != nil {
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
			<-h.done
		}
		h.cmd = nil
	}
	_ = os.RemoveAll(h.dir)
}
