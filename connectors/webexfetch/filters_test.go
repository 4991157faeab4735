package webexfetch

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/extract"
)

// A space the task's filters no longer take (its title now matches
// RoomTitleCantHaveRegex, its type left RoomTypes) is removed with its
// messages, as a space that left the account is: it is no longer
// indexed, and its documents must not stay searchable for ever.
func TestRoomNoLongerWantedIsRemoved(t *testing.T) {
	e := newEnv(t)
	keep := e.srv.AddRoom("General", "group", e.alice, e.bob)
	secret := e.srv.AddRoom("top secret", "group", e.alice, e.bob)
	direct := e.srv.AddRoom("Bob", "direct", e.alice, e.bob)
	m1 := e.srv.Post(keep, e.bob, "hello")
	m2 := e.srv.Post(secret, e.bob, "the plans")
	m3 := e.srv.Post(direct, e.bob, "psst")
	c := e.sync()
	require.Equal(t, uint64(6), c.Added)

	e.reconfigure("RoomTypes=group\nRoomTitleCantHaveRegex=.*secret.*")
	c = e.sync()
	require.Equal(t, uint64(4), c.Deleted, "%+v", c)
	require.Nil(t, e.target.Get(roomRefOf(e, secret)))
	require.Nil(t, e.target.Get(msgRef(e, m2)))
	require.Nil(t, e.target.Get(roomRefOf(e, direct)))
	require.Nil(t, e.target.Get(msgRef(e, m3)))
	require.NotNil(t, e.target.Get(roomRefOf(e, keep)))
	require.NotNil(t, e.target.Get(msgRef(e, m1)))
	require.Equal(t, 2, e.target.Len())

	// Nothing left to remove.
	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}

// A space renamed: its messages' documents name it by its new title (their
// DRETITLE and WEBEX_ROOM_TITLE), their files' too, not only the space's
// own document.
func TestRoomRenamedRetitlesItsMessages(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Project Falcon", "group", e.alice, e.bob)
	old := e.srv.Post(room, e.bob, "Kick-off on Monday")
	word := e.srv.AddFile(&webextest.File{Name: "notes.txt", ContentType: "text/plain", Data: []byte("agenda")})
	withFile := e.srv.Post(room, e.alice, "notes", word)
	e.srv.Advance(time.Hour)
	e.sync()
	require.Equal(t, "Project Falcon: Kick-off on Monday", field1(e.doc(msgRef(e, old)), "DRETITLE"))

	e.srv.RenameRoom(room, "Project Osprey")
	c := e.sync()
	require.Zero(t, c.Errors)
	require.Equal(t, "Project Osprey", field1(e.doc(roomRefOf(e, room)), "DRETITLE"))
	d := e.doc(msgRef(e, old))
	require.Equal(t, "Project Osprey: Kick-off on Monday", field1(d, "DRETITLE"))
	require.Equal(t, "Project Osprey", field1(d, "WEBEX_ROOM_TITLE"))
	require.Equal(t, "Project Osprey", field1(e.doc(msgRef(e, withFile)), "WEBEX_ROOM_TITLE"))
	require.Equal(t, "Project Osprey", field1(e.doc(word), "WEBEX_ROOM_TITLE"))

	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}

// MappedSecurity turned on for a task that indexed without it: every
// message gets its space's members as its security, not only those
// posted from then on.
func TestMappedSecurityTurnedOnSecuresEveryMessage(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "MappedSecurity=FALSE" })
	room := e.srv.AddRoom("Project Falcon", "group", e.alice, e.bob)
	m := e.srv.Post(room, e.bob, "Kick-off on Monday")
	e.sync()
	require.Empty(t, field1(e.doc(msgRef(e, m)), "AUTONOMYMETADATA"))

	e.reconfigure("MappedSecurity=TRUE")
	e.sync()
	require.Equal(t, "0:U:alice%40example.com,bob%40example.com:G:", field1(e.doc(msgRef(e, m)), "AUTONOMYMETADATA"))
	require.Equal(t, "0:U:alice%40example.com,bob%40example.com:G:", field1(e.doc(roomRefOf(e, room)), "AUTONOMYMETADATA"), "the space's own document too")

	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}

// MappedSecurity turned off for a task that indexed with it: every
// space's documents are delivered again without their ACLs, once. Before,
// the messages, files and spaces already indexed kept their members' ACL
// (and SECURITYTYPE) for good, hidden from those the administrator meant
// to open them to, until each changed.
func TestMappedSecurityTurnedOffDropsTheACLs(t *testing.T) {
	e := newEnv(t)
	room := e.srv.AddRoom("Project Falcon", "group", e.alice, e.bob)
	m := e.srv.Post(room, e.bob, "Kick-off on Monday")
	f := e.srv.AddFile(&webextest.File{Name: "a.txt", ContentType: "text/plain", Data: []byte("agenda")})
	e.srv.Post(room, e.alice, "the agenda", f)
	e.sync()
	require.NotEmpty(t, field1(e.doc(msgRef(e, m)), "AUTONOMYMETADATA"))

	e.reconfigure("MappedSecurity=FALSE")
	e.sync()
	for _, ref := range []string{msgRef(e, m), f, roomRefOf(e, room)} {
		require.Empty(t, field(e.doc(ref), "AUTONOMYMETADATA"), ref)
		require.Empty(t, field(e.doc(ref), "SECURITYTYPE"), ref)
	}
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "once: %+v", c)
}

// IndexFiles turned on for a task that indexed without it: the files of
// the messages already indexed become documents, not only those posted
// from then on; a larger MaxFileBytes reads a file it had only
// described. Messages without files are not delivered again.
func TestFileSettingsChangedReindexFiles(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.settings = "IndexFiles=FALSE\nMaxFileBytes=4" })
	notes := postNotes(e)
	require.Nil(t, e.target.Get(notes), "no file document")

	e.reconfigure("IndexFiles=TRUE\nMaxFileBytes=4")
	c := e.sync()
	require.Equal(t, "true", field1(e.doc(notes), "FILE_TOO_LARGE"))
	require.Equal(t, uint64(2), c.Updated, "the message with a file and its file: %+v", c)

	e.reconfigure("IndexFiles=TRUE\nMaxFileBytes=1024")
	c = e.sync()
	require.Equal(t, "agenda items", strings.TrimSpace(e.doc(notes).Content))
	require.Equal(t, uint64(2), c.Updated, "%+v", c)

	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}

// A server from before the extractor's version was recorded indexed the
// files; the first Synchronize of this one delivers every message with a
// file and its file again, once, so that extraction fixes reach them
// (docs/extraction.md, "Re-extraction after an upgrade"). Messages
// without files are not delivered again. Before, nothing already indexed
// changed until it changed in Webex.
func TestNewExtractorVersionDeliversFilesAgainOnce(t *testing.T) {
	extractVersion = 0
	t.Cleanup(func() { extractVersion = extract.Version })
	e := newEnv(t, func(o *envOptions) { o.settings = "IndexFiles=TRUE" })
	notes := postNotes(e)
	require.NotNil(t, e.target.Get(notes), "the file indexed by the older server")
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)

	extractVersion = extract.Version
	c = e.sync()
	require.Equal(t, uint64(2), c.Updated, "the message with a file and its file: %+v", c)
	require.Equal(t, "agenda items", strings.TrimSpace(e.doc(notes).Content))

	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "once: %+v", c)
}

// postNotes posts, in a new space, a message without a file and one with
// a text file (returned), and synchronizes.
func postNotes(e *env) string {
	room := e.srv.AddRoom("Project Falcon", "group", e.alice, e.bob)
	e.srv.Post(room, e.bob, "Kick-off on Monday")
	notes := e.srv.AddFile(&webextest.File{Name: "notes.txt", ContentType: "text/plain", Data: []byte("agenda items")})
	e.srv.Post(room, e.alice, "notes", notes)
	e.srv.Advance(time.Hour)
	e.sync()
	return notes
}
