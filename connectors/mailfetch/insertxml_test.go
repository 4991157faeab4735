package mailfetch

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
)

// InsertXML whose <insert> elements are given one after the other,
// without an element around them, was decoded up to the end of the
// first: Insert appended the first message and succeeded, and the others
// were dropped without a word. Each top-level element is read now, as
// the other connectors read their InsertXML; XML that is not well-formed
// after the first is refused.
func TestInsertXMLReadsEveryTopLevelElement(t *testing.T) {
	s := &settings{MaxMessageBytes: DefaultMaxMessageBytes, InsertFolder: "INBOX"}
	one := base64.StdEncoding.EncodeToString([]byte("Subject: one\r\n\r\none\r\n"))
	docs, err := parseInsertXML(`<insert><file><type>content</type><content>`+one+`</content></file></insert>
<!-- the second -->
<insert><file><type>drecontent</type><content>Subject: two</content></file><metadata name="FOLDER" value="Archive"/><insert_id>2</insert_id></insert>`, s)
	require.NoError(t, err)
	require.Len(t, docs, 2)
	require.Equal(t, "Subject: one\r\n\r\none\r\n", string(docs[0].raw))
	require.Equal(t, "INBOX", docs[0].folder)
	require.Equal(t, "Subject: two", string(docs[1].raw))
	require.Equal(t, "Archive", docs[1].folder)
	require.Equal(t, "2", docs[1].insertID)

	docs, err = parseInsertXML(`<insertXML><insert><file><type>drecontent</type><content>Subject: a</content></file></insert><insert><file><type>drecontent</type><content>Subject: b</content></file></insert></insertXML>`, s)
	require.NoError(t, err)
	require.Len(t, docs, 2)

	_, err = parseInsertXML(`<insert><file><type>drecontent</type><content>Subject: a</content></file></insert><insert><file`, s)
	require.ErrorContains(t, err, "not well-formed XML")
}

// A FLAGS metadata value that is not IMAP flags (here "\Seen)") was
// accepted when the Insert was submitted; over IMAP the APPEND could not
// be written (go-imap refuses the flag half-way through the command),
// the connection was lost, and that message and every later one of the
// action failed with "connection lost" (against Dovecot: both messages
// of an Insert whose first had the flag). It is refused now when
// submitted, naming the flag; flags and keywords still pass, separated
// by spaces or commas.
func TestInsertXMLRefusesWhatIsNotAnIMAPFlag(t *testing.T) {
	s := &settings{MaxMessageBytes: DefaultMaxMessageBytes, InsertFolder: "INBOX"}
	insert := func(flags string) string {
		return `<insert><metadata name="FLAGS" value="` + flags + `"/><file><type>drecontent</type><content>Subject: a</content></file></insert>`
	}
	docs, err := parseInsertXML(insert(`\Seen, \Flagged $Label1 Junk`), s)
	require.NoError(t, err)
	require.Equal(t, []string{`\Seen`, `\Flagged`, `$Label1`, `Junk`}, docs[0].flags)
	for _, bad := range []string{`\Seen)`, `(\Seen`, `\Seen{3}`, `a%`, `a*`, `a&quot;b`, `a\b`, `\\Seen`, `\`, `a]`, `é`, "a&#127;b"} {
		_, err := parseInsertXML(insert(bad), s)
		require.ErrorContains(t, err, "not an IMAP flag", bad)
	}
}

// A FOLDER (or LABEL) with a line break or another control character
// was accepted when the Insert was submitted, and go-imap wrote it into
// the APPEND as it was: the line break ended the command line, the rest
// of the name went to the server as a command of its own (Dovecot
// answered its tag, unknown to the client), the connection was lost, and
// every later message of the action failed with "connection lost". It is
// refused now when submitted; other names (quotes, wildcards, accents)
// go to the server, which says whether the folder exists.
func TestInsertXMLRefusesAFolderWithAControlCharacter(t *testing.T) {
	s := &settings{MaxMessageBytes: DefaultMaxMessageBytes, InsertFolder: "INBOX"}
	insert := func(name, folder string) string {
		return `<insert><metadata name="` + name + `" value="` + folder + `"/><file><type>drecontent</type><content>Subject: a</content></file></insert>`
	}
	for _, bad := range []string{"INBOX&#13;&#10;X1 CREATE Injected", "a&#10;b", "a&#9;b", "a&#127;b"} {
		for _, name := range []string{"FOLDER", "LABEL"} {
			_, err := parseInsertXML(insert(name, bad), s)
			require.ErrorContains(t, err, "control character", bad)
		}
	}
	docs, err := parseInsertXML(insert("FOLDER", "Ünï &quot;*%")+insert("LABEL", " Archive "), s)
	require.NoError(t, err)
	require.Equal(t, `Ünï "*%`, docs[0].folder)
	require.Equal(t, "Archive", docs[1].folder)
}
