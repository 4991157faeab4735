package restsync

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// InsertXML whose <insert> elements are given one after the other,
// without an element around them, was decoded up to the end of the
// first: Insert posted the first message (or uploaded the first Objective
// document) and succeeded, and the others were dropped without a word.
// Each top-level element is read now, as the HTTP connector reads its
// InsertXML; XML that is not well-formed after the first is refused.
func TestInsertXMLReadsEveryTopLevelElement(t *testing.T) {
	docs, err := ParseInsertXML(`<insert><property name="TEXT" value="one"/></insert>
<!-- the second -->
<insert><property name="TEXT" value="two"/><insert_id>2</insert_id></insert>`)
	require.NoError(t, err)
	require.Len(t, docs, 2)
	require.Equal(t, "one", docs[0].Property("TEXT"))
	require.Equal(t, "two", docs[1].Property("TEXT"))
	require.Equal(t, "2", docs[1].InsertID)

	docs, err = ParseInsertXML(`<insertXML><insert><property name="TEXT" value="one"/></insert><insert><property name="TEXT" value="two"/></insert></insertXML>`)
	require.NoError(t, err)
	require.Len(t, docs, 2)

	_, err = ParseInsertXML(`<insert><property name="TEXT" value="one"/></insert><insert><property`)
	require.ErrorContains(t, err, "not well-formed XML")
}
