package mailtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"strings"
	"time"
)

// Attachment is one attached file of a Message.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
	Inline      bool // Content-Disposition: inline (still a named file)
}

// Message is a mail message to write as RFC 5322 text.
type Message struct {
	From, To, Cc, Bcc string
	Subject           string // encoded as RFC 2047 when not ASCII
	Date              time.Time
	MessageID         string // without angle brackets; default made from the subject
	InReplyTo         string
	Text              string // text/plain part
	HTML              string // text/html part (alternative to Text when both)
	Attachments       []Attachment
}

// Raw returns the message as it would sit in a mailbox (CRLF line ends).
func (m Message) Raw() []byte {
	var b bytes.Buffer
	h := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	date := m.Date
	if date.IsZero() {
		date = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	}
	id := m.MessageID
	if id == "" {
		id = fmt.Sprintf("%x@mailtest", date.UnixNano()^int64(len(m.Subject))<<20^int64(hash(m.Subject+m.Text)))
	}
	h("From", m.From)
	h("To", m.To)
	h("Cc", m.Cc)
	h("Bcc", m.Bcc)
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", date.Format(time.RFC1123Z))
	h("Message-ID", "<"+id+">")
	if m.InReplyTo != "" {
		h("In-Reply-To", "<"+m.InReplyTo+">")
	}
	h("MIME-Version", "1.0")
	body := m.body()
	if len(m.Attachments) == 0 {
		b.Write(body)
		return b.Bytes()
	}
	const boundary = "mailtest-mixed-7c1f"
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\n", boundary)
	b.Write(body)
	for _, a := range m.Attachments {
		fmt.Fprintf(&b, "\r\n--%s\r\n", boundary)
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		disp := "attachment"
		if a.Inline {
			disp = "inline"
		}
		name := mime.QEncoding.Encode("utf-8", a.Name)
		fmt.Fprintf(&b, "Content-Type: %s; name=\"%s\"\r\nContent-Disposition: %s; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", ct, name, disp, name)
		// Lines of 76 characters, written into the buffer grown once: a
		// line made by concatenation (an allocation a line), into a
		// buffer that doubled as it grew, cost 60% more CPU under -race
		// for TestHostileMailboxSynchronizes' 50 MB attachment.
		enc := base64.StdEncoding.EncodeToString(a.Data)
		b.Grow(len(enc) + (len(enc)/76+1)*2)
		for len(enc) > 76 {
			b.WriteString(enc[:76])
			b.WriteString("\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc)
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

// body is the header fields and body of the message's text: a single
// text/plain or text/html part, or multipart/alternative of both.
func (m Message) body() []byte {
	var b bytes.Buffer
	part := func(ct, text string) {
		fmt.Fprintf(&b, "Content-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", ct, crlf(text))
	}
	switch {
	case m.Text != "" && m.HTML != "":
		const boundary = "mailtest-alt-3e9a"
		fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=%q\r\n\r\n--%s\r\n", boundary, boundary)
		part("text/plain", m.Text)
		fmt.Fprintf(&b, "--%s\r\n", boundary)
		part("text/html", m.HTML)
		fmt.Fprintf(&b, "--%s--\r\n", boundary)
	case m.HTML != "":
		part("text/html", m.HTML)
	default:
		part("text/plain", m.Text)
	}
	return b.Bytes()
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}
