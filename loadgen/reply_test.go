package loadgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

func TestParseRealIDOLReplies(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "idol", name))
		require.NoError(t, err)
		return b
	}
	var r reply
	require.NoError(t, parseReply(read("getversion.xml"), &r))
	require.True(t, r.success())
	require.Equal(t, "Query Manipulation Service", r.product)
	require.Equal(t, "10.10.0", r.version, "autn:version, not autn:aciversion")

	require.NoError(t, parseReply(read("error.xml"), &r))
	require.True(t, r.isError())
	require.Equal(t, "ERRORPARAMINVALID", r.errorCode)
	require.Equal(t, "All terms were invalid, through being stopwords, too short, or incorrectly formatted", r.errorText)

	require.NoError(t, parseReply(read("queueinfo-getstatus-identifiers.xml"), &r))
	require.True(t, r.success())
	require.Equal(t, statusFinished, r.status)
	require.Equal(t, 1, r.actions)
	require.Empty(t, r.token, "an action's <token> is not a submit reply's token")
}

// The harness reads what this repository's server writes, in every
// format: the same codec the connector uses encodes the replies.
func TestParseConnectorReplies(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	st := func(state messages.State, tok string) *messages.ActionStatus {
		return &messages.ActionStatus{Token: tok, State: state, QueuedUnixMs: now.UnixMilli() - 3000,
			StartedUnixMs: now.UnixMilli() - 2000, FetchAction: "SYNCHRONIZE",
			Counts: []*messages.DocumentCount{{Task: "MYTASK"}}}
	}
	replies := map[string]*aci.Reply{
		"token":   {Action: "FETCH", Data: []aci.Node{aci.TokenNode("MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MQ+/==")}},
		"status":  {Action: "QUEUEINFO", Data: []aci.Node{aci.Container("actions", aci.ActionNode(st(messages.State_STATE_PROCESSING, "tok1"), now))}},
		"list":    {Action: "QUEUEINFO", Data: []aci.Node{aci.Container("actions", aci.ActionNode(st(messages.State_STATE_CANCELLED, "a"), now), aci.ActionNode(st(messages.State_STATE_FINISHED, "b"), now))}},
		"empty":   {Action: "QUEUEINFO", Data: []aci.Node{aci.Container("actions")}},
		"error":   {Action: "QUEUEINFO", Err: aci.ErrorFor("QUEUEINFO", messages.ErrUnknownToken, now)},
		"version": {Action: "GETVERSION", Data: []aci.Node{aci.TextNode("autn:version", "0.9.1"), aci.TextNode("autn:productname", "connector")}},
	}
	for _, f := range []aci.Format{aci.FormatXML, aci.FormatSimpleJSON, aci.FormatJSON} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			parse := func(name string) reply {
				body, _ := aci.Encode(nil, f, replies[name])
				var r reply
				require.NoError(t, parseReply(body, &r), "%s", body)
				return r
			}
			r := parse("token")
			require.True(t, r.success())
			require.Equal(t, "MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MQ+/==", r.token)
			r = parse("status")
			require.Equal(t, statusProcessing, r.status)
			require.Equal(t, 1, r.actions)
			r = parse("list")
			require.Equal(t, statusCancelled, r.status, "the first action's status")
			require.Equal(t, 2, r.actions)
			r = parse("empty")
			require.True(t, r.success())
			require.Equal(t, statusNone, r.status)
			require.Zero(t, r.actions)
			r = parse("error")
			require.True(t, r.isError())
			require.Equal(t, "ERRORPARAMINVALID", r.errorCode) // IDOL's code for an unknown token (docs/errors.md)
			require.Contains(t, r.errorText, "the token is garbled")
			r = parse("version")
			require.Equal(t, "connector", r.product)
			require.Equal(t, "0.9.1", r.version)
		})
	}
}

func TestParseReplyShapes(t *testing.T) {
	t.Parallel()
	const head = `<autnresponse><action>FETCH</action><response>SUCCESS</response><responsedata>`
	const tail = `</responsedata></autnresponse>`
	tests := []struct {
		desc   string
		body   string
		want   reply
		errMsg string
	}{
		{desc: "token", body: head + "<token>abc</token>" + tail, want: reply{response: responseSuccess, token: "abc"}},
		{desc: "spaces and BOM", body: "\xEF\xBB\xBF \n<?xml version='1.0'?>\n<autnresponse>\n <response> SUCCESS </response>\n <responsedata>\n  <token>\n abc \n</token>\n </responsedata>\n</autnresponse>\n",
			want: reply{response: responseSuccess, token: "abc"}},
		{desc: "entities", body: head + "<token>a&amp;b&#43;c&#x2F;&lt;&unknown;</token>" + tail, want: reply{response: responseSuccess, token: "a&b+c/<&unknown;"}},
		{desc: "cdata", body: head + "<token><![CDATA[a<b>]]></token>" + tail, want: reply{response: responseSuccess, token: "a<b>"}},
		{desc: "comments and doctype", body: `<!DOCTYPE autnresponse [<!ENTITY x "y">]><!-- c --><autnresponse><!-- <response>ERROR</response> --><response>SUCCESS</response><responsedata><token>a<!-- x -->b</token></responsedata></autnresponse>`,
			want: reply{response: responseSuccess, token: "ab"}},
		{desc: "attributes with >", body: `<autnresponse a="x>y" b='>'><response>SUCCESS</response><responsedata><token t=">">abc</token></responsedata></autnresponse>`,
			want: reply{response: responseSuccess, token: "abc"}},
		{desc: "prefixed root", body: `<autn:autnresponse xmlns:autn="u"><autn:response>ERROR</autn:response><autn:responsedata><autn:error><autn:errorcode>X</autn:errorcode></autn:error></autn:responsedata></autn:autnresponse>`,
			want: reply{response: responseError, errorCode: "X"}},
		{desc: "errorstring without description", body: `<autnresponse><response>ERROR</response><responsedata><error><errorstring>short</errorstring><errordescription/><errorcode>C</errorcode></error></responsedata></autnresponse>`,
			want: reply{response: responseError, errorCode: "C", errorText: "short"}},
		{desc: "case", body: `<AutnResponse><RESPONSE>success</RESPONSE><ResponseData><Token>t</Token></ResponseData></AutnResponse>`,
			want: reply{response: responseSuccess, token: "t"}},
		{desc: "self-closing", body: head + "<token/><actions><action><status/></action></actions>" + tail, want: reply{response: responseSuccess, actions: 1}},
		{desc: "token deeper is not the token", body: head + "<actions><action><status>Queued</status><token>x</token></action></actions>" + tail,
			want: reply{response: responseSuccess, status: statusQueued, actions: 1}},
		{desc: "unknown status", body: head + "<actions><action><status>Suspended</status></action></actions>" + tail,
			want: reply{response: responseSuccess, status: statusOther, statusRaw: "Suspended", actions: 1}},
		{desc: "other response", body: `<autnresponse><response>MAYBE</response></autnresponse>`, want: reply{response: responseOther}},
		{desc: "simplejson escapes", body: `{"autnresponse":{"action":"FETCH","response":"SUCCESS","responsedata":{"to\u006Ben":"a\u002Bb\/c\"\\\n\ud83d\ude00"}}}`,
			want: reply{response: responseSuccess, token: "a+b/c\"\\\n\U0001F600"}},
		{desc: "simplejson numbers and literals", body: `{"autnresponse":{"n":-1.5e3,"t":true,"f":false,"z":null,"response":"SUCCESS","responsedata":{"actions":{"action":[{"status":"Paused","x":[1,[2,{"status":"no"}]]},{"status":"Queued"}]}}}}`,
			want: reply{response: responseSuccess, status: statusPaused, actions: 2}},
		{desc: "badgerfish", body: `{"autnresponse":{"@xmlns":{"autn":"u"},"response":{"$":"ERROR"},"responsedata":{"error":{"errorcode":{"$":"E1"},"@a":"b"}}}}`,
			want: reply{response: responseError, errorCode: "E1"}},
		{desc: "empty", body: " \n", errMsg: "empty"},
		{desc: "not autn xml", body: "<html><response>SUCCESS</response></html>", errMsg: "not an autnresponse"},
		{desc: "not autn json", body: `{"other":{"response":"SUCCESS"}}`, errMsg: "not an autnresponse"},
		{desc: "no response", body: "<autnresponse><action>X</action></autnresponse>", errMsg: "no <response>"},
		{desc: "truncated xml", body: head + "<token>abc", errMsg: "malformed"},
		{desc: "truncated tag", body: "<autnresponse><response", errMsg: "malformed"},
		{desc: "two roots", body: "<autnresponse><response>SUCCESS</response></autnresponse><autnresponse/>", errMsg: "malformed"},
		{desc: "stray end tag", body: "</x><autnresponse/>", errMsg: "malformed"},
		{desc: "unterminated comment", body: "<autnresponse><!-- x", errMsg: "malformed"},
		{desc: "json trailing", body: `{"autnresponse":{"response":"SUCCESS"}} x`, errMsg: "malformed"},
		{desc: "json bad escape", body: `{"autnresponse":{"response":"\x"}}`, errMsg: "malformed"},
		{desc: "json control char", body: "{\"autnresponse\":{\"response\":\"a\nb\"}}", errMsg: "malformed"},
		{desc: "json bad literal", body: `{"autnresponse":{"response":"SUCCESS","x":nope}}`, errMsg: "malformed"},
		{desc: "json bad number", body: `{"autnresponse":{"response":"SUCCESS","x":0x10}}`, errMsg: "malformed"},
		{desc: "json inf", body: `{"autnresponse":{"response":"SUCCESS","x":Inf}}`, errMsg: "malformed"},
		{desc: "json leading zero", body: `{"autnresponse":{"response":"SUCCESS","x":01}}`, errMsg: "malformed"},
		{desc: "json bare minus", body: `{"autnresponse":{"response":"SUCCESS","x":-}}`, errMsg: "malformed"},
		{desc: "json unterminated", body: `{"autnresponse":{"response":"SUCCESS"`, errMsg: "malformed"},
		{desc: "json deep", body: `{"autnresponse":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat("}", 100) + "}", errMsg: "too deeply"},
		{desc: "xml deep", body: "<autnresponse>" + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + "</autnresponse>", errMsg: "too deeply"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var r reply
			err := parseReply([]byte(tc.body), &r)
			if tc.errMsg != "" {
				require.ErrorContains(t, err, tc.errMsg)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, r)
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]status{
		"Queued": statusQueued, "processing": statusProcessing, "PAUSED": statusPaused, "Finished": statusFinished,
		"Cancelled": statusCancelled, "canceled": statusCancelled, "Stopped": statusStopped, "Error": statusError,
		"Failed": statusError, "": statusNone, "Running": statusOther,
	} {
		require.Equal(t, want, parseStatus([]byte(in)), "%q", in)
	}
	for _, s := range []status{statusFinished, statusCancelled, statusStopped, statusError} {
		require.True(t, s.terminal(), s.String())
	}
	for _, s := range []status{statusNone, statusOther, statusQueued, statusProcessing, statusPaused} {
		require.False(t, s.terminal(), fmt.Sprint(s))
	}
}
