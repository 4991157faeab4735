package mailfetch

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mimedoc"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/ingest"
)

// Document field names (docs/connectors/google-mail.md lists them; these
// names are ours: IDOL's Google Mail guide was not readable).
const (
	fieldIdentifier = "AUTN_IDENTIFIER"
	sectionSuffix   = "/;SECTION="
)

// built is one message's documents: the message first, then its
// attachments.
type built struct {
	docs     []*ingest.Document
	kids     []string // sections of the attachment documents
	title    string
	problems []string
	// extractFailures counts attachments whose text could not be
	// extracted (they are delivered without text).
	extractFailures int
}

// docBuilder turns messages into documents for one task.
type docBuilder struct {
	s       *settings
	account string
	x       *extract.Extractor
}

func newDocBuilder(s *settings) (*docBuilder, error) {
	x, err := extract.New(extract.Config{Limits: extract.Limits{
		MaxInputBytes: s.MaxMessageBytes + 1,
		MaxTextBytes:  s.ExtractTextBytes,
		Timeout:       s.ExtractTimeout,
	}})
	if err != nil {
		return nil, err
	}
	return &docBuilder{s: s, account: s.Username, x: x}, nil
}

// htmlText converts an HTML body with the extraction package.
func (b *docBuilder) htmlText(ctx context.Context) mimedoc.HTMLText {
	return func(data []byte, ct string) string {
		doc, err := b.x.Extract(ctx, extract.Input{Data: data, ContentType: ct, Name: "body.html"})
		if err != nil {
			return extract.DecodeText(data, ct)
		}
		return doc.Text
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// build reads a message and returns its documents.
func (b *docBuilder) build(ctx context.Context, task string, c mailbox.Collection, m *mailbox.Message) *built {
	p := mimedoc.Parse(m.Raw, m.Truncated, b.s.MIME, b.htmlText(ctx))
	out := &built{problems: p.Problems}
	title := p.Subject
	if title == "" {
		title = "(no subject)"
	}
	out.title = p.Subject
	date := p.Date
	if date.IsZero() {
		date = m.Received
	}
	// About 25 fields and one per address, label, flag and attachment.
	f := make([]ingest.Field, 0, 24+len(p.From)+len(p.To)+len(p.Cc)+len(p.Bcc)+len(p.References)+len(m.Labels)+len(m.Flags)+len(p.Attachments)+len(p.Problems))
	add := func(name, value string) {
		if value != "" {
			f = append(f, ingest.Field{Name: name, Value: value})
		}
	}
	addAll := func(name string, values []string) {
		for _, v := range values {
			add(name, v)
		}
	}
	id := Identifier{Task: task, Collection: c.Name, Key: m.Key}
	add(fieldIdentifier, id.Encode())
	add(ingest.FieldTitle, title)
	if !date.IsZero() {
		add(ingest.FieldDate, unix(date))
	}
	add("ACCOUNT", b.account)
	addAll("FROM", p.From)
	addAll("SENDER", p.Sender)
	addAll("REPLY_TO", p.ReplyTo)
	addAll("TO", p.To)
	addAll("CC", p.Cc)
	addAll("BCC", p.Bcc)
	add("SUBJECT", p.Subject)
	if !p.Date.IsZero() {
		add("DATE", unix(p.Date))
	}
	if !m.Received.IsZero() {
		add("RECEIVED", unix(m.Received))
	}
	add("MESSAGE_ID", p.MessageID)
	addAll("IN_REPLY_TO", p.InReplyTo)
	addAll("REFERENCES", p.References)
	add("THREAD_ID", threadID(m, p))
	add("GMAIL_ID", m.GmailID)
	add("FOLDER", c.Name)
	addAll("LABELS", m.Labels)
	addAll("FLAGS", m.Flags)
	if m.UID != 0 {
		add("IMAP_UID", strconv.FormatUint(uint64(m.UID), 10))
		add("IMAP_UIDVALIDITY", strconv.FormatUint(uint64(m.UIDValidity), 10))
	}
	add("SIZE", strconv.FormatInt(m.Size, 10))
	add("CONTENT_TYPE", "message/rfc822")
	if p.HTMLBody {
		add("BODY_FORMAT", "html")
	} else {
		add("BODY_FORMAT", "text")
	}
	if m.Truncated {
		add("MESSAGE_TRUNCATED", "true")
	}
	addAll("MIME_PROBLEM", p.Problems)
	var attachments []*mimedoc.Attachment
	if b.s.IngestAttachments {
		attachments = p.Attachments
	}
	add("ATTACHMENT_COUNT", strconv.Itoa(len(p.Attachments)))
	for _, a := range p.Attachments {
		add("ATTACHMENT_NAME", attachmentName(a))
	}
	parent := &ingest.Document{Reference: m.Reference, Fields: f, Content: p.Text}
	out.docs = append(out.docs, parent)
	for _, a := range attachments {
		if a.Truncated {
			// Cut at the size limit: not indexed as a half file.
			continue
		}
		out.docs = append(out.docs, b.attachment(ctx, task, c, m, p, a, date, out))
		out.kids = append(out.kids, a.Section)
	}
	return out
}

// threadID is Gmail's thread id, else the first message of the thread the
// References name, else the message's own id.
func threadID(m *mailbox.Message, p *mimedoc.Message) string {
	switch {
	case m.GmailThreadID != "":
		return m.GmailThreadID
	case len(p.References) > 0:
		return p.References[0]
	case len(p.InReplyTo) > 0:
		return p.InReplyTo[0]
	}
	return p.MessageID
}

func attachmentName(a *mimedoc.Attachment) string {
	if a.FileName != "" {
		return a.FileName
	}
	return "part " + a.Section
}

// attachment is the document of one attachment.
func (b *docBuilder) attachment(ctx context.Context, task string, c mailbox.Collection, m *mailbox.Message, p *mimedoc.Message, a *mimedoc.Attachment, date time.Time, out *built) *ingest.Document {
	f := make([]ingest.Field, 0, 16+len(p.From)+len(m.Labels))
	add := func(name, value string) {
		if value != "" {
			f = append(f, ingest.Field{Name: name, Value: value})
		}
	}
	ref := m.Reference + sectionSuffix + a.Section
	add(fieldIdentifier, Identifier{Task: task, Collection: c.Name, Key: m.Key, Section: a.Section}.Encode())
	add(ingest.FieldTitle, attachmentName(a))
	if !date.IsZero() {
		add(ingest.FieldDate, unix(date))
	}
	add("PARENT_REFERENCE", m.Reference)
	add("ACCOUNT", b.account)
	add("FILENAME", a.FileName)
	add("CONTENT_TYPE", a.ContentType)
	add("SIZE", strconv.Itoa(len(a.Data)))
	add("SECTION", a.Section)
	add("CONTENT_ID", a.ContentID)
	if a.Inline {
		add("INLINE", "true")
	}
	add("SUBJECT", p.Subject)
	for _, from := range p.From {
		add("FROM", from)
	}
	add("FOLDER", c.Name)
	for _, l := range m.Labels {
		add("LABELS", l)
	}
	var text string
	if b.s.ExtractText {
		doc, err := b.x.Extract(ctx, extract.Input{Data: a.Data, ContentType: a.ContentType, Name: a.FileName})
		switch {
		case err == nil:
			text = doc.Text
			add("EXTRACT_FORMAT", string(doc.Format))
			if doc.Truncated {
				add("EXTRACT_TRUNCATED", "true")
			}
			if doc.Pages > 0 {
				add("PAGE_COUNT", strconv.Itoa(doc.Pages))
			}
			add("AUTHOR", doc.Author)
		case errors.Is(err, extract.ErrUnsupported):
			// Not a document format (an image, an archive): no text.
		default:
			out.extractFailures++
			add("EXTRACT_ERROR", err.Error())
		}
	}
	return &ingest.Document{Reference: ref, Fields: f, Content: text, Source: a.Data, SourceType: a.ContentType}
}

// kidRefs returns the references of a message's attachment documents.
func kidRefs(ref string, sections []string) []string {
	out := make([]string, len(sections))
	for i, s := range sections {
		out[i] = ref + sectionSuffix + s
	}
	return out
}

// splitSection splits an attachment reference into the message's
// reference and the section ("" for a message reference).
func splitSection(ref string) (string, string) {
	if i := strings.LastIndex(ref, sectionSuffix); i >= 0 {
		return ref[:i], ref[i+len(sectionSuffix):]
	}
	return ref, ""
}
