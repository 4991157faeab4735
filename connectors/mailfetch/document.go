package mailfetch

import (
	"cmp"
	"context"
	"errors"
	"mime"
	"path"
	"slices"
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
	docs     []*ingest.Document // docsArr[:n] unless more than fit
	docsArr  [2]*ingest.Document
	parent   ingest.Document // docs[0]
	kids     []string        // sections of the attachment documents
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

// htmlText converts an HTML body with the extraction package; when that
// fails (its ExtractTimeout passed, its bytes are another format's), with
// the plain tag stripper: never as its raw markup.
func (b *docBuilder) htmlText(ctx context.Context) mimedoc.HTMLText {
	return func(data []byte, ct string) string {
		doc, err := b.x.Extract(ctx, extract.Input{Data: data, ContentType: ct, Name: "body.html"})
		if err != nil {
			return mimedoc.StripHTML(data, ct)
		}
		return doc.Text
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// build reads a message and returns its documents.
func (b *docBuilder) build(ctx context.Context, task string, c mailbox.Collection, m *mailbox.Message) *built {
	return b.buildWith(b.scratch(ctx), ctx, task, c, m)
}

// buildScratch is what a goroutine that builds documents keeps from one
// message to the next.
type buildScratch struct {
	toText mimedoc.HTMLText // b.htmlText(ctx)
	// fields gathers a document's fields, which are then copied to a
	// slice of their exact size: the size of a slice made for the most a
	// message could have was a tenth of the bytes a Synchronize allocated.
	fields []ingest.Field
}

func (b *docBuilder) scratch(ctx context.Context) *buildScratch {
	return &buildScratch{toText: b.htmlText(ctx), fields: make([]ingest.Field, 0, 32)}
}

// fieldsOf returns a copy of f, of its exact size, and empties the
// scratch for the next document.
func (s *buildScratch) fieldsOf(f []ingest.Field) []ingest.Field {
	out := slices.Clone(f)
	clear(f) // the values are the message's: not kept alive by the scratch
	s.fields = f[:0]
	return out
}

// buildWith is build with the scratch of the calling goroutine
// (b.scratch(ctx), made once per goroutine, not per message).
func (b *docBuilder) buildWith(sc *buildScratch, ctx context.Context, task string, c mailbox.Collection, m *mailbox.Message) *built {
	p := mimedoc.Parse(m.Raw, m.Truncated, b.s.MIME, sc.toText)
	out := &built{problems: p.Problems}
	out.docs = out.docsArr[:0]
	title := p.Subject
	if title == "" {
		title = "(no subject)"
	}
	out.title = p.Subject
	date := p.Date
	if date.IsZero() {
		date = m.Received
	}
	f := sc.fields[:0]
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
	// The numeric values in one string, of which the fields hold slices:
	// one allocation, not one per value.
	var nbuf [5 * 20]byte
	nb := nbuf[:0]
	var ends [5]int // of each value in nb; 0 for one left out
	if !date.IsZero() {
		nb = strconv.AppendInt(nb, date.Unix(), 10)
		ends[0] = len(nb)
	}
	if !m.Received.IsZero() {
		nb = strconv.AppendInt(nb, m.Received.Unix(), 10)
		ends[1] = len(nb)
	}
	if m.UID != 0 {
		nb = strconv.AppendUint(nb, uint64(m.UID), 10)
		ends[2] = len(nb)
		nb = strconv.AppendUint(nb, uint64(m.UIDValidity), 10)
		ends[3] = len(nb)
	}
	nb = strconv.AppendInt(nb, m.Size, 10)
	ends[4] = len(nb)
	nums := string(nb)
	var num [5]string // date, received, UID, UIDVALIDITY, size
	start := 0
	for i, end := range ends {
		if end > 0 {
			num[i], start = nums[start:end], end
		}
	}
	id := Identifier{Task: task, Collection: c.Name, Key: m.Key}
	add(fieldIdentifier, id.Encode())
	add(ingest.FieldTitle, title)
	add(ingest.FieldDate, num[0])
	add("ACCOUNT", b.account)
	addAll("FROM", p.From)
	addAll("SENDER", p.Sender)
	addAll("REPLY_TO", p.ReplyTo)
	addAll("TO", p.To)
	addAll("CC", p.Cc)
	addAll("BCC", p.Bcc)
	add("SUBJECT", p.Subject)
	if !p.Date.IsZero() {
		add("DATE", num[0]) // date is p.Date
	}
	add("RECEIVED", num[1])
	add("MESSAGE_ID", p.MessageID)
	addAll("IN_REPLY_TO", p.InReplyTo)
	addAll("REFERENCES", p.References)
	add("THREAD_ID", threadID(m, p))
	add("GMAIL_ID", m.GmailID)
	add("FOLDER", c.Name)
	addAll("LABELS", m.Labels)
	addAll("FLAGS", m.Flags)
	add("IMAP_UID", num[2])
	add("IMAP_UIDVALIDITY", num[3])
	add("SIZE", num[4])
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
	out.parent = ingest.Document{Reference: m.Reference, Fields: sc.fieldsOf(f), Content: p.Text}
	out.docs = append(out.docs, &out.parent)
	for _, a := range attachments {
		if a.Truncated {
			// Cut at the size limit: not indexed as a half file.
			continue
		}
		out.docs = append(out.docs, b.attachment(sc, ctx, task, c, m, p, a, date, out))
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
func (b *docBuilder) attachment(sc *buildScratch, ctx context.Context, task string, c mailbox.Collection, m *mailbox.Message, p *mimedoc.Message, a *mimedoc.Attachment, date time.Time, out *built) *ingest.Document {
	f := sc.fields[:0]
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
		data, ct, format := a.Data, a.ContentType, ""
		switch {
		case attachedMessage(a):
			// A message forwarded as an attachment: its text, cut at
			// the text limit by the extractor as plain text.
			inner := mimedoc.Parse(a.Data, a.Truncated, b.s.MIME, sc.toText)
			if ct == "message/rfc822" || ct == "message/global" || hasHeader(inner) {
				data, ct, format = []byte(messageText(inner)), "text/plain; charset=utf-8", "eml"
			}
		case a.Charset != "":
			// A text attachment is in the charset its part declares.
			if withCS := mime.FormatMediaType(ct, map[string]string{"charset": a.Charset}); withCS != "" {
				ct = withCS
			}
		}
		doc, err := b.x.Extract(ctx, extract.Input{Data: data, ContentType: ct, Name: a.FileName})
		switch {
		case err == nil:
			text = doc.Text
			add("EXTRACT_FORMAT", cmp.Or(format, string(doc.Format)))
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
	return &ingest.Document{Reference: ref, Fields: sc.fieldsOf(f), Content: text, Source: a.Data, SourceType: a.ContentType}
}

// attachedMessage reports whether a is a message: message/rfc822, or
// message/global (RFC 6532: its header in UTF-8), or a file named .eml
// of type application/octet-stream (a message saved to disk and attached
// by a client that does not know the type; read as one when it has a
// message's header: hasHeader).
func attachedMessage(a *mimedoc.Attachment) bool {
	switch a.ContentType {
	case "message/rfc822", "message/global":
		return true
	case "application/octet-stream":
		return strings.EqualFold(path.Ext(a.FileName), ".eml")
	}
	return false
}

// hasHeader reports whether m has a message's header: an originator, a
// recipient, a subject, a date or a message id.
func hasHeader(m *mimedoc.Message) bool {
	return len(m.From) > 0 || len(m.To) > 0 || m.Subject != "" || !m.Date.IsZero() || m.MessageID != ""
}

// messageText is the text of an attached message: its From, To, Cc and
// Subject lines, a blank line, then its body's text.
func messageText(m *mimedoc.Message) string {
	var b strings.Builder
	line := func(name string, values ...string) {
		if len(values) == 0 || len(values) == 1 && values[0] == "" {
			return
		}
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(strings.Join(values, ", "))
		b.WriteByte('\n')
	}
	line("From", m.From...)
	line("To", m.To...)
	line("Cc", m.Cc...)
	line("Subject", m.Subject)
	b.WriteByte('\n')
	b.WriteString(m.Text)
	return b.String()
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
