package mailfetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/gmailtest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

// gmailRig is a task on the Gmail API stand-in, driven by the official
// client, with tokens from a token file (or a service account key).
func gmailRig(t *testing.T, serviceAccount bool, extra string) (*rig, *gmailtest.Server, *mailtest.OAuthServer) {
	return gmailRigVia(t, serviceAccount, extra, nil)
}

// gmailRigVia is gmailRig whose task reaches the API at front(its URL)
// when front is not nil (a server in front of the stand-in).
func gmailRigVia(t *testing.T, serviceAccount bool, extra string, front func(apiURL string) string) (*rig, *gmailtest.Server, *mailtest.OAuthServer) {
	srv := mailtest.StartOAuthServer(t)
	api := gmailtest.Start(t, user, srv.UserOf)
	apiURL := api.URL
	if front != nil {
		apiURL = front(api.URL)
	}
	auth := "OAuthClientID=client-1\nOAuthTokenUrl=" + srv.URL + "/token\n"
	if serviceAccount {
		auth = "ServiceAccountKeyFile=" + srv.ServiceAccountKey(t, "indexer@project.iam.gserviceaccount.com") + "\n"
	}
	g := newRig(t, `[Server]
DataDirectory=$DIR/data
[Security]
CollectFolders=$DIR/collect
[FetchTasks]
0=Gmail
[Gmail]
Transport=GMAILAPI
GmailApiUrl=`+apiURL+`
Username=`+user+`
`+auth+extra)
	if !serviceAccount {
		key, err := secret.EnsureKeyFile(g.cfg.Security.AESKeyFile)
		require.NoError(t, err)
		srv.AddRefreshToken("rt-gmail", user)
		require.NoError(t, oauth.TokenFile{Path: filepath.Join(g.dir, "data", "oauth", "gmail.token"), Key: key}.Save(&oauth2.Token{RefreshToken: "rt-gmail"}, "client-1", nil))
	}
	return g, api, srv
}

func countGets(api *gmailtest.Server) int {
	n := 0
	for _, r := range api.Requests() {
		if r == "GET gmail.users.messages.get" {
			n++
		}
	}
	return n
}

func TestGmailAPISynchronize(t *testing.T) {
	g, api, _ := gmailRig(t, false, "")
	work := api.AddLabel("Work")
	pdf, err := os.ReadFile("../../extract/testdata/hello.pdf")
	require.NoError(t, err)
	m1 := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "first", Text: "one"}.Raw(), "INBOX", "UNREAD")
	m2 := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "with report", Text: "see attached",
		Attachments: []mailtest.Attachment{{Name: "report.pdf", ContentType: "application/pdf", Data: pdf}}}.Raw(), "INBOX", work)
	m3 := api.Deliver(mailtest.Message{From: user, To: "bob@example.com", Subject: "sent one", Text: "reply"}.Raw(), "SENT")
	api.Deliver(mailtest.Message{From: "spam@example.com", Subject: "buy now", Text: "x"}.Raw(), "SPAM")

	_, job := g.mustRun("Synchronize")
	require.Equal(t, "seen=4 added=4 updated=0 deleted=0 unchanged=0 ingestadded=4 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
	first := g.target.Find("SUBJECT", "first")
	require.Len(t, first, 1)
	require.Equal(t, "https://mail.google.com/mail/u/alice@example.com/#all/"+m1, first[0].Reference)
	require.Equal(t, m1, resttest.Field1(first[0], "GMAIL_ID"))
	require.Equal(t, m1, resttest.Field1(first[0], "THREAD_ID"))
	require.Equal(t, []string{"INBOX", "UNREAD"}, resttest.Field(first[0], "LABELS"))
	rep := g.target.Find("SUBJECT", "with report")
	require.Len(t, rep, 2)
	require.True(t, slices.ContainsFunc(rep, func(d2 *ingest.Document) bool { return strings.Contains(d2.Content, "zebra") }))
	require.Empty(t, g.target.Find("SUBJECT", "buy now"))

	// Unchanged: history says nothing happened; no message is read.
	gets := countGets(api)
	_, job = g.mustRun("Synchronize")
	require.Equal(t, "seen=4 added=0 updated=0 deleted=0 unchanged=4 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
	require.Equal(t, gets, countGets(api))

	// A label added, a message deleted, one new, one trashed.
	api.Relabel(m1, []string{work}, []string{"UNREAD"})
	api.Remove(m3)
	api.Deliver(mailtest.Message{From: "carol@example.com", To: user, Subject: "new one", Text: "hi"}.Raw(), "INBOX")
	msg2 := rep[slices.IndexFunc(rep, func(d2 *ingest.Document) bool { return resttest.Field1(d2, "FILENAME") == "" })]
	_, job = g.mustRun("Delete", "Identifiers", resttest.Field1(msg2, "AUTN_IDENTIFIER"))
	require.Equal(t, uint64(2), countsOf(job, "GMAIL").Deleted, "the message and its attachment")
	require.Contains(t, api.Message(m2).Labels, "TRASH", "DeleteMode=TRASH by default")
	_, job = g.mustRun("Synchronize")
	require.Equal(t, "seen=2 added=1 updated=1 deleted=1 unchanged=0 ingestadded=1 ingestupdated=1 ingestdeleted=1 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
	require.Equal(t, []string{"INBOX", "Work"}, resttest.Field(g.target.Find("SUBJECT", "first")[0], "LABELS"))
	require.Empty(t, g.target.Find("SUBJECT", "sent one"))

	// An expired history id: the whole mailbox is listed again, and only
	// what changed is read.
	api.ForgetHistory()
	api.Relabel(m1, []string{"STARRED"}, nil)
	gets = countGets(api)
	_, job = g.mustRun("Synchronize")
	require.Equal(t, "seen=2 added=0 updated=1 deleted=0 unchanged=1 ingestadded=0 ingestupdated=1 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
	require.Equal(t, gets+2, countGets(api), "one message read (minimal, then raw)")

	// Insert, View, Collect.
	raw := mailtest.Message{From: "me@example.com", Subject: "inserted by the connector", Text: "filed"}.Raw()
	res, _ := g.mustRun("Insert", "ConfigSection", "Gmail", "InsertXML",
		`<insert><metadata name="FOLDER" value="Work"/><file><content>`+base64.StdEncoding.EncodeToString(raw)+`</content></file></insert>`)
	id, err := DecodeIdentifier(res[0].Children[0].Text)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{work, "UNREAD"}, api.Message(id.Key).Labels)
	g.mustRun("Synchronize")
	ins := g.target.Find("SUBJECT", "inserted by the connector")
	require.Len(t, ins, 1)
	v, err := g.repo.View(context.Background(), resttest.Field1(ins[0], "AUTN_IDENTIFIER"), nil)
	require.NoError(t, err)
	require.Equal(t, raw, v.Content)
	_, job = g.mustRun("Collect", "Identifiers", resttest.Field1(ins[0], "AUTN_IDENTIFIER"))
	require.Equal(t, uint64(1), countsOf(job, "GMAIL").Collected)
	got, err := os.ReadFile(filepath.Join(g.dir, "collect", "inserted by the connector.eml"))
	require.NoError(t, err)
	require.Equal(t, raw, got)
}

func TestGmailAPIServiceAccountAndLimits(t *testing.T) {
	g, api, srv := gmailRig(t, true, "MaxMessageBytes=4096\nFolders=Work\n")
	work := api.AddLabel("Work")
	api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "big one", Text: "x",
		Attachments: []mailtest.Attachment{{Name: "big.bin", Data: bytes.Repeat([]byte{7}, 20000)}}}.Raw(), "INBOX", work)
	api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "not in Work", Text: "x"}.Raw(), "INBOX")
	_, job := g.mustRun("Synchronize")
	require.Equal(t, uint64(1), countsOf(job, "GMAIL").Added, "Folders=Work: the label's messages only")
	big := g.target.Find("SUBJECT", "big one")
	require.Len(t, big, 1, "over MaxMessageBytes: the header only, no attachment")
	require.Equal(t, "true", resttest.Field1(big[0], "MESSAGE_TRUNCATED"))
	require.Equal(t, []string{user}, srv.Assertions()[:1], "the service account acts for the user (domain-wide delegation)")

	// A service account not allowed to act for the user: the action ends
	// with the provider's words.
	g2 := newRig(t, fmt.Sprintf("[FetchTasks]\n0=G\n[G]\nTransport=GMAILAPI\nGmailApiUrl=%s\nUsername=%s\nServiceAccountKeyFile=%s\n",
		api.URL, user, filepath.Join(t.TempDir(), "missing.json")))
	_, _, err := g2.run("Synchronize")
	require.ErrorContains(t, err, "ServiceAccountKeyFile")
}
