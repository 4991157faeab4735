package httpd

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/metrics"
	"github.com/connectorhq/connector/transport/aci"
)

// The schemas transport/aci's tests validate against (testdata/idol there,
// whose README says what each is): OpenText's autnResponse.xsd (MIT, see
// its LICENSE-java-idol-types), and the project's wrappers that type a
// reply's responsedata with OpenText's schemas: error-reply.xsd (the
// <error> block), getversion-reply.xsd (getVersionResponse.xsd),
// token-reply.xsd and queueinfo-reply.xsd (asynchronousTypes.xsd, with
// connectors.xsd for the results), tasklist-reply.xsd
// (connectorAdditionalTypes.xsd) and getstatus-reply.xsd.
var (
	idolXSD          = func(name string) string { return filepath.Join("..", "aci", "testdata", "idol", name) }
	autnResponseXSD  = idolXSD("autnResponse.xsd")
	errorReplyXSD    = idolXSD("error-reply.xsd")
	getVersionXSD    = idolXSD("getversion-reply.xsd")
	getStatusXSD     = idolXSD("getstatus-reply.xsd")
	tokenReplyXSD    = idolXSD("token-reply.xsd")
	queueInfoXSD     = idolXSD("queueinfo-reply.xsd")
	taskListReplyXSD = idolXSD("tasklist-reply.xsd")
)

// actionsElem is the <actions> element of a reply.
var actionsElem = regexp.MustCompile(`(?s)<actions/>|<actions>.*</actions>`)

// xmllint validates files against schema the way transport/aci's tests do
// (xmllint --noout --schema). xmllint comes from the Debian package
// libxml2-utils, which make test installs; without it the test fails.
func xmllint(t *testing.T, schema string, files ...string) {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatalf("xmllint not found: install the Debian package libxml2-utils (make test does): %v", err)
	}
	args := append([]string{"--noout", "--schema", schema}, files...)
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		var failed []string // xmllint says "f validates" for each good file
		for _, l := range strings.Split(string(out), "\n") {
			if l != "" && !strings.HasSuffix(l, " validates") {
				failed = append(failed, l)
			}
		}
		t.Fatalf("xmllint --schema %s on %d files: %v\n%s", schema, len(files), err, strings.Join(failed, "\n"))
	}
}

// TestRepliesValidateAgainstXSD drives a real server through every action
// and QueueAction, in success and error forms, and validates every XML
// reply against autnResponse.xsd, and every error reply's <error> block
// against the error type.
func TestRepliesValidateAgainstXSD(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Fatalf("xmllint not found: install the Debian package libxml2-utils (make test does): %v", err)
	}
	e := start(t, nil)
	dir := t.TempDir()
	esc := url.QueryEscape
	var all, errs []string
	typed := map[string][]string{} // schema: replies of its kind
	n := 0
	// ask sends path, checks the reply is XML with the wanted response
	// (SUCCESS or ERROR) and keeps it for xmllint: against the envelope
	// schema, and against the typed schema of its kind when one is given.
	ask := func(want, path string, schema ...string) xresp {
		t.Helper()
		resp, body := e.get(t, path)
		require.Equal(t, 200, resp.StatusCode, "%s: %s", path, body)
		require.Equal(t, aci.ContentTypeXML, resp.Header.Get("Content-Type"), path)
		var x xresp
		require.NoError(t, xml.Unmarshal(body, &x), "%s: %s", path, body)
		require.Equal(t, want, x.Response, "%s: %s", path, body)
		n++
		f := filepath.Join(dir, fmt.Sprintf("%03d.xml", n))
		require.NoError(t, os.WriteFile(f, body, 0o600))
		all = append(all, f)
		if want == "ERROR" {
			errs = append(errs, f)
		}
		for _, sc := range schema {
			typed[sc] = append(typed[sc], f)
		}
		return x
	}
	// Typed kinds of successful replies.
	token := func(path string) xresp { t.Helper(); return ask("SUCCESS", path, tokenReplyXSD) }
	actions := func(path string) xresp { t.Helper(); return ask("SUCCESS", path, queueInfoXSD) }
	const ok, bad = "SUCCESS", "ERROR"
	qi := "/action=QueueInfo&QueueName=fetch&QueueAction="
	unknown := esc("bm90IGEgdG9rZW4=")

	// Fetch: a running action, two queued ones, one that errors; and refusals.
	sync1 := token("/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask").ResponseData.Token
	e.waitStatus(t, sync1, "Processing")
	col1 := token("/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Identifiers=id1,id2&Priority=5").ResponseData.Token
	col2 := token("/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Identifiers=id3").ResponseData.Token
	boom := token("/action=Fetch&FetchAction=Boom&ConfigSection=MyTask&Priority=-1").ResponseData.Token
	for _, p := range []string{
		"/action=Fetch&ConfigSection=MyTask",
		"/action=Fetch&FetchAction=Explode&ConfigSection=MyTask",
		"/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Priority=high",
		"/action=Fetch&FetchAction=Collect&ConfigSection=Nope",
		"/action=Fetch&FetchAction=Collect",
		"/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&%5BMyTask%5DDepth=deep",
	} {
		ask(bad, p)
	}

	// Every QueueAction while actions are queued and running.
	actions(qi + "GetStatus&Token=" + esc(sync1))
	actions(qi + "GetStatus")
	actions(qi + "GetStatus&State=queued,processing&Sort-By=priority&Sort-Order=ascending&MaxResults=2&Min-Priority=0")
	actions(qi + "GetStatus&State=cancelled") // <actions/>
	ask(ok, qi+"Progress&Token="+esc(sync1))
	ask(ok, qi+"Progress&Token="+esc(sync1)+"&MaxDepth=1&AllStages=true")
	ask(ok, qi+"GetActionParameters&Token="+esc(col1))
	ask(ok, qi+"GetActionParameters")
	actions(qi + "ChangePriority&Priority=7&Token=" + esc(col2))
	ask(bad, qi+"ChangePriority&Priority=7&Token="+esc(sync1)) // running
	ask(bad, qi+"ChangePriority&Token="+esc(col2))             // no Priority
	ask(bad, qi+"ChangePriority&Priority=x&Token="+esc(col2))
	actions(qi + "Pause&Token=" + esc(col2))
	actions(qi + "Resume&Token=" + esc(col2))
	ask(bad, qi+"Resume&Token="+esc(col1)) // not paused
	dup := token(qi + "Duplicate&Token=" + esc(col1)).ResponseData.Token
	actions(qi + "Cancel&Token=" + esc(dup))
	// CancelQueued (ours): its <actions> are QueueInfo actions, validated
	// as such in a GetStatus envelope; the rest against autnResponse.xsd.
	cancelQueued := func(path string) {
		t.Helper()
		x := ask(ok, path)
		list := actionsElem.FindString(string(x.ResponseData.Inner))
		require.NotEmpty(t, list, string(x.ResponseData.Inner))
		n++
		f := filepath.Join(dir, fmt.Sprintf("%03d-actions.xml", n))
		doc := "<autnresponse><action>QUEUEINFO</action><response>SUCCESS</response><responsedata>" +
			list + "</responsedata></autnresponse>"
		require.NoError(t, os.WriteFile(f, []byte(doc), 0o600))
		typed[queueInfoXSD] = append(typed[queueInfoXSD], f)
	}
	cancelQueued(qi + "CancelQueued")                               // a dry run: lists the queued ones
	cancelQueued(qi + "CancelQueued&Confirm=true&Min-Priority=100") // selects none
	cancelQueued(qi + "CancelQueued&Confirm=false&State=paused&MaxResults=1")
	ask(bad, qi+"CancelQueued&Token="+esc(col2))
	ask(bad, qi+"CancelQueued&State=processing")
	ask(bad, qi+"CancelQueued&Finished-After=0")
	ask(bad, qi+"CancelQueued&Confirm=maybe")
	ask(ok, qi+"QueueStatus")
	ask(ok, qi+"Pause")
	e.waitStatus(t, sync1, "Paused")
	ask(ok, qi+"QueueStatus")
	ask(ok, qi+"Resume")
	e.waitStatus(t, sync1, "Processing")
	actions(qi + "Stop&Token=" + esc(sync1))
	e.waitStatus(t, sync1, "Stopped")
	for tok, st := range map[string]string{col1: "Finished", col2: "Finished", boom: "Error", dup: "Cancelled"} {
		e.waitStatus(t, tok, st)
		actions(qi + "GetStatus&Token=" + esc(tok)) // with results, error text, or none
	}
	actions(qi + "GetStatus&State=finished&Sort-By=finish-time&Sort-Order=descending")
	ask(ok, qi+"GetActionParameters") // none left: <actions/>

	// QueueAction errors.
	for _, qa := range []string{"GetStatus", "Cancel", "Stop", "ChangePriority&Priority=1", "Pause", "Resume", "Progress", "GetActionParameters", "Duplicate"} {
		ask(bad, qi+qa+"&Token="+unknown)
		ask(bad, qi+qa+"&Token=")
	}
	for _, qa := range []string{"Cancel", "Stop", "ChangePriority&Priority=1", "Progress", "Duplicate"} {
		ask(bad, qi+qa) // Token missing
	}
	ask(bad, qi+"Cancel&Token="+esc(col1))              // ended
	ask(bad, qi+"Stop&Token="+esc(col1))                // ended
	ask(bad, qi+"GetActionParameters&Token="+esc(col1)) // ended
	ask(bad, qi+"Duplicate&Token="+esc(col1))           // ended
	ask(bad, qi+"Explode")
	ask(bad, qi+"GetStatus&State=sleepy")
	ask(bad, qi+"GetStatus&Sort-By=colour")
	ask(bad, qi+"GetStatus&Queued-After=yesterday")
	ask(bad, qi+"GetStatus&MaxResults=0")
	ask(bad, "/action=QueueInfo&QueueName=ingest&QueueAction=GetStatus")
	ask(bad, "/action=QueueInfo&QueueAction=GetStatus")
	ask(bad, "/action=QueueInfo&QueueName=fetch")

	// The synchronous actions.
	ask(ok, "/action=GetVersion", getVersionXSD)
	ask(ok, "/a=getstatus", getStatusXSD)
	ask(ok, "/action=TaskList", taskListReplyXSD)
	ask(ok, "/action=TaskList&MatchName=my*&MatchAction=sync*", taskListReplyXSD)
	ask(ok, "/action=TaskList&MatchName=nothing", taskListReplyXSD) // empty responsedata
	ask(bad, "/action=TaskList&MatchName=%5B")
	ask(ok, "/action=View&Identifier=doc1&NoACI=false")
	ask(ok, "/action=View&Identifier=doc1&NoACI=false&WithMetadata=false&Range=bytes=0-4")
	ask(bad, "/action=View&Identifier=nope&NoACI=false")
	ask(bad, "/action=View&Identifier=doc1&Range=bytes=99-")
	ask(bad, "/action=View")
	ask(bad, "/action=Frobnicate")
	ask(bad, "/?foo=bar")
	ask(bad, "/action=GetVersion&ResponseFormat=yaml")
	ask(ok, "/action=GetPid")
	ask(ok, "/action=GetLicenseInfo")
	ask(ok, "/action=ThreadStatus")
	ask(bad, "/action=GetChildren")
	ask(ok, "/action=GetRequestLog")
	ask(ok, "/action=GetRequestLog&MaxEntries=3")
	ask(bad, "/action=GetRequestLog&MaxEntries=none")

	require.Greater(t, len(errs), 40)
	xmllint(t, autnResponseXSD, all...)
	xmllint(t, errorReplyXSD, errs...)
	for _, sc := range []string{getVersionXSD, getStatusXSD, tokenReplyXSD, queueInfoXSD, taskListReplyXSD} {
		require.NotEmpty(t, typed[sc], sc)
		xmllint(t, sc, typed[sc]...)
	}
}

// TestServiceRepliesValidateAgainstXSD: the service port's replies (its
// GetStatus, GetStatusInfo, ShowPermissions, Stop, and its errors: an
// unknown action, a refusal, and the 403 that /metrics answers a client
// without ServiceStatus) are valid autnResponse documents, each error's
// <error> block of the error type and GetStatus of the getstatus type, as
// TestRepliesValidateAgainstXSD checks the ACI port's. No test validated
// them before: a change to the service port's replies alone would have
// gone unnoticed.
func TestServiceRepliesValidateAgainstXSD(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Fatalf("xmllint not found: install the Debian package libxml2-utils (make test does): %v", err)
	}
	dir := t.TempDir()
	var all, errs, statuses []string
	keep := func(body []byte, isErr bool) {
		t.Helper()
		f := filepath.Join(dir, fmt.Sprintf("%03d.xml", len(all)))
		require.NoError(t, os.WriteFile(f, body, 0o600))
		all = append(all, f)
		if isErr {
			errs = append(errs, f)
		}
	}
	serviceServer := func(policy *auth.Policy) *env {
		return startWith(t, setup{front: func(c *Config) {
			c.Port = auth.ServicePort
			c.Policy = policy
			c.Metrics = metrics.New(metrics.Options{Queue: "fetch"})
			c.Stop = func() {}
		}})
	}
	// ask sends path to e, checks the reply is XML with the wanted HTTP
	// status and response, and keeps it for xmllint.
	ask := func(e *env, code int, want, path string) {
		t.Helper()
		resp, body := e.get(t, path)
		require.Equal(t, code, resp.StatusCode, "%s: %s", path, body)
		require.Equal(t, aci.ContentTypeXML, resp.Header.Get("Content-Type"), path)
		var x xresp
		require.NoError(t, xml.Unmarshal(body, &x), "%s: %s", path, body)
		require.Equal(t, want, x.Response, "%s: %s", path, body)
		keep(body, want == "ERROR")
		if want == "SUCCESS" && strings.EqualFold(x.Action, "GetStatus") {
			statuses = append(statuses, all[len(all)-1])
		}
	}
	// IDOL's default roles: a local client holds ServiceStatus and
	// ServiceControl.
	e := serviceServer(nil)
	ask(e, 200, "SUCCESS", "/action=GetStatus")
	ask(e, 200, "SUCCESS", "/a=getstatus&ResponseFormat=xml")
	ask(e, 200, "SUCCESS", "/action=GetStatusInfo")
	ask(e, 200, "SUCCESS", "/action=ShowPermissions")
	ask(e, 200, "ERROR", "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask") // not on this port
	ask(e, 200, "ERROR", "/action=Frobnicate")
	ask(e, 200, "ERROR", "/?foo=bar")
	ask(e, 200, "ERROR", "/action=GetStatusInfo&ResponseFormat=yaml")
	ask(e, 200, "SUCCESS", "/action=Stop")
	// A client with neither ServiceStatus nor ServiceControl (the Readers
	// of queryOnlyPolicy hold Query alone on this port).
	local, err := auth.ParseClients("localhost")
	require.NoError(t, err)
	p, err := auth.New([]auth.Role{{Name: "Readers", Standard: auth.Query, Clients: local}})
	require.NoError(t, err)
	e = serviceServer(p)
	ask(e, 403, "ERROR", "/metrics")
	ask(e, 200, "ERROR", "/action=GetStatus")
	ask(e, 200, "ERROR", "/action=GetStatusInfo")
	ask(e, 200, "ERROR", "/action=Stop")
	ask(e, 200, "SUCCESS", "/action=ShowPermissions")

	xmllint(t, autnResponseXSD, all...)
	xmllint(t, errorReplyXSD, errs...)
	require.Len(t, statuses, 2)
	xmllint(t, getStatusXSD, statuses...)
}
