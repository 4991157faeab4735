package httpd

import (
	"bytes"
	"encoding/xml"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/messages"
)

// saveReply writes body to a new file in dir for xmllint and returns it.
func saveReply(t *testing.T, dir, name string, body []byte) string {
	t.Helper()
	f := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(f, body, 0o600))
	return f
}

// TestGetVersionBuildIsANumber: whatever the build stamped, GetVersion's
// autn:build is an unsigned integer and the reply validates against
// OpenText's getVersionResponse.xsd; GetStatus's <build> likewise. The
// revision goes to autn:aciversion (semantic-versioning build metadata) and
// to GetStatus's <revision>.
func TestGetVersionBuildIsANumber(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		v              Version
		build, aciver  string
		statusRevision string
	}{
		{"stamped", Version{Version: "1.2.0", Revision: "0123456789ab", Build: 421}, "421", "1.2.0+0123456789ab", "0123456789ab"},
		{"dirty tree", Version{Version: "1.2.0", Revision: "0123456789ab-dirty", Build: 421}, "421", "1.2.0+0123456789ab-dirty", "0123456789ab-dirty"},
		{"not stamped", Version{Version: "0.0.0-dev", Revision: "unknown"}, "0", "0.0.0-dev", "unknown"},
		{"no revision", Version{Version: "0.0.0-dev"}, "0", "0.0.0-dev", "unknown"},
		{"largest build", Version{Version: "2.0.0", Revision: "fedcba987654", Build: 1<<64 - 1}, "18446744073709551615", "2.0.0+fedcba987654", "fedcba987654"},
	}
	dir := t.TempDir()
	var versions, statuses []string
	for _, c := range cases {
		v := c.v
		e := startWith(t, setup{version: &v})
		_, body := e.get(t, "/action=GetVersion")
		versions = append(versions, saveReply(t, dir, "getversion-"+c.build+"-"+c.statusRevision+".xml", body))
		require.Contains(t, string(body), "<autn:build>"+c.build+"</autn:build>", c.name)
		require.Contains(t, string(body), "<autn:version>"+c.v.Version+"</autn:version>", c.name)
		require.Contains(t, string(body), "<autn:aciversion>"+c.aciver+"</autn:aciversion>", c.name)

		_, body = e.get(t, "/action=GetStatus")
		statuses = append(statuses, saveReply(t, dir, "getstatus-"+c.build+"-"+c.statusRevision+".xml", body))
		require.Contains(t, string(body), "<build>"+c.build+"</build><revision>"+c.statusRevision+"</revision>", c.name)
	}
	xmllint(t, getVersionXSD, versions...)
	xmllint(t, getStatusXSD, statuses...)
}

// logEntries reads GetRequestLog's entries (request, status), oldest
// first.
func (e *env) logEntries(t *testing.T, query string) []struct{ Request, Status string } {
	t.Helper()
	x := e.aci(t, "/action=GetRequestLog"+query)
	require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
	var entries struct {
		Entries []struct {
			Request string `xml:"request"`
			Status  string `xml:"status"`
		} `xml:"logentry"`
	}
	require.NoError(t, xml.Unmarshal([]byte("<r>"+string(x.ResponseData.Inner)+"</r>"), &entries))
	out := make([]struct{ Request, Status string }, len(entries.Entries))
	for i, en := range entries.Entries {
		out[i].Request, out[i].Status = en.Request, en.Status
	}
	return out
}

// post sends body to path with contentType and returns the reply body.
func (e *env) post(t *testing.T, path, contentType string, body []byte) string {
	t.Helper()
	resp, err := http.Post(e.base+path, contentType, bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	return string(b)
}

// TestRequestLogRecordsBodyParameters: GetRequestLog records a request's
// parameters wherever they came from (path, query string, form body under
// any content type, one pair per line, multipart fields, Java's chunked
// multipart), in order; a file part shows its size (and file name), never
// its content.
func TestRequestLogRecordsBodyParameters(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	multi := func(build func(w *multipart.Writer)) (string, []byte) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		build(w)
		require.NoError(t, w.Close())
		return w.FormDataContentType(), b.Bytes()
	}
	curlFields, curlFieldsBody := multi(func(w *multipart.Writer) {
		require.NoError(t, w.WriteField("ResponseFormat", "simplejson"))
		require.NoError(t, w.WriteField("Note", "a b&c"))
	})
	curlFile, curlFileBody := multi(func(w *multipart.Writer) {
		require.NoError(t, w.WriteField("FetchAction", "Collect"))
		require.NoError(t, w.WriteField("ConfigSection", "MyTask"))
		fw, err := w.CreateFormFile("Identifiers", "ids.csv")
		require.NoError(t, err)
		_, err = fw.Write([]byte("SECRET-FILE-CONTENT,id2"))
		require.NoError(t, err)
	})
	cases := []struct {
		name   string
		send   func() string // sends the request, returns its reply
		want   string        // the request as GetRequestLog records it
		status string
		absent string // never in the log
	}{
		{"GET path form", func() string { _, b := e.get(t, "/action=GetVersion&ResponseFormat=xml"); return string(b) },
			"action=GETVERSION&ResponseFormat=xml", "success", ""},
		{"GET query form (Java client)", func() string {
			return e.replay(t, readReplay(t, "get-fetch.http"))
		}, "action=FETCH&FetchAction=Synchronize&ConfigSection=MyTask&Priority=2", "success", ""},
		{"POST form body under text/plain (Java client)", func() string {
			return e.replay(t, readReplay(t, "post-fetch.http"))
		}, "action=FETCH&FetchAction=Collect&ConfigSection=MyTask&Identifiers=a%2Cb+c", "success", ""},
		{"POST form body, one pair per line", func() string {
			return e.post(t, "/", "application/x-www-form-urlencoded", []byte("action=GetStatus\r\nActionID=42\nNote=x%20y\r"))
		}, "action=GETSTATUS&ActionID=42&Note=x+y", "success", ""},
		{"URL and body together, URL first", func() string {
			return e.post(t, "/action=Fetch&FetchAction=Collect", "text/plain", []byte("ConfigSection=MyTask&Identifiers=x"))
		}, "action=FETCH&FetchAction=Collect&ConfigSection=MyTask&Identifiers=x", "success", ""},
		{"multipart fields (curl -F)", func() string {
			return e.post(t, "/a=getversion", curlFields, curlFieldsBody)
		}, "action=GETVERSION&ResponseFormat=simplejson&Note=a+b%26c", "success", ""},
		{"multipart file (curl -F name=@file)", func() string {
			return e.post(t, "/action=Fetch", curlFile, curlFileBody)
		}, "action=FETCH&FetchAction=Collect&ConfigSection=MyTask&Identifiers=[file ids.csv, 23 bytes]", "success", "SECRET-FILE-CONTENT"},
		{"chunked multipart, binary part (Java client)", func() string {
			return e.replay(t, readReplay(t, "multipart-chunked-fetch.http"))
		}, "action=FETCH&FetchAction=Collect&ConfigSection=MyTask&InsertXML=[50 bytes]", "success", "reference"},
		{"an undecodable request: what could be read", func() string {
			return e.replay(t, []byte("GET /action=GetStatus&Good=1&Bad=%zz&Also=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
		}, "action=GETSTATUS&Good=1&Also=2", "failure", "%zz"},
	}
	for _, c := range cases {
		reply := c.send()
		require.Contains(t, reply, "response", c.name)
		got := e.logEntries(t, "&Tail=1")
		require.Len(t, got, 1, c.name)
		require.Equal(t, c.want, got[0].Request, c.name)
		require.Equal(t, c.status, got[0].Status, c.name)
		if c.absent != "" {
			require.NotContains(t, got[0].Request, c.absent, c.name)
		}
	}
}

// TestGetRequestLogTail: IDOL's Tail and this server's MaxEntries both
// return the last N entries; given both, they must agree.
func TestGetRequestLogTail(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for i := range 5 {
		e.aci(t, "/action=GetVersion&N="+strconv.Itoa(i))
	}
	cases := []struct {
		query string
		want  []string // the requests returned, or the parameter named in the error
		err   string
	}{
		{"&Tail=2", []string{"action=GETVERSION&N=3", "action=GETVERSION&N=4"}, ""},
		{"&tail=1", []string{"action=GETVERSION&N=4"}, ""},
		{"&MaxEntries=2", []string{"action=GETVERSION&N=3", "action=GETVERSION&N=4"}, ""},
		{"&Tail=2&MaxEntries=2", []string{"action=GETVERSION&N=3", "action=GETVERSION&N=4"}, ""},
		{"&Tail=2&MaxEntries=3", nil, "Tail"},
		{"&Tail=0", nil, "Tail"},
		{"&Tail=last", nil, "Tail"},
	}
	for _, c := range cases {
		x := e.aci(t, "/action=GetRequestLog"+c.query)
		if c.err != "" {
			require.Equal(t, "ERROR", x.Response, c.query)
			require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, c.query)
			require.Contains(t, x.ResponseData.Desc, "parameter "+c.err+":", c.query)
			continue
		}
		require.Equal(t, "SUCCESS", x.Response, c.query)
		// Only the five GetVersions and the GetRequestLogs before this
		// one are in the log; look at the last entries.
		var entries struct {
			Requests []string `xml:"logentry>request"`
		}
		require.NoError(t, xml.Unmarshal([]byte("<r>"+string(x.ResponseData.Inner)+"</r>"), &entries))
		if c.query == "&Tail=2" {
			require.Equal(t, c.want, entries.Requests, c.query)
		} else {
			require.Len(t, entries.Requests, len(c.want), c.query)
		}
	}
}

// TestMultipartOrderKept: the parts of a multipart body are parameters in
// the order sent, so that the first of two duplicates wins every time.
// (fasthttp's own pre-parse kept them in a map and re-encoded them in a
// random order; the server now leaves multipart bodies to the codec.)
func TestMultipartOrderKept(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, kv := range [][2]string{{"ResponseFormat", "simplejson"}, {"Note", "1"}, {"ResponseFormat", "xml"}, {"Note", "2"}} {
		require.NoError(t, w.WriteField(kv[0], kv[1]))
	}
	require.NoError(t, w.Close())
	for i := range 20 {
		reply := e.post(t, "/action=GetVersion", w.FormDataContentType(), b.Bytes())
		require.True(t, strings.HasPrefix(reply, `{"autnresponse"`), "request %d: the first ResponseFormat wins: %.60s", i, reply)
		got := e.logEntries(t, "&Tail=1")
		require.Equal(t, "action=GETVERSION&ResponseFormat=simplejson&Note=1&ResponseFormat=xml&Note=2", got[0].Request, "request %d", i)
	}
}

// TestStandardActions: every action named in the official Java client's
// constants (AciConstants) gets an answer: GetPid, GetLicenseInfo and
// ThreadStatus in the shapes docs/protocol.md gives, the others as
// before, and GetChildren and Encrypted, which a connector that is not a
// Distributed Connector does not serve, an ERRORNOTIMPLEMENTED that says
// why.
func TestStandardActions(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *queue.Config) { c.MaximumThreads = 2 })
	sync := e.submit(t, "Synchronize", "")
	e.waitStatus(t, sync, "Processing")

	type node struct {
		XMLName  xml.Name
		Text     string `xml:",chardata"`
		Children []node `xml:",any"`
	}
	tree := func(x xresp) node {
		var n node
		require.NoError(t, xml.Unmarshal([]byte("<responsedata>"+string(x.ResponseData.Inner)+"</responsedata>"), &n))
		return n
	}
	// flat lists a tree as "path=text" lines, the path of local names.
	var flat func(prefix string, n node, out *[]string)
	flat = func(prefix string, n node, out *[]string) {
		for _, c := range n.Children {
			p := prefix + c.XMLName.Local
			if len(c.Children) == 0 {
				*out = append(*out, p+"="+c.Text)
				continue
			}
			flat(p+"/", c, out)
		}
	}
	cases := []struct {
		action string
		check  func(t *testing.T, x xresp, lines []string)
	}{
		{"GetPid", func(t *testing.T, x xresp, lines []string) {
			require.Equal(t, []string{"pid=" + strconv.Itoa(os.Getpid())}, lines)
			require.Contains(t, string(x.ResponseData.Inner), "<autn:pid>")
		}},
		{"GetLicenseInfo", func(t *testing.T, x xresp, lines []string) {
			require.Contains(t, lines, "license/validlicense=true")
			require.Contains(t, lines, "license/licenserequired=false")
			var actions []string
			for _, l := range lines {
				if strings.HasPrefix(l, "actions/") {
					actions = append(actions, strings.TrimPrefix(l, "actions/section/"))
				}
			}
			require.Equal(t, []string{"name=Connector",
				"action/name=Fetch", "action/licensed=true", "action/name=QueueInfo", "action/licensed=true",
				"action/name=TaskList", "action/licensed=true", "action/name=View", "action/licensed=true",
				"name=General", "action/name=Admin", "action/licensed=true",
				"action/name=GetLicenseInfo", "action/licensed=true", "action/name=GetPid", "action/licensed=true",
				"action/name=GetRequestLog", "action/licensed=true", "action/name=GetStatus", "action/licensed=true",
				"action/name=GetVersion", "action/licensed=true", "action/name=ShowPermissions", "action/licensed=true",
				"action/name=ThreadStatus", "action/licensed=true",
			}, actions)
		}},
		{"ThreadStatus", func(t *testing.T, x xresp, lines []string) {
			for i := range lines {
				lines[i] = strings.TrimPrefix(lines[i], "threads/thread/")
			}
			require.Len(t, lines, 11, "%v", lines)
			require.Equal(t, []string{"number=1", "queue=fetch", "status=Busy", "token=" + sync,
				"fetchaction=SYNCHRONIZE", "actionstatus=Processing"}, lines[:6])
			require.Regexp(t, `^starttime=\d{4}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2}$`, lines[6])
			require.Regexp(t, `^seconds=\d+$`, lines[7])
			require.Equal(t, []string{"number=2", "queue=fetch", "status=Idle"}, lines[8:])
		}},
		{"GetRequestLog", func(t *testing.T, x xresp, lines []string) { require.NotEmpty(t, lines) }},
		{"GetStatus", func(t *testing.T, x xresp, _ []string) {
			inner := string(x.ResponseData.Inner)
			for _, a := range []string{"getpid", "getlicenseinfo", "threadstatus"} {
				require.Contains(t, inner, `<action action="`+a+`"/>`)
			}
			require.NotContains(t, inner, "getchildren")
		}},
		{"GetVersion", func(t *testing.T, x xresp, lines []string) { require.Contains(t, lines, "version=1.2.3") }},
		{"GetChildren", nil},
		{"Encrypted", nil},
	}
	for _, c := range cases {
		x := e.aci(t, "/a="+strings.ToLower(c.action))
		require.Equal(t, strings.ToUpper(c.action), x.Action)
		if c.check == nil {
			require.Equal(t, "ERROR", x.Response, c.action)
			require.Equal(t, "ERRORNOTIMPLEMENTED", x.ResponseData.Code, c.action)
			require.Contains(t, x.ResponseData.Desc, strings.ToUpper(c.action)+" is not an action of this server: ", c.action)
			require.Regexp(t, "Distributed Connector|encrypted requests", x.ResponseData.Desc, c.action)
			continue
		}
		require.Equal(t, "SUCCESS", x.Response, c.action)
		var lines []string
		flat("", tree(x), &lines)
		c.check(t, x, lines)
	}

	// simplejson: threads are always an array.
	_, body := e.get(t, "/action=ThreadStatus&ResponseFormat=simplejson")
	require.Contains(t, string(body), `"threads":{"thread":[{"number":"1"`)
}

// TestEveryActionHasItsName: every action served has its documented
// spelling (GetLicenseInfo lists them by it).
func TestEveryActionHasItsName(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for route := range e.srv.routes {
		require.Contains(t, actionNames, route)
		require.Equal(t, route, strings.ToUpper(actionNames[route]))
	}
}

// TestErrorDescriptionsAudit sends a request for every error the server
// can be led to send over HTTP and checks each reply: IDOL's code where
// IDOL has one, this server's number, and a description that says what
// went wrong without repeating itself, its hint, or the Go sentinel's
// words (errorstring says those).
func TestErrorDescriptionsAudit(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *queue.Config) { c.MaximumQueueSize = 2 })
	qi := "/action=QueueInfo&QueueName=fetch&QueueAction="
	run := e.submit(t, "Synchronize", "")
	e.waitStatus(t, run, "Processing")
	waiting := e.submit(t, "Collect", "&Identifiers=a")
	done := e.submit(t, "Collect", "&Identifiers=b")
	x := e.aci(t, qi+"Cancel&Token="+url.QueryEscape(done))
	require.Equal(t, "SUCCESS", x.Response)
	e.submit(t, "Collect", "&Identifiers=c") // the queue now holds MaximumQueueSize waiting actions
	tok := url.QueryEscape
	cases := []struct {
		path   string
		code   string
		num    int
		phrase string // in the description
	}{
		{"/action=Frobnicate", "ERRORNOTIMPLEMENTED", 101, "FROBNICATE is not an action of this server"},
		{"/action=GetChildren", "ERRORNOTIMPLEMENTED", 101, "Distributed Connector"},
		{"/action=GetStatus&x=%zz", "ERRORBADREQUEST", 102, "invalid percent escape"},
		{"/?foo=bar", "ERRORMISSINGPARAM", 103, "parameter Action"},
		{qi + "Cancel", "ERRORMISSINGPARAM", 103, "parameter Token"},
		{"/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Priority=high", "ERRORPARAMINVALID", 104, `"high" for parameter Priority`},
		{"/action=QueueInfo&QueueName=ingest&QueueAction=GetStatus", "ERRORPARAMINVALID", 110, `no queue "ingest"`},
		{qi + "GetStatus&Token=bm9wZQ%3D%3D", "ERRORPARAMINVALID", 111, "garbled"},
		{qi + "GetStatus&Token=", "ERRORPARAMINVALID", 111, "the Token parameter is empty"},
		{"/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Identifiers=d", "ERRORQUEUEFULL", 112, "MaximumQueueSize=2"},
		{qi + "Cancel&Token=" + tok(run), "ERRORACTIONRUNNING", 113, "the action has started"},
		{qi + "Stop&Token=" + tok(done), "ERRORACTIONENDED", 114, "ended as Cancelled"},
		{qi + "Duplicate&Token=" + tok(done), "ERRORACTIONENDED", 114, "only queued and running actions can be duplicated"},
		{qi + "GetActionParameters&Token=" + tok(done), "ERRORACTIONENDED", 114, "parameters are kept"},
		{qi + "ChangePriority&Priority=3&Token=" + tok(run), "ERRORACTIONNOTQUEUED", 115, "only queued actions can change priority"},
		{qi + "Resume&Token=" + tok(waiting), "ERRORACTIONNOTPAUSED", 116, "the action is Queued"},
		{"/action=View&Identifier=nope&NoACI=false", "ERRORPARAMINVALID", 120, "nope"},
	}
	sentinels := make([]string, len(messages.DomainErrors))
	for i, s := range messages.DomainErrors {
		sentinels[i] = s.Error()
	}
	for _, c := range cases {
		// Sent as is (net/http would refuse to send a bad escape).
		body := e.replay(t, []byte("GET "+c.path+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
		var x xresp
		require.NoError(t, xml.Unmarshal([]byte(body), &x), body)
		require.Equal(t, "ERROR", x.Response, c.path)
		require.Equal(t, c.code, x.ResponseData.Code, c.path)
		require.True(t, strings.HasSuffix(x.ResponseData.ErrorID, strconv.Itoa(c.num)), "%s: %s", c.path, x.ResponseData.ErrorID)
		d := x.ResponseData.Desc
		require.Contains(t, d, c.phrase, c.path)
		require.Empty(t, wording.RepeatedPhrase(d), "%s: %q repeats itself", c.path, d)
		for _, s := range sentinels {
			require.NotContains(t, d, s, "%s: %q", c.path, d)
		}
	}
}

// TestNonASCIISpellingsNameNoAction: action names and QueueAction values are
// compared in ASCII case only. A non-ASCII letter that Go's Unicode case
// mapping turns into an ASCII one (dotless i, capital I with a dot) used to
// reach the action it resembles: /action=GetP%C4%B1d answered GetPid, and
// QueueAction=Dupl%C4%B0cate queued a copy of the action, so a proxy rule
// that refuses an action by name (in any case) could be walked around.
// Now they name no action, as in IDOL, whose names are ASCII.
func TestNonASCIISpellingsNameNoAction(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	x := e.aci(t, "/action=GetP%C4%B1d") // GetPıd
	require.Equal(t, "ERROR", x.Response, string(x.ResponseData.Inner))
	require.Equal(t, "ERRORNOTIMPLEMENTED", x.ResponseData.Code)
	require.Equal(t, "GETPıD", x.Action, "the action is echoed as sent, ASCII letters upper-cased")
	// Nor does white space other than ASCII's around a name leave one.
	x = e.aci(t, "/action=GetPid%C2%A0") // a no-break space
	require.Equal(t, "ERRORNOTIMPLEMENTED", x.ResponseData.Code, string(x.ResponseData.Inner))

	tok := e.submit(t, "Synchronize", "")
	e.waitStatus(t, tok, "Processing")
	for _, qa := range []string{"Dupl%C4%B0cate", "ChangePr%C4%B0or%C4%B0ty&Priority=3", "Duplicate%C2%A0"} {
		x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction="+qa+"&Token="+url.QueryEscape(tok))
		require.Equal(t, "ERROR", x.Response, "%s: %s", qa, x.ResponseData.Inner)
		require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, qa)
		require.Contains(t, x.ResponseData.Desc, "parameter QueueAction", qa)
	}
	// A FetchAction likewise (the queue checks it for every submission).
	x = e.aci(t, "/action=Fetch&FetchAction=%C5%BFynchronize&ConfigSection=MyTask") // ſynchronize
	require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, string(x.ResponseData.Inner))
	require.Contains(t, x.ResponseData.Desc, "parameter FetchAction")
	x = e.aci(t, "/action=Fetch&FetchAction=Synchronize%E2%80%83&ConfigSection=MyTask") // an em space
	require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, string(x.ResponseData.Inner))
	// ASCII in any case still names them.
	require.Equal(t, "SUCCESS", e.aci(t, "/action=gEtPiD").Response)
	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=dUPLICATE&Token="+url.QueryEscape(tok))
	require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
	require.NotEmpty(t, x.ResponseData.Token)
	e.repo.Release(tok)
	e.repo.Release(x.ResponseData.Token)
}

// TestGetStatusQueuesAreAList: in simplejson, GetStatus's <queues> holds an
// array of <queue>, as every repeatable element is (protocol.md, Replies),
// so that a client reads queues.queue[0] whatever the number of queues.
// It used to be a bare object. QueueStatus's single <queue> stays one.
func TestGetStatusQueuesAreAList(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	_, body := e.get(t, "/action=GetStatus&ResponseFormat=simplejson")
	require.Contains(t, string(body), `"queues":{"queue":[{"name":"fetch"`)
	_, body = e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus&ResponseFormat=simplejson")
	require.Contains(t, string(body), `"responsedata":{"queue":{"name":"fetch"`)
}

// TestNonASCIISpellingsNameNoValue: enumerated values (QueueName,
// ResponseFormat, State, Sort-By, Sort-Order and the Booleans) are ASCII
// in any ASCII case, as action names and QueueActions are
// (TestNonASCIISpellingsNameNoAction; protocol.md, Requests). They used to
// be read with Go's Unicode case folding and trimming: a long s spelt a
// value (ResponseFormat=ſimplejson answered JSON, and CancelQueued with
// Confirm=Yeſ cancelled every queued action), and a no-break space after
// one was trimmed (QueueName=fetch%C2%A0 named the queue). Now each is
// refused as a value that names nothing.
func TestNonASCIISpellingsNameNoValue(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	const q = "/action=QueueInfo&QueueName=fetch&QueueAction="
	e.aci(t, q+"Pause")
	tok := e.submit(t, "Collect", "")
	cases := []struct{ path, param string }{
		{"/action=QueueInfo&QueueName=fetch%C2%A0&QueueAction=QueueStatus", "queue"},
		{"/action=GetPid&ResponseFormat=%C5%BFimplejson", "ResponseFormat"}, // ſimplejson
		{"/action=GetPid&ResponseFormat=simplejson%C2%A0", "ResponseFormat"},
		{q + "GetStatus&State=queued%C2%A0", "State"},
		{q + "GetStatus&Sort-By=priority%C2%A0", "Sort-By"},
		{q + "GetStatus&Sort-Order=ascending%E2%80%83", "Sort-Order"}, // an em space
		{q + "CancelQueued&Confirm=Ye%C5%BF", "Confirm"},              // Yeſ
		{q + "CancelQueued&Confirm=true%C2%A0", "Confirm"},
		{q + "Progress&AllStages=fal%C5%BFe&Token=" + url.QueryEscape(tok), "AllStages"},
		{"/action=GetPid&EncryptResponse=fal%C5%BFe", "EncryptResponse"},
	}
	for _, c := range cases {
		x := e.aci(t, c.path)
		require.Equal(t, "ERROR", x.Response, "%s: %s", c.path, x.ResponseData.Inner)
		require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, c.path)
		require.Contains(t, x.ResponseData.Desc, c.param, c.path)
	}
	require.Equal(t, "Queued", e.status(t, tok).ResponseData.Actions[0].Status, "no Confirm cancelled it")
	// ASCII white space and any ASCII case still name them.
	for _, p := range []string{
		"/action=QueueInfo&QueueName=%20FETCH%09&QueueAction=QueueStatus",
		q + "GetStatus&State=%20QUEUED%20&Sort-By=PRIORITY%09&Sort-Order=Ascending%0A",
		"/action=GetPid&EncryptResponse=%20FALSE%20",
	} {
		require.Equal(t, "SUCCESS", e.aci(t, p).Response, p)
	}
	resp, _ := e.get(t, "/action=GetPid&ResponseFormat=%20SimpleJSON%09")
	require.Equal(t, "application/json; charset=UTF-8", resp.Header.Get("Content-Type"))
	x := e.aci(t, q+"CancelQueued&Confirm=%20YES%20")
	require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
	require.Equal(t, "Cancelled", e.status(t, tok).ResponseData.Actions[0].Status)
}

// TestUnknownFetchActionQuotesTheValueSent: the description of an unknown
// FetchAction quotes the value as the client sent it, as every other
// invalid value is (errors.md), not upper-cased: FetchAction=Synchronise
// used to be reported as "SYNCHRONISE", a value nobody sent.
func TestUnknownFetchActionQuotesTheValueSent(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	x := e.aci(t, "/action=Fetch&FetchAction=Synchronise&ConfigSection=MyTask")
	require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, string(x.ResponseData.Inner))
	require.Contains(t, x.ResponseData.Desc, `invalid value "Synchronise" for parameter FetchAction`)
	x = e.aci(t, "/action=Fetch&FetchAction=%C5%BFynchronize&ConfigSection=MyTask") // ſynchronize
	require.Contains(t, x.ResponseData.Desc, `invalid value "ſynchronize" for parameter FetchAction`)
}

// TestFetchParameterNotUTF8IsInvalid: a Fetch parameter whose name or value
// decodes to bytes that are not UTF-8 (%FF, an encoded surrogate, an
// overlong form) is refused as an invalid value naming the parameter. It
// used to be queued, and with the durable store the queue's write of it
// failed: the client was told ERRORSTOREFAILED ("The action store failed")
// for its own bad input, and the log said the store had failed.
func TestFetchParameterNotUTF8IsInvalid(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for q, param := range map[string]string{
		"Note=a%FFb": "parameter Note:", "Note=%ED%A0%80": "parameter Note:", "Note=%C0%AF": "parameter Note:",
		"No%FFte=1": `parameter "No\xffte":`,
	} {
		x := e.aci(t, "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask&"+q)
		require.Equal(t, "ERROR", x.Response, "%s: %s", q, x.ResponseData.Inner)
		require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, "%s: %s", q, x.ResponseData.Desc)
		require.Contains(t, x.ResponseData.Desc, "not UTF-8", q)
		require.Contains(t, x.ResponseData.Desc, param, q)
	}
	qs := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus")
	require.Empty(t, qs.ResponseData.Actions, "nothing was queued")
	// UTF-8, however unusual, is a value like any other.
	e.submit(t, "Collect", "&Note=%E2%80%A8%F0%9F%98%80")
}

// TestViewRangeInTheACIReply: with NoACI=false, Range gives the part of
// the content asked for, base64 in <content>, and says which part in a
// <range> element after it, in Content-Range's form (protocol.md, Other
// actions), since the ACI reply has no Content-Range header.
func TestViewRangeInTheACIReply(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	x := e.aci(t, "/action=View&Identifier=doc1&NoACI=false&WithMetadata=false&Range=bytes=6-10")
	require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
	require.Equal(t, "<mime-type>text/html</mime-type><filename>doc1.html</filename><content>aGVsbG8=</content><range>bytes 6-10/24</range>",
		string(x.ResponseData.Inner))
}

// TestFetchBinaryParameterRefusalIsShort: a Fetch parameter that is a
// binary file (a multipart file part, as the Java client sends binary
// parameters) is refused as not UTF-8 with a short description that says
// where its first bad byte is. The refusal used to quote the whole value,
// with Go's \xNN for each byte: a 1 MiB file came back as a 4 MiB reply,
// and a Fetch body at [Server] MaxRequestBytes (64 MiB) as 256 MiB.
func TestFetchBinaryParameterRefusalIsShort(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	file := append([]byte("%PDF-1.7 header text before the binary "), bytes.Repeat([]byte{0x00, 0xe2, 0x9c, 0xff}, 1<<18)...)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, f := range [][2]string{{"action", "Fetch"}, {"FetchAction", "Synchronize"}, {"ConfigSection", "MyTask"}} {
		require.NoError(t, w.WriteField(f[0], f[1]))
	}
	part, err := w.CreateFormFile("Document", "report.pdf")
	require.NoError(t, err)
	_, err = part.Write(file)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	resp, err := http.Post(e.base+"/", w.FormDataContentType(), &body)
	require.NoError(t, err)
	reply, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Less(t, len(reply), 4096, "the reply to a 1 MiB binary parameter: %.400s", reply)
	require.Contains(t, string(reply), "ERRORPARAMINVALID")
	require.Contains(t, string(reply), `invalid value "%PDF-1.7 header text before the binary \x00\xe2…" for parameter Document: not UTF-8 at byte 41 (counting from 1)`)
}
