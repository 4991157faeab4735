package aci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/messages"
)

// idolCodes are the error codes real IDOL servers send (aci-protocol.md);
// rows may share them, told apart by their numbers.
var idolCodes = map[string]bool{"ERRORNOTIMPLEMENTED": true, "ERRORPARAMINVALID": true}

// TestErrorTableComplete fails on any domain error without its own row, on
// any number used twice, and on a code of ours used twice.
func TestErrorTableComplete(t *testing.T) {
	t.Parallel()
	for _, sentinel := range messages.DomainErrors {
		found := 0
		for _, d := range errorTable {
			if d.err == sentinel {
				found++
			}
		}
		require.Equal(t, 1, found, "sentinel %q must have exactly one row in errorTable", sentinel)
		e := ErrorFor("X", sentinel, testNow)
		def := rowOf(t, sentinel)
		require.Equal(t, def.code, e.Code, "%q is matched by an earlier row", sentinel)
	}
	require.Len(t, errorTable, len(messages.DomainErrors), "a row maps an error that is not in messages.DomainErrors")
	nums, codes := map[int]string{}, map[string]string{}
	for _, d := range errorTable {
		require.NotContains(t, nums, d.num, "number %d used twice", d.num)
		if !idolCodes[d.code] {
			require.NotContains(t, codes, d.code, "code %s used twice: only IDOL's own codes are shared", d.code)
		}
		nums[d.num], codes[d.code] = d.code, d.code
		require.Regexp(t, `^ERROR[A-Z]+$`, d.code)
		require.NotEmpty(t, d.str)
		require.NotEmpty(t, d.reason)
		require.Positive(t, d.num)
	}
	require.Equal(t, messages.ErrInternal, errorTable[len(errorTable)-1].err, "ErrInternal must be last: it is the fallback")
}

func rowOf(t *testing.T, err error) errorDef {
	t.Helper()
	for _, d := range errorTable {
		if d.err == err {
			return d
		}
	}
	t.Fatalf("no row for %v", err)
	return errorDef{}
}

func TestErrorFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		action    string
		err       error
		wantCode  string
		wantID    string
		wantRaw   int
		wantDesc  string
		wantMatch string // regexp on the description, when wantDesc is empty
	}{
		{desc: "unknown action", action: "WOBBLE", err: fmt.Errorf("%w: WOBBLE", messages.ErrUnknownAction),
			wantCode: "ERRORNOTIMPLEMENTED", wantID: "CONWOBBLE101", wantRaw: 101, wantDesc: "WOBBLE"},
		{desc: "invalid parameter names it", action: "QUEUEINFO", err: messages.Invalid("Priority", "high", "must be an integer"),
			wantCode: "ERRORPARAMINVALID", wantID: "CONQUEUEINFO104", wantRaw: 104,
			wantDesc: `invalid value "high" for parameter Priority: must be an integer`},
		{desc: "missing parameter names it", action: "QUEUEINFO", err: messages.Missing("Token"),
			wantCode: "ERRORMISSINGPARAM", wantID: "CONQUEUEINFO103", wantRaw: 103, wantDesc: "missing required parameter Token"},
		{desc: "wrapped param error", action: "FETCH", err: fmt.Errorf("fetch: validate: %w", messages.Invalid("[MyTask] Depth", "x", "must be an integer")),
			wantCode: "ERRORPARAMINVALID", wantID: "CONFETCH104", wantRaw: 104,
			wantDesc: `fetch: validate: invalid value "x" for parameter [MyTask] Depth: must be an integer`},
		{desc: "bad request", action: "", err: fmt.Errorf("%w: bad escape", messages.ErrBadRequest),
			wantCode: "ERRORBADREQUEST", wantID: "CON102", wantRaw: 102, wantDesc: "bad escape"},
		{desc: "unknown token", action: "QueueInfo", err: fmt.Errorf("queue: getstatus %s: %w", "abc", messages.ErrUnknownToken),
			wantCode: "ERRORPARAMINVALID", wantID: "CONQUEUEINFO111", wantRaw: 0x6F, wantDesc: "queue: getstatus abc"},
		{desc: "bare sentinel: when it happens", action: "QueueInfo", err: messages.ErrUnknownToken,
			wantCode: "ERRORPARAMINVALID", wantID: "CONQUEUEINFO111", wantRaw: 0x6F,
			wantDesc: "the token is garbled, was never issued here, or its action was removed by retention"},
		{desc: "sentinel words in the middle", action: "QueueInfo", err: fmt.Errorf("view x: %w: no page", messages.ErrNotFound),
			wantCode: "ERRORPARAMINVALID", wantID: "CONQUEUEINFO120", wantRaw: 120, wantDesc: "view x: no page"},
		{desc: "unknown queue is IDOL's invalid parameter", action: "QUEUEINFO", err: fmt.Errorf("%w: there is no queue \"x\"", messages.ErrUnknownQueue),
			wantCode: "ERRORPARAMINVALID", wantID: "CONQUEUEINFO110", wantRaw: 110, wantDesc: `there is no queue "x"`},
		{desc: "a description that gives the hint already: not twice", action: "QUEUEINFO",
			err:      messages.Err(messages.ErrorCode_ERROR_CODE_NOT_QUEUED, "started; only queued actions can change priority"),
			wantCode: "ERRORACTIONNOTQUEUED", wantID: "CONQUEUEINFO115", wantRaw: 115, wantDesc: "started; only queued actions can change priority"},
		{desc: "cancel of a running action points to Stop", action: "QUEUEINFO", err: messages.ErrActionRunning,
			wantCode: "ERRORACTIONRUNNING", wantID: "CONQUEUEINFO113", wantRaw: 113, wantMatch: `QueueAction=Stop`},
		{desc: "error rebuilt from a reply code", action: "QUEUEINFO",
			err:      messages.Err(messages.ErrorCode_ERROR_CODE_QUEUE_FULL, "queue: FETCH holds 100 actions"),
			wantCode: "ERRORQUEUEFULL", wantID: "CONQUEUEINFO112", wantRaw: 112, wantMatch: `^queue: FETCH holds 100 actions \(retry later\)$`},
		{desc: "non-domain error is internal", action: "GETSTATUS", err: errors.New("boom"),
			wantCode: "ERRORINTERNAL", wantID: "CONGETSTATUS199", wantRaw: 199, wantDesc: "boom"},
		{desc: "nil error is internal", action: "GETSTATUS", err: nil,
			wantCode: "ERRORINTERNAL", wantID: "CONGETSTATUS199", wantRaw: 199, wantDesc: "unknown error"},
		{desc: "first row wins over a later one", action: "X", err: errors.Join(messages.ErrInternal, messages.ErrStore),
			wantCode: "ERRORSTOREFAILED", wantID: "CONX132", wantRaw: 132, wantMatch: "store unavailable"},
		{desc: "errorid keeps letters and digits only", action: "get status<2>", err: messages.ErrNotFound,
			wantCode: "ERRORPARAMINVALID", wantID: "CONGETSTATUS2120", wantRaw: 120, wantMatch: "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			e := ErrorFor(tc.action, tc.err, testNow)
			require.Equal(t, tc.wantCode, e.Code)
			require.Equal(t, tc.wantID, e.ID)
			require.Equal(t, tc.wantRaw, e.Raw)
			if tc.wantDesc != "" {
				require.Equal(t, tc.wantDesc, e.Description)
			} else {
				require.Regexp(t, tc.wantMatch, e.Description)
			}
			require.NotEmpty(t, e.String)
			require.Equal(t, testNow, e.Time)
		})
	}
}

// TestErrorRepliesValidate renders an error reply for every row (and an
// unknown error) in XML and checks each against the error type of
// autnResponse.xsd, and that the JSON formats are valid.
func TestErrorRepliesValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	errs := append([]error{errors.New("not a domain error")}, messages.DomainErrors...)
	var files []string
	for i, err := range errs {
		r := &Reply{Action: "QUEUEINFO", Err: ErrorFor("QUEUEINFO", err, testNow)}
		out, _ := Encode(nil, FormatXML, r)
		p := filepath.Join(dir, fmt.Sprintf("error%02d.xml", i))
		require.NoError(t, os.WriteFile(p, out, 0o644))
		files = append(files, p)
		require.Equal(t, r.Err, decodeReply(t, out, false).Err)
	}
	xmllint(t, filepath.Join("testdata", "idol", "error-reply.xsd"), files...)
}

// TestErrorSchemaRejects proves the wrapper schema does check the error
// block: a block in the wrong order or with a bad errortime must fail.
func TestErrorSchemaRejects(t *testing.T) {
	t.Parallel()
	path, err := execLookXmllint(t)
	require.NoError(t, err)
	good, _ := Encode(nil, FormatXML, &Reply{Action: "A", Err: ErrorFor("A", messages.ErrNotFound, testNow)})
	bad := map[string]string{
		"order":     regexp.MustCompile(`(<errorstring>.*</errorstring>)(<errordescription>.*</errordescription>)`).ReplaceAllString(string(good), "$2$1"),
		"errortime": regexp.MustCompile(`<errortime>.*</errortime>`).ReplaceAllString(string(good), "<errortime>2015-08-17</errortime>"),
		"missing":   regexp.MustCompile(`<errorcode>.*</errorcode>`).ReplaceAllString(string(good), ""),
	}
	dir := t.TempDir()
	for name, doc := range bad {
		require.NotEqual(t, string(good), doc, name)
		p := filepath.Join(dir, name+".xml")
		require.NoError(t, os.WriteFile(p, []byte(doc), 0o644))
		out, err := runXmllint(path, filepath.Join("testdata", "idol", "error-reply.xsd"), p)
		require.Error(t, err, "%s validated:\n%s", name, out)
	}
}

// TestErrorsDoc fails when docs/errors.md does not match the table; go
// generate (or go test -run TestErrorsDoc -update) rewrites it.
func TestErrorsDoc(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "docs", "errors.md")
	want := errorsMarkdown()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, want, 0o644))
		return
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err, "run go generate ./transport/aci")
	require.Equal(t, string(want), string(got), "docs/errors.md is stale: run go generate ./transport/aci")
}

// TestEveryErrorDescription renders, for every row of the table, the
// errors the server's code produces for it (the same texts, built the same
// way) and checks each description: not empty, no run of three words said
// twice (so never the hint twice), the hint at most once, and none of the
// Go sentinels' words ("queue: unknown token"), which errorstring says.
func TestEveryErrorDescription(t *testing.T) {
	t.Parallel()
	coded := func(code messages.ErrorCode, msg string) error { return messages.Err(code, msg) }
	produced := map[error][]error{
		messages.ErrUnknownAction: {fmt.Errorf("%w: FROBNICATE is not an action of this server", messages.ErrUnknownAction)},
		messages.ErrBadRequest: {fmt.Errorf("%w: invalid percent escape in the value of parameter %q in the %s", messages.ErrBadRequest, "x", "request path"),
			fmt.Errorf("%w: %s", messages.ErrBadRequest, "the chunked request body is malformed")},
		messages.ErrTooLarge: { // aci.ParseLimited, httpd (body and request line limits), httpfetch (parameter XML)
			fmt.Errorf("%w: the request line and headers are larger than the server reads (%d KiB); send long parameters in a POST body", messages.ErrTooLarge, 16),
			fmt.Errorf("%w: the request has more than %d parameters (%s)", messages.ErrTooLarge, 1000, "[Server] MaxRequestParameters"),
			fmt.Errorf("%w: the request body is larger than %s (%d bytes)", messages.ErrTooLarge, "[Server] MaxRequestBytes", 67108864),
			fmt.Errorf("%w: the request body has %d bytes, more than %s (%d bytes)", messages.ErrTooLarge, 1048577, "the 1 MiB that actions other than Fetch accept", 1048576),
			fmt.Errorf("%w: %s has more than %d XML elements (one per %d bytes of [Server] MaxRequestBytes)", messages.ErrTooLarge, "InsertXML", 262144, 256),
		},
		messages.ErrMissingParam: {messages.Missing("Token")},
		messages.ErrInvalidParam: {messages.Invalid("Priority", "high", "must be an integer from -2147483648 to 2147483647")},
		messages.ErrUnknownQueue: {fmt.Errorf("%w: there is no queue %q; this server has one queue, %q", messages.ErrUnknownQueue, "ingest", "fetch")},
		messages.ErrUnknownToken: {messages.ErrUnknownToken, fmt.Errorf("%w: the Token parameter is empty", messages.ErrUnknownToken),
			coded(messages.ErrorCode_ERROR_CODE_UNKNOWN_TOKEN, "no action has this token")},
		messages.ErrQueueFull:     {coded(messages.ErrorCode_ERROR_CODE_QUEUE_FULL, "the fetch queue already holds MaximumQueueSize=2 waiting actions")},
		messages.ErrActionRunning: {coded(messages.ErrorCode_ERROR_CODE_ACTION_RUNNING, "the action has started")},
		messages.ErrActionEnded: {coded(messages.ErrorCode_ERROR_CODE_ACTION_ENDED, "the action ended as Finished"),
			coded(messages.ErrorCode_ERROR_CODE_ACTION_ENDED, "the action ended as Stopped; only queued and running actions can be duplicated")},
		messages.ErrNotQueued:    {coded(messages.ErrorCode_ERROR_CODE_NOT_QUEUED, "the action has already started")},
		messages.ErrNotPaused:    {coded(messages.ErrorCode_ERROR_CODE_NOT_PAUSED, "the action is Processing")},
		messages.ErrNotFound:     {fmt.Errorf("httpfetch: view %s: task %s has not crawled it: %w", "http://x/", "MYTASK", messages.ErrNotFound)},
		messages.ErrShuttingDown: {fmt.Errorf("%w: queue %s has stopped", messages.ErrShuttingDown, "fetch"), coded(messages.ErrorCode_ERROR_CODE_SHUTTING_DOWN, "the server is shutting down and accepts no new actions")},
		messages.ErrTimeout:      {fmt.Errorf("%w: %v", messages.ErrTimeout, "future: timeout")},
		messages.ErrStore: { // actors/queue: refusedSubmit, unrecorded
			coded(messages.ErrorCode_ERROR_CODE_STORE, "the action was not accepted and is not queued: the store could not record it: write data/actions.db: no space left on device"),
			coded(messages.ErrorCode_ERROR_CODE_STORE, "the action was not accepted and has no token, but the store failed while writing it and it is not known whether it reached the disk: it may be found queued after the server restarts (the store accepts no more changes until then): store: failed"),
			coded(messages.ErrorCode_ERROR_CODE_STORE, "the action is Stopped, but this is not on disk yet: it is written again as soon as the disk allows, and a crash before then would undo it: write data/actions.db: no space left on device"),
		},
		messages.ErrInternal: {fmt.Errorf("%w: %v", messages.ErrInternal, "runtime error: index out of range"), errors.New("boom")},
		messages.ErrPermissionDenied: { // transport/httpd guard
			fmt.Errorf("%w: client %s (roles: %s) may not send %s: it needs the %s role", messages.ErrPermissionDenied, "192.0.2.7", "Query,ServiceStatus", "QueueInfo QueueAction=Cancel", "Admin"),
		},
		messages.ErrRefusedOrigin: { // transport/httpd guard
			fmt.Errorf("%w: a browser sent this request from another site (Sec-Fetch-Site: %s); the server answers requests from its own pages and from programs only", messages.ErrRefusedOrigin, "cross-site"),
			fmt.Errorf("%w: the Host header names %q, which is not one of [Server] AllowedHosts (%s)", messages.ErrRefusedOrigin, "evil.example", "127.0.0.1, localhost, ::1"),
		},
		messages.ErrClientLimit: { // transport/httpd clientLimiter, and its reply budget
			fmt.Errorf("%w: client %s has %d connections open, as many as %s allows one client", messages.ErrClientLimit, "192.0.2.7", 64, "[Server] MaxConnectionsPerClient"),
			fmt.Errorf("%w: client %s has %d bytes of replies not yet sent, and this one has %d: more than [Server] MaxReplyBytesPerClient (%d bytes) allows; read the replies it waits for, or page the list (MaxResults, Start)",
				messages.ErrClientLimit, "192.0.2.7", 8388608, 2097152, 1048576),
		},
	}
	require.Len(t, produced, len(errorTable), "every row has the errors its producers send")
	for _, d := range errorTable {
		for _, err := range produced[d.err] {
			e := ErrorFor("QUEUEINFO", err, testNow)
			require.Equal(t, d.code, e.Code, "%v", err)
			desc := e.Description
			require.NotEmpty(t, desc)
			require.Empty(t, wording.RepeatedPhrase(desc), "%q repeats itself", desc)
			if d.hint != "" {
				require.Equal(t, 1, strings.Count(desc, d.hint), "%q: the hint once", desc)
			}
			for _, s := range messages.DomainErrors {
				require.NotContains(t, desc, s.Error(), "%q", desc)
			}
		}
	}
}

// TestClientLimitRowSaysBothLimits: ERRORCLIENTLIMIT answers a client at
// its [Server] MaxConnectionsPerClient, and also one whose large replies
// waiting to be sent would pass [Server] MaxReplyBytesPerClient (however
// few connections it has). Its row, which docs/errors.md shows as when the
// code is sent, named the first alone, and its hint, added to both
// replies, told a client refused for its unread replies only to wait for
// its connections to close.
func TestClientLimitRowSaysBothLimits(t *testing.T) {
	t.Parallel()
	for _, d := range errorTable {
		if d.err != messages.ErrClientLimit {
			continue
		}
		require.Contains(t, d.reason, "MaxConnectionsPerClient")
		require.Contains(t, d.reason, "MaxReplyBytesPerClient", "errors.md says when ERRORCLIENTLIMIT is sent")
		require.Contains(t, d.hint, "read", "the hint says what frees a client refused for its unread replies")
		return
	}
	t.Fatal("no row for messages.ErrClientLimit")
}
