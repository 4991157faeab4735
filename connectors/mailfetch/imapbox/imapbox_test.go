package imapbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// known is a test mailbox.Known.
type known struct {
	cursor   []byte
	versions map[string]string
}

func (k *known) Cursor() []byte { return k.cursor }
func (k *known) Version(key string) (string, bool) {
	v, ok := k.versions[key]
	return v, ok
}
func (k *known) Keys(fn func(string)) {
	for key := range k.versions {
		fn(key)
	}
}
func (k *known) Len() int { return len(k.versions) }

// syncOnce plans and fetches a collection the way the connector does,
// recording what it fetched, and returns the plan and the messages.
func syncOnce(t *testing.T, b *Box, c mailbox.Collection, k *known) (*mailbox.Plan, []*mailbox.Message) {
	t.Helper()
	ctx := context.Background()
	plan, err := b.Plan(ctx, c, k)
	require.NoError(t, err)
	var got []*mailbox.Message
	require.NoError(t, b.Fetch(ctx, c, plan.Fetch, func(m *mailbox.Message) error {
		got = append(got, m)
		k.versions[m.Key] = m.Version
		return nil
	}))
	for _, d := range append(plan.Delete, plan.Replaced...) {
		delete(k.versions, d)
	}
	k.cursor = plan.Cursor
	return plan, got
}

func caPool(t *testing.T, d *mailtest.Dovecot) *tls.Config {
	pool, err := LoadCA(d.CAFile)
	require.NoError(t, err)
	return &tls.Config{RootCAs: pool}
}

func TestDovecotSynchronizeFlagsAppendExpungeAndUIDValidity(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice": "pw"}})
	for i := range 5 {
		d.MustDeliver(t, "alice", "INBOX", mailtest.Message{From: "a@example.com", Subject: fmt.Sprintf("m%d", i), Text: "hello"}.Raw(), "")
	}
	d.MustDeliver(t, "alice", "Trash", mailtest.Message{From: "a@example.com", Subject: "junk", Text: "x"}.Raw(), "")
	d.MustDeliver(t, "alice", "Spam", mailtest.Message{From: "a@example.com", Subject: "junk", Text: "x"}.Raw(), "")
	d.MustDeliver(t, "alice", "Archive", mailtest.Message{From: "a@example.com", Subject: "old", Text: "x"}.Raw(), "S")

	ctx := context.Background()
	b, err := Dial(ctx, Config{Addr: d.Addr, Security: SecurityStartTLS, TLSConfig: caPool(t, d), Username: "alice", Password: "pw"})
	require.NoError(t, err)
	defer b.Close()
	require.True(t, b.Caps().Has(imap.CapCondStore))
	cols, err := b.Collections(ctx)
	require.NoError(t, err)
	var names []string
	for _, c := range cols {
		names = append(names, c.Name)
	}
	require.ElementsMatch(t, []string{"INBOX", "Archive"}, names, "spam and trash are left out by default")

	inbox := mailbox.Collection{Name: "INBOX"}
	k := &known{versions: map[string]string{}}
	plan, msgs := syncOnce(t, b, inbox, k)
	require.Len(t, plan.Fetch, 5)
	require.Len(t, msgs, 5)
	require.Contains(t, string(msgs[0].Raw), "Subject: m0")
	require.Regexp(t, `^imap://alice@127\.0\.0\.1:\d+/INBOX;UIDVALIDITY=\d+/;UID=1$`, msgs[0].Reference)
	require.False(t, msgs[0].Truncated)

	// Unchanged: one LIST answers for every folder, nothing else is sent.
	_, err = b.Collections(ctx)
	require.NoError(t, err)
	before := b.Stats()
	plan, _ = syncOnce(t, b, inbox, k)
	require.Empty(t, plan.Fetch)
	require.Empty(t, plan.Delete)
	require.Equal(t, 5, plan.Unchanged)
	after := b.Stats()
	require.Zero(t, after.Commands-before.Commands, "an unchanged folder costs no command beyond the LIST")
	require.Zero(t, after.BodiesFetched-before.BodiesFetched)

	// Flag one, append one, expunge one (through a second client).
	other, err := Dial(ctx, Config{Addr: d.TLSAddr, Security: SecurityTLS, TLSConfig: caPool(t, d), Username: "alice", Password: "pw", Auth: AuthLogin})
	require.NoError(t, err)
	_, err = other.selectFolder(ctx, "INBOX")
	require.NoError(t, err)
	require.NoError(t, other.c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close())
	require.NoError(t, other.Delete(ctx, inbox, []string{msgs[3].Key}))
	_, newKey, err := other.Append(ctx, "INBOX", mailtest.Message{From: "b@example.com", Subject: "new", Text: "fresh"}.Raw(), []string{`\Seen`}, time.Now())
	require.NoError(t, err)
	require.NotEmpty(t, newKey, "Dovecot has UIDPLUS")
	require.NoError(t, other.Close())

	_, err = b.Collections(ctx)
	require.NoError(t, err)
	before = b.Stats()
	plan, msgs2 := syncOnce(t, b, inbox, k)
	require.ElementsMatch(t, []string{msgs[1].Key, newKey}, plan.Fetch)
	require.Equal(t, []string{msgs[3].Key}, plan.Delete)
	require.Equal(t, 3, plan.Unchanged)
	require.Len(t, msgs2, 2)
	require.Equal(t, int64(2), b.Stats().BodiesFetched-before.BodiesFetched, "only the flagged and the new message are fetched")

	// A new UIDVALIDITY reads the folder again.
	require.NoError(t, b.Close())
	require.NoError(t, d.ResetUIDValidity("alice", "INBOX"))
	b, err = Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice", Password: "pw"})
	require.NoError(t, err)
	defer b.Close()
	_, err = b.Collections(ctx)
	require.NoError(t, err)
	plan, msgs3 := syncOnce(t, b, inbox, k)
	require.Len(t, plan.Replaced, 5, "every message under the old UIDVALIDITY is replaced")
	require.Empty(t, plan.Delete, "none is gone: its documents go once read again")
	require.Len(t, plan.Fetch, 5, "and read again under the new one")
	require.Len(t, msgs3, 5)
	require.Equal(t, 5, k.Len())
}

func TestDovecotLargeMessageIsCutAtTheLimit(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice": "pw"}})
	big := mailtest.Message{From: "a@example.com", Subject: "big", Text: "see attached",
		Attachments: []mailtest.Attachment{{Name: "big.bin", Data: bytes.Repeat([]byte{0xAB}, 3<<20)}}}.Raw()
	d.MustDeliver(t, "alice", "INBOX", big, "")
	d.MustDeliver(t, "alice", "INBOX", mailtest.Message{From: "a@example.com", Subject: "small", Text: "x"}.Raw(), "")
	ctx := context.Background()
	b, err := Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice", Password: "pw", MaxMessageBytes: 1 << 20})
	require.NoError(t, err)
	defer b.Close()
	_, msgs := syncOnce(t, b, mailbox.Collection{Name: "INBOX"}, &known{versions: map[string]string{}})
	require.Len(t, msgs, 2)
	require.True(t, msgs[0].Truncated)
	require.Len(t, msgs[0].Raw, 1<<20)
	require.Equal(t, int64(len(big)), msgs[0].Size)
	require.False(t, msgs[1].Truncated)
}

func TestDovecotAuthentication(t *testing.T) {
	oauth := mailtest.StartOAuthServer(t)
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice@example.com": "pw"}, IntrospectionURL: oauth.URL + "/introspect"})
	d.MustDeliver(t, "alice@example.com", "INBOX", mailtest.Message{From: "a@example.com", Subject: "m", Text: "x"}.Raw(), "")
	oauth.AddRefreshToken("rt-alice", "alice@example.com")
	ctx := context.Background()
	conf := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: oauth.URL + "/token"}}
	tokens := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-alice"})
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"PLAIN", Config{Auth: AuthPlain, Password: "pw"}},
		{"LOGIN", Config{Auth: AuthLogin, Password: "pw"}},
		{"PASSWORD", Config{Password: "pw"}},
		{"XOAUTH2", Config{Auth: AuthXOAuth2, Tokens: tokens}},
		{"OAUTHBEARER", Config{Auth: AuthOAuthBearer, Tokens: tokens}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Addr, cfg.Security, cfg.Username = d.Addr, SecurityNone, "alice@example.com"
			b, err := Dial(ctx, cfg)
			require.NoError(t, err, d.Log())
			cols, err := b.Collections(ctx)
			require.NoError(t, err)
			require.Len(t, cols, 1)
			require.NoError(t, b.Close())
		})
	}
	require.Positive(t, oauth.Introspections.Load())

	// Refusals say so, with the server's words, and never the secret.
	_, err := Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice@example.com", Password: "wrong-pw"})
	require.ErrorIs(t, err, mailbox.ErrAuth)
	require.NotContains(t, err.Error(), "wrong-pw")
	bad := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "not-a-valid-token"})
	_, err = Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice@example.com", Auth: AuthXOAuth2, Tokens: bad})
	require.ErrorIs(t, err, mailbox.ErrAuth)
	require.Contains(t, err.Error(), `"status":"401"`, "Google's error shape, as Dovecot sends it")
	require.NotContains(t, err.Error(), "not-a-valid-token")
	_, err = Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice@example.com", Auth: AuthOAuthBearer, Tokens: bad})
	require.ErrorIs(t, err, mailbox.ErrAuth)
	oauth.RevokeRefreshToken("rt-alice")
	revoked := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-alice"})
	_, err = Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice@example.com", Auth: AuthXOAuth2, Tokens: revoked})
	require.ErrorIs(t, err, mailbox.ErrAuth)
	require.Contains(t, err.Error(), "invalid_grant")
}

// slowTokens is a token endpoint that takes delay to answer (a rate
// limit waited out, a slow network).
type slowTokens struct {
	inner oauth2.TokenSource
	delay time.Duration
}

func (s slowTokens) Token() (*oauth2.Token, error) {
	<-time.After(s.delay)
	return s.inner.Token()
}

// TestDialTokenWaitIsNotSpentLoggedOut: the access token of XOAUTH2 and
// OAUTHBEARER was asked for once connected, with the connection open and
// not logged in: a token endpoint slower than Timeout (the connector waits
// out its rate limits, for minutes) had the connection closed under the
// log in, which failed with a network error, and a server's pre-login
// timeout (shorter than Google's rate limits) did the same. The token is
// now had before connecting.
func TestDialTokenWaitIsNotSpentLoggedOut(t *testing.T) {
	oauth := mailtest.StartOAuthServer(t)
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice@example.com": "pw"}, IntrospectionURL: oauth.URL + "/introspect"})
	oauth.AddRefreshToken("rt-alice", "alice@example.com")
	ctx := context.Background()
	conf := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: oauth.URL + "/token"}}
	for _, auth := range []Auth{AuthXOAuth2, AuthOAuthBearer} {
		tokens := slowTokens{inner: conf.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-alice"}), delay: 5 * time.Second}
		b, err := Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice@example.com", Auth: auth, Tokens: tokens, Timeout: 4 * time.Second})
		require.NoError(t, err, "%s: %s", auth, d.Log())
		_, err = b.Collections(ctx)
		require.NoError(t, err)
		require.NoError(t, b.Close())
	}
}

func TestDialRefusesABadCertificate(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice": "pw"}})
	ctx := context.Background()
	_, err := Dial(ctx, Config{Addr: d.TLSAddr, Security: SecurityTLS, Username: "alice", Password: "pw"})
	require.ErrorContains(t, err, "certificate")
	_, err = Dial(ctx, Config{Addr: d.Addr, Security: SecurityStartTLS, Username: "alice", Password: "pw"})
	require.ErrorContains(t, err, "certificate")
}

func TestDialHonoursTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Dial(ctx, Config{Addr: "127.0.0.1:1", Security: SecurityNone})
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
}

func TestModifiedUTF7(t *testing.T) {
	for _, s := range []string{"INBOX", "Réunions", "日本語", "a&b", "~peter/mail/台北/日本語"} {
		require.Equal(t, s, decodeUTF7(encodeUTF7(s)))
	}
	require.Equal(t, "~peter/mail/&U,BTFw-/&ZeVnLIqe-", encodeUTF7("~peter/mail/台北/日本語"))
}

// The server works on the next batch while the caller still works on the
// one before: a batch's messages are handed over once the next batch's
// UID FETCH was sent. They come in the order asked, across batches; a
// caller that stops in the middle leaves the connection usable.
func TestDovecotFetchSendsTheNextBatchBeforeHandingOver(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice": "pw"}})
	for i := range 10 {
		d.MustDeliver(t, "alice", "INBOX", mailtest.Message{From: "a@example.com", Subject: fmt.Sprintf("m%d", i), Text: "hello"}.Raw(), "")
	}
	ctx := context.Background()
	b, err := Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice", Password: "pw", FetchBatch: 3})
	require.NoError(t, err)
	defer b.Close()
	c := mailbox.Collection{Name: "INBOX"}
	plan, err := b.Plan(ctx, c, &known{versions: map[string]string{}})
	require.NoError(t, err)
	require.Len(t, plan.Fetch, 10)

	// Batches 1:3, 4:6, 7:9 and 10 (Fetch sends no SELECT: Plan's is
	// kept). While the caller holds the first batch's last message, the
	// second batch waits to be handed over and the third one's command
	// was sent.
	base := b.Stats().Commands
	var subjects []string
	sentMeanwhile := false
	require.NoError(t, b.Fetch(ctx, c, plan.Fetch, func(m *mailbox.Message) error {
		subjects = append(subjects, string(bytes.SplitN(bytes.SplitN(m.Raw, []byte("Subject: "), 2)[1], []byte("\r\n"), 2)[0]))
		if len(subjects) == 3 {
			sentMeanwhile = assert.Eventually(t, func() bool { return b.Stats().Commands-base == 3 }, 10*time.Second, time.Millisecond)
		}
		return nil
	}))
	require.True(t, sentMeanwhile, "the third batch's command was sent while the caller held the first batch")
	require.Equal(t, []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}, subjects)
	require.Equal(t, int64(4), b.Stats().Commands-base)

	stop := errors.New("enough")
	n := 0
	err = b.Fetch(ctx, c, plan.Fetch, func(*mailbox.Message) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	var again int
	require.NoError(t, b.Fetch(ctx, c, plan.Fetch, func(*mailbox.Message) error { again++; return nil }))
	require.Equal(t, 10, again, "the connection is still usable")
}

// Dovecot sends its capabilities with the OK of LOGIN and AUTHENTICATE:
// they are taken from there, with no CAPABILITY command (one round trip
// less before the first FETCH). A server that does not (here the proxy
// removes them) is asked, and the capabilities are those after the log in
// either way (CONDSTORE is announced only then).
func TestDovecotCapabilitiesFromTheLoginReply(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice": "pw"}})
	ctx := context.Background()
	strip := regexp.MustCompile(`^([A-Za-z0-9]+ OK) \[CAPABILITY [^\]]*\]`)
	for _, tc := range []struct {
		name  string
		auth  Auth
		strip bool
		want  []string
	}{
		{"PLAIN", AuthPlain, false, []string{"AUTHENTICATE", "LOGOUT"}},
		{"LOGIN", AuthLogin, false, []string{"LOGIN", "LOGOUT"}},
		{"PLAIN without capabilities in the reply", AuthPlain, true, []string{"AUTHENTICATE", "CAPABILITY", "LOGOUT"}},
		{"LOGIN without capabilities in the reply", AuthLogin, true, []string{"LOGIN", "CAPABILITY", "LOGOUT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rewrite func(string) string
			if tc.strip {
				rewrite = func(line string) string { return strip.ReplaceAllString(line, "$1") }
			}
			p := mailtest.StartProxy(t, d.Addr, rewrite)
			b, err := Dial(ctx, Config{Addr: p.Addr, Security: SecurityNone, Auth: tc.auth, Username: "alice", Password: "pw"})
			require.NoError(t, err, d.Log())
			require.True(t, b.Caps().Has(imap.CapCondStore), "the capabilities after the log in: %v", b.Caps())
			require.NoError(t, b.Close())
			// go-imap may ask for the capabilities itself too when the reply
			// had none; the connector's own question is what counts.
			var got []string
			for _, c := range p.Commands() {
				if !slices.Contains(got, c) {
					got = append(got, c)
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
	// Over implicit TLS the tap sits above TLS: no CAPABILITY either.
	b, err := Dial(ctx, Config{Addr: d.TLSAddr, Security: SecurityTLS, TLSConfig: caPool(t, d), Username: "alice", Password: "pw"})
	require.NoError(t, err, d.Log())
	require.True(t, b.Caps().Has(imap.CapCondStore))
	require.Equal(t, int64(1), b.Stats().Commands, "AUTHENTICATE alone")
	require.NoError(t, b.Close())
}

// Without UIDPLUS there is no UID EXPUNGE: Delete expunged the whole
// folder, so that a message the mailbox's owner had marked deleted in
// their mail client (flagged \Deleted, not expunged: still there, and
// still recoverable) was destroyed by a Delete of another message. The
// others' \Deleted is now taken off for the EXPUNGE and put back after
// it: only the messages Delete names are expunged.
func TestDovecotDeleteWithoutUIDPlusExpungesOnlyItsMessages(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice": "pw"}})
	for i := range 4 {
		d.MustDeliver(t, "alice", "INBOX", mailtest.Message{From: "a@example.com", Subject: fmt.Sprintf("m%d", i), Text: "hello"}.Raw(), "")
	}
	ctx := context.Background()
	noUIDPlus := func(line string) string {
		if strings.Contains(line, "CAPABILITY") {
			return strings.ReplaceAll(line, " UIDPLUS", "")
		}
		return line
	}
	p := mailtest.StartProxy(t, d.Addr, noUIDPlus)
	b, err := Dial(ctx, Config{Addr: p.Addr, Security: SecurityNone, Username: "alice", Password: "pw"})
	require.NoError(t, err, d.Log())
	defer b.Close()
	require.False(t, b.Caps().Has(imap.CapUIDPlus))
	inbox := mailbox.Collection{Name: "INBOX"}
	sel, err := b.selectFolder(ctx, "INBOX")
	require.NoError(t, err)

	// The owner's client marks message 1 deleted; message 4 too, which
	// Delete is then asked to delete as well.
	owner, err := Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice", Password: "pw"})
	require.NoError(t, err)
	_, err = owner.selectFolder(ctx, "INBOX")
	require.NoError(t, err)
	require.NoError(t, owner.c.Store(imap.UIDSetNum(1, 4), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	require.NoError(t, owner.Close())

	require.NoError(t, b.Delete(ctx, inbox, []string{Key(sel.UIDValidity, 2), Key(sel.UIDValidity, 4)}))

	check, err := Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice", Password: "pw"})
	require.NoError(t, err)
	defer check.Close()
	_, err = check.selectFolder(ctx, "INBOX")
	require.NoError(t, err)
	data, err := check.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	require.NoError(t, err)
	require.Equal(t, []imap.UID{1, 3}, data.AllUIDs(), "only the messages Delete named are expunged")
	msgs, err := check.c.Fetch(imap.UIDSetNum(1, 3), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	require.NoError(t, err)
	flags := map[imap.UID][]imap.Flag{}
	for _, m := range msgs {
		flags[m.UID] = m.Flags
	}
	require.Contains(t, flags[1], imap.FlagDeleted, "the owner's mark is kept")
	require.NotContains(t, flags[3], imap.FlagDeleted)
}
