package mailfetch

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

func TestDefaultConfigurationLoads(t *testing.T) {
	cfg, err := config.Parse("default.cfg", DefaultConfig, TaskKeys)
	require.NoError(t, err)
	require.NoError(t, Check(cfg))
	require.Equal(t, "GOOGLEMAIL", cfg.Connector.Type)
	d := Descriptor()
	require.NoError(t, d.Validate())
	require.Equal(t, "GOOGLEMAILCONNECTOR", d.Product)
	require.ElementsMatch(t, d.FetchActions, []string{"SYNCHRONIZE", "COLLECT", "IDENTIFIERS", "DELETE", "INSERT"})
}

func TestBadSettingsNameTheKey(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"[FetchTasks]\n0=M\n[M]\nUsername=a\nPassword=p\nImapPrt=1\n", "test.cfg:6: [M] ImapPrt: unknown key: ImapPrt is not a Google Mail task setting (did you mean ImapPort?)"},
		{"[FetchTasks]\n0=M\n[M]\nUsername=a\nPassword=p\nImapPort=99999\n", "test.cfg:6: [M] ImapPort: must be a port number"},
		{"[FetchTasks]\n0=M\n[M]\nPassword=p\n", "[M] Username: the task needs the mail account"},
		{"[FetchTasks]\n0=M\n[M]\nUsername=a\n", "[M] Password: AuthMethod=PASSWORD needs Password"},
		{"[FetchTasks]\n0=M\n[M]\nUsername=a\nAuthMethod=XOAUTH2\n", "AuthMethod=XOAUTH2 needs OAuthClientID"},
		{"[FetchTasks]\n0=M\n[M]\nUsername=a\nTransport=GMAILAPI\n", "Transport=GMAILAPI needs OAuthClientID"},
		{"[FetchTasks]\n0=M\n[M]\nUsername=a\nPassword=p\nDeleteMode=TRASH\n", "with Transport=IMAP, DeleteMode is EXPUNGE"},
		{"[FetchTasks]\n0=M\n[M]\nUsername=a\nPassword=p\nFolderMustHaveRegex=(\n", "not a valid regular expression"},
		{"[FetchTasks]\n0=M\n[M]\nUsername=a\nOAuthClientID=c\nOAuthRedirectUrl=http://example.com/\n", "must be http:// on 127.0.0.1"},
		{"[FetchTasks]\n0=M\n[M]\nUsername=a\nOAuthClientID=c\nOAuthTokenUrl=https://u:p@x/\n", "must not carry a user name or password"},
	} {
		cfg, err := config.Parse("test.cfg", []byte(c.text), TaskKeys)
		if err == nil {
			err = Check(cfg)
		}
		require.ErrorContains(t, err, c.want, c.text)
		var ce *config.Error
		require.True(t, errors.As(err, &ce), "%T", err)
	}
}

func TestEncryptedSecretsAndRedaction(t *testing.T) {
	dir := t.TempDir()
	key, err := secret.EnsureKeyFile(filepath.Join(dir, "aes.ky"))
	require.NoError(t, err)
	enc, err := key.Encrypt("the-password")
	require.NoError(t, err)
	cfg, err := config.Parse("t.cfg", []byte("[Security]\nAESKeyFile="+filepath.Join(dir, "aes.ky")+"\n[FetchTasks]\n0=M\n[M]\nUsername=a\nPassword="+enc+"\n"), TaskKeys)
	require.NoError(t, err)
	s, err := TaskSettings(cfg, "M")
	require.NoError(t, err)
	require.Equal(t, "the-password", s.Password)
	// Another key cannot read it: start-up says so, without the value.
	cfg2, err := config.Parse("t.cfg", []byte("[Security]\nAESKeyFile="+filepath.Join(t.TempDir(), "none.ky")+"\n[FetchTasks]\n0=M\n[M]\nUsername=a\nPassword="+enc+"\n"), TaskKeys)
	require.NoError(t, err)
	err = Check(cfg2)
	require.ErrorContains(t, err, "[M] Password")
	require.NotContains(t, err.Error(), enc)

	g := newRig(t, "[FetchTasks]\n0=M\n[M]\nUsername=a\nPassword=p\n")
	params := messages.Params{{Name: "Password", Value: "leak1"}, {Name: "[M]OAuthClientSecret", Value: "leak2"}, {Name: "access_token", Value: "leak3"}, {Name: "ConfigSection", Value: "M"}}
	for _, ps := range []messages.Params{g.repo.Redact(params), must(g.repo.Seal(params))} {
		joined := ""
		for _, p := range ps {
			joined += p.GetName() + "=" + p.GetValue() + " "
		}
		require.False(t, strings.Contains(joined, "leak"), joined)
		require.Contains(t, joined, "ConfigSection=M")
	}
}

func must(p messages.Params, err error) messages.Params {
	if err != nil {
		panic(err)
	}
	return p
}

func TestValidateRefusesBadParameters(t *testing.T) {
	g := newRig(t, "[FetchTasks]\n0=M\n[M]\nUsername=a\nPassword=p\n[Other]\nUsername=b\nPassword=p\n")
	for _, c := range []struct {
		action string
		params []string
		want   string
	}{
		{"Nope", nil, "FetchAction"},
		{"Synchronize", []string{"TaskSections", "Missing"}, "TaskSections"},
		{"Synchronize", []string{"ConfigSection", "Missing"}, "ConfigSection"},
		{"Collect", nil, "Identifiers"},
		{"Collect", []string{"Identifiers", "garbage"}, "not an identifier"},
		{"Collect", []string{"Identifiers", Identifier{Task: "ZZ", Key: "1.1"}.Encode()}, "not configured"},
		{"Delete", []string{"Identifiers", Identifier{Task: "M", Key: "1.1"}.Encode(), "ConfigSection", "Other"}, "belongs to task M"},
		{"Identifiers", nil, "ConfigSection"},
		{"Insert", []string{"ConfigSection", "M"}, "InsertXML"},
		{"Insert", []string{"ConfigSection", "M", "InsertXML", "<insert"}, "not well-formed"},
	} {
		_, err := g.repo.Validate(c.action, resttest.Params(c.params...))
		require.ErrorContains(t, err, c.want, "%s %v", c.action, c.params)
		var pe *messages.ParamError
		require.True(t, errors.As(err, &pe))
	}
	tasks, err := g.repo.Validate("Synchronize", resttest.Params("TaskSections", "m,OTHER", "Ignored", "x"))
	require.NoError(t, err)
	require.Equal(t, []string{"M", "OTHER"}, tasks)
}

func TestIdentifierRoundTrip(t *testing.T) {
	id := Identifier{Task: "MAIL", Collection: `Réunions & "plans" <x>`, Key: "12.34", Section: "2.1"}
	got, err := DecodeIdentifier(id.Encode())
	require.NoError(t, err)
	require.Equal(t, id, got)
	// '+' as a space, lost padding, URL-safe alphabet.
	enc := id.Encode()
	mangled := strings.NewReplacer("+", " ", "/", "_").Replace(strings.TrimRight(enc, "="))
	got, err = DecodeIdentifier(mangled)
	require.NoError(t, err)
	require.Equal(t, id, got)
}

// The hand-written XML of Encode is what xml.Marshal writes (identifiers
// already in an index must still decode and compare equal).
func TestIdentifierEncodeIsXML(t *testing.T) {
	values := []string{"", "INBOX", "12.34", `Réunions & "plans" <x>`, "it's\ta\nb\rc", "bad \xff byte", "nul \x00 and \x1f",
		"\uFFFD real", "surrogate-free \U0001F600", "\uFFFE\uFFFF", "[Gmail]/All Mail", "a>b<c&d"}
	for _, task := range []string{"mail", "Mail'x"} {
		for _, coll := range values {
			for _, key := range values {
				for _, sec := range []string{"", "2.1", "<\"&>"} {
					id := Identifier{Task: task, Collection: coll, Key: key, Section: sec}
					x := xmlID{Task: strings.ToUpper(task), Coll: coll, Key: key, Section: sec}
					if !xmlHolds(coll) {
						x.Coll64 = base64.StdEncoding.EncodeToString([]byte(coll))
					}
					want, err := xml.Marshal(x)
					require.NoError(t, err)
					require.Equal(t, base64.StdEncoding.EncodeToString(want), id.Encode(), "%q", id)
					back, err := DecodeIdentifier(id.Encode())
					if task != "" && key != "" {
						require.NoError(t, err)
						require.Equal(t, coll, back.Collection, "%q", id)
					}
				}
			}
		}
	}
}
