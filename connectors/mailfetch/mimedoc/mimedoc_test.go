package mimedoc

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

func TestParseFieldsTextAndAttachments(t *testing.T) {
	raw := mailtest.Message{
		From: `"Zoë Martin" <zoe@example.com>`, To: "alice@example.com, Bob <bob@example.com>", Cc: "carol@example.com",
		Bcc: "dave@example.com", Subject: "Réunion 0 – rapport", MessageID: "m1@example.com", InReplyTo: "m0@example.com",
		Date: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC),
		Text: "Bonjour,\nvoici le rapport.", HTML: "<p>Bonjour, <b>voici</b> le rapport.</p>",
		Attachments: []mailtest.Attachment{
			{Name: "report0.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4 fake")},
			{Name: "café.txt", ContentType: "text/plain", Data: []byte("une note")},
		},
	}.Raw()
	m := Parse(raw, false, Limits{}, nil)
	require.Empty(t, m.Problems)
	require.Equal(t, []string{"Zoë Martin <zoe@example.com>"}, m.From)
	require.Equal(t, []string{"alice@example.com", "Bob <bob@example.com>"}, m.To)
	require.Equal(t, []string{"carol@example.com"}, m.Cc)
	require.Equal(t, []string{"dave@example.com"}, m.Bcc)
	require.Equal(t, "Réunion 0 – rapport", m.Subject)
	require.Equal(t, "m1@example.com", m.MessageID)
	require.Equal(t, []string{"m0@example.com"}, m.InReplyTo)
	require.True(t, m.Date.Equal(time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)))
	require.Equal(t, "Bonjour,\r\nvoici le rapport.", m.Text, "the plain alternative is the text")
	require.False(t, m.HTMLBody)
	require.Len(t, m.Attachments, 2)
	require.Equal(t, "2", m.Attachments[0].Section)
	require.Equal(t, "report0.pdf", m.Attachments[0].FileName)
	require.Equal(t, "application/pdf", m.Attachments[0].ContentType)
	require.Equal(t, []byte("%PDF-1.4 fake"), m.Attachments[0].Data)
	require.Equal(t, "3", m.Attachments[1].Section)
	require.Equal(t, "café.txt", m.Attachments[1].FileName, "a named text part is an attachment, its name decoded")
}

func TestParseHTMLOnly(t *testing.T) {
	raw := mailtest.Message{From: "a@example.com", Subject: "s", HTML: "<html><body><h1>Title</h1><p>para &amp; more</p><script>x()</script></body></html>"}.Raw()
	m := Parse(raw, false, Limits{}, func(b []byte, ct string) string {
		require.Contains(t, ct, "text/html")
		return "converted:" + string(b[:6])
	})
	require.True(t, m.HTMLBody)
	require.Equal(t, "converted:<html>", m.Text)
	// Without a converter, tags are stripped, and the code of scripts
	// and style sheets left out.
	m = Parse(raw, false, Limits{}, nil)
	require.Equal(t, "Title para &amp; more", m.Text)
}

func TestParseSinglePartAttachmentIsSectionOne(t *testing.T) {
	raw := []byte("From: a@b\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n")
	m := Parse(raw, false, Limits{}, nil)
	require.Len(t, m.Attachments, 1)
	require.Equal(t, "1", m.Attachments[0].Section)
	require.Equal(t, []byte("%PDF-"), m.Attachments[0].Data)
	require.Empty(t, m.Text)
}

// Hostile mail: every case parses, quickly, and says what was wrong.
func TestParseHostileMail(t *testing.T) {
	deep := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("From: a@b\r\nSubject: deep\r\nMIME-Version: 1.0\r\n")
		for i := range n {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\r\n\r\nhello deep\r\n")
		for i := n - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		return b.Bytes()
	}
	manyParts := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("From: a@b\r\nContent-Type: multipart/mixed; boundary=P\r\n\r\n")
		for i := range n {
			fmt.Fprintf(&b, "--P\r\nContent-Type: application/octet-stream; name=p%d\r\n\r\nx\r\n", i)
		}
		b.WriteString("--P--\r\n")
		return b.Bytes()
	}
	cases := []struct {
		name    string
		raw     []byte
		check   func(t *testing.T, m *Message)
		problem string
	}{
		{"unknown charset", []byte("From: a@b\r\nSubject: =?x-unknown-42?Q?caf=E9?=\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\ncaf\xe9\r\n"),
			func(t *testing.T, m *Message) {
				require.Equal(t, "=?x-unknown-42?Q?caf=E9?=", m.Subject, "an undecodable word is kept as written")
				require.Equal(t, "café", m.Text, "unknown charset: Windows-1252 for invalid UTF-8")
			}, "unknown charset"},
		{"koi8-r body and RFC 2047", []byte("From: =?koi8-r?B?8NLJ18XU?= <a@b>\r\nSubject: =?utf-8?Q?R=C3=A9union?=\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n"),
			func(t *testing.T, m *Message) {
				require.Equal(t, []string{"Привет <a@b>"}, m.From)
				require.Equal(t, "Réunion", m.Subject)
				require.Equal(t, "Привет", m.Text)
			}, ""},
		{"no closing boundary", []byte("From: a@b\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n--Z\r\nContent-Type: text/plain\r\n\r\ntext part\r\n--Z\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF-1.4 cut"),
			func(t *testing.T, m *Message) {
				require.Equal(t, "text part", m.Text)
				require.Len(t, m.Attachments, 1)
				require.Equal(t, "a.pdf", m.Attachments[0].FileName)
			}, "part 2"},
		{"bad base64", []byte("From: a@b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8g!!!d29ybGQ=\r\n"),
			func(t *testing.T, m *Message) { require.Equal(t, "hello world", m.Text) }, "base64"},
		{"multipart without boundary", []byte("From: a@b\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nhello\r\n"),
			func(t *testing.T, m *Message) { require.Contains(t, m.Text, "hello") }, "without a boundary"},
		{"garbage header", []byte("From a@b\x00\r\n:::\r\nSubject: still here\r\n\r\nbody"),
			func(t *testing.T, m *Message) {
				require.Equal(t, "still here", m.Subject)
				require.Equal(t, "body", m.Text)
			}, "malformed line"},
		{"8-bit header", []byte("From: Jos\xe9 <a@b>\r\nSubject: caf\xe9\r\n\r\nbody"),
			func(t *testing.T, m *Message) {
				require.Equal(t, "café", m.Subject)
				require.Equal(t, []string{"José <a@b>"}, m.From)
			}, ""},
		{"empty", nil, func(t *testing.T, m *Message) { require.Empty(t, m.Text) }, ""},
		{"no header", []byte("\r\njust a body"), func(t *testing.T, m *Message) { require.Equal(t, "just a body", m.Text) }, ""},
		{"bad content type", []byte("From: a@b\r\nContent-Type: ;;;==\r\n\r\nbody"),
			func(t *testing.T, m *Message) { require.Len(t, m.Attachments, 1) }, ""},
		{"nested 100 deep", deep(100), func(t *testing.T, m *Message) { require.Empty(t, m.Text) }, "nested deeper than 32"},
		{"nested 5000 deep", deep(5000), func(t *testing.T, m *Message) { require.Empty(t, m.Text) }, "nested deeper than 32"},
		{"nested 10 deep", deep(10), func(t *testing.T, m *Message) { require.Equal(t, "hello deep", m.Text) }, ""},
		{"100000 parts", manyParts(100000), func(t *testing.T, m *Message) { require.Len(t, m.Attachments, DefaultMaxParts-1) }, "more than 1000 parts"},
		{"huge header", append([]byte("From: a@b\r\nX-Big: "+strings.Repeat("x", 2<<20)+"\r\n\r\n"), "body"...),
			func(t *testing.T, m *Message) { require.Equal(t, []string{"a@b"}, m.From) }, "header block larger"},
		{"bad date", []byte("From: a@b\r\nDate: yesterday-ish\r\n\r\nx"), func(t *testing.T, m *Message) { require.True(t, m.Date.IsZero()) }, "not a date"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			m := Parse(c.raw, false, Limits{}, nil)
			require.Less(t, time.Since(start), 20*time.Second)
			c.check(t, m)
			if c.problem == "" {
				require.Empty(t, m.Problems)
				return
			}
			require.True(t, strings.Contains(strings.Join(m.Problems, "|"), c.problem), "problems %q should mention %q", m.Problems, c.problem)
		})
	}
}

// A header block one byte longer than MaxHeaderBytes is reported, also
// when the limit falls between the CR and the LF of its blank line.
func TestParseHeaderOneByteOverTheLimit(t *testing.T) {
	for _, nl := range []string{"\r\n", "\n"} {
		head := "From: a@b" + nl + "Subject: s" + nl + nl
		for _, limit := range []int{len(head) - 1, len(head)} {
			m := Parse([]byte(head+"body"), false, Limits{MaxHeaderBytes: limit}, nil)
			require.Equal(t, []string{"a@b"}, m.From)
			over := slices.ContainsFunc(m.Problems, func(p string) bool { return strings.Contains(p, "header block larger") })
			require.Equal(t, limit < len(head), over, "block of %d bytes, limit %d: %q", len(head), limit, m.Problems)
		}
	}
}

func TestParseTruncatedMessageMarksTheCutPart(t *testing.T) {
	raw := mailtest.Message{From: "a@b", Subject: "big", Text: "the text",
		Attachments: []mailtest.Attachment{{Name: "big.bin", Data: bytes.Repeat([]byte("A"), 100000)}}}.Raw()
	m := Parse(raw[:len(raw)/2], true, Limits{}, nil)
	require.Equal(t, "the text", m.Text)
	require.Len(t, m.Attachments, 1)
	require.True(t, m.Attachments[0].Truncated)
	require.Less(t, len(m.Attachments[0].Data), 100000)
}

// A message whose whole body is a file (a scanner's "Content-Type:
// application/pdf" message, a forwarded file sent alone) and that was cut
// at the size limit: its one part is the cut one. It was not marked
// (only a part cut before its multipart delimiter was), so half a file
// was delivered and extracted as if whole: a truncated PDF's extraction
// error, a truncated spreadsheet's rows indexed as all of it.
func TestParseTruncatedSinglePartFileIsMarked(t *testing.T) {
	data := bytes.Repeat([]byte("%PDF-1.7 0123456789abcdef\n"), 4000)
	for _, cte := range []string{"base64", "7bit"} {
		body := string(data)
		if cte == "base64" {
			body = base64.StdEncoding.EncodeToString(data)
			var lines []string
			for len(body) > 76 {
				lines, body = append(lines, body[:76]), body[76:]
			}
			body = strings.Join(append(lines, body), "\r\n")
		}
		raw := []byte("From: scanner@example.com\r\nSubject: Scan\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n" +
			"Content-Transfer-Encoding: " + cte + "\r\n\r\n" + body)
		whole := Parse(raw, false, Limits{}, nil)
		require.Len(t, whole.Attachments, 1, cte)
		require.False(t, whole.Attachments[0].Truncated, cte)
		require.True(t, bytes.Equal(data, whole.Attachments[0].Data), cte)

		m := Parse(raw[:len(raw)/2], true, Limits{}, nil)
		require.Len(t, m.Attachments, 1, cte)
		require.Equal(t, "scan.pdf", m.Attachments[0].FileName, cte)
		require.True(t, m.Attachments[0].Truncated, "%s: the file of a cut message is cut", cte)
		require.Less(t, len(m.Attachments[0].Data), len(data), cte)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(mailtest.Message{From: "a@b", Subject: "s", Text: "t", HTML: "<p>h</p>",
		Attachments: []mailtest.Attachment{{Name: "a.bin", Data: []byte{1, 2}}}}.Raw(), false)
	f.Add([]byte("From: a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\n--a--"), true)
	f.Fuzz(func(t *testing.T, raw []byte, truncated bool) {
		m := Parse(raw, truncated, Limits{MaxParts: 50, MaxDepth: 8}, nil)
		if m == nil {
			t.Fatal("nil message")
		}
		total := 0
		for _, a := range m.Attachments {
			total += len(a.Data)
		}
		if total > 2*len(raw)+16 {
			t.Fatalf("attachments hold %d bytes of a %d-byte message", total, len(raw))
		}
		// Nothing holds the message unless its text or an attachment does.
		held := within(m.Text, raw)
		for _, a := range m.Attachments {
			held = held || len(a.Data) > 0 && within(unsafe.String(&a.Data[0], len(a.Data)), raw)
		}
		if !held {
			if got := rawStrings(m, raw); len(got) > 0 {
				t.Fatalf("the message is held by %q", got)
			}
		}
	})
}

// parseDate's short cut gives what mail.ParseDate gives, instant, zone
// and error alike.
func TestParseDateIsMails(t *testing.T) {
	dates := []string{
		"Mon, 02 Nov 2026 09:30:00 +0000", "Mon, 2 Nov 2026 09:30:00 +0100", "Tue, 31 Dec 1999 23:59:59 -0800",
		"Fri, 13 Feb 2026 01:02:03 +0530", "mon, 02 Nov 2026 09:30:00 +0000", "Xyz, 02 Nov 2026 09:30:00 +0000",
		"Mon, 32 Nov 2026 09:30:00 +0000", "Mon, 02 Foo 2026 09:30:00 +0000", "Mon, 02 Nov 2026 25:30:00 +0000",
		"Mon, 02 Nov 2026 09:30:00 +9999", "Mon, 02 Nov 2026 09:30:00 +0000 (UTC)", "Mon, 02 Nov 2026 09:30 +0000",
		"02 Nov 2026 09:30:00 +0000", "Mon, 02 Nov 26 09:30:00 +0000", "Mon, 02 Nov 2026 09:30:00 GMT",
		"Mon,  2 Nov 2026 09:30:00 +0000", "Mon, 123 Nov 2026 09:30:00 +0000", "Mon, 2 Nov 2026 09:30:00 +000",
		"Mon, 29 Feb 2025 09:30:00 +0000", "Mon, 02 Nov 2026 09:30:60 +0000", "", "garbage", "Mon, 02 Nov 2026 09:30:00 -0000",
	}
	for _, s := range dates {
		want, werr := mail.ParseDate(s)
		got, gerr := parseDate(s)
		require.Equal(t, werr != nil, gerr != nil, "%q: %v / %v", s, werr, gerr)
		require.True(t, want.Equal(got), "%q", s)
		wn, wo := want.Zone()
		gn, goff := got.Zone()
		require.Equal(t, []any{wn, wo, want.Location().String()}, []any{gn, goff, got.Location().String()}, "%q", s)
	}
}

// RFC 2231 file names in the sender's charset (mutt, older Thunderbird),
// continued over several parameters, or in a header mime.ParseMediaType
// refuses whole, keep their names: they were dropped (the attachment
// indexed without ATTACHMENT_NAME, an inline text part read into the
// body), or cut to the segments after the encoded first one.
func TestParseRFC2231FileNames(t *testing.T) {
	msg := func(headers string) []byte {
		return []byte("From: a@b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n" +
			headers + "\r\n\r\nxx\r\n--b--\r\n")
	}
	for _, c := range []struct{ headers, want string }{
		{"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=iso-8859-1''caf%E9.pdf", "café.pdf"},
		{"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=UTF-8''caf%C3%A9.pdf", "café.pdf"},
		{"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=ISO-8859-1''r%E9sum%E9%20;\r\n filename*1=\"name.pdf\"", "résumé name.pdf"},
		{"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8''very%20long%20;\r\n filename*1=\"name.pdf\"", "very long name.pdf"},
		{"Content-Type: application/pdf; name*=windows-1252''%93q%94.pdf\r\nContent-Disposition: attachment", "\u201cq\u201d.pdf"},
		{"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=UTF-8''caf%C3%A9.pdf; size=1; size=2", "café.pdf"},
		{"Content-Type: text/plain\r\nContent-Disposition: inline; filename*=iso-8859-1''notes%E9.txt", "notesé.txt"},
		{"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"plain.pdf\"", "plain.pdf"},
	} {
		m := Parse(msg(c.headers), false, Limits{}, nil)
		require.Len(t, m.Attachments, 1, c.headers)
		require.Equal(t, c.want, m.Attachments[0].FileName, c.headers)
		require.Equal(t, "hi", m.Text, c.headers)
	}
}

// A Content-Type without its subtype is not a media type (RFC 2045
// grammar): 5.2 reads it as the default, text/plain. Read as the type
// "text", the body of such a message was an attachment, and the message's
// document had no text.
func TestParseContentTypeWithoutSubtypeIsTextPlain(t *testing.T) {
	m := Parse([]byte("From: a@b\r\nContent-Type: text; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n"), false, Limits{}, nil)
	require.Empty(t, m.Attachments)
	require.Equal(t, "café", m.Text)
}

// TestParseDigestPartsAreMessages: in a multipart/digest a part without a
// Content-Type is a message/rfc822 (RFC 2046 5.1.5), not text/plain. Read
// as text, a mailing-list digest's messages went into its text raw (their
// headers, their base64 or quoted-printable bodies undecoded), and were
// never attachments read as messages.
func TestParseDigestPartsAreMessages(t *testing.T) {
	raw := []byte("From: list@example.com\r\nSubject: digest\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/digest; boundary=\"d\"\r\n\r\n" +
		"--d\r\n\r\nFrom: a@example.com\r\nSubject: one\r\nContent-Transfer-Encoding: base64\r\n\r\nY2Fmw6k=\r\n" +
		"--d\r\nContent-Type: text/plain\r\n\r\nan explicit text part\r\n" +
		"--d--\r\n")
	m := Parse(raw, false, Limits{}, nil)
	require.Empty(t, m.Problems)
	require.Equal(t, "an explicit text part", m.Text, "a part typed text/plain stays text")
	require.Len(t, m.Attachments, 1)
	a := m.Attachments[0]
	require.Equal(t, "1", a.Section)
	require.Equal(t, "message/rfc822", a.ContentType)
	require.Equal(t, "message.eml", a.FileName)
	require.Contains(t, string(a.Data), "Subject: one")
}
