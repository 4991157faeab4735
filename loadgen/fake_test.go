package loadgen

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeACI is a small ACI server for the tests: Fetch hands out tokens;
// actions move Queued -> Processing -> Finished on a clock; QueueInfo
// serves GetStatus (by token and as a list), Cancel, Stop, Pause and
// Resume of the whole queue; GetVersion names it. Knobs set before start
// inject stalls and failures. It listens on 127.0.0.1, port 0.
type fakeACI struct {
	queuedFor  time.Duration // time an action waits before Processing (queue not paused)
	processFor time.Duration // time it processes before Finished
	stopDelay  time.Duration // time from Stop to Stopped
	stallAt    int           // the stallAt-th request (1-based) stalls ...
	stall      time.Duration // ... this long before it is answered
	delay      time.Duration // every request waits this long before it is answered
	// fail, when set, may answer a request itself: return an HTTP status
	// (200 sends body as is) or 0 to serve it normally. n counts all
	// requests, 1-based.
	fail func(n int, action string) (code int, body string)
	// onRequest, when set, is called after each request is answered.
	onRequest func(action, queueAction string)

	mu      sync.Mutex
	seq     int
	actions map[string]*fakeAction
	paused  bool
	n       int
	counts  map[string]int // "FETCH", "QUEUEINFO/GETSTATUS", ...
	forms   map[string]int // path, query, post
	hosts   map[string]int
	params  map[string]string // last value of each (lower-case) parameter seen
	unknown int               // requests with a token never issued
	pauses  int
	resumes int
	srv     *httptest.Server
}

type fakeAction struct {
	long     bool      // never finishes by itself
	fail     bool      // ends in Error
	readyAt  time.Time // when it starts; zero while the queue is paused
	stopAt   time.Time // when a Stop takes effect
	canceled bool
}

func newFake() *fakeACI {
	return &fakeACI{actions: map[string]*fakeAction{}, counts: map[string]int{}, forms: map[string]int{},
		hosts: map[string]int{}, params: map[string]string{}}
}

// start serves f until the test ends and returns its base URL.
func (f *fakeACI) start(t testing.TB) string {
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f.srv.URL
}

func (f *fakeACI) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[key]
}

func (a *fakeAction) status(now time.Time, processFor time.Duration) string {
	switch {
	case a.canceled:
		return "Cancelled"
	case !a.stopAt.IsZero() && !now.Before(a.stopAt):
		return "Stopped"
	case a.readyAt.IsZero() || now.Before(a.readyAt):
		return "Queued"
	case a.long || now.Before(a.readyAt.Add(processFor)):
		return "Processing"
	case a.fail:
		return "Error"
	}
	return "Finished"
}

func (f *fakeACI) serve(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimPrefix(r.RequestURI, "/")
	form := "path"
	if strings.HasPrefix(raw, "?") {
		form, raw = "query", raw[1:]
	}
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		form, raw = "post", string(body)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	p := map[string]string{}
	for k, v := range vals {
		p[strings.ToLower(k)] = v[0]
	}
	action := strings.ToUpper(p["action"])
	qa := strings.ToUpper(p["queueaction"])
	key := action
	if qa != "" {
		key += "/" + qa
	}

	f.mu.Lock()
	f.n++
	n := f.n
	f.counts[key]++
	f.forms[form]++
	f.hosts[r.Host]++
	for k, v := range p {
		f.params[k] = v
	}
	f.mu.Unlock()
	if f.onRequest != nil {
		defer f.onRequest(action, qa)
	}
	if f.delay > 0 {
		time.Sleep(f.delay) // a slower server
	}
	if f.stallAt > 0 && n == f.stallAt {
		time.Sleep(f.stall) // the injected stall: the server is slow, nobody waits on it
	}
	if f.fail != nil {
		if code, body := f.fail(n, key); code != 0 {
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
			return
		}
	}
	rf := strings.ToLower(p["responseformat"])
	f.mu.Lock()
	out := f.answer(action, qa, p, time.Now())
	f.mu.Unlock()
	switch rf {
	case "simplejson":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, out.simpleJSON(action))
	case "json":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, out.badgerFish(action))
	default:
		w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
		_, _ = io.WriteString(w, out.xml(action))
	}
}

// fakeReply is the content of a reply, written in any format.
type fakeReply struct {
	errorCode string
	token     string
	actions   [][2]string // status, token
	paused    *bool
	version   bool
}

// answer computes the reply; f.mu is held.
func (f *fakeACI) answer(action, qa string, p map[string]string, now time.Time) fakeReply {
	lookup := func() (*fakeAction, string, bool) {
		tok := p["token"]
		a, ok := f.actions[tok]
		if !ok {
			f.unknown++
		}
		return a, tok, ok
	}
	switch action {
	case "GETVERSION":
		return fakeReply{version: true}
	case "FETCH":
		if p["fetchaction"] == "" {
			return fakeReply{errorCode: "ERRORMISSINGPARAM"}
		}
		f.seq++
		// Three leading bytes that encode as "++//", so that every token
		// needs percent-encoding to survive a query string.
		tok := base64.StdEncoding.EncodeToString(append([]byte{0xfb, 0xef, 0xff}, "127.0.0.1:FETCH:"+strconv.Itoa(f.seq)...))
		a := &fakeAction{long: p["long"] == "true", fail: p["fetchaction"] == "Fail"}
		if !f.paused {
			a.readyAt = now.Add(f.queuedFor)
		}
		f.actions[tok] = a
		return fakeReply{token: tok}
	case "QUEUEINFO":
		if !strings.EqualFold(p["queuename"], "fetch") {
			return fakeReply{errorCode: "ERRORUNKNOWNQUEUE"}
		}
		switch qa {
		case "GETSTATUS":
			if _, has := p["token"]; !has {
				var out fakeReply
				max, _ := strconv.Atoi(p["maxresults"])
				for tok, a := range f.actions {
					st := a.status(now, f.processFor)
					if p["state"] != "" && !strings.EqualFold(p["state"], st) {
						continue
					}
					if max > 0 && len(out.actions) >= max {
						break
					}
					out.actions = append(out.actions, [2]string{st, tok})
				}
				return out
			}
			a, tok, ok := lookup()
			if !ok {
				return fakeReply{errorCode: "ERRORUNKNOWNTOKEN"}
			}
			return fakeReply{actions: [][2]string{{a.status(now, f.processFor), tok}}}
		case "CANCEL":
			a, tok, ok := lookup()
			if !ok {
				return fakeReply{errorCode: "ERRORUNKNOWNTOKEN"}
			}
			if st := a.status(now, f.processFor); st != "Queued" {
				return fakeReply{errorCode: "ERRORACTIONRUNNING"}
			}
			a.canceled = true
			return fakeReply{actions: [][2]string{{"Cancelled", tok}}}
		case "STOP":
			a, tok, ok := lookup()
			if !ok {
				return fakeReply{errorCode: "ERRORUNKNOWNTOKEN"}
			}
			switch st := a.status(now, f.processFor); st {
			case "Queued", "Processing":
				if a.stopAt.IsZero() {
					a.stopAt = now.Add(f.stopDelay)
				}
				return fakeReply{actions: [][2]string{{a.status(now, f.processFor), tok}}}
			default:
				return fakeReply{errorCode: "ERRORACTIONENDED"}
			}
		case "PAUSE":
			f.paused = true
			f.pauses++
			t := true
			return fakeReply{paused: &t}
		case "RESUME":
			f.paused = false
			f.resumes++
			for _, a := range f.actions {
				if a.readyAt.IsZero() {
					a.readyAt = now.Add(f.queuedFor)
				}
			}
			no := false
			return fakeReply{paused: &no}
		}
		return fakeReply{errorCode: "ERRORPARAMINVALID"}
	}
	return fakeReply{errorCode: "ERRORNOTIMPLEMENTED"}
}

func (r fakeReply) xml(action string) string {
	var b strings.Builder
	b.WriteString(`<?xml version='1.0' encoding='UTF-8' ?><autnresponse xmlns:autn="http://schemas.autonomy.com/aci/"><action>`)
	b.WriteString(action)
	b.WriteString("</action>")
	if r.errorCode != "" {
		fmt.Fprintf(&b, "<response>ERROR</response><responsedata><error><errorid>FAKE1</errorid><errorstring>fake</errorstring><errorcode>%s</errorcode></error></responsedata></autnresponse>", r.errorCode)
		return b.String()
	}
	b.WriteString("<response>SUCCESS</response><responsedata>")
	switch {
	case r.version:
		b.WriteString("<autn:version>1.2.3</autn:version><autn:productname>fake ACI</autn:productname>")
	case r.token != "":
		fmt.Fprintf(&b, "<token>%s</token>", r.token)
	case r.paused != nil:
		fmt.Fprintf(&b, "<queue><name>FETCH</name><paused>%t</paused></queue>", *r.paused)
	default:
		b.WriteString("<actions>")
		for _, a := range r.actions {
			fmt.Fprintf(&b, "<action><status>%s</status><queued_time>2026-Jan-02 15:04:05</queued_time><documentcounts><documentcount errors=\"0\" task=\"T\"/></documentcounts><fetchaction>SYNCHRONIZE</fetchaction><token>%s</token></action>", a[0], a[1])
		}
		b.WriteString("</actions>")
	}
	b.WriteString("</responsedata></autnresponse>")
	return b.String()
}

func (r fakeReply) simpleJSON(action string) string {
	head := `{"autnresponse":{"action":"` + action + `",`
	if r.errorCode != "" {
		return head + `"response":"ERROR","responsedata":{"error":{"errorid":"FAKE1","errorcode":"` + r.errorCode + `"}}}}`
	}
	head += `"response":"SUCCESS","responsedata":`
	switch {
	case r.version:
		return head + `{"version":"1.2.3","productname":"fake ACI"}}}`
	case r.token != "":
		return head + `{"token":"` + r.token + `"}}}`
	case r.paused != nil:
		return head + `{"queue":{"name":"FETCH","paused":"` + strconv.FormatBool(*r.paused) + `"}}}}`
	}
	if len(r.actions) == 0 {
		return head + `{"actions":{}}}}`
	}
	var items []string
	for _, a := range r.actions {
		items = append(items, `{"status":"`+a[0]+`","documentcounts":{"documentcount":[{"@errors":"0","@task":"T"}]},"token":"`+a[1]+`"}`)
	}
	return head + `{"actions":{"action":[` + strings.Join(items, ",") + `]}}}}`
}

func (r fakeReply) badgerFish(action string) string {
	t := func(s string) string { return `{"$":"` + s + `"}` }
	head := `{"autnresponse":{"@xmlns":{"autn":"http://schemas.autonomy.com/aci/"},"action":` + t(action) + `,`
	if r.errorCode != "" {
		return head + `"response":` + t("ERROR") + `,"responsedata":{"error":{"errorcode":` + t(r.errorCode) + `}}}}`
	}
	head += `"response":` + t("SUCCESS") + `,"responsedata":`
	switch {
	case r.version:
		return head + `{"autn:version":` + t("1.2.3") + `,"autn:productname":` + t("fake ACI") + `}}}`
	case r.token != "":
		return head + `{"token":` + t(r.token) + `}}}`
	case r.paused != nil:
		return head + `{"queue":{"paused":` + t(strconv.FormatBool(*r.paused)) + `}}}}`
	}
	if len(r.actions) == 0 {
		return head + `{"actions":{}}}}`
	}
	var items []string
	for _, a := range r.actions {
		items = append(items, `{"status":`+t(a[0])+`,"token":`+t(a[1])+`}`)
	}
	if len(items) == 1 {
		return head + `{"actions":{"action":` + items[0] + `}}}}`
	}
	return head + `{"actions":{"action":[` + strings.Join(items, ",") + `]}}}}`
}
