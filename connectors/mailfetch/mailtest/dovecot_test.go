package mailtest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
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
