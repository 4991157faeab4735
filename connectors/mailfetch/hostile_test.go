package mailfetch

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// cutter is a TCP proxy that drops every connection once the server has
// sent it more than limit bytes (when limit > 0).
type cutter struct {
	ln    net.Listener
	to    string
	limit atomic.Int64
	cuts  atomic.Int64
	wg    sync.WaitGroup
}

func startCutter(t *testing.T, to string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &cutter{ln: ln, to: to}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.wg.Add(1)
			go func() { defer c.wg.Done(); c.serve(conn) }()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); c.wg.Wait() })
	return c
}

func (c *cutter) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", c.to)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(server, client); _ = server.Close() }()
	limit := c.limit.Load()
	buf := make([]byte, 32<<10)
	var sent int64
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if limit > 0 && sent+int64(n) > limit {
				_, _ = client.Write(buf[:limit-sent])
				c.cuts.Add(1)
				return // drop both ends mid-response
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
		}
		if err != nil {
			return
		}
	}
}

// A connection dropped in the middle of a fetch ends the action as Error;
// what was delivered is whole (every message with all its attachments),
// and the next run delivers exactly the rest.
func TestConnectionDroppedMidFetchResumes(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	total := 0
	for i := range 60 {
		m := mailtest.Message{From: "bob@example.com", To: user, Subject: fmt.Sprintf("m%02d", i), Text: strings.Repeat("text ", 400)}
		if i%3 == 0 {
			m.Attachments = []mailtest.Attachment{{Name: fmt.Sprintf("a%02d.txt", i), ContentType: "text/plain", Data: bytes.Repeat([]byte("attached "), 300)}}
		}
		d.MustDeliver(t, user, "INBOX", m.Raw(), "")
		total += 1 + len(m.Attachments)
	}
	cut := startCutter(t, d.Addr)
	host, port, _ := strings.Cut(cut.ln.Addr().String(), ":")
	g := newRig(t, fmt.Sprintf(`[Server]
DataDirectory=$DIR/data
[Ingestion]
IngestBatchSize=7
[FetchTasks]
0=Mail
[Mail]
ImapServer=%s
ImapPort=%s
ImapSecurity=NONE
Username=%s
Password=pw
FetchBatchSize=10
`, host, port, user))
	cut.limit.Store(100 << 10) // well into the messages
	_, job, err := g.run("Synchronize")
	require.Error(t, err)
	require.Contains(t, err.Error(), "connection")
	require.Positive(t, cut.cuts.Load())
	first := countsOf(job, "MAIL")
	require.Positive(t, first.Added, "some batches were delivered before the drop")
	require.Less(t, int(first.Added), total)
	require.Equal(t, int(first.Added), g.target.Len())
	// Nothing half-ingested: every delivered message has all its
	// attachments, and every attachment its message.
	for _, doc := range g.target.All() {
		if parent := resttest.Field1(doc, "PARENT_REFERENCE"); parent != "" {
			require.NotNil(t, g.target.Get(parent), "attachment without its message")
			continue
		}
		n := resttest.Field1(doc, "ATTACHMENT_COUNT")
		for i := 2; i < 2+atoi(n); i++ {
			require.NotNil(t, g.target.Get(fmt.Sprintf("%s/;SECTION=%d", doc.Reference, i)), "message without its attachment")
		}
	}
	adds := g.target.Adds()

	cut.limit.Store(0)
	_, job = g.mustRun("Synchronize")
	second := countsOf(job, "MAIL")
	require.Equal(t, uint64(total)-first.Added, second.Added, "the second run delivers the rest, and only the rest")
	require.Equal(t, first.Added, second.Unchanged)
	require.Equal(t, total, g.target.Len())
	require.Equal(t, total, adds+int(second.Added), "no document delivered twice")
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// Hostile messages in a real mailbox: the sync indexes every one of them,
// as far as it can be read, and says what was wrong; a 50 MB attachment is
// read no further than MaxMessageBytes.
func TestHostileMailboxSynchronizes(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	deep := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("From: a@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n")
		for i := range n {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\r\n\r\nhello deep\r\n")
		for i := n - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		return b.Bytes()
	}
	big := mailtest.Message{From: "a@example.com", Subject: "fifty megabytes", Text: "the text survives",
		Attachments: []mailtest.Attachment{{Name: "huge.bin", Data: bytes.Repeat([]byte{0x42}, 50<<20)}}}.Raw()
	for _, raw := range [][]byte{
		deep(3000),
		[]byte("From: a@example.com\r\nSubject: =?x-unknown?Q?caf=E9?=\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\ncaf\xe9\r\n"),
		[]byte("From a@example.com\x00\r\nSubject: broken header\r\n\r\nstill a body"),
		[]byte("From: a@example.com\r\nSubject: no end\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n--Z\r\nContent-Type: text/plain\r\n\r\nbefore the cut\r\n--Z\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 cut"),
		[]byte("From: a@example.com\r\nSubject: bad base64\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n"),
		big,
	} {
		d.MustDeliver(t, user, "INBOX", raw, "")
	}
	g := newRig(t, mailConfig(d, "MaxMessageBytes=8388608\n"))
	_, job := g.mustRun("Synchronize")
	c := countsOf(job, "MAIL")
	require.Equal(t, uint64(7), c.Added, "six messages, and the PDF part the unclosed multipart holds")
	deepDoc := g.target.Find("SUBJECT", "deep")
	require.Len(t, deepDoc, 1)
	require.Contains(t, strings.Join(resttest.Field(deepDoc[0], "MIME_PROBLEM"), " "), "nested deeper")
	require.Len(t, g.target.Find("SUBJECT", "broken header"), 1)
	bigDoc := g.target.Find("SUBJECT", "fifty megabytes")
	require.Len(t, bigDoc, 1, "the cut attachment is not indexed as half a file")
	require.Equal(t, "true", resttest.Field1(bigDoc[0], "MESSAGE_TRUNCATED"))
	require.Equal(t, "the text survives", bigDoc[0].Content)
	require.Equal(t, fmt.Sprint(len(big)), resttest.Field1(bigDoc[0], "SIZE"))
	noEnd := g.target.Find("SUBJECT", "no end")
	require.Len(t, noEnd, 2, "the message and the part the server has")
}
