package mailfetch

import (
	"bytes"
	"encoding/json"
	"testing"
)

// record.encode writes what json.Marshal writes (the records stay
// readable by json.Unmarshal, and are the same bytes as before).
func FuzzRecordEncodeIsJSON(f *testing.F) {
	f.Add(`\Seen`, "imap://bench%40example.com@127.0.0.1:143/INBOX;UIDVALIDITY=7/;UID=1", "2", "Report 1 – figures", int64(2048))
	f.Add("", "", "", "", int64(0))
	f.Add("\\Seen \\Flagged|INBOX\x1fwork", "https://mail.google.com/mail/u/a@b/#all/18c", "1.2", "<b>&\"quote\"\\ \u2028\u2029\x00\x1f\x7f \xff\xfe é 😀", int64(-1))
	f.Fuzz(func(t *testing.T, version, ref, kid, title string, size int64) {
		for _, kids := range [][]string{nil, {kid}, {kid, "3", kid}} {
			for _, r := range []*record{
				{Version: version, Ref: ref, Kids: kids, Title: title, Size: size},
				{Version: version, Ref: ref, Kids: kids, Title: title, Size: size, Shape: kid, Cut: size},
				{Version: version, Ref: ref, Kids: kids, Title: title, Size: size, Shape: kid, Cut: size, Again: true},
			} {
				want, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				if got := r.encode(); !bytes.Equal(got, want) {
					t.Fatalf("encode %s\njson    %s", got, want)
				}
			}
		}
	})
}
