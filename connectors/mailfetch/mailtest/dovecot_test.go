package mailtest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testport"
)

func TestDovecotServesTheMaildir(t *testing.T) {
	d := StartDovecot(t, DovecotOptions{Users: map[string]string{"alice": "pw"}})
	for i := range 3 {
		d.MustDeliver(t, "alice", "INBOX", Message{From: "a@example.com", To: "alice@example.com", Subject: "hello " + string(rune('a'+i)), Text: "body"}.Raw(), "S")
	}
	d.MustDeliver(t, "alice", "Archive", Message{From: "a@example.com", Subject: "old", Text: "x"}.Raw(), "")

	pem, err := os.ReadFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	for name, dial := range map[string]func() (*imapclient.Client, error){
		"plain": func() (*imapclient.Client, error) { return imapclient.DialInsecure(d.Addr, nil) },
		"starttls": func() (*imapclient.Client, error) {
			return imapclient.DialStartTLS(d.Addr, &imapclient.Options{TLSConfig: tc})
		},
		"tls": func() (*imapclient.Client, error) {
			return imapclient.DialTLS(d.TLSAddr, &imapclient.Options{TLSConfig: tc})
		},
	} {
		c, err := dial()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Login("alice", "pw").Wait(); err != nil {
			t.Fatalf("%s: login: %v\n%s", name, err, d.Log())
		}
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if sel.NumMessages != 3 {
			t.Fatalf("%s: %d messages in INBOX, want 3", name, sel.NumMessages)
		}
		st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil || *st.NumMessages != 1 {
			t.Fatalf("%s: Archive: %v %v", name, st, err)
		}
		_ = c.Logout().Wait()
	}
}

// A port taken before Dovecot binds it (another test's pick) makes it
// exit at start; it is started again on new ports.
func TestDovecotTriesOtherPortsWhenOneIsTaken(t *testing.T) {
	taken := testport.Held(t)
	var calls *int
	pickPorts, calls = testport.TakenFirst(taken) // the imaps listener's
	defer func() { pickPorts = testport.PickN }()
	d := StartDovecot(t, DovecotOptions{Users: map[string]string{"alice": "pw"}})
	require.Equal(t, 2, *calls)
	require.NotEqual(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(taken)), d.TLSAddr)
	c, err := net.DialTimeout("tcp", d.TLSAddr, 5*time.Second)
	require.NoError(t, err)
	c.Close()
}

// ResetUIDValidity gives the folder a UIDVALIDITY it never had, however
// soon it is called again: for INBOX (the Maildir's root folder) it
// removed Dovecot's record of the last UIDVALIDITY given too, so the
// next one was the clock's second again, the old value when the folder
// had been read within that second (imapbox's
// TestDovecotSynchronizeFlagsAppendExpungeAndUIDValidity then saw one
// message deleted of five).
func TestResetUIDValidityGivesANewOne(t *testing.T) {
	d := StartDovecot(t, DovecotOptions{Users: map[string]string{"alice": "pw"}})
	d.MustDeliver(t, "alice", "INBOX", Message{From: "a@example.com", Subject: "in", Text: "x"}.Raw(), "")
	d.MustDeliver(t, "alice", "Archive", Message{From: "a@example.com", Subject: "old", Text: "x"}.Raw(), "")
	uidValidity := func(folder string) uint32 {
		t.Helper()
		c, err := imapclient.DialInsecure(d.Addr, nil)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Login("alice", "pw").Wait())
		sel, err := c.Select(folder, nil).Wait()
		require.NoError(t, err)
		require.NoError(t, c.Logout().Wait())
		return sel.UIDValidity
	}
	for _, folder := range []string{"INBOX", "Archive"} {
		seen := map[uint32]bool{uidValidity(folder): true}
		for range 3 {
			require.NoError(t, d.ResetUIDValidity("alice", folder))
			v := uidValidity(folder)
			require.False(t, seen[v], "%s: UIDVALIDITY %d again after ResetUIDValidity", folder, v)
			seen[v] = true
		}
	}
}
