package gmailapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
)

type noneKnown struct{ cursor []byte }

func (k noneKnown) Cursor() []byte              { return k.cursor }
func (noneKnown) Version(string) (string, bool) { return "", false }
func (noneKnown) Keys(func(string))             {}
func (noneKnown) Len() int                      { return 0 }

// A listing whose next page token is one already given (a page naming
// itself as the next) ends with an error instead of asking for the same
// page for ever: messages.list, a label's messages.list and history.list.
func TestPageTokenLoopEnds(t *testing.T) {
	for _, loop := range []string{"all", "label", "history"} {
		t.Run(loop, func(t *testing.T) {
			var lists atomic.Int64
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				q := r.URL.Query()
				switch {
				case strings.HasSuffix(r.URL.Path, "/profile"):
					fmt.Fprint(w, `{"emailAddress":"a@example.com","historyId":"7"}`)
				case strings.HasSuffix(r.URL.Path, "/labels"):
					fmt.Fprint(w, `{"labels":[{"id":"INBOX","name":"INBOX"}]}`)
				case strings.HasSuffix(r.URL.Path, "/messages"):
					lists.Add(1)
					if (loop == "all" && q.Get("labelIds") == "") || (loop == "label" && q.Get("labelIds") != "") {
						fmt.Fprint(w, `{"messages":[{"id":"m1"}],"nextPageToken":"again"}`)
						return
					}
					fmt.Fprint(w, `{"messages":[{"id":"m1"}]}`)
				case strings.HasSuffix(r.URL.Path, "/history"):
					lists.Add(1)
					fmt.Fprint(w, `{"historyId":"8","history":[],"nextPageToken":"again"}`)
				default:
					http.NotFound(w, r)
				}
			}))
			defer api.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			b, err := Open(ctx, Config{Endpoint: api.URL + "/", Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})})
			require.NoError(t, err)
			known := noneKnown{}
			if loop == "history" {
				known.cursor = []byte(`{"h":5}`)
			}
			_, err = b.Plan(ctx, mailbox.Collection{}, known)
			require.Error(t, err)
			require.NoError(t, ctx.Err(), "the listing went on until the test's deadline (%d requests)", lists.Load())
			require.Less(t, lists.Load(), int64(10))
		})
	}
}

// An API response is read up to responseLimit (twice MaxMessageBytes
// plus 1 MiB), not whole whatever its size: a larger one is an error
// saying so, except a raw message, which is then read as one larger than
// MaxMessageBytes: its header alone, marked truncated.
func TestResponsesAreBounded(t *testing.T) {
	const max = 1 << 10
	big := strings.Repeat("a", 4<<20) // past the limit of 1 MiB + 2 KiB
	var hugeProfile atomic.Bool
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/profile"):
			if hugeProfile.Load() {
				fmt.Fprintf(w, `{"emailAddress":"a@example.com","historyId":"7","x":"%s"}`, big)
				return
			}
			fmt.Fprint(w, `{"emailAddress":"a@example.com","historyId":"7"}`)
		case strings.HasSuffix(r.URL.Path, "/labels"):
			fmt.Fprint(w, `{"labels":[{"id":"INBOX","name":"INBOX"}]}`)
		case strings.HasSuffix(r.URL.Path, "/messages/m1"):
			switch r.URL.Query().Get("format") {
			case "minimal":
				fmt.Fprint(w, `{"id":"m1","labelIds":["INBOX"],"sizeEstimate":100}`)
			case "metadata":
				fmt.Fprint(w, `{"id":"m1","payload":{"headers":[{"name":"Subject","value":"big"}]}}`)
			case "raw":
				fmt.Fprintf(w, `{"id":"m1","raw":"%s"}`, base64.RawURLEncoding.EncodeToString([]byte("Subject: big\r\n\r\n"+big)))
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{Endpoint: api.URL + "/", Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}), MaxMessageBytes: max}
	b, err := Open(ctx, cfg)
	require.NoError(t, err)
	var got []*mailbox.Message
	require.NoError(t, b.Fetch(ctx, mailbox.Collection{}, []string{"m1"}, func(m *mailbox.Message) error {
		got = append(got, m)
		return nil
	}))
	require.Len(t, got, 1)
	require.True(t, got[0].Truncated)
	raw := string(got[0].Raw)
	if len(raw) > 40 {
		raw = raw[:40] + "..."
	}
	require.Equal(t, "Subject: big\r\n\r\n", raw, "the header alone, from the metadata format")

	hugeProfile.Store(true)
	_, err = Open(ctx, cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), "the API's response is larger than 1050624 bytes")
}
