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
