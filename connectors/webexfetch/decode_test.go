package webexfetch

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A page of messages decodes as encoding/json decodes it: the same
// messages, or an error for the same answers.
func TestMessagePageDecodesAsEncodingJSON(t *testing.T) {
	for _, body := range []string{
		`{"items":[]}`,
		`{"items":null}`,
		`{}`,
		`{"notItems":[1]}`,
		`{"items":[{"id":"m1","roomId":"r1","roomType":"group","text":"hello\nworld \u00e9 \ud83d\ude00","markdown":"**hi**","html":"<p>hi</p>",` +
			`"files":["https://x/f/1","https://x/f/2"],"personId":"p1","personEmail":"a@example.com","mentionedPeople":["p2","p3"],` +
			`"mentionedGroups":["all"],"parentId":"m0","created":"2026-01-05T09:00:00.000Z","updated":"2026-01-05T09:01:00.000Z",` +
			`"attachments":[{"contentType":"x","content":{"a":[1,2,{"b":null}]}}],"isVoiceClip":false}]}`,
		`{"items":[{"id":"m1","text":null,"files":null,"mentionedPeople":[null,"p2"]},null]}`,
		`{"items":[{"id":"first","id":"second"}]}`,
		"{\"items\":[{\"id\":\"bad \xff\xfe utf8\",\"text\":\"\xc3\"}]}",
		`{"items":[{"id":1}]}`,
		`{"items":[{"files":"not an array"}]}`,
		`{"items":[{"files":[1]}]}`,
		`{"items":{"id":"m1"}}`,
		`{"items":[1]}`,
		`[]`,
		`{"items":[{"id":"m1"}]`,
		`{"items":[{"id":"m1"}]} trailing`,
		// What fastjson's parser alone reads otherwise: a lone surrogate
		// (an emoji cut in half) is U+FFFD, not the text of its escape;
		// control characters and unknown escapes in a string, and a
		// number with a leading zero, are errors.
		`{"items":[{"id":"m1","text":"cut \ud83d here","files":["\uDE00"],"mentionedPeople":["\udc00\ud800"]}]}`,
		`{"items":[{"id":"m1","text":"a backslash \\ud83d, a pair \ud83d\ude00"}]}`,
		"{\"items\":[{\"id\":\"m1\",\"text\":\"raw\nnewline\"}]}",
		"{\"items\":[{\"id\":\"m1\",\"text\":\"raw\x01control\"}]}",
		`{"items":[{"id":"m1","text":"bad \x escape"}]}`,
		`{"items":[{"id":"m1","text":"bad \u00zz escape"}]}`,
		`{"items":[{"id":"m1"}],"n":01}`,
		`{"items":[{"id":"first"}],"items":[{"id":"second"}]}`,
		`{"items":[{"id":"first"}],"items":null}`,
	} {
		var want itemsPage[message]
		wantErr := json.Unmarshal([]byte(body), &want)
		var got itemsPage[message]
		gotErr := got.DecodeJSON([]byte(body))
		if wantErr != nil {
			require.Error(t, gotErr, "%s", body)
			continue
		}
		require.NoError(t, gotErr, "%s", body)
		require.Equal(t, want, got, "%s", body)
	}
}

// Other lists decode with encoding/json.
func TestOtherPagesDecode(t *testing.T) {
	var p itemsPage[room]
	require.NoError(t, p.DecodeJSON([]byte(`{"items":[{"id":"r1","title":"T","isLocked":true}]}`)))
	require.Equal(t, []room{{ID: "r1", Title: "T", IsLocked: true}}, p.Items)
}

// messagePage is a page of 100 messages as the stand-in writes them.
func messagePage() []byte {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjV%03d","roomId":"Y2lzY29zcGFyazovL3VzL1JPT00vYmJjZWIxYWQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0","roomType":"group",`+
			`"text":"Item %d. The quarterly figures are attached and the meeting moves to Thursday. The quarterly figures are attached and the meeting moves to Thursday.",`+
			`"personId":"Y2lzY29zcGFyazovL3VzL1BFT1BMRS9mNWI3NjE4OS1jNzVkLTQ3YzUtOGM2Ny1mMzBlNGEzNzdjNmQ","personEmail":"person%d@example.com",`+
			`"mentionedPeople":["Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM"],"created":"2026-01-05T09:00:%02d.000Z"}`, i, i, i%10, i%60)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// A page of messages: encoding/json (as before) against DecodeJSON.
func BenchmarkMessagePage(b *testing.B) {
	body := messagePage()
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var p struct {
				Items []message `json:"items"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeJSON", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var p itemsPage[message]
			if err := p.DecodeJSON(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
