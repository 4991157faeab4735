package webexfetch

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/messages"
)

func identifiersOf(res []*messages.Element) map[string]string {
	out := map[string]string{}
	for _, g := range res {
		for _, c := range g.Children {
			name := ""
			for _, a := range c.Attrs {
				if a.Name == "name" {
					name = a.Value
				}
			}
			out[c.Text] = name
		}
	}
	return out
}

// Identifiers lists what was indexed; View and Collect fetch an item now
// (a message, a file, a room); an identifier of something not indexed is
// refused.
func TestIdentifiersViewCollect(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Docs", "group", e.alice, e.bob)
	file := e.srv.AddFile(&webextest.File{Name: "notes.txt", ContentType: "text/plain", Data: []byte("plain notes")})
	m := e.srv.Post(room, e.bob, "see the notes", file)
	e.sync()

	_, res, err := e.run("IDENTIFIERS", "ConfigSection", "MyWebex")
	require.NoError(t, err)
	ids := identifiersOf(res)
	require.Len(t, ids, 2)
	msgID := identifier("MYWEBEX", room, m, 0)
	require.Equal(t, "Docs: see the notes", ids[msgID])
	require.Equal(t, "Docs", ids[identifier("MYWEBEX", room, "", 0)])

	v, err := e.repo.View(context.Background(), msgID, nil)
	require.NoError(t, err)
	require.Equal(t, "see the notes", string(v.Content))
	require.Equal(t, msgRef(e, m), v.Reference)
	// The message's document as Synchronize makes it, with its files'
	// URLs: it gave FILE_COUNT and no FILE_URL.
	var urls []string
	for _, p := range v.Metadata {
		if p.GetName() == "FILE_URL" {
			urls = append(urls, p.GetValue())
		}
	}
	require.Equal(t, field(e.doc(msgRef(e, m)), "FILE_URL"), urls)
	require.Equal(t, []string{file}, urls)
	fileID := identifier("MYWEBEX", room, m, 1)
	v, err = e.repo.View(context.Background(), fileID, nil)
	require.NoError(t, err)
	require.Equal(t, "plain notes", string(v.Content))
	require.Equal(t, "notes.txt", v.FileName)
	require.Equal(t, "text/plain", v.MimeType)
	v, err = e.repo.View(context.Background(), identifier("MYWEBEX", room, "", 0), nil)
	require.NoError(t, err)
	require.Contains(t, string(v.Content), "Bob Baker <Bob@Example.com>")

	_, err = e.repo.View(context.Background(), identifier("MYWEBEX", room, "unknown", 0), nil)
	require.ErrorIs(t, err, messages.ErrNotFound)
	_, err = e.repo.View(context.Background(), "not-an-id", nil)
	var pe *messages.ParamError
	require.ErrorAs(t, err, &pe)

	job, res, err := e.run("COLLECT", "Identifiers", msgID+","+fileID, "Destination", "out")
	require.NoError(t, err)
	require.Equal(t, uint64(2), job.Snapshot()[0].Collected)
	require.Len(t, res[0].Children, 2)
	data, err := os.ReadFile(filepath.Join(e.dir, "collect", "out", "notes.txt"))
	require.NoError(t, err)
	require.Equal(t, "plain notes", string(data))
	idx, err := os.ReadFile(filepath.Join(e.dir, "collect", "out", "notes.txt.idx"))
	require.NoError(t, err)
	require.Contains(t, string(idx), "#DREREFERENCE "+file)
	require.Contains(t, string(idx), "AUTN_COLLECTTIME")

	// Outside CollectFolders.
	_, err = e.repo.Validate("COLLECT", messages.Params{{Name: "Identifiers", Value: msgID}, {Name: "Destination", Value: "/etc"}})
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "Destination", pe.Name)

	// A message deleted since: Collect says so for that identifier.
	e.srv.Delete(m)
	_, res, err = e.run("COLLECT", "Identifiers", msgID)
	require.NoError(t, err)
	require.Equal(t, "failed", res[0].Children[0].Name)
	require.Contains(t, res[0].Children[0].Attrs[0].Value, "gone")
}

// Insert posts a message when the task may write, and says the message's
// identifier (with its insert_id); without the write scope it is refused
// when submitted, as is InsertXML without a room or text.
func TestInsert(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Inbox", "group", e.alice, e.bob)
	_, err := e.repo.Validate("INSERT", messages.Params{{Name: "ConfigSection", Value: "MyWebex"},
		{Name: "InsertXML", Value: `<insert><property name="ROOMID" value="` + room + `"/><property name="TEXT" value="hi"/></insert>`}})
	var pe *messages.ParamError
	require.ErrorAs(t, err, &pe)
	require.Contains(t, pe.Reason, "spark:messages_write")

	e.cfg = e.config("OAuthScopes=spark:kms spark:rooms_read spark:messages_read spark:memberships_read spark:messages_write\nInsertRoomId=" + room)
	e.repo = e.newRepo()
	parent := e.srv.Post(room, e.bob, "question?")
	xml := `<InsertXML>
<insert><insert_id>one</insert_id><property name="PARENTID" value="` + parent + `"/>
  <file><type>drecontent</type><content>the answer</content></file></insert>
<insert><insert_id>two</insert_id><property name="MARKDOWN" value="**bold** claim"/></insert>
<insert><insert_id>three</insert_id><file><type>content</type><content>` + base64.StdEncoding.EncodeToString([]byte("from base64")) + `</content></file></insert>
</InsertXML>`
	job, res, err := e.run("INSERT", "ConfigSection", "MyWebex", "InsertXML", xml)
	require.NoError(t, err)
	require.Equal(t, uint64(3), job.Snapshot()[0].Inserted)
	require.Len(t, res, 2)
	require.Len(t, res[1].Children, 3)
	require.Equal(t, "one", res[1].Children[0].Attrs[0].Value)
	id, err := decodeIdentifier(res[1].Children[0].Text)
	require.NoError(t, err)
	got := e.srv.Message(id.Item)
	require.Equal(t, "the answer", got.Text)
	require.Equal(t, parent, got.ParentID)
	require.Equal(t, e.alice, got.PersonID)
	id, _ = decodeIdentifier(res[1].Children[1].Text)
	require.Equal(t, "**bold** claim", e.srv.Message(id.Item).Markdown)

	for _, bad := range []string{
		`<insert><property name="TEXT" value=""/></insert>`,
		`<insert><file><type>file</type><content>/etc/passwd</content></file></insert>`,
		`<insert><property name="TEXT" value="` + strings.Repeat("x", maxMessageBytes+1) + `"/></insert>`,
		`<insert`,
	} {
		_, err := e.repo.Validate("INSERT", messages.Params{{Name: "ConfigSection", Value: "MyWebex"}, {Name: "InsertXML", Value: bad}})
		require.ErrorAs(t, err, &pe, bad)
		require.Equal(t, "InsertXML", pe.Name)
	}
	// The messages are indexed by the next Synchronize.
	c := e.sync()
	require.Equal(t, uint64(1+4), c.Added)
}

// Bad settings stop the configuration with the file, line and key; an
// encrypted client secret is decrypted; requests cannot carry secrets
// into the queue.
func TestSettings(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ text, want string }{
		{"PageSize=0", "PageSize"},
		{"RoomTypes=public", "RoomTypes"},
		{"WebexApiUrl=ftp://x", "WebexApiUrl"},
		{"OAuthRedirectUrl=http://example.com/", "OAuthRedirectUrl"},
		{"RoomTitleMustHaveRegex=(", "RoomTitleMustHaveRegex"},
		{"Colour=red", "Colour"},
		{"Concurrency=0", "Concurrency"},
		{"Concurrency=33", "Concurrency"},
	} {
		_, err := config.Parse("bad.cfg", []byte("[FetchTasks]\nNumber=1\n0=T\n[T]\nOAuthClientID=x\n"+c.text+"\n"), TaskKeys)
		require.Error(t, err, c.text)
		require.Contains(t, err.Error(), "bad.cfg:6", c.text)
		require.Contains(t, err.Error(), c.want, c.text)
	}
	cfg, err := config.Parse("x.cfg", []byte("[FetchTasks]\nNumber=1\n0=T\n[T]\nPageSize=5\n"), TaskKeys)
	require.NoError(t, err)
	err = Check(cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), "OAuthClientID")
	var ce *config.Error
	require.True(t, errors.As(err, &ce))

	enc, err := e.key.Encrypt("client-secret")
	require.NoError(t, err)
	e.cfg = e.config("")
	text := strings.Replace(string(mustRead(t, e)), "OAuthClientSecret=client-secret", "OAuthClientSecret="+enc, 1)
	e.cfg, err = config.Parse("enc.cfg", []byte(text), TaskKeys)
	require.NoError(t, err)
	e.repo = e.newRepo()
	require.Equal(t, "client-secret", e.repo.Set["MYWEBEX"].ClientSecret)
	busyRooms(e, 1, 1)
	e.sync()

	red := e.repo.Redact(messages.Params{{Name: "[MyWebex]OAuthClientSecret", Value: "s3"}, {Name: "access_token", Value: "x"}, {Name: "ConfigSection", Value: "MyWebex"}})
	require.Equal(t, "MyWebex", red[2].Value)
	require.NotEqual(t, "s3", red[0].Value)
	require.NotEqual(t, "x", red[1].Value)
}

func mustRead(t *testing.T, e *env) []byte {
	t.Helper()
	return []byte(strings.Join([]string{
		"[Server]", "DataDirectory=" + e.dir + "/data",
		"[Security]", "AESKeyFile=" + e.dir + "/aes.ky", "CollectFolders=" + e.dir + "/collect",
		"[FetchTasks]", "Number=1", "0=MyWebex",
		"[MyWebex]", "WebexApiUrl=" + e.srv.URL, "OAuthTokenUrl=" + e.srv.URL + "/access_token",
		"OAuthClientID=client-id", "OAuthClientSecret=client-secret", "PageSize=5", "",
	}, "\n"))
}

// TestDefaultTokenFileStaysInOAuthFolder: a task named `../../x` had its
// default token file DataDirectory/oauth/../../x.token, outside the
// server's folders; it is refused unless OAuthTokenFile names the file.
func TestDefaultTokenFileStaysInOAuthFolder(t *testing.T) {
	text := "[Server]\nDataDirectory=/d\n[FetchTasks]\n0=../../x\n[../../x]\nOAuthClientID=c\n"
	cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
	require.NoError(t, err)
	_, err = resolve(cfg, "../../x", nil)
	require.ErrorContains(t, err, "[../../x] OAuthTokenFile: the task's name \"../../x\" would put its default token file outside DataDirectory/oauth")
	cfg, err = config.Parse("test.cfg", []byte(text+"OAuthTokenFile=/d/t.token\n"), TaskKeys)
	require.NoError(t, err)
	s, err := resolve(cfg, "../../x", nil)
	require.NoError(t, err)
	require.Equal(t, "/d/t.token", s.TokenFile)
}

// TestCollectOfAnIdentifierGivenTwiceCollectsItOnce: Collect with the same
// identifier twice in Identifiers fetched the item twice and wrote it
// twice into the destination ("notes.txt" and "notes.txt (1)", each with
// its sidecar), counted it twice and listed it twice, where Delete (the
// Objective connector's) does an identifier given twice once. It is now
// fetched, written, counted and listed once.
func TestCollectOfAnIdentifierGivenTwiceCollectsItOnce(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Docs", "group", e.alice, e.bob)
	file := e.srv.AddFile(&webextest.File{Name: "notes.txt", ContentType: "text/plain", Data: []byte("plain notes")})
	m := e.srv.Post(room, e.bob, "see the notes", file)
	require.Zero(t, e.sync().Errors)

	fileID := identifier("MYWEBEX", room, m, 1)
	e.srv.ResetRequests()
	job, res, err := e.run("COLLECT", "Identifiers", fileID+","+fileID, "Destination", "twice")
	require.NoError(t, err)
	require.Equal(t, uint64(1), job.Snapshot()[0].Collected)
	require.Len(t, res[0].Children, 1, "listed once")
	require.Equal(t, "success", res[0].Children[0].Name)
	entries, err := os.ReadDir(filepath.Join(e.dir, "collect", "twice"))
	require.NoError(t, err)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	require.ElementsMatch(t, []string{"notes.txt", "notes.txt.idx"}, names, "written once")
	by, _ := e.srv.Requests()
	require.Equal(t, 1, by["GET /v1/contents/{id}"], "fetched once: %v", by)
}

// TestInsertWithTextAndMarkdownPostsBoth: an <insert> with both the
// property TEXT and MARKDOWN. Webex takes both (the text is the plain
// alternative for clients that do not show rich text, each at most 7439
// bytes); the connector posted the markdown alone and dropped the text
// the user gave without a word, and checked only the markdown's length.
// Both are now posted, and each is checked.
func TestInsertWithTextAndMarkdownPostsBoth(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Inbox", "group", e.alice, e.bob)
	e.cfg = e.config("OAuthScopes=spark:kms spark:rooms_read spark:messages_read spark:memberships_read spark:messages_write\nInsertRoomId=" + room)
	e.repo = e.newRepo()
	xml := `<insert><property name="TEXT" value="Release 2 is out (plain)"/><property name="MARKDOWN" value="**Release 2** is out"/></insert>`
	_, res, err := e.run("INSERT", "ConfigSection", "MyWebex", "InsertXML", xml)
	require.NoError(t, err)
	require.Len(t, res, 2)
	id, err := decodeIdentifier(res[1].Children[0].Text)
	require.NoError(t, err)
	got := e.srv.Message(id.Item)
	require.Equal(t, "**Release 2** is out", got.Markdown)
	require.Equal(t, "Release 2 is out (plain)", got.Text, "the text given is posted with the markdown")

	// Each is checked against Webex's limit, the text too.
	long := strings.Repeat("x", maxMessageBytes+1)
	for _, bad := range []string{
		`<insert><property name="TEXT" value="` + long + `"/><property name="MARKDOWN" value="short"/></insert>`,
		`<insert><property name="TEXT" value="short"/><property name="MARKDOWN" value="` + long + `"/></insert>`,
	} {
		_, err := e.repo.Validate("INSERT", messages.Params{{Name: "ConfigSection", Value: "MyWebex"}, {Name: "InsertXML", Value: bad}})
		var pe *messages.ParamError
		require.ErrorAs(t, err, &pe, bad[:60])
		require.Equal(t, "InsertXML", pe.Name)
	}
}
