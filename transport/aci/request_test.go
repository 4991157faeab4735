package aci

import (
	"bytes"
	"errors"
	"mime/multipart"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// kv is a parameter as a test expects it.
type kv struct{ name, value string }

func paramsOf(ps messages.Params) []kv {
	out := make([]kv, 0, len(ps))
	for _, p := range ps {
		out = append(out, kv{p.GetName(), p.GetValue()})
	}
	return out
}

// multipartBody builds a multipart/form-data body with fields and one file
// part.
func multipartBody(t *testing.T) (contentType string, body []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	require.NoError(t, w.WriteField("FetchAction", "Synchronize"))
	require.NoError(t, w.WriteField("ResponseFormat", "simplejson"))
	fw, err := w.CreateFormFile("Config", "task.cfg")
	require.NoError(t, err)
	_, err = fw.Write([]byte("[MyTask]\r\nUrl=http://example.com/?a=1&b=2\r\n\x00\xff"))
	require.NoError(t, err)
	require.NoError(t, w.WriteField("Empty", ""))
	require.NoError(t, w.Close())
	return w.FormDataContentType(), b.Bytes()
}

func TestParse(t *testing.T) {
	t.Parallel()
	mpType, mpBody := multipartBody(t)
	tests := []struct {
		desc        string
		method      string
		uri         string
		contentType string
		body        string
		wantAction  string
		wantParams  []kv
		wantFormat  Format
	}{
		{desc: "path form", uri: "/action=GetStatus&x=1",
			wantAction: "GETSTATUS", wantParams: []kv{{"x", "1"}}},
		{desc: "path form without leading slash", uri: "action=GetStatus",
			wantAction: "GETSTATUS", wantParams: []kv{}},
		{desc: "path form with extra slashes", uri: "//action=GetStatus",
			wantAction: "GETSTATUS", wantParams: []kv{}},
		{desc: "query form, capital Action as the Java client sends", uri: "/?Action=GetStatus&x=1",
			wantAction: "GETSTATUS", wantParams: []kv{{"x", "1"}}},
		{desc: "query form on any path", uri: "/some/path?a=getstatus",
			wantAction: "GETSTATUS", wantParams: []kv{}},
		{desc: "path form and query merged, path first", uri: "/action=QueueInfo&QueueName=fetch?QueueAction=GetStatus&QueueName=other",
			wantAction: "QUEUEINFO", wantParams: []kv{{"QueueName", "fetch"}, {"QueueAction", "GetStatus"}, {"QueueName", "other"}}},
		{desc: "path without = is not a query", uri: "/index.html?action=GetVersion",
			wantAction: "GETVERSION", wantParams: []kv{}},
		{desc: "absolute form", uri: "http://host:9000/action=GetVersion&x=1",
			wantAction: "GETVERSION", wantParams: []kv{{"x", "1"}}},
		{desc: "absolute form without path", uri: "HTTPS://host:9000?action=GetVersion",
			wantAction: "GETVERSION", wantParams: []kv{}},
		{desc: "a= alias", uri: "/a=queueinfo&queueaction=getstatus&queuename=fetch",
			wantAction: "QUEUEINFO", wantParams: []kv{{"queueaction", "getstatus"}, {"queuename", "fetch"}}},
		{desc: "action name in any case", uri: "/?aCtIoN=Fetch",
			wantAction: "FETCH", wantParams: []kv{}},
		{desc: "A= alias upper case", uri: "/A=Fetch",
			wantAction: "FETCH", wantParams: []kv{}},
		{desc: "first action wins and no action pair stays in params", uri: "/action=First&a=Second&ACTION=Third&x=1",
			wantAction: "FIRST", wantParams: []kv{{"x", "1"}}},
		{desc: "action value trimmed", uri: "/action=+GetStatus%20",
			wantAction: "GETSTATUS", wantParams: []kv{}},
		{desc: "plus and percent decoding", uri: "/action=x&Text=hello+world%21&Sp%61ced+Name=%e2%82%ac",
			wantAction: "X", wantParams: []kv{{"Text", "hello world!"}, {"Spaced Name", "€"}}},
		{desc: "base64 token with +/= percent-encoded",
			uri:        "/action=QueueInfo&Token=MTAuMi4xMDUuMzQ6MTIzNDpGRVRDSDotMTgwNDU4NzIxMQ%3D%3D&Identifier=PGlk%2Bcz0%2F%3D",
			wantAction: "QUEUEINFO",
			wantParams: []kv{{"Token", "MTAuMi4xMDUuMzQ6MTIzNDpGRVRDSDotMTgwNDU4NzIxMQ=="}, {"Identifier", "PGlk+cz0/="}}},
		{desc: "duplicates kept in order", uri: "/action=x&p=1&P=2&p=3",
			wantAction: "X", wantParams: []kv{{"p", "1"}, {"P", "2"}, {"p", "3"}}},
		{desc: "empty names and pairs skipped", uri: "/action=x&=v&&p=1&%3d=&",
			wantAction: "X", wantParams: []kv{{"p", "1"}, {"=", ""}}},
		{desc: "name without = has an empty value", uri: "/action=x&Flag&y=",
			wantAction: "X", wantParams: []kv{{"Flag", ""}, {"y", ""}}},
		{desc: "value may contain =", uri: "/action=x&Config=a%3Db=c",
			wantAction: "X", wantParams: []kv{{"Config", "a=b=c"}}},
		{desc: "POST &-joined text/plain ISO-8859-1 as the Java client sends", method: "POST", uri: "/",
			contentType: "text/plain; charset=ISO-8859-1", body: "action=Fetch&FetchAction=Synchronize&Token=a%2Bb",
			wantAction: "FETCH", wantParams: []kv{{"FetchAction", "Synchronize"}, {"Token", "a+b"}}},
		{desc: "POST CRLF lines", method: "POST", uri: "/",
			body:       "action=Fetch\r\nFetchAction=Synchronize\r\nTaskSections=A,B\r\n",
			wantAction: "FETCH", wantParams: []kv{{"FetchAction", "Synchronize"}, {"TaskSections", "A,B"}}},
		{desc: "POST CR lines", method: "POST", uri: "/",
			body:       "action=Fetch\rFetchAction=Synchronize\r",
			wantAction: "FETCH", wantParams: []kv{{"FetchAction", "Synchronize"}}},
		{desc: "POST LF lines", method: "POST", uri: "/",
			body:       "action=Fetch\nFetchAction=Synchronize\n\nx=1",
			wantAction: "FETCH", wantParams: []kv{{"FetchAction", "Synchronize"}, {"x", "1"}}},
		{desc: "POST urlencoded", method: "POST", uri: "/", contentType: "application/x-www-form-urlencoded",
			body:       "action=Fetch&FetchAction=Collect&Identifiers=a+b%2Cc",
			wantAction: "FETCH", wantParams: []kv{{"FetchAction", "Collect"}, {"Identifiers", "a b,c"}}},
		{desc: "POST any other content type is form data", method: "POST", uri: "/", contentType: "application/octet-stream",
			body: "action=Fetch", wantAction: "FETCH", wantParams: []kv{}},
		{desc: "POST URI parameters come before body parameters", method: "POST", uri: "/action=Fetch&p=uri",
			body:       "p=body&q=1",
			wantAction: "FETCH", wantParams: []kv{{"p", "uri"}, {"p", "body"}, {"q", "1"}}},
		{desc: "POST action only in the body", method: "POST", uri: "/?x=1",
			body:       "a=GetStatus",
			wantAction: "GETSTATUS", wantParams: []kv{{"x", "1"}}},
		{desc: "POST multipart fields and a file part", method: "POST", uri: "/a=Fetch",
			contentType: mpType, body: string(mpBody),
			wantAction: "FETCH",
			wantParams: []kv{{"FetchAction", "Synchronize"}, {"ResponseFormat", "simplejson"},
				{"Config", "[MyTask]\r\nUrl=http://example.com/?a=1&b=2\r\n\x00\xff"}, {"Empty", ""}},
			wantFormat: FormatSimpleJSON},
		{desc: "POST multipart with no parts", method: "POST", uri: "/a=Fetch",
			contentType: "multipart/form-data; boundary=XYZ", body: "--XYZ--\r\n",
			wantAction: "FETCH", wantParams: []kv{}},
		{desc: "POST multipart part without a name skipped", method: "POST", uri: "/a=Fetch",
			contentType: "Multipart/Form-Data; boundary=XYZ",
			body:        "--XYZ\r\nContent-Type: text/plain\r\n\r\nanonymous\r\n--XYZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--XYZ--\r\n",
			wantAction:  "FETCH", wantParams: []kv{{"x", "1"}}},
		{desc: "GET body ignored", method: "GET", uri: "/action=GetStatus", body: "x=1",
			wantAction: "GETSTATUS", wantParams: []kv{}},
		{desc: "HEAD body ignored", method: "HEAD", uri: "/action=GetStatus", body: "x=1",
			wantAction: "GETSTATUS", wantParams: []kv{}},
		{desc: "ResponseFormat simplejson", uri: "/action=x&ResponseFormat=simplejson",
			wantAction: "X", wantParams: []kv{{"ResponseFormat", "simplejson"}}, wantFormat: FormatSimpleJSON},
		{desc: "responseformat SimpleJSON", uri: "/action=x&responseformat=SimpleJSON",
			wantAction: "X", wantParams: []kv{{"responseformat", "SimpleJSON"}}, wantFormat: FormatSimpleJSON},
		{desc: "ResponseFormat JSON", uri: "/action=x&ResponseFormat=JSON",
			wantAction: "X", wantParams: []kv{{"ResponseFormat", "JSON"}}, wantFormat: FormatJSON},
		{desc: "ResponseFormat xml", uri: "/action=x&ResponseFormat=Xml",
			wantAction: "X", wantParams: []kv{{"ResponseFormat", "Xml"}}, wantFormat: FormatXML},
		{desc: "empty ResponseFormat is XML", uri: "/action=x&ResponseFormat=",
			wantAction: "X", wantParams: []kv{{"ResponseFormat", ""}}, wantFormat: FormatXML},
		{desc: "first ResponseFormat wins", uri: "/action=x&ResponseFormat=json&ResponseFormat=bogus",
			wantAction: "X", wantParams: []kv{{"ResponseFormat", "json"}, {"ResponseFormat", "bogus"}}, wantFormat: FormatJSON},
		// Action names are ASCII and compared in ASCII case only: a
		// non-ASCII letter that Unicode maps to an ASCII one (long s, dotless
		// i) names no action, so that such a spelling cannot pass a filter
		// that refuses an action by name and still reach it.
		{desc: "a no-break space is not trimmed", uri: "/action=Stop%C2%A0",
			wantAction: "STOP\u00a0", wantParams: []kv{}},
		{desc: "a next-line control is not trimmed", uri: "/action=%C2%85GetPid",
			wantAction: "\u0085GETPID", wantParams: []kv{}},
		{desc: "ASCII white space is trimmed", uri: "/action=%20GetPid%09",
			wantAction: "GETPID", wantParams: []kv{}},
		{desc: "long s is not an S", uri: "/action=%C5%BFtop",
			wantAction: "\u017fTOP", wantParams: []kv{}},
		{desc: "dotless i is not an I", uri: "/action=Get%C4%B1dentifiers",
			wantAction: "GET\u0131DENTIFIERS", wantParams: []kv{}},
		{desc: "other letters keep their case", uri: "/action=caf%C3%A9",
			wantAction: "CAF\u00e9", wantParams: []kv{}},
		// Parameter names too: a long s does not spell ResponseFormat
		// (IsStandardParam would pass it on to the action as its own).
		{desc: "long s does not spell ResponseFormat", uri: "/action=x&Re%C5%BFponseFormat=json",
			wantAction: "X", wantParams: []kv{{"Re\u017fponseFormat", "json"}}, wantFormat: FormatXML},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req, err := Parse([]byte(method), []byte(tc.uri), []byte(tc.contentType), []byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.wantAction, req.Action)
			require.Equal(t, tc.wantParams, paramsOf(req.Params))
			require.Equal(t, tc.wantFormat, req.Format)
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc        string
		method      string
		uri         string
		contentType string
		body        string
		wantIs      error
		wantMsg     string // substring of the error text
		wantAction  string // what the returned Request still carries
		wantFormat  Format
		wantParams  []kv
	}{
		{desc: "no action", uri: "/?x=1", wantIs: messages.ErrMissingParam, wantMsg: "Action",
			wantParams: []kv{{"x", "1"}}},
		{desc: "no parameters at all", uri: "/", wantIs: messages.ErrMissingParam, wantMsg: "Action",
			wantParams: []kv{}},
		{desc: "asterisk target", uri: "*", wantIs: messages.ErrMissingParam, wantParams: []kv{}},
		{desc: "empty action", uri: "/action=&ResponseFormat=json", wantIs: messages.ErrMissingParam,
			wantFormat: FormatJSON, wantParams: []kv{{"ResponseFormat", "json"}}},
		{desc: "blank action", uri: "/a=+%20", wantIs: messages.ErrMissingParam, wantParams: []kv{}},
		{desc: "missing action outranks bad format", uri: "/?ResponseFormat=yaml",
			wantIs: messages.ErrMissingParam, wantParams: []kv{{"ResponseFormat", "yaml"}}},
		{desc: "unknown ResponseFormat", uri: "/action=GetStatus&ResponseFormat=yaml",
			wantIs: messages.ErrInvalidParam, wantMsg: "ResponseFormat", wantAction: "GETSTATUS",
			wantParams: []kv{{"ResponseFormat", "yaml"}}},
		{desc: "bad escape in a value", uri: "/action=GetStatus&Token=ab%zz&ResponseFormat=simplejson",
			wantIs: messages.ErrBadRequest, wantMsg: `value of parameter "Token" in the request path`,
			wantAction: "GETSTATUS", wantFormat: FormatSimpleJSON, wantParams: []kv{{"ResponseFormat", "simplejson"}}},
		{desc: "bad escape in a name", uri: "/?action=GetStatus&To%2ken=1",
			wantIs: messages.ErrBadRequest, wantMsg: "parameter name in the query string",
			wantAction: "GETSTATUS", wantParams: []kv{}},
		{desc: "truncated escape at the end", uri: "/?action=GetStatus&x=%4",
			wantIs: messages.ErrBadRequest, wantMsg: `"x" in the query string`,
			wantAction: "GETSTATUS", wantParams: []kv{}},
		{desc: "lone percent", uri: "/?action=GetStatus&x=100%",
			wantIs: messages.ErrBadRequest, wantAction: "GETSTATUS", wantParams: []kv{}},
		{desc: "bad escape in the action itself", uri: "/action=Get%GGStatus",
			wantIs: messages.ErrBadRequest, wantParams: []kv{}},
		{desc: "bad request outranks missing action", method: "POST", uri: "/", body: "x=%",
			wantIs: messages.ErrBadRequest, wantMsg: "request body", wantParams: []kv{}},
		{desc: "multipart without boundary", method: "POST", uri: "/action=Fetch",
			contentType: "multipart/form-data", body: "x",
			wantIs: messages.ErrBadRequest, wantMsg: "no boundary", wantAction: "FETCH", wantParams: []kv{}},
		{desc: "multipart content type unparsable", method: "POST", uri: "/action=Fetch",
			contentType: "multipart/form-data; boundary", body: "x",
			wantIs: messages.ErrBadRequest, wantMsg: "content type", wantAction: "FETCH", wantParams: []kv{}},
		{desc: "multipart body not multipart", method: "POST", uri: "/action=Fetch",
			contentType: "multipart/form-data; boundary=XYZ", body: "just text",
			wantIs: messages.ErrBadRequest, wantMsg: "multipart part 1", wantAction: "FETCH", wantParams: []kv{}},
		{desc: "multipart body cut short", method: "POST", uri: "/action=Fetch",
			contentType: "multipart/form-data; boundary=XYZ",
			body:        "--XYZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue",
			wantIs:      messages.ErrBadRequest, wantMsg: `multipart part "a"`, wantAction: "FETCH", wantParams: []kv{}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req, err := Parse([]byte(method), []byte(tc.uri), []byte(tc.contentType), []byte(tc.body))
			require.Error(t, err)
			require.ErrorIs(t, err, tc.wantIs)
			require.Contains(t, err.Error(), tc.wantMsg)
			require.NotNil(t, req)
			require.Equal(t, tc.wantAction, req.Action)
			require.Equal(t, tc.wantFormat, req.Format)
			require.Equal(t, tc.wantParams, paramsOf(req.Params))
		})
	}
}

func TestParseErrorNamesParameter(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("GET"), []byte("/?x=1"), nil, nil)
	var pe *messages.ParamError
	require.True(t, errors.As(err, &pe))
	require.Equal(t, "Action", pe.Name)
	require.True(t, pe.Missing)

	_, err = Parse([]byte("GET"), []byte("/a=x&responseformat=yaml"), nil, nil)
	require.True(t, errors.As(err, &pe))
	require.Equal(t, "ResponseFormat", pe.Name)
	require.Equal(t, "yaml", pe.Value)
}

// TestParseCopiesInput checks that the Request does not share memory with
// the buffers fasthttp reuses after the handler returns.
func TestParseCopiesInput(t *testing.T) {
	t.Parallel()
	mpType, mpBody := multipartBody(t)
	for _, in := range []struct{ uri, ct, body string }{
		{uri: "/action=Fetch&FetchAction=Synchronize?Token=abc", body: "x=1&y=2"},
		{uri: "/a=Fetch", ct: mpType, body: string(mpBody)},
	} {
		uri, ct, body := []byte(in.uri), []byte(in.ct), []byte(in.body)
		req, err := Parse([]byte("POST"), uri, ct, body)
		require.NoError(t, err)
		want := paramsOf(req.Params)
		wantAction := req.Action
		for _, b := range [][]byte{uri, ct, body} {
			for i := range b {
				b[i] = '#'
			}
		}
		require.Equal(t, want, paramsOf(req.Params))
		require.Equal(t, wantAction, req.Action)
	}
}

func TestParseManyParams(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("/action=x")
	want := []kv{}
	for i := range 100 {
		name := "p" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		b.WriteString("&" + name + "=v%20" + name)
		want = append(want, kv{name, "v " + name})
	}
	req, err := Parse([]byte("GET"), []byte(b.String()), nil, nil)
	require.NoError(t, err)
	require.Equal(t, want, paramsOf(req.Params))
}

func TestParseBool(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"TRUE", "true", "True", "ON", "on", "Y", "y", "YES", "yes", "1", " true "} {
		b, ok := ParseBool(v)
		require.True(t, ok, v)
		require.True(t, b, v)
	}
	for _, v := range []string{"FALSE", "false", "OFF", "off", "N", "n", "NO", "no", "0", "\tFalse"} {
		b, ok := ParseBool(v)
		require.True(t, ok, v)
		require.False(t, b, v)
	}
	for _, v := range []string{"", "2", "yess", "t", "f", "-1", "truee", "o"} {
		_, ok := ParseBool(v)
		require.False(t, ok, v)
	}
}

func TestRequestHelpers(t *testing.T) {
	t.Parallel()
	req, err := Parse([]byte("GET"),
		[]byte("/action=x&Priority=5&MaxResults=abc&Empty=&Sync=yes&Bad=maybe&Neg=-3&Big=99999999999999999999"), nil, nil)
	require.NoError(t, err)

	n, err := req.Int("priority", 1)
	require.NoError(t, err)
	require.EqualValues(t, 5, n)
	n, err = req.Int("Absent", 7)
	require.NoError(t, err)
	require.EqualValues(t, 7, n)
	n, err = req.Int("Empty", 7)
	require.NoError(t, err)
	require.EqualValues(t, 7, n)
	_, err = req.Int("MaxResults", 0)
	require.ErrorIs(t, err, messages.ErrInvalidParam)
	require.Contains(t, err.Error(), "MaxResults")
	_, err = req.Int("Big", 0)
	require.ErrorIs(t, err, messages.ErrInvalidParam)

	n, err = req.IntRange("Neg", 0, -5, 5)
	require.NoError(t, err)
	require.EqualValues(t, -3, n)
	_, err = req.IntRange("Priority", 0, 0, 4)
	require.ErrorIs(t, err, messages.ErrInvalidParam)
	require.Contains(t, err.Error(), "from 0 to 4")
	n, err = req.IntRange("Absent", 100, 0, 4)
	require.NoError(t, err)
	require.EqualValues(t, 100, n)

	b, err := req.Bool("sync", false)
	require.NoError(t, err)
	require.True(t, b)
	b, err = req.Bool("Empty", true)
	require.NoError(t, err)
	require.True(t, b)
	_, err = req.Bool("Bad", false)
	require.ErrorIs(t, err, messages.ErrInvalidParam)
	require.Contains(t, err.Error(), `"maybe"`)

	v, err := req.Require("PRIORITY")
	require.NoError(t, err)
	require.Equal(t, "5", v)
	_, err = req.Require("Empty")
	require.ErrorIs(t, err, messages.ErrMissingParam)
	_, err = req.Require("Token")
	require.ErrorIs(t, err, messages.ErrMissingParam)
	require.Contains(t, err.Error(), "Token")
}

func TestStandardParams(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"ActionID", "actionid", "ResponseFormat", "RESPONSEFORMAT", "EncryptResponse",
		"FileName", "ForceTemplateRefresh", "Output", "Template", "TemplateParamCSVs"} {
		require.True(t, IsStandardParam(n), n)
	}
	for _, n := range []string{"", "Action", "Token", "Templates", "Outpu", "QueueName"} {
		require.False(t, IsStandardParam(n), n)
	}
	req, err := Parse([]byte("GET"), []byte("/action=QueueInfo&ActionID=7&QueueName=fetch&responseformat=json&Token=t"), nil, nil)
	require.NoError(t, err)
	require.Equal(t, []kv{{"QueueName", "fetch"}, {"Token", "t"}}, paramsOf(req.ActionParams()))
	require.Len(t, req.Params, 4)
}

func TestFormatString(t *testing.T) {
	t.Parallel()
	for _, f := range []Format{FormatXML, FormatSimpleJSON, FormatJSON} {
		g, ok := ParseFormat(f.String())
		require.True(t, ok)
		require.Equal(t, f, g)
	}
	require.Equal(t, "xml", Format(200).String())
}

// TestParseUploads: which multipart parts are files (their size is what a
// log may show): a part with a file name, or whose content type is not
// text/*; a plain field or a text/* part is not.
func TestParseUploads(t *testing.T) {
	t.Parallel()
	part := func(disposition, contentType, content string) string {
		s := "--B\r\nContent-Disposition: form-data; " + disposition + "\r\n"
		if contentType != "" {
			s += "Content-Type: " + contentType + "\r\n"
		}
		return s + "\r\n" + content + "\r\n"
	}
	cases := []struct {
		desc  string
		parts []string
		want  []Upload
	}{
		{"curl -F name=value", []string{part(`name="ConfigSection"`, "", "MyTask")}, nil},
		{"Java client text parameter", []string{part(`name="ConfigSection"`, "text/plain; charset=UTF-8", "MyTask")}, nil},
		{"curl -F name=@file", []string{part(`name="ConfigSection"`, "", "MyTask"),
			part(`name="InsertXML"; filename="insert.xml"`, "application/xml", "<insert>1234</insert>")},
			[]Upload{{Index: 1, FileName: "insert.xml", Size: 21}}},
		{"a text file is a file too", []string{part(`name="Config"; filename="a.cfg"`, "text/plain", "[A]\r\nB=1")},
			[]Upload{{Index: 0, FileName: "a.cfg", Size: 8}}},
		{"Java client binary parameter", []string{part(`name="InsertXML"`, "application/octet-stream", "\x00\x01\x02")},
			[]Upload{{Index: 0, Size: 3}}},
		{"a file part named action is not a parameter", []string{part(`name="action"; filename="a.txt"`, "", "GetStatus"),
			part(`name="Data"; filename="d.bin"`, "", "xy")},
			[]Upload{{Index: 0, FileName: "d.bin", Size: 2}}},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			t.Parallel()
			body := strings.Join(c.parts, "") + "--B--\r\n"
			req, err := Parse([]byte("POST"), []byte("/action=Fetch"), []byte("multipart/form-data; boundary=B"), []byte(body))
			require.NoError(t, err)
			require.Equal(t, c.want, req.Uploads)
			for i := range req.Params {
				u, ok := req.Upload(i)
				want := slices.ContainsFunc(c.want, func(w Upload) bool { return w.Index == i })
				require.Equal(t, want, ok, "param %d", i)
				if ok {
					require.Len(t, req.Params[i].Value, u.Size)
				}
			}
		})
	}
	req, err := Parse([]byte("POST"), []byte("/action=Fetch"), []byte("text/plain"), []byte("a=1&b=2"))
	require.NoError(t, err)
	require.Nil(t, req.Uploads, "a form body has no uploads")
}

// charsetPart is one multipart text part whose Content-Type is
// text/plain with charset label (none when label is ""), as the Java ACI
// client sends every string parameter: labelled with its configured charset
// (AciServerDetails.charsetName) and encoded in it.
func charsetPart(name, label, value string) string {
	ct := "text/plain"
	if label != "" {
		ct += "; charset=" + label
	}
	return "--B\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\nContent-Type: " + ct +
		"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + value + "\r\n"
}

// TestParseMultipartCharset: a multipart text part labelled with a charset
// other than UTF-8 (a Java client configured for ISO-8859-1) is decoded from
// it to UTF-8; UTF-8 and unlabelled parts and file parts are kept as sent;
// an unknown label or a value its charset cannot hold is an invalid value
// naming the parameter and the charset. The Latin-1 é used to reach the
// action as the byte 0xE9, which the queue refuses as not UTF-8.
func TestParseMultipartCharset(t *testing.T) {
	t.Parallel()
	parse := func(parts ...string) (*Request, error) {
		body := strings.Join(parts, "") + "--B--\r\n"
		return Parse([]byte("POST"), []byte("/?Action=Fetch"), []byte("multipart/form-data; charset=ISO-8859-1; boundary=B"), []byte(body))
	}
	req, err := parse(
		charsetPart("ConfigSection", "ISO-8859-1", "Caf\xe9"),
		charsetPart("[Caf\xe9]Note", "iso-8859-1", "na\xefve \xe9t\xe9"),
		charsetPart("Euro", "windows-1252", "\x80 5"),
		charsetPart("Sjis", "Shift_JIS", "\x93\xfa\x96\x7b"), // 日本
		charsetPart("Utf8", "UTF-8", "caf\xc3\xa9"),
		charsetPart("Utf8Alias", "utf8", "caf\xc3\xa9"),
		charsetPart("Plain", "", "caf\xc3\xa9"),
		charsetPart("Raw", "", "a\xffb"), // unlabelled bytes are left to the action to judge, as before
		"--B\r\nContent-Disposition: form-data; name=\"File\"; filename=\"f.txt\"\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\n\xe9\r\n",
	)
	require.NoError(t, err)
	require.Equal(t, "FETCH", req.Action)
	got := map[string]string{}
	for _, p := range req.Params {
		got[p.GetName()] = p.GetValue()
	}
	require.Equal(t, map[string]string{
		"ConfigSection": "Café",
		"[Caf\xe9]Note": "naïve été", // names stay as sent: the client writes them in ASCII
		"Euro":          "€ 5",
		"Sjis":          "日本",
		"Utf8":          "café", "Utf8Alias": "café", "Plain": "café", "Raw": "a\xffb",
		"File": "\xe9", // a file's bytes are its content, whatever its label
	}, got)
	u, ok := req.Upload(len(req.Params) - 1)
	require.True(t, ok)
	require.Equal(t, 1, u.Size)

	for _, c := range []struct {
		desc, part, msg string
	}{
		{"unknown label", charsetPart("Note", "x-klingon", "abc"), `parameter Note: unknown charset "x-klingon"`},
		{"not valid in its charset", charsetPart("Note", "US-ASCII", "caf\xe9"), `parameter Note: not valid US-ASCII`},
	} {
		req, err := parse(charsetPart("FetchAction", "ISO-8859-1", "Synchronize"), c.part)
		require.ErrorIs(t, err, messages.ErrInvalidParam, c.desc)
		require.ErrorContains(t, err, c.msg, c.desc)
		require.Equal(t, "FETCH", req.Action, c.desc)
	}
	// A missing action still outranks it.
	_, err = Parse([]byte("POST"), []byte("/"), []byte("multipart/form-data; boundary=B"),
		[]byte(charsetPart("Note", "x-klingon", "abc")+"--B--\r\n"))
	require.ErrorIs(t, err, messages.ErrMissingParam)
}

// A secret setting's value written into a parameter's name is redacted
// from it (see TestSecretsInParameterNamesNeverShown in httpd); names that
// carry none are kept as they came.
func TestNameSecret(t *testing.T) {
	for name, want := range map[string]string{
		"Password:hunter2":              "Password:[REDACTED]",
		"AuthPassword hunter2":          "AuthPassword [REDACTED]",
		"ProxyPassword=hunter2":         "ProxyPassword=[REDACTED]",
		" Password\thunter2":            " Password\t[REDACTED]",
		"[My Task]ClientSecret: x":      "[My Task]ClientSecret:[REDACTED]",
		"Authorization: Bearer abc":     "Authorization:[REDACTED]",
		"[My Task]AuthPassword":         "[My Task]AuthPassword",
		"AuthPassword ":                 "AuthPassword ",
		"Password:":                     "Password:",
		"Url:8080":                      "Url:8080",
		"TaskSections":                  "TaskSections",
		"http://u:[REDACTED]@h/":        "http://u:[REDACTED]@h/",
		"Note: my password is not here": "Note: my password is not here",
	} {
		require.Equal(t, want, nameSecret(name), "%q", name)
	}
}

// A UTF-16 part holding U+FFFD itself (text that went through a bad
// decoding once, a replacement character typed in) is text, decoded as
// any other; half of a surrogate pair is not, and is refused as before.
// On main the U+FFFD was taken for the decoder's mark of invalid input:
// the part was refused, "not valid UTF-16LE", for a value a UTF-8 part
// carries as it is.
func TestParseMultipartUTF16KeepsReplacementCharacter(t *testing.T) {
	t.Parallel()
	parse := func(label, value string) (*Request, error) {
		return Parse([]byte("POST"), []byte("/?Action=Fetch"), []byte("multipart/form-data; boundary=B"),
			[]byte(charsetPart("Note", label, value)+"--B--\r\n"))
	}
	for _, c := range []struct{ label, raw, want string }{
		{"UTF-16LE", "a\x00\xfd\xffb\x00", "a\uFFFDb"},
		{"UTF-16BE", "\x00a\xff\xfd\xd8\x3d\xde\x00", "a\uFFFD😀"},
		{"UTF-16", "\xff\xfea\x00\xfd\xff", "a\uFFFD"},
		{"UTF-16", "\xfe\xff\x00a\xff\xfd", "a\uFFFD"},
	} {
		req, err := parse(c.label, c.raw)
		require.NoError(t, err, "%s %q", c.label, c.raw)
		require.Equal(t, c.want, req.Params.Value("Note"), "%s %q", c.label, c.raw)
	}
	for _, c := range []struct{ label, raw string }{
		{"UTF-16LE", "a\x00\x00\xd8b\x00"},          // a high half alone
		{"UTF-16LE", "a\x00\xfd\xff\x00\xdc"},       // U+FFFD, then a low half alone
		{"UTF-16BE", "\x00a\xff"},                   // an odd byte
		{"UTF-16", "\xfe\xff\x00a\xd8\x00\xff\xfd"}, // a high half, then U+FFFD
	} {
		_, err := parse(c.label, c.raw)
		require.ErrorIs(t, err, messages.ErrInvalidParam, "%s %q", c.label, c.raw)
		require.ErrorContains(t, err, "not valid "+c.label, "%s %q", c.label, c.raw)
	}
}
