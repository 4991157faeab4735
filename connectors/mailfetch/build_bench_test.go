package mailfetch

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/store"
)

// BenchmarkBuild is the connector's own work per message of a full
// Synchronize, without the IMAP server and the file system: the messages
// of bench/cmd/mailbench (a few kilobytes of text, one in five with a text
// attachment) read into documents, their IDX written, their records
// gathered. Run: go test -run X -bench Build -benchmem ./connectors/mailfetch/
func BenchmarkBuild(b *testing.B) {
	para := strings.Repeat("The quarterly figures are attached and the meeting moves to Thursday. ", 20)
	const n = 100
	msgs := make([]*mailbox.Message, n)
	for i := range n {
		m := mailtest.Message{From: fmt.Sprintf("sender%d@example.com", i%97), To: "bench@example.com",
			Subject: fmt.Sprintf("Report %d – figures", i), Text: fmt.Sprintf("Message %d.\n%s", i, para)}
		if i%5 == 0 {
			m.Attachments = []mailtest.Attachment{{Name: fmt.Sprintf("notes-%d.txt", i), ContentType: "text/plain", Data: []byte(para)}}
		}
		raw := m.Raw()
		msgs[i] = &mailbox.Message{Meta: mailbox.Meta{Key: fmt.Sprintf("7.%d", i+1), UID: uint32(i + 1), UIDValidity: 7,
			Flags: []string{`\Seen`}, Size: int64(len(raw)), Received: time.Unix(1_790_000_000, 0), Version: `\Seen`},
			Reference: fmt.Sprintf("imap://bench%%40example.com@127.0.0.1:143/INBOX;UIDVALIDITY=7/;UID=%d", i+1), Raw: raw}
	}
	s := defaults("MAIL")
	s.Username = "bench@example.com"
	builder, err := newDocBuilder(s)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ds, err := st.Datastore("MAIL")
	if err != nil {
		b.Fatal(err)
	}
	job := fetch.NewJob("bench", "SYNCHRONIZE", nil, []string{"MAIL"})
	ctx := context.Background()
	coll := mailbox.Collection{Name: "INBOX"}
	sc := builder.scratch(ctx) // as each builder goroutine has
	now := shapeOf(s)          // recorded with each message
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := msgs[i%n]
		bl := builder.buildWith(sc, ctx, "MAIL", coll, m)
		batch := &restsync.Batch{DS: ds, Counts: restsync.Counts(job, "MAIL")}
		deliver(batch, nil, nil, coll.Name, m, bl, nil, now)
		if err := ingest.WriteIDX(io.Discard, bl.docs...); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
}
