package aci

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

func TestParseRealIDOLReplies(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "idol", "responses", name))
		require.NoError(t, err)
		return b
	}
	var r Decoded
	require.NoError(t, DecodeReply(read("getversion.xml"), &r))
	require.True(t, r.Success())
	require.Equal(t, "Query Manipulation Service", r.Product)
	require.Equal(t, "10.10.0", r.Version, "autn:version, not autn:aciversion")

	require.NoError(t, DecodeReply(read("error.xml"), &r))
	require.True(t, r.IsError())
	require.Equal(t, "ERRORPARAMINVALID", r.ErrorCode)
	require.Equal(t, "All terms were invalid, through being stopwords, too short, or incorrectly formatted", r.ErrorText())

	require.NoError(t, DecodeReply(read("queueinfo-getstatus-identifiers.xml"), &r))
	require.True(t, r.Success())
	require.Equal(t, StateFinished, r.State)
	require.Equal(t, 1, r.Actions)
	require.Empty(t, r.Token, "an action's <token> is not a submit reply's token")
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
	replies := map[string]*Reply{
		"token":   {Action: "FETCH", Data: []Node{TokenNode("MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MQ+/==")}},
		"status":  {Action: "QUEUEINFO", Data: []Node{Container("actions", ActionNode(st(messages.State_STATE_PROCESSING, "tok1"), now))}},
		"list":    {Action: "QUEUEINFO", Data: []Node{Container("actions", ActionNode(st(messages.State_STATE_CANCELLED, "a"), now), ActionNode(st(messages.State_STATE_FINISHED, "b"), now))}},
		"empty":   {Action: "QUEUEINFO", Data: []Node{Container("actions")}},
		"error":   {Action: "QUEUEINFO", Err: ErrorFor("QUEUEINFO", messages.ErrUnknownToken, now)},
		"version": {Action: "GETVERSION", Data: []Node{TextNode("autn:version", "0.9.1"), TextNode("autn:productname", "connector")}},
	}
	for _, f := range []Format{FormatXML, FormatSimpleJSON, FormatJSON} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			parse := func(name string) Decoded {
				body, _ := Encode(nil, f, replies[name])
				var r Decoded
				require.NoError(t, DecodeReply(body, &r), "%s", body)
				return r
			}
			r := parse("token")
			require.True(t, r.Success())
			require.Equal(t, "MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MQ+/==", r.Token)
			r = parse("status")
			require.Equal(t, StateProcessing, r.State)
			require.Equal(t, 1, r.Actions)
			r = parse("list")
			require.Equal(t, StateCancelled, r.State, "the first action's status")
			require.Equal(t, 2, r.Actions)
			r = parse("empty")
			require.True(t, r.Success())
			require.Equal(t, StateNone, r.State)
			require.Zero(t, r.Actions)
			r = parse("error")
			require.True(t, r.IsError())
			require.Equal(t, "ERRORPARAMINVALID", r.ErrorCode) // IDOL's code for an unknown token (docs/errors.md)
			require.Contains(t, r.ErrorText(), "the token is garbled")
			r = parse("version")
			require.Equal(t, "connector", r.Product)
			require.Equal(t, "0.9.1", r.Version)
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
		want   Decoded
		errMsg string
	}{
		{desc: "token", body: head + "<token>abc</token>" + tail, want: Decoded{Response: ResponseSuccess, Token: "abc"}},
		{desc: "spaces and BOM", body: "\xEF\xBB\xBF \n<?xml version='1.0'?>\n<autnresponse>\n <response> SUCCESS </response>\n <responsedata>\n  <token>\n abc \n</token>\n </responsedata>\n</autnresponse>\n",
			want: Decoded{Response: ResponseSuccess, Token: "abc"}},
		{desc: "entities", body: head + "<token>a&amp;b&#43;c&#x2F;&lt;&unknown;</token>" + tail, want: Decoded{Response: ResponseSuccess, Token: "a&b+c/<&unknown;"}},
		{desc: "cdata", body: head + "<token><![CDATA[a<b>]]></token>" + tail, want: Decoded{Response: ResponseSuccess, Token: "a<b>"}},
		{desc: "comments and doctype", body: `<!DOCTYPE autnresponse [<!ENTITY x "y">]><!-- c --><autnresponse><!-- <response>ERROR</response> --><response>SUCCESS</response><responsedata><token>a<!-- x -->b</token></responsedata></autnresponse>`,
			want: Decoded{Response: ResponseSuccess, Token: "ab"}},
		{desc: "attributes with >", body: `<autnresponse a="x>y" b='>'><response>SUCCESS</response><responsedata><token t=">">abc</token></responsedata></autnresponse>`,
			want: Decoded{Response: ResponseSuccess, Token: "abc"}},
		{desc: "prefixed root", body: `<autn:autnresponse xmlns:autn="u"><autn:response>ERROR</autn:response><autn:responsedata><autn:error><autn:errorcode>X</autn:errorcode></autn:error></autn:responsedata></autn:autnresponse>`,
			want: Decoded{Response: ResponseError, ErrorCode: "X"}},
		{desc: "errorstring without description", body: `<autnresponse><response>ERROR</response><responsedata><error><errorstring>short</errorstring><errordescription/><errorcode>C</errorcode></error></responsedata></autnresponse>`,
			want: Decoded{Response: ResponseError, ErrorCode: "C", ErrorString: "short"}},
		{desc: "case", body: `<AutnResponse><RESPONSE>success</RESPONSE><ResponseData><Token>t</Token></ResponseData></AutnResponse>`,
			want: Decoded{Response: ResponseSuccess, Token: "t"}},
		{desc: "self-closing", body: head + "<token/><actions><action><status/></action></actions>" + tail, want: Decoded{Response: ResponseSuccess, Actions: 1}},
		{desc: "token deeper is not the token", body: head + "<actions><action><status>Queued</status><token>x</token></action></actions>" + tail,
			want: Decoded{Response: ResponseSuccess, State: StateQueued, Actions: 1}},
		{desc: "unknown status", body: head + "<actions><action><status>Suspended</status></action></actions>" + tail,
			want: Decoded{Response: ResponseSuccess, State: StateOther, StateRaw: "Suspended", Actions: 1}},
		{desc: "other response", body: `<autnresponse><response>MAYBE</response></autnresponse>`, want: Decoded{Response: ResponseOther, ResponseRaw: "MAYBE"}},
		{desc: "simplejson escapes", body: `{"autnresponse":{"action":"FETCH","response":"SUCCESS","responsedata":{"to\u006Ben":"a\u002Bb\/c\"\\\n\ud83d\ude00"}}}`,
			want: Decoded{Response: ResponseSuccess, Token: "a+b/c\"\\\n\U0001F600"}},
		{desc: "simplejson numbers and literals", body: `{"autnresponse":{"n":-1.5e3,"t":true,"f":false,"z":null,"response":"SUCCESS","responsedata":{"actions":{"action":[{"status":"Paused","x":[1,[2,{"status":"no"}]]},{"status":"Queued"}]}}}}`,
			want: Decoded{Response: ResponseSuccess, State: StatePaused, Actions: 2}},
		{desc: "badgerfish", body: `{"autnresponse":{"@xmlns":{"autn":"u"},"response":{"$":"ERROR"},"responsedata":{"error":{"errorcode":{"$":"E1"},"@a":"b"}}}}`,
			want: Decoded{Response: ResponseError, ErrorCode: "E1"}},
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
			var r Decoded
			err := DecodeReply([]byte(tc.body), &r)
			if tc.errMsg != "" {
				require.ErrorContains(t, err, tc.errMsg)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, r)
		})
	}
}

func TestParseActionState(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]ActionState{
		"Queued": StateQueued, "processing": StateProcessing, "PAUSED": StatePaused, "Finished": StateFinished,
		"Cancelled": StateCancelled, "canceled": StateCancelled, "Stopped": StateStopped, "Error": StateError,
		"Failed": StateError, "": StateNone, "Running": StateOther,
	} {
		require.Equal(t, want, ParseActionState([]byte(in)), "%q", in)
	}
	for _, s := range []ActionState{StateFinished, StateCancelled, StateStopped, StateError} {
		require.True(t, s.Terminal(), s.String())
	}
	for _, s := range []ActionState{StateNone, StateOther, StateQueued, StateProcessing, StatePaused} {
		require.False(t, s.Terminal(), fmt.Sprint(s))
	}
}
