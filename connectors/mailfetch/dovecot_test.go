package mailfetch

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/imapbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

const user = "alice@example.com"

// corpus writes a mailbox to Dovecot and returns how many documents it
// should give: messages plus attachments, per folder indexed.
func corpus(t *testing.T, d *mailtest.Dovecot) (messages, docs int) {
	pdf, err := os.ReadFile("../../extract/testdata/hello.pdf")
	require.NoError(t, err)
	deliver := func(folder string, m mailtest.Message, flags string, indexed bool) {
		d.MustDeliver(t, user, folder, m.Raw(), flags)
		if indexed {
			messages++
			docs += 1 + len(m.Attachments)
		}
	}
	for i := range 5 {
		deliver("INBOX", mailtest.Message{From: "Bob <bob@example.com>", To: user, Subject: fmt.Sprintf("plain %d", i), Text: fmt.Sprintf("hello number %d", i)}, "S", true)
	}
	deliver("INBOX", mailtest.Message{From: `"Zoë Martin" <zoe@example.com>`, To: user, Cc: "carol@example.com", Subject: "Réunion 0 – rapport",
		MessageID: "report@example.com", Text: "Voici le rapport.", HTML: "<p>Voici <b>le rapport</b>.</p>",
		Attachments: []mailtest.Attachment{
			{Name: "report0.pdf", ContentType: "application/pdf", Data: pdf},
			{Name: "notes.txt", ContentType: "text/plain", Data: []byte("the zebra notes")},
		}}, "", true)
	deliver("INBOX", mailtest.Message{From: "news@example.com", To: user, Subject: "html only", HTML: "<html><body><h1>News</h1><p>Big <i>news</i> today</p></body></html>"}, "", true)
	for i := range 3 {
		deliver("Archive", mailtest.Message{From: "old@example.com", To: user, Subject: fmt.Sprintf("archived %d", i), Text: "old",
			InReplyTo: "report@example.com"}, "S", true)
	}
	deliver("Trash", mailtest.Message{From: "x@example.com", Subject: "deleted", Text: "x"}, "", false)
	deliver("Spam", mailtest.Message{From: "x@example.com", Subject: "buy now", Text: "x"}, "", false)
	return messages, docs
}

func mailConfig(d *mailtest.Dovecot, extra string) string {
	host, port, _ := strings.Cut(d.Addr, ":")
	return fmt.Sprintf(`[Server]
DataDirectory=$DIR/data
[Security]
CollectFolders=$DIR/collect
[FetchTasks]
Number=1
0=Mail
[Mail]
ImapServer=%s
ImapPort=%s
ImapSecurity=STARTTLS
SSLCACertificate=%s
Username=%s
Password=pw
%s`, host, port, d.CAFile, user, extra)
}

// A second client that changes the mailbox as a person would.
func otherClient(t *testing.T, d *mailtest.Dovecot) *imapbox.Box {
	b, err := imapbox.Dial(context.Background(), imapbox.Config{Addr: d.Addr, Security: imapbox.SecurityNone, Username: user, Password: "pw"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestSynchronizeAgainstDovecot(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	nMsgs, nDocs := corpus(t, d)
	g := newRig(t, mailConfig(d, ""))

	_, job := g.mustRun("Synchronize")
	c := countsOf(job, "MAIL")
	require.Equal(t, fmt.Sprintf("seen=%d added=%d updated=0 deleted=0 unchanged=0 ingestadded=%d ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", nDocs, nDocs, nDocs), summary(c))
	require.Equal(t, nDocs, g.target.Len())

	// The documents.
	rep := g.target.Find("SUBJECT", "Réunion 0 – rapport")
	require.Len(t, rep, 3, "the message and its two attachments")
	var msg, pdfDoc, txtDoc = rep[0], rep[0], rep[0]
	for _, doc := range rep {
		switch resttest.Field1(doc, "FILENAME") {
		case "":
			msg = doc
		case "report0.pdf":
			pdfDoc = doc
		case "notes.txt":
			txtDoc = doc
		}
	}
	require.Regexp(t, `^imap://alice%40example\.com@127\.0\.0\.1:\d+/INBOX;UIDVALIDITY=\d+/;UID=6$`, msg.Reference)
	require.Equal(t, "Réunion 0 – rapport", resttest.Field1(msg, "DRETITLE"))
	require.Equal(t, []string{"Zoë Martin <zoe@example.com>"}, resttest.Field(msg, "FROM"))
	require.Equal(t, []string{user}, resttest.Field(msg, "TO"))
	require.Equal(t, []string{"carol@example.com"}, resttest.Field(msg, "CC"))
	require.Equal(t, "report@example.com", resttest.Field1(msg, "MESSAGE_ID"))
	require.Equal(t, "report@example.com", resttest.Field1(msg, "THREAD_ID"))
	require.Equal(t, "INBOX", resttest.Field1(msg, "FOLDER"))
	require.Equal(t, "2", resttest.Field1(msg, "ATTACHMENT_COUNT"))
	require.Equal(t, []string{"report0.pdf", "notes.txt"}, resttest.Field(msg, "ATTACHMENT_NAME"))
	require.Equal(t, "Voici le rapport.", strings.TrimSpace(msg.Content))
	require.NotEmpty(t, resttest.Field1(msg, "SIZE"))
	require.Equal(t, msg.Reference+"/;SECTION=2", pdfDoc.Reference)
	require.Equal(t, msg.Reference, resttest.Field1(pdfDoc, "PARENT_REFERENCE"))
	require.Equal(t, "application/pdf", resttest.Field1(pdfDoc, "CONTENT_TYPE"))
	require.Contains(t, pdfDoc.Content, "The zebra crossed the meadow at dawn.", "attachment text extracted")
	require.Equal(t, "pdf", resttest.Field1(pdfDoc, "EXTRACT_FORMAT"))
	require.Equal(t, "the zebra notes", txtDoc.Content)
	html := g.target.Find("SUBJECT", "html only")
	require.Len(t, html, 1)
	require.Contains(t, html[0].Content, "News")
	require.Contains(t, html[0].Content, "Big news today")
	require.Equal(t, "html", resttest.Field1(html[0], "BODY_FORMAT"))
	archived := g.target.Find("FOLDER", "Archive")
	require.Len(t, archived, 3)
	require.Equal(t, "report@example.com", resttest.Field1(archived[0], "THREAD_ID"), "a reply belongs to the thread it answers")
	require.Equal(t, []string{`\Seen`}, resttest.Field(archived[0], "FLAGS"))
	require.Empty(t, g.target.Find("SUBJECT", "deleted"), "trash is not indexed")
	require.Empty(t, g.target.Find("SUBJECT", "buy now"), "spam is not indexed")
	for _, doc := range g.target.All() {
		id, err := DecodeIdentifier(resttest.Field1(doc, "AUTN_IDENTIFIER"))
		require.NoError(t, err)
		require.Equal(t, "MAIL", id.Task)
		require.NotContains(t, fmt.Sprint(doc.Fields), "pw")
	}

	// Nothing changed: everything unchanged, no body fetched.
	_, job = g.mustRun("Synchronize", "ConfigSection", "Mail")
	require.Equal(t, fmt.Sprintf("seen=%d added=0 updated=0 deleted=0 unchanged=%d ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", nDocs, nDocs), summary(countsOf(job, "MAIL")))

	// Flag one, append one, expunge one.
	o := otherClient(t, d)
	inbox := mailbox.Collection{Name: "INBOX"}
	plain0 := g.target.Find("SUBJECT", "plain 0")[0]
	plain1 := g.target.Find("SUBJECT", "plain 1")[0]
	id0, _ := DecodeIdentifier(resttest.Field1(plain0, "AUTN_IDENTIFIER"))
	id1, _ := DecodeIdentifier(resttest.Field1(plain1, "AUTN_IDENTIFIER"))
	_, uid0, _ := imapbox.ParseKey(id0.Key)
	require.NoError(t, flag(d, uid0))
	require.NoError(t, o.Delete(context.Background(), inbox, []string{id1.Key}))
	_, _, err := o.Append(context.Background(), "INBOX", mailtest.Message{From: "new@example.com", Subject: "fresh", Text: "just in"}.Raw(), nil, time.Now())
	require.NoError(t, err)
	_, job = g.mustRun("Synchronize")
	require.Equal(t, fmt.Sprintf("seen=%d added=1 updated=1 deleted=1 unchanged=%d ingestadded=1 ingestupdated=1 ingestdeleted=1 ingestfailed=0 errors=0", nDocs, nDocs-2), summary(countsOf(job, "MAIL")))
	require.Equal(t, []string{`\Flagged`, `\Seen`}, resttest.Field(g.target.Find("SUBJECT", "plain 0")[0], "FLAGS"))
	require.Empty(t, g.target.Find("SUBJECT", "plain 1"))
	require.Len(t, g.target.Find("SUBJECT", "fresh"), 1)

	// A new UIDVALIDITY reads the folder again.
	require.NoError(t, d.ResetUIDValidity(user, "Archive"))
	_, job = g.mustRun("Synchronize")
	c = countsOf(job, "MAIL")
	require.Equal(t, uint64(3), c.Added)
	require.Equal(t, uint64(3), c.Deleted)
	require.Len(t, g.target.Find("FOLDER", "Archive"), 3)
	require.Equal(t, nDocs, g.target.Len())
	_ = nMsgs
}

// flag flags a message of INBOX \Flagged, as a person's client would.
func flag(d *mailtest.Dovecot, uid imap.UID) error {
	c, err := imapclient.DialInsecure(d.Addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, "pw").Wait(); err != nil {
		return err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return err
	}
	return c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
}

func TestFetchActionsAgainstDovecot(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	_, nDocs := corpus(t, d)
	g := newRig(t, mailConfig(d, ""))
	g.mustRun("Synchronize")
	rep := g.target.Find("SUBJECT", "Réunion 0 – rapport")
	var msgID, pdfID string
	for _, doc := range rep {
		switch resttest.Field1(doc, "FILENAME") {
		case "":
			msgID = resttest.Field1(doc, "AUTN_IDENTIFIER")
		case "report0.pdf":
			pdfID = resttest.Field1(doc, "AUTN_IDENTIFIER")
		}
	}

	// View: the raw message, and the attachment's bytes.
	v, err := g.repo.View(context.Background(), msgID, nil)
	require.NoError(t, err)
	require.Equal(t, "message/rfc822", v.MimeType)
	require.Contains(t, string(v.Content), "Subject: =?utf-8?q?R=C3=A9union")
	require.Equal(t, "Réunion 0 – rapport.eml", v.FileName)
	pdf, _ := os.ReadFile("../../extract/testdata/hello.pdf")
	v, err = g.repo.View(context.Background(), pdfID, nil)
	require.NoError(t, err)
	require.Equal(t, "application/pdf", v.MimeType)
	require.Equal(t, "report0.pdf", v.FileName)
	require.Equal(t, pdf, v.Content)
	_, err = g.repo.View(context.Background(), "bm90IGFuIGlk", nil)
	require.Error(t, err)
	unknown := Identifier{Task: "MAIL", Collection: "INBOX", Key: "1.999"}.Encode()
	_, err = g.repo.View(context.Background(), unknown, nil)
	require.ErrorContains(t, err, "has not indexed")

	// Identifiers round-trip through Collect.
	res, job := g.mustRun("Identifiers", "ConfigSection", "Mail")
	require.Len(t, res[0].Children, 10)
	require.Equal(t, uint64(10), countsOf(job, "MAIL").Seen)
	res, job = g.mustRun("Collect", "Identifiers", msgID+","+pdfID, "Destination", "out")
	require.Len(t, res[0].Children, 2)
	require.Equal(t, "success", res[0].Children[0].Name)
	require.Equal(t, uint64(2), countsOf(job, "MAIL").Collected)
	got, err := os.ReadFile(filepath.Join(g.dir, "collect", "out", "report0.pdf"))
	require.NoError(t, err)
	require.Equal(t, pdf, got)
	idx, err := os.ReadFile(filepath.Join(g.dir, "collect", "out", "Réunion 0 – rapport.eml.idx"))
	require.NoError(t, err)
	require.Contains(t, string(idx), "AUTN_COLLECTTIME")
	_, _, err = g.run("Collect", "Identifiers", msgID, "Destination", "../escape")
	require.ErrorContains(t, err, "CollectFolders")
	_, _, err = g.run("Collect", "Identifiers", msgID, "Destination", "/etc")
	require.ErrorContains(t, err, "CollectFolders")

	// Delete: gone from the server and the index.
	res, job = g.mustRun("Delete", "Identifiers", msgID+","+pdfID)
	require.Equal(t, "success", res[0].Children[0].Name)
	require.Equal(t, "failed", res[0].Children[1].Name, "an attachment alone cannot be deleted")
	require.Equal(t, uint64(3), countsOf(job, "MAIL").Deleted)
	require.Empty(t, g.target.Find("SUBJECT", "Réunion 0 – rapport"))
	_, job = g.mustRun("Synchronize")
	require.Zero(t, countsOf(job, "MAIL").Deleted, "the next Synchronize finds nothing more to delete")
	require.Equal(t, nDocs-3, g.target.Len())

	// Insert: APPEND to a folder; the next Synchronize indexes it.
	raw := mailtest.Message{From: "me@example.com", Subject: "inserted", Text: "filed by a client"}.Raw()
	xml := `<insertXML><insert><insert_id>42</insert_id><metadata name="FOLDER" value="Archive"/><metadata name="FLAGS" value="\Seen"/>` +
		`<file><type>content</type><content>` + base64.StdEncoding.EncodeToString(raw) + `</content></file></insert></insertXML>`
	res, job = g.mustRun("Insert", "ConfigSection", "Mail", "InsertXML", xml)
	require.Equal(t, uint64(1), countsOf(job, "MAIL").Inserted)
	require.Equal(t, "42", res[1].Children[0].Attrs[0].Value)
	newID, err := DecodeIdentifier(res[0].Children[0].Text)
	require.NoError(t, err)
	require.Equal(t, "Archive", newID.Collection)
	g.mustRun("Synchronize")
	ins := g.target.Find("SUBJECT", "inserted")
	require.Len(t, ins, 1)
	require.Equal(t, res[0].Children[0].Text, resttest.Field1(ins[0], "AUTN_IDENTIFIER"), "Insert's identifier is the document's")
	require.Equal(t, []string{`\Seen`}, resttest.Field(ins[0], "FLAGS"))
	_, _, err = g.run("Insert", "ConfigSection", "Mail", "InsertXML", "<insert><file><type>file</type><content>/etc/passwd</content></file></insert>")
	require.ErrorContains(t, err, "content or drecontent")
}

// OAuth: XOAUTH2 and OAUTHBEARER with the refresh token `connector oauth`
// stored, and a revoked token ending the action with the provider's words.
func TestSynchronizeWithOAuthTokenFile(t *testing.T) {
	srv := mailtest.StartOAuthServer(t)
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}, IntrospectionURL: srv.URL + "/introspect"})
	_, nDocs := corpus(t, d)
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			host, port, _ := strings.Cut(d.Addr, ":")
			g := newRig(t, fmt.Sprintf(`[Server]
DataDirectory=$DIR/data
[FetchTasks]
0=Mail
[Mail]
ImapServer=%s
ImapPort=%s
ImapSecurity=NONE
Username=%s
AuthMethod=%s
OAuthClientID=client-1
OAuthClientSecret=not-so-secret
OAuthTokenUrl=%s/token
`, host, port, user, mech, srv.URL))
			s, err := TaskSettings(g.cfg, "Mail")
			require.NoError(t, err)
			require.Equal(t, "not-so-secret", s.OAuth().ClientSecret)
			key, err := secret.EnsureKeyFile(g.cfg.Security.AESKeyFile)
			require.NoError(t, err)
			rt := "rt-" + mech
			srv.AddRefreshToken(rt, user)
			require.NoError(t, oauth.TokenFile{Path: filepath.Join(g.dir, "data", "oauth", "mail.token"), Key: key}.Save(&oauth2.Token{RefreshToken: rt}, "client-1", nil))
			_, job := g.mustRun("Synchronize")
			require.Equal(t, uint64(nDocs), countsOf(job, "MAIL").Added)

			srv.RevokeRefreshToken(rt)
			g2 := newRig(t, strings.ReplaceAll(mailConfigOAuth(d, srv, mech), "$DIR", g.dir))
			_, _, err = g2.run("Synchronize")
			require.ErrorContains(t, err, "invalid_grant: Token has been expired or revoked.")
			require.ErrorIs(t, err, mailbox.ErrAuth)
			require.NotContains(t, err.Error(), rt)
		})
	}
}

func mailConfigOAuth(d *mailtest.Dovecot, srv *mailtest.OAuthServer, mech string) string {
	host, port, _ := strings.Cut(d.Addr, ":")
	return fmt.Sprintf(`[Server]
DataDirectory=$DIR/data
[FetchTasks]
0=Mail
[Mail]
ImapServer=%s
ImapPort=%s
ImapSecurity=NONE
Username=%s
AuthMethod=%s
OAuthClientID=client-1
OAuthTokenUrl=%s/token
`, host, port, user, mech, srv.URL)
}

// Google's token endpoint rate limits (429) as its APIs do. Over IMAP a
// refresh it answered 429 ended the task at once as "mailbox:
// authentication failed" - the administrator told the authorization was
// refused when Google only asked to slow down - while the Gmail API
// transport waited the same answer out. The refresh is now waited out
// over IMAP too; one the endpoint keeps refusing for longer than is worth
// waiting ends the task with its answer, not as an authentication failure.
func TestIMAPTokenEndpointRateLimitIsWaitedOut(t *testing.T) {
	srv := mailtest.StartOAuthServer(t)
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}, IntrospectionURL: srv.URL + "/introspect"})
	_, nDocs := corpus(t, d)
	var limited atomic.Int64 // 429s still to answer
	var retryAfter atomic.Value
	retryAfter.Store("0")
	var answered atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if limited.Add(-1) >= 0 {
			answered.Add(1)
			w.Header().Set("Retry-After", retryAfter.Load().(string))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":"rate_limit_exceeded","error_description":"Rate limit exceeded"}`))
			return
		}
		u, _ := url.Parse(srv.URL)
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	g := newRig(t, mailConfigOAuth(d, &mailtest.OAuthServer{URL: proxy.URL}, "XOAUTH2"))
	key, err := secret.EnsureKeyFile(g.cfg.Security.AESKeyFile)
	require.NoError(t, err)
	srv.AddRefreshToken("rt-limited", user)
	require.NoError(t, oauth.TokenFile{Path: filepath.Join(g.dir, "data", "oauth", "mail.token"), Key: key}.Save(&oauth2.Token{RefreshToken: "rt-limited"}, "client-1", nil))

	limited.Store(2)
	_, job := g.mustRun("Synchronize")
	require.Equal(t, int64(2), answered.Load(), "both 429s were answered, then the token granted")
	require.Equal(t, uint64(nDocs), countsOf(job, "MAIL").Added)

	// A rate limit asking for a day is not waited out: the task ends with
	// the endpoint's answer, which is not an authentication failure.
	g2 := newRig(t, strings.ReplaceAll(mailConfigOAuth(d, &mailtest.OAuthServer{URL: proxy.URL}, "XOAUTH2"), "$DIR", g.dir))
	retryAfter.Store("86400")
	limited.Store(1000)
	_, _, err = g2.run("Synchronize")
	require.ErrorContains(t, err, "Rate limit exceeded")
	require.NotErrorIs(t, err, mailbox.ErrAuth)
	require.NotContains(t, err.Error(), "rt-limited")
}

// A folder Folders names twice ("INBOX,Archive,INBOX", or "INBOX,inbox",
// which IMAP takes as one) was synchronized twice in every run: each of
// its messages counted seen, added (or updated) twice and delivered
// twice. It is synchronized once.
func TestFolderNamedTwiceIsSynchronizedOnce(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "one", Text: "x"}.Raw(), "")
	g := newRig(t, mailConfig(d, "Folders=INBOX,inbox,INBOX\n"))
	_, job := g.mustRun("Synchronize")
	require.Equal(t, "seen=1 added=1 updated=0 deleted=0 unchanged=0 ingestadded=1 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "MAIL")))
	require.Equal(t, 1, g.target.Len())
	_, job = g.mustRun("Synchronize")
	require.Equal(t, "seen=1 added=0 updated=0 deleted=0 unchanged=1 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "MAIL")))
}
