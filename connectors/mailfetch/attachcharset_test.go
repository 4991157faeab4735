package mailfetch

import (
	"testing"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/stretchr/testify/require"
)

// A text attachment in a legacy charset (a .txt in KOI8-R, a CSV in
// Shift_JIS) says so in its part's Content-Type, but the attachment kept
// the bare media type: extraction, without the charset, read the bytes as
// Windows-1252 and indexed "рТЙЧЕФ" for "Привет". The charset goes with
// the attachment to the extractor, as it does for a message's body.
func TestTextAttachmentInItsCharset(t *testing.T) {
	g, api, _ := gmailRig(t, false, "")
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "files", Text: "see attached",
		Attachments: []mailtest.Attachment{
			{Name: "notes.txt", ContentType: "text/plain; charset=koi8-r", Data: []byte("\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2")},
			{Name: "items.csv", ContentType: "text/csv; charset=Shift_JIS", Data: []byte("\x83e\x83X\x83g,1")},
			{Name: "page.html", ContentType: "text/html; charset=koi8-r", Data: []byte("<p>\xf0\xd2\xc9\xd7\xc5\xd4</p>")},
		}}.Raw(), "INBOX")
	g.mustRun("Synchronize")
	for name, want := range map[string]string{"notes.txt": "Привет мир", "items.csv": "テスト,1", "page.html": "Привет"} {
		d := g.target.Find("FILENAME", name)
		require.Len(t, d, 1, name)
		require.Equal(t, want, d[0].Content, name)
		require.Equal(t, "", resttest.Field1(d[0], "EXTRACT_ERROR"), name)
	}
}

// A message forwarded as an attachment (message/rfc822, Outlook's
// "Forward as attachment", a bounce's returned message) had no text: the
// extractor knows no mail format, so its DRECONTENT was empty and it could
// be found by its file name only. Its text is its From, To, Cc and Subject
// lines, then its body's text, read as the message's own body is.
func TestAttachedMessageHasText(t *testing.T) {
	g, api, _ := gmailRig(t, false, "")
	inner := mailtest.Message{From: "carol@example.com", To: "dave@example.com", Subject: "Budget 2027",
		Text:        "The budget is approved.",
		Attachments: []mailtest.Attachment{{Name: "notes.txt", ContentType: "text/plain", Data: []byte("inner notes")}}}.Raw()
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "fwd", Text: "see the attached message",
		Attachments: []mailtest.Attachment{{Name: "budget.eml", ContentType: "message/rfc822", Data: inner}}}.Raw(), "INBOX")
	g.mustRun("Synchronize")
	d := g.target.Find("FILENAME", "budget.eml")
	require.Len(t, d, 1)
	require.Contains(t, d[0].Content, "From: carol@example.com\nTo: dave@example.com\nSubject: Budget 2027\n\nThe budget is approved.")
	require.Equal(t, "eml", resttest.Field1(d[0], "EXTRACT_FORMAT"))
}

// A message attached as message/global (RFC 6532: a message whose header
// is in UTF-8, as a client forwards an internationalised message), or as
// a file named .eml under a generic type (a message saved to disk and
// attached by a client that does not know the type), had no text: only
// message/rfc822 was read as a message. A file named .eml that is no
// message is not read as one.
func TestAttachedMessageOfAnyMessageTypeHasText(t *testing.T) {
	g, api, _ := gmailRig(t, false, "")
	inner := mailtest.Message{From: "carol@example.com", To: "dave@example.com", Subject: "Budget 2027",
		Text: "The budget is approved."}.Raw()
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "fwd", Text: "see the attached messages",
		Attachments: []mailtest.Attachment{
			{Name: "global.eml", ContentType: "message/global", Data: inner},
			{ContentType: "message/global", Data: inner}, // named message.eml, as message/rfc822 is
			{Name: "saved.eml", ContentType: "application/octet-stream", Data: inner},
			{Name: "SAVED2.EML", ContentType: "Application/Octet-Stream", Data: inner},
			{Name: "image.eml", ContentType: "application/octet-stream", Data: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")},
		}}.Raw(), "INBOX")
	g.mustRun("Synchronize")
	for _, name := range []string{"global.eml", "message.eml", "saved.eml", "SAVED2.EML"} {
		d := g.target.Find("FILENAME", name)
		require.Len(t, d, 1, name)
		require.Equal(t, "From: carol@example.com\nTo: dave@example.com\nSubject: Budget 2027\n\nThe budget is approved.", d[0].Content, name)
		require.Equal(t, "eml", resttest.Field1(d[0], "EXTRACT_FORMAT"), name)
	}
	d := g.target.Find("FILENAME", "image.eml")
	require.Len(t, d, 1)
	require.Empty(t, d[0].Content, "no message: no text")
	require.Empty(t, resttest.Field1(d[0], "EXTRACT_FORMAT"))
}
