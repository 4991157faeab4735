package httpd

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// panicRepo is testRepo whose synchronous View and TaskList panic, to reach
// the front end's panic recovery (fetch actions run in task actors, which
// have their own).
type panicRepo struct{ *testRepo }

func (panicRepo) View(context.Context, string, messages.Params) (*fetch.ViewResult, error) {
	panic("kaboom in View")
}

func (panicRepo) TaskList() ([]fetch.TaskInfo, error) { panic("kaboom in TaskList") }

// jsonField reads autnresponse.<name> from a json (BadgerFish, {"$": v}) or
// simplejson (plain string) reply.
func jsonField(t *testing.T, body []byte, name string) string {
	t.Helper()
	var r struct {
		Autnresponse map[string]json.RawMessage `json:"autnresponse"`
	}
	require.NoError(t, json.Unmarshal(body, &r), string(body))
	raw := r.Autnresponse[name]
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var bf struct {
		V string `json:"$"`
	}
	require.NoError(t, json.Unmarshal(raw, &bf), string(raw))
	return bf.V
}

// TestHandlerPanicIsACIError makes synchronous handlers panic and checks
// the reply is an ACI error (HTTP 200) in the format the request asked
// for, the panic is logged, and the server goes on answering.
func TestHandlerPanicIsACIError(t *testing.T) {
	t.Parallel()
	var logs testlog.Buffer
	e := startWith(t, setup{
		repo:   func(r *testRepo) fetch.Repository { return panicRepo{r} },
		logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	for _, tc := range []struct {
		desc, path, format, action, panicMsg string
	}{
		{"view xml", "/action=View&Identifier=doc1&NoACI=false", "xml", "VIEW", "kaboom in View"},
		{"view raw", "/action=View&Identifier=doc1", "xml", "VIEW", "kaboom in View"},
		{"view json", "/action=View&Identifier=doc1&NoACI=false&ResponseFormat=json", "json", "VIEW", "kaboom in View"},
		{"view simplejson", "/action=View&Identifier=doc1&ResponseFormat=simplejson", "simplejson", "VIEW", "kaboom in View"},
		{"tasklist json", "/action=TaskList&ResponseFormat=json", "json", "TASKLIST", "kaboom in TaskList"},
		{"tasklist xml", "/action=TaskList", "xml", "TASKLIST", "kaboom in TaskList"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			resp, body := e.get(t, tc.path)
			require.Equal(t, 200, resp.StatusCode, "ACI errors are HTTP 200: %s", body)
			if tc.format == "xml" {
				require.Equal(t, aci.ContentTypeXML, resp.Header.Get("Content-Type"))
				var x xresp
				require.NoError(t, xml.Unmarshal(body, &x), string(body))
				require.Equal(t, tc.action, x.Action)
				require.Equal(t, "ERROR", x.Response)
				require.Equal(t, "ERRORINTERNAL", x.ResponseData.Code)
			} else {
				require.Equal(t, aci.ContentTypeJSON, resp.Header.Get("Content-Type"), string(body))
				require.Equal(t, tc.action, jsonField(t, body, "action"))
				require.Equal(t, "ERROR", jsonField(t, body, "response"))
				require.Contains(t, string(body), "ERRORINTERNAL")
			}
			require.Contains(t, logs.String(), "handler panicked")
			require.Contains(t, logs.String(), tc.panicMsg)
			// the server keeps answering
			x := e.aci(t, "/action=GetVersion")
			require.Equal(t, "SUCCESS", x.Response)
		})
	}
	x := e.aci(t, "/action=GetRequestLog")
	require.Equal(t, "SUCCESS", x.Response)
	require.Equal(t, 6, strings.Count(string(x.ResponseData.Inner), "<autn:status>failure</autn:status>"),
		"every panicked request is logged as a failure")
}
