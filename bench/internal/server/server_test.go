package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestRepliesAreRead: Submit, Status and QueueStatus read the replies a
// connector sends (as transport/aci encodes them), and an ERROR reply is
// an error that quotes it.
func TestRepliesAreRead(t *testing.T) {
	t.Parallel()
	const head = `<?xml version="1.0" encoding="UTF-8"?><autnresponse xmlns:autn="http://schemas.autonomy.com/aci/">`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An ACI request is the path (GET /action=...&...), as Proc.Get sends it.
		q, err := url.ParseQuery(strings.TrimPrefix(r.URL.EscapedPath(), "/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch {
		case strings.EqualFold(q.Get("action"), "Fetch") && q.Get("ConfigSection") == "bad":
			fmt.Fprint(w, head+`<action>FETCH</action><response>ERROR</response><responsedata><error><errorid>ACI-1</errorid><errorstring>bad section</errorstring></error></responsedata></autnresponse>`)
		case strings.EqualFold(q.Get("action"), "Fetch"):
			fmt.Fprint(w, head+`<action>FETCH</action><response>SUCCESS</response><responsedata><token>MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MQ==</token></responsedata></autnresponse>`)
		case q.Get("QueueAction") == "GetStatus":
			st := map[string]string{"T1": "Finished", "T2": "Processing", "T3": "Odd"}[q.Get("Token")]
			fmt.Fprint(w, head+`<action>QUEUEINFO</action><response>SUCCESS</response><responsedata><actions><action><token>`+q.Get("Token")+`</token><status>`+st+`</status><queued_time>1</queued_time></action></actions></responsedata></autnresponse>`)
		case q.Get("QueueAction") == "QueueStatus":
			fmt.Fprint(w, head+`<action>QUEUEINFO</action><response>SUCCESS</response><responsedata><queue><name>fetch</name><pending>3</pending><running>2</running><completed>7</completed></queue></responsedata></autnresponse>`)
		default:
			http.Error(w, "no", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	p := &Proc{URL: srv.URL}

	tok, err := p.Submit("FetchAction=SYNCHRONIZE&ConfigSection=MyTask")
	if err != nil || tok != "MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MQ==" {
		t.Fatalf("Submit = %q, %v", tok, err)
	}
	if _, err := p.Submit("FetchAction=SYNCHRONIZE&ConfigSection=bad"); err == nil || !strings.Contains(err.Error(), "bad section") {
		t.Fatalf("Submit of a refused action: %v", err)
	}
	for tok, want := range map[string]string{"T1": "Finished", "T2": "Processing", "T3": "Odd"} {
		if got, err := p.Status(tok); err != nil || got != want {
			t.Fatalf("Status(%s) = %q, %v; want %s", tok, got, err, want)
		}
	}
	c, err := p.QueueStatus()
	if err != nil || c != (QueueCounts{3, 2, 7}) {
		t.Fatalf("QueueStatus = %+v, %v", c, err)
	}
}
