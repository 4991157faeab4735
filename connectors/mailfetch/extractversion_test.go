package mailfetch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/store"
)

// A server upgraded to an extractor that extracts otherwise (extract.Version:
// a fix to the text of a CSV attachment, of an HTML body's table...)
// delivers again, once, the messages indexed by the older one: before,
// the settings' fingerprint left the extractor out, so they kept their old
// text until they changed in the mailbox.
func TestNewExtractorVersionDeliversMessagesAgainOnce(t *testing.T) {
	g, api, _ := gmailRig(t, false, "")
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "with list", Text: "see attached",
		Attachments: []mailtest.Attachment{{Name: "list.csv", ContentType: "text/csv", Data: []byte("name,colour\nzebra,striped\n")}}}.Raw(), "INBOX")
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "plain", Text: "hello"}.Raw(), "INBOX")
	g.mustRun("Synchronize")

	// Every record as the server before extract.Version wrote it: the
	// fingerprint of the same settings, without the extractor's version.
	s, err := TaskSettings(g.cfg, "GMAIL")
	require.NoError(t, err)
	h := sha256.Sum256(fmt.Appendf(nil, "attachments=%t extract=%t text=%d depth=%d parts=%d",
		s.IngestAttachments, s.ExtractText, s.ExtractTextBytes, s.MIME.MaxDepth, s.MIME.MaxParts))
	old := hex.EncodeToString(h[:6])
	ds, err := g.st.Datastore("GMAIL")
	require.NoError(t, err)
	recs := map[string][]byte{}
	require.NoError(t, store.ForEachPrefix(ds, []byte(recordPrefix), func(k, v []byte) error {
		var m map[string]any
		require.NoError(t, json.Unmarshal(v, &m))
		m["g"] = old
		nv, err := json.Marshal(m)
		require.NoError(t, err)
		recs[string(k)] = nv
		return nil
	}))
	require.Len(t, recs, 2)
	require.NoError(t, ds.Update(func(w store.Writer) error {
		for k, v := range recs {
			if err := w.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	}))

	_, job := g.mustRun("Synchronize")
	require.Equal(t, "seen=3 added=0 updated=3 deleted=0 unchanged=0 ingestadded=0 ingestupdated=3 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))

	gets := countGets(api)
	_, job = g.mustRun("Synchronize")
	require.Equal(t, gets, countGets(api), "delivered again once: nothing read after")
	require.Equal(t, uint64(3), countsOf(job, "GMAIL").Unchanged)
}
