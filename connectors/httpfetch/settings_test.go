package httpfetch

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on a machine without a zone database

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

func TestTaskKeys(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"Url": "http://a.example/, https://b.example/x", "url7": "http://a.example/", "Depth": "-1", "depth": "3",
		"StayOnSite": "false", "SpiderUrlMustHaveRegex": `.*example\.com.*`, "SpiderUrlCantHaveRegex": "",
		"UrlMustHaveRegex": ".*", "UrlCantHaveRegex": ".*[.]pdf", "FollowRobotProtocol": "on",
		"IgnoreRobotProtocolErrors": "Y", "PageDelay": "1.5", "MaxPages": "0", "MaxKBytesPerSec": "12.5",
		"RequestTimeout": "10s", "MaxPageBytes": "1048576", "UserAgent": "mybot/2.0 (+http://x)",
		"Concurrency": "16", "AllowedContentTypes": "text/html, text/*", "MaxRedirects": "0",
		"ScheduleStartTime": "now", "ScheduleRepeatSecs": "3600", "ScheduleCycles": "-1",
		"SitemapUrl": "http://a.example/sitemap.xml", "FollowSitemaps": "yes",
		"ExtractText": "false", "ExtractFormats": "pdf, DOCX,text", "ExtractThreads": "4", "ExtractTimeout": "2m",
		"ExtractMaxTextBytes": "1000", "ExtractMaxMemoryBytes": "16777216", "ExtractMaxPages": "5",
	}
	for k, v := range good {
		require.NoError(t, TaskKeys(k, v), "%s=%s", k, v)
	}
	bad := map[string]string{
		"Url": "ftp://x/", "Url0": "", "Depth": "-2", "StayOnSite": "maybe", "SpiderUrlMustHaveRegex": "(",
		"UrlCantHaveRegex": "a(?=b)", "FollowRobotProtocol": "2", "PageDelay": "-1", "MaxPages": "-1",
		"MaxKBytesPerSec": "fast", "RequestTimeout": "0", "MaxPageBytes": "0", "UserAgent": "   ",
		"Concurrency": "0", "AllowedContentTypes": "html", "MaxRedirects": "101",
		"ScheduleStartTime": "tomorrow", "ScheduleRepeatSecs": "0", "ScheduleCycles": "-2",
		"SitemapUrl": "file:///etc/passwd", "FollowSitemaps": "perhaps",
		"ExtractText": "sometimes", "ExtractFormats": "pdf,doc", "ExtractThreads": "0", "ExtractTimeout": "0",
		"ExtractMaxTextBytes": "-1", "ExtractMaxMemoryBytes": "1000", "ExtractMaxPages": "0",
	}
	for k, v := range bad {
		err := TaskKeys(k, v)
		require.Error(t, err, "%s=%s", k, v)
		require.NotErrorIs(t, err, config.ErrUnknownKey)
	}
	require.ErrorIs(t, TaskKeys("Dpeth", "1"), config.ErrUnknownKey)
	require.ErrorIs(t, TaskKeys("UrlX", "http://a/"), config.ErrUnknownKey)
}

// TestConfigErrors: a bad value stops start-up with an error naming the
// file, section and key.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, text, section, key string
	}{
		{"bad regex in task", "[FetchTasks]\n0=T\n[T]\nUrl=http://x/\nUrlMustHaveRegex=(", "T", "UrlMustHaveRegex"},
		{"bad number in FetchTasks", "[FetchTasks]\n0=T\nDepth=deep\n[T]\nUrl=http://x/", "FetchTasks", "Depth"},
		{"bad boolean in Default", "[FetchTasks]\n0=T\n[Default]\nStayOnSite=perhaps\n[T]\nUrl=http://x/", "Default", "StayOnSite"},
		{"unknown key", "[FetchTasks]\n0=T\n[T]\nUrl=http://x/\nDpeth=1", "T", "Dpeth"},
	} {
		_, err := config.Parse("my.cfg", []byte(tc.text), TaskKeys)
		var ce *config.Error
		require.ErrorAs(t, err, &ce, tc.desc)
		require.Equal(t, "my.cfg", ce.File, tc.desc)
		require.Equal(t, tc.section, ce.Section, tc.desc)
		require.Equal(t, tc.key, ce.Key, tc.desc)
		require.Positive(t, ce.Line, tc.desc)
	}
	// A task without a start URL is caught by Check, and by New, pointing
	// at the task's section; a bad value of a task by the line it is on.
	cfg, err := config.Parse("my.cfg", []byte("[FetchTasks]\n0=T\n\n[T]\nDepth=1"), TaskKeys)
	require.NoError(t, err)
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer st.Close()
	var ce *config.Error
	require.ErrorAs(t, Check(cfg), &ce)
	require.Equal(t, "config my.cfg:4: [T] Url: the task has no start URL: set Url (a CSV of URLs) or Url0, Url1, ..., or SitemapUrl", ce.Error())
	_, err = New(Options{Config: cfg, Store: st})
	require.ErrorAs(t, err, &ce)
	require.Equal(t, []any{"my.cfg", 4, "T", "Url"}, []any{ce.File, ce.Line, ce.Section, ce.Key})
	cfg, err = config.Parse("my.cfg", []byte("[FetchTasks]\n0=T\nUrl=http://x/\n"), TaskKeys)
	require.NoError(t, err)
	require.NoError(t, Check(cfg), "a task may live on [FetchTasks] alone")
	cfg, err = config.Parse("my.cfg", []byte("[FetchTasks]\n0=T\n[Default]\nDepth=1\n"), TaskKeys)
	require.NoError(t, err)
	require.ErrorAs(t, Check(cfg), &ce)
	require.Equal(t, []any{2, "T", "Url"}, []any{ce.Line, ce.Section, ce.Key}, "no section: its [FetchTasks] entry")
	_, err = config.Parse("my.cfg", []byte("[FetchTasks]\n0=T\n[T]\nUrl=http://x/\nDpeth=1"), TaskKeys)
	require.EqualError(t, err, "config my.cfg:5: [T] Dpeth: unknown key: Dpeth is not a fetch task setting (did you mean Depth?); docs/connectors/http.md lists them")
	cfg, err = config.Parse("my.cfg", []byte("[FetchTasks]\n0=T\n[T]\nUrl=http://x/\n\nUrl1=http://y/\nUrl2=ftp://z/"), TaskKeys)
	if err == nil {
		err = Check(cfg)
	}
	require.ErrorAs(t, err, &ce)
	require.Equal(t, []any{7, "T", "Url2"}, []any{ce.Line, ce.Section, ce.Key})
	_, err = New(Options{Config: cfg})
	require.Error(t, err)
}

func fragment(text string) string { return base64.StdEncoding.EncodeToString([]byte(text)) }

// TestValidateErrors: every refusal is a ParamError naming the parameter
// or setting.
func TestValidateErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n[Other]\nUrl=http://127.0.0.1:2/\n[NoURL]\nDepth=1\n")
	aFile := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(aFile, nil, 0o600))
	good := EncodeIdentifier("MyTask", "http://127.0.0.1:1/a")
	other := EncodeIdentifier("Other", "http://127.0.0.1:2/a")
	for _, tc := range []struct {
		desc, action string
		p            []string
		name         string
		missing      bool
	}{
		{"bad regex override", fetch.ActionSynchronize, []string{"[MyTask]SpiderUrlCantHaveRegex", "("}, "[MyTask] SpiderUrlCantHaveRegex", false},
		{"bad number override", fetch.ActionSynchronize, []string{"[MyTask]Depth", "x"}, "[MyTask] Depth", false},
		{"bad unprefixed override", fetch.ActionSynchronize, []string{"MaxPages", "-3"}, "MaxPages", false},
		{"bad boolean in FetchTasks override", fetch.ActionSynchronize, []string{"[FetchTasks]StayOnSite", "x"}, "[FetchTasks] StayOnSite", false},
		{"bad start URL override", fetch.ActionSynchronize, []string{"Url", "mailto:x@y"}, "Url", false},
		{"unknown task in override", fetch.ActionSynchronize, []string{"[Nope]Depth", "1"}, "[Nope] Depth", false},
		{"schedule override", fetch.ActionSynchronize, []string{"ScheduleCycles", "1"}, "ScheduleCycles", false},
		{"unknown task section", fetch.ActionSynchronize, []string{"TaskSections", "MyTask,Nope"}, "TaskSections", false},
		{"unknown config section", fetch.ActionSynchronize, []string{"ConfigSection", "Nope"}, "ConfigSection", false},
		{"both task parameters", fetch.ActionSynchronize, []string{"TaskSections", "MyTask", "ConfigSection", "MyTask"}, "ConfigSection", false},
		{"system section as task", fetch.ActionSynchronize, []string{"TaskSections", "Server"}, "TaskSections", false},
		{"task without URL", fetch.ActionSynchronize, []string{"TaskSections", "NoURL"}, "[NOURL] Url", true},
		{"Config not base64", fetch.ActionSynchronize, []string{"Config", "%%%"}, "Config", false},
		{"Config system section", fetch.ActionSynchronize, []string{"Config", fragment("[Server]\nPort=1")}, "Config", false},
		{"Config unknown task", fetch.ActionSynchronize, []string{"Config", fragment("[Nope]\nDepth=1")}, "Config", false},
		{"Config bad value", fetch.ActionSynchronize, []string{"Config", fragment("[MyTask]\nDepth=deep")}, "Config [MyTask] Depth", false},
		{"Config bad regex in Default", fetch.ActionSynchronize, []string{"Config", fragment("[Default]\nUrlMustHaveRegex=[")}, "Config [Default] UrlMustHaveRegex", false},
		{"Config unknown key", fetch.ActionSynchronize, []string{"Config", fragment("[MyTask]\nDpeth=1")}, "Config [MyTask] Dpeth", false},
		{"Config lists tasks", fetch.ActionSynchronize, []string{"Config", fragment("[FetchTasks]\n0=MyTask")}, "Config [FetchTasks]", false},
		{"Config schedule", fetch.ActionSynchronize, []string{"Config", fragment("[MyTask]\nScheduleRepeatSecs=5")}, "Config [MyTask] ScheduleRepeatSecs", false},
		{"garbled identifier", fetch.ActionSynchronize, []string{"Identifiers", "not-an-id"}, "Identifiers", false},
		{"identifier of another task", fetch.ActionSynchronize, []string{"TaskSections", "MyTask", "Identifiers", other}, "Identifiers", false},
		{"identifier of unknown task", fetch.ActionDelete, []string{"Identifiers", EncodeIdentifier("Nope", "x")}, "Identifiers", false},
		{"collect without destination", fetch.ActionCollect, []string{"Identifiers", good}, "Destination", true},
		{"collect without identifiers", fetch.ActionCollect, []string{"Destination", "/tmp"}, "Identifiers", true},
		{"collect both", fetch.ActionCollect, []string{"Identifiers", good, "IdentifiersXML", "<x/>", "Destination", "/tmp"}, "IdentifiersXML", false},
		{"collect of a non-URL", fetch.ActionCollect, []string{"Identifiers", EncodeIdentifier("MyTask", "doc-1"), "Destination", "/tmp"}, "Identifiers", false},
		{"collect destination is a file", fetch.ActionCollect, []string{"Identifiers", good, "Destination", aFile}, "Destination", false},
		{"collect wrong ConfigSection", fetch.ActionCollect, []string{"Identifiers", other, "Destination", "/tmp", "ConfigSection", "MyTask"}, "Identifiers", false},
		{"collect bad XML", fetch.ActionCollect, []string{"IdentifiersXML", "<identifier value='x'", "Destination", "/tmp"}, "IdentifiersXML", false},
		{"collect XML bad filename", fetch.ActionCollect, []string{"IdentifiersXML", `<identifier value="` + good + `" filename="../x"/>`, "Destination", "/tmp"}, "IdentifiersXML", false},
		{"identifiers without ConfigSection", fetch.ActionIdentifiers, nil, "ConfigSection", true},
		{"identifiers unknown ConfigSection", fetch.ActionIdentifiers, []string{"ConfigSection", "Nope"}, "ConfigSection", false},
		{"identifiers bad boolean", fetch.ActionIdentifiers, []string{"ConfigSection", "MyTask", "ShowNames", "sometimes"}, "ShowNames", false},
		{"identifiers bad MaxDepth", fetch.ActionIdentifiers, []string{"ConfigSection", "MyTask", "MaxDepth", "-1"}, "MaxDepth", false},
		{"identifiers bad parent", fetch.ActionIdentifiers, []string{"ConfigSection", "MyTask", "ParentIdentifiers", "zzz"}, "ParentIdentifiers", false},
		{"delete without identifiers", fetch.ActionDelete, nil, "Identifiers", true},
		{"insert without ConfigSection", fetch.ActionInsert, []string{"InsertXML", "<insert/>"}, "ConfigSection", true},
		{"insert without XML", fetch.ActionInsert, []string{"ConfigSection", "MyTask"}, "InsertXML", true},
		{"insert without reference", fetch.ActionInsert, []string{"ConfigSection", "MyTask", "InsertXML", "<insertXML><insert><metadata name='a' value='b'/></insert></insertXML>"}, "InsertXML", false},
		{"insert dataid", fetch.ActionInsert, []string{"ConfigSection", "MyTask", "InsertXML", "<insert><reference>r</reference><file><type>dataid</type><content>1</content></file></insert>"}, "InsertXML", false},
		{"insert bad base64", fetch.ActionInsert, []string{"ConfigSection", "MyTask", "InsertXML", "<insert><reference>r</reference><file><type>content</type><content>***</content></file></insert>"}, "InsertXML", false},
		{"insert missing file", fetch.ActionInsert, []string{"ConfigSection", "MyTask", "InsertXML", "<insert><reference>r</reference><file><type>file</type><content>/no/such/file</content></file></insert>"}, "InsertXML", false},
		{"insert reference with a password", fetch.ActionInsert, []string{"ConfigSection", "MyTask", "InsertXML", "<insert><reference>http://u:hunter2@h/doc</reference><file><type>drecontent</type><content>x</content></file></insert>"}, "InsertXML", false},
		{"insert bad metadata name", fetch.ActionInsert, []string{"ConfigSection", "MyTask", "InsertXML", `<insert><reference>r</reference><metadata name="a b" value="v"/></insert>`}, "InsertXML", false},
		{"update without XML", fetch.ActionUpdate, nil, "IdentifiersXML", true},
		{"unknown fetch action", "HOLD", nil, "FetchAction", false},
	} {
		tasks, err := b.repo.Validate(tc.action, params(tc.p...))
		require.Nil(t, tasks, tc.desc)
		pe := paramErr(t, err, tc.name)
		require.NotContains(t, err.Error(), "hunter2", tc.desc)
		require.Equal(t, tc.missing, pe.Missing, tc.desc)
		if tc.missing {
			require.ErrorIs(t, err, messages.ErrMissingParam, tc.desc)
		} else {
			require.ErrorIs(t, err, messages.ErrInvalidParam, tc.desc)
		}
	}

	// Insert and Update need a target.
	nb := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n", setupOpts{noTarget: true})
	_, err := nb.repo.Validate(fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", "<insert><reference>r</reference></insert>"))
	paramErr(t, err, "FetchAction")
	_, err = nb.repo.Validate(fetch.ActionUpdate, params("IdentifiersXML", `<identifier value="`+good+`"/>`))
	paramErr(t, err, "FetchAction")
}

// TestValidateTasks: the task list Validate returns for each action.
func TestValidateTasks(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\nNumber=2\n0=One\n1=two\n[One]\nUrl=http://127.0.0.1:1/\n[two]\nUrl=http://127.0.0.1:2/\n[Extra]\nUrl=http://127.0.0.1:3/\n")
	one, two := EncodeIdentifier("one", "http://127.0.0.1:1/a"), EncodeIdentifier("TWO", "http://127.0.0.1:2/a")
	for _, tc := range []struct {
		action string
		p      []string
		want   []string
	}{
		{fetch.ActionSynchronize, nil, []string{"ONE", "TWO"}},
		{fetch.ActionSynchronize, []string{"TaskSections", "extra, one,ONE"}, []string{"EXTRA", "ONE"}},
		{fetch.ActionSynchronize, []string{"ConfigSection", "two"}, []string{"TWO"}},
		{fetch.ActionSynchronize, []string{"Identifiers", two + "," + one}, []string{"TWO", "ONE"}},
		{fetch.ActionCollect, []string{"Identifiers", one + "," + two, "Destination", "collected"}, []string{"ONE", "TWO"}},
		{fetch.ActionIdentifiers, []string{"ConfigSection", "extra"}, []string{"EXTRA"}},
		{fetch.ActionDelete, []string{"Identifiers", two}, []string{"TWO"}},
		{fetch.ActionInsert, []string{"ConfigSection", "One", "InsertXML", "<insert><reference>r</reference></insert>"}, []string{"ONE"}},
		{fetch.ActionUpdate, []string{"IdentifiersXML", `<identifiersXML><identifier value="` + one + `"><metadata name="X" value="1"/></identifier></identifiersXML>`}, []string{"ONE"}},
		{"synchronize", []string{"[One]Depth", "2", "Depth", "1", "Config", fragment("[Default]\nMaxPages=3")}, []string{"ONE", "TWO"}},
	} {
		tasks, err := b.repo.Validate(tc.action, params(tc.p...))
		require.NoError(t, err, "%s %v", tc.action, tc.p)
		require.Equal(t, tc.want, tasks, "%s %v", tc.action, tc.p)
	}
}

// TestOverridePrecedence: request [Task]Key > request Key > request
// [FetchTasks]Key > request [Default]Key > Config fragment (task >
// FetchTasks > Default) > file (task > FetchTasks > Default).
func TestOverridePrecedence(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=A\n1=B\nMaxPages=10\n[Default]\nConcurrency=3\nPageDelay=2\nOverrideUrlOrigins=http://127.0.0.1:7,http://127.0.0.1:8,http://127.0.0.1:9\n[A]\nUrl=http://127.0.0.1:1/\nDepth=5\n[B]\nUrl0=http://127.0.0.1:2/\nUrl1=http://127.0.0.1:3/\n")
	get := func(kv ...string) map[string]*settings {
		p, err := b.repo.prepare(fetch.ActionSynchronize, params(kv...))
		require.NoError(t, err)
		set := map[string]*settings{}
		for _, task := range p.tasks {
			set[task] = p.settings(task)
		}
		return set
	}
	s := get()
	require.Equal(t, 5, s["A"].Depth)
	require.Equal(t, -1, s["B"].Depth)
	require.Equal(t, 10, s["A"].MaxPages)
	require.Equal(t, 3, s["B"].Concurrency)
	require.Equal(t, 2*time.Second, s["A"].PageDelay)
	require.Equal(t, []string{"http://127.0.0.1:2/", "http://127.0.0.1:3/"}, s["B"].URLs)
	require.True(t, s["A"].StayOnSite)
	require.True(t, s["A"].FollowRobots)

	frag := fragment("[A]\nDepth=7\n[FetchTasks]\nMaxPages=20\nUrl=http://127.0.0.1:9/\n[Default]\nConcurrency=4\n")
	s = get("Config", frag)
	require.Equal(t, 7, s["A"].Depth)
	require.Equal(t, -1, s["B"].Depth)
	require.Equal(t, 20, s["A"].MaxPages)
	require.Equal(t, 4, s["B"].Concurrency)
	// Layers first: any section of the fragment beats the file, so the
	// fragment's [FetchTasks] URL list replaces both tasks' lists.
	require.Equal(t, []string{"http://127.0.0.1:9/"}, s["A"].URLs)
	require.Equal(t, []string{"http://127.0.0.1:9/"}, s["B"].URLs)

	s = get("Config", frag, "Depth", "1", "[a]Depth", "2", "[Default]MaxPages", "30", "[FetchTasks]Concurrency", "6")
	require.Equal(t, 2, s["A"].Depth)
	require.Equal(t, 1, s["B"].Depth)
	require.Equal(t, 30, s["A"].MaxPages)
	require.Equal(t, 6, s["A"].Concurrency)

	s = get("[B]Url", "http://127.0.0.1:7/,http://127.0.0.1:8/", "[FetchTasks]MaxRedirects", "0", "UserAgent", "probe/1")
	require.Equal(t, []string{"http://127.0.0.1:7/", "http://127.0.0.1:8/"}, s["B"].URLs)
	require.Equal(t, 0, s["A"].MaxRedirects)
	require.Equal(t, "probe/1", s["B"].UserAgent)
	require.Equal(t, -1, s["A"].crawlConfig().MaxRedirects)

	// Regexes match the whole URL and are compiled once.
	s = get("[A]UrlCantHaveRegex", `.*\.pdf`)
	require.False(t, s["A"].ingestible("http://x/a.pdf"))
	require.True(t, s["A"].ingestible("http://x/a.pdf.html"))
	s2 := get("[A]UrlCantHaveRegex", `.*\.pdf`)
	require.Same(t, s["A"].URLCantHave, s2["A"].URLCantHave)
}

func TestSchedules(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 10, 15, 30, 0, 0, time.Local)
	cfgText := "[FetchTasks]\n0=Plain\n1=Hourly\n2=Daily\n3=Once\n4=Off\n5=Dated\n" +
		"[Plain]\nUrl=http://127.0.0.1:1/\n" +
		"[Hourly]\nUrl=http://127.0.0.1:1/\nScheduleRepeatSecs=3600\n" +
		"[Daily]\nUrl=http://127.0.0.1:1/\nScheduleStartTime=09:00\nScheduleRepeatSecs=86400\nScheduleCycles=3\n" +
		"[Once]\nUrl=http://127.0.0.1:1/\nScheduleStartTime=16:00:30\n" +
		"[Off]\nUrl=http://127.0.0.1:1/\nScheduleRepeatSecs=60\nScheduleCycles=0\n" +
		"[Dated]\nUrl=http://127.0.0.1:1/\nScheduleStartTime=2030-01-02 03:04\n"
	cfg, err := config.Parse("s.cfg", []byte(cfgText), TaskKeys)
	require.NoError(t, err)
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer st.Close()
	r, err := New(Options{Config: cfg, Store: st, Now: func() time.Time { return now }})
	require.NoError(t, err)
	require.Equal(t, []fetch.Schedule{
		{Task: "HOURLY", Every: time.Hour},
		{Task: "DAILY", Start: time.Date(2025, 6, 11, 9, 0, 0, 0, time.Local), Every: 24 * time.Hour, Cycles: 3},
		{Task: "ONCE", Start: time.Date(2025, 6, 10, 16, 0, 30, 0, time.Local), Cycles: 1},
		{Task: "DATED", Start: time.Date(2030, 1, 2, 3, 4, 0, 0, time.Local), Cycles: 1},
	}, r.Schedules())

	// A schedule in [FetchTasks] applies to every task.
	cfg, err = config.Parse("s.cfg", []byte("[FetchTasks]\n0=A\n1=B\nScheduleStartTime=2030-01-01T00:00:00Z\n[A]\nUrl=http://127.0.0.1:1/\n[B]\nUrl=http://127.0.0.1:1/\nScheduleCycles=2\nScheduleRepeatSecs=10\n"), TaskKeys)
	require.NoError(t, err)
	r, err = New(Options{Config: cfg, Store: st, Now: func() time.Time { return now }})
	require.NoError(t, err)
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	scheds := r.Schedules()
	require.Len(t, scheds, 2)
	require.True(t, scheds[0].Start.Equal(start))
	require.Equal(t, 1, scheds[0].Cycles)
	require.Equal(t, 2, scheds[1].Cycles)
	require.Equal(t, 10*time.Second, scheds[1].Every)

	// ScheduleCycles=-1 is unlimited, which fetch.Schedule writes as 0.
	cfg, err = config.Parse("s.cfg", []byte("[FetchTasks]\n0=A\n[A]\nUrl=http://127.0.0.1:1/\nScheduleCycles=-1\nScheduleRepeatSecs=5\nScheduleStartTime=NOW\n"), TaskKeys)
	require.NoError(t, err)
	r, err = New(Options{Config: cfg, Store: st})
	require.NoError(t, err)
	require.Equal(t, []fetch.Schedule{{Task: "A", Every: 5 * time.Second}}, r.Schedules())
}

func TestIdentifierRoundTrip(t *testing.T) {
	t.Parallel()
	for _, ref := range []string{"http://x/a?b=1&c=<2>", `http://x/"quoted"`, "doc 1 ü"} {
		id := EncodeIdentifier("my task", ref)
		got, err := DecodeIdentifier(id)
		require.NoError(t, err)
		require.Equal(t, Identifier{Task: "MY TASK", Reference: ref}, got)
		// '+' sent without percent-encoding arrives as a space; padding may be lost.
		got, err = DecodeIdentifier(strings.TrimRight(strings.ReplaceAll(id, "+", " "), "="))
		require.NoError(t, err)
		require.Equal(t, ref, got.Reference)
	}
	// IDOL's own form with a type attribute.
	got, err := DecodeIdentifier(base64.StdEncoding.EncodeToString([]byte(`<id t="File" s="DIR1" r="C:\a.txt"/>`)))
	require.NoError(t, err)
	require.Equal(t, Identifier{Task: "DIR1", Reference: `C:\a.txt`}, got)
	for _, bad := range []string{"", "!!!", base64.StdEncoding.EncodeToString([]byte("<x s='a' r='b'/>")),
		base64.StdEncoding.EncodeToString([]byte("<id s='a'/>")), base64.StdEncoding.EncodeToString([]byte("plain"))} {
		_, err := DecodeIdentifier(bad)
		require.True(t, errors.Is(err, errIdentifier), "%q: %v", bad, err)
	}
}

// TestUnknownParametersIgnored: as IDOL connectors do, a Fetch parameter
// that is none of the action's own, Config, or a task setting is accepted
// and ignored (scripts written for IDOL send such parameters); one that
// names a task setting is an override, and a bad value for it is still
// refused, naming the setting.
func TestUnknownParametersIgnored(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	for _, tc := range []struct {
		desc    string
		action  string
		p       []string
		ignored []string // accepted, these ignored
		refused string   // else refused, naming this
		depth   int      // the task's Depth once accepted
	}{
		{"an unknown parameter", fetch.ActionSynchronize, []string{"Foo", "bar"}, []string{"Foo"}, "", -1},
		{"IDOL parameters this connector has not", fetch.ActionSynchronize,
			[]string{"failedDirectory", "/tmp/f", "SecurityInfo", "x", "IngestActions", "META:A=b", "Sync", "true"},
			[]string{"failedDirectory", "SecurityInfo", "IngestActions", "Sync"}, "", -1},
		{"a setting this connector has not, of a task", fetch.ActionSynchronize, []string{"[MyTask]Foo", "bar"}, []string{"[MyTask]Foo"}, "", -1},
		{"not a setting override at all", fetch.ActionSynchronize, []string{"[MyTask Depth", "1", "[]Depth", "2"}, []string{"[MyTask Depth", "[]Depth"}, "", -1},
		{"a parameter of another action", fetch.ActionSynchronize, []string{"Destination", "/tmp", "InsertXML", "<x/>"}, []string{"Destination", "InsertXML"}, "", -1},
		{"ignored beside an override that applies", fetch.ActionSynchronize, []string{"Foo", "bar", "Depth", "2"}, []string{"Foo"}, "", 2},
		{"a section override that applies", fetch.ActionSynchronize, []string{"[MyTask]Depth", "3", "[MyTask]Foo", "x"}, []string{"[MyTask]Foo"}, "", 3},
		{"names keep their letter case", fetch.ActionSynchronize, []string{" fOO ", "1"}, []string{"fOO"}, "", -1},
		// docs/protocol.md: a parameter name spelt with white space
		// other than ASCII's around it, or with a non-ASCII letter that
		// resembles an ASCII one, names nothing, so that a proxy that
		// refuses a setting by name cannot be walked around. On main
		// these were the settings (and TaskSections) they resemble.
		{"a setting's name with a no-break space names nothing", fetch.ActionSynchronize, []string{"Depth\u00a0", "2", "\u2003[MyTask]Depth", "3"}, []string{"Depth\u00a0", "\u2003[MyTask]Depth"}, "", -1},
		{"a task setting's name with a no-break space names nothing", fetch.ActionSynchronize, []string{"[MyTask]Depth\u00a0", "2", "[MyTask]\u00a0Depth", "3"}, []string{"[MyTask]Depth\u00a0", "[MyTask]\u00a0Depth"}, "", -1},
		{"a setting's name with a Kelvin sign names nothing", fetch.ActionSynchronize, []string{"[MyTask]Max\u212aBytesPerSec", "1", "Max\u212aBytesPerSec", "1"}, []string{"[MyTask]Max\u212aBytesPerSec", "Max\u212aBytesPerSec"}, "", -1},
		{"an action's own parameter with a long s names nothing", fetch.ActionSynchronize, []string{"Ta\u017fkSections", "Nope", "TaskSections\u00a0", "Nope"}, []string{"Ta\u017fkSections", "TaskSections\u00a0"}, "", -1},
		{"a Boolean with a no-break space is no Boolean", fetch.ActionSynchronize, []string{"[MyTask]ExtractText", "false\u00a0"}, nil, "[MyTask] ExtractText", 0},
		{"bad value of a setting", fetch.ActionSynchronize, []string{"Foo", "bar", "Depth", "deep"}, nil, "Depth", 0},
		{"bad value of a task's setting", fetch.ActionSynchronize, []string{"[MyTask]Depth", "deep"}, nil, "[MyTask] Depth", 0},
		{"bad value of a [Default] setting", fetch.ActionSynchronize, []string{"[Default]StayOnSite", "maybe"}, nil, "[Default] StayOnSite", 0},
		{"a setting of a section that is no task", fetch.ActionSynchronize, []string{"[Nope]Depth", "1"}, nil, "[Nope] Depth", 0},
		{"a schedule setting", fetch.ActionSynchronize, []string{"ScheduleCycles", "1"}, nil, "ScheduleCycles", 0},
	} {
		p, err := b.repo.prepare(tc.action, params(tc.p...))
		if tc.refused != "" {
			paramErr(t, err, tc.refused)
			continue
		}
		require.NoError(t, err, tc.desc)
		require.Equal(t, tc.ignored, p.ignored, tc.desc)
		require.Equal(t, tc.depth, p.settings("MYTASK").Depth, tc.desc)
	}
}

// TestIgnoredParametersLogged: the names of ignored parameters are in the
// debug log of the action that got them, with its token.
func TestIgnoredParametersLogged(t *testing.T) {
	t.Parallel()
	var buf testlog.Buffer
	s := newSite(t, map[string]*page{"/": htmlPage("Home")})
	b := setup(t, siteConfig(s), setupOpts{logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	b.run(t, fetch.ActionSynchronize, params("Foo", "bar", "[MyTask]Bar", "1", "Depth", "1"))
	require.Contains(t, buf.String(), `msg="parameters ignored: neither the action's own nor task settings" component=httpfetch token=token action=SYNCHRONIZE parameters=Foo,[MyTask]Bar`)
}

// ScheduleCycles of more than one run, or -1 (unlimited), says how often
// a repeating schedule runs: without ScheduleRepeatSecs there is no
// repeat, and start-up refuses it at its line. On main such a task was
// scheduled for one run, silently: ScheduleCycles=5 ran the task once.
func TestScheduleCyclesWithoutARepeatRefused(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"5", "-1"} {
		cfg, err := config.Parse("my.cfg", []byte("[FetchTasks]\n0=T\n[T]\nUrl=http://x/\nScheduleStartTime=02:00\nScheduleCycles="+n+"\n"), TaskKeys)
		require.NoError(t, err)
		var ce *config.Error
		require.ErrorAs(t, Check(cfg), &ce, n)
		require.Equal(t, []any{"my.cfg", 6, "T", "ScheduleCycles"}, []any{ce.File, ce.Line, ce.Section, ce.Key}, n)
		require.Contains(t, ce.Error(), "ScheduleRepeatSecs", n)
	}
	// Where the keys are written does not matter, as for any setting; one
	// run (or none) needs no repeat.
	for _, text := range []string{
		"[FetchTasks]\n0=T\nScheduleCycles=3\n[Default]\nScheduleRepeatSecs=60\n[T]\nUrl=http://x/\n",
		"[FetchTasks]\n0=T\n[T]\nUrl=http://x/\nScheduleCycles=1\n",
		"[FetchTasks]\n0=T\n[T]\nUrl=http://x/\nScheduleCycles=0\n",
	} {
		cfg, err := config.Parse("my.cfg", []byte(text), TaskKeys)
		require.NoError(t, err)
		require.NoError(t, Check(cfg), text)
	}
}

// A daily schedule whose time of day the clocks skip on the day the
// server starts (02:30 when they go forward from 02:00 to 03:00) runs
// that day once the clocks have passed it, and at 02:30 on the days
// after: its grid of days starts at the time of day written, the day
// before. On main the start was that day's 03:30, which the scheduler's
// days kept: the task ran at 03:30 every day, until the next restart.
func TestScheduleStartSkippedBySpringForward(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	now := time.Date(2027, 3, 28, 0, 30, 0, 0, berlin) // the clocks go forward at 02:00
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer st.Close()
	schedule := func(keys string) fetch.Schedule {
		cfg, err := config.Parse("s.cfg", []byte("[FetchTasks]\n0=A\n[A]\nUrl=http://127.0.0.1:1/\n"+keys), TaskKeys)
		require.NoError(t, err)
		r, err := New(Options{Config: cfg, Store: st, Now: func() time.Time { return now }})
		require.NoError(t, err)
		require.Len(t, r.Schedules(), 1)
		return r.Schedules()[0]
	}
	sc := schedule("ScheduleStartTime=02:30\nScheduleRepeatSecs=86400\n")
	require.True(t, sc.Start.Equal(time.Date(2027, 3, 27, 2, 30, 0, 0, berlin)), "start %s", sc.Start)
	sc = schedule("ScheduleStartTime=02:30:15\nScheduleRepeatSecs=604800\n")
	require.True(t, sc.Start.Equal(time.Date(2027, 3, 21, 2, 30, 15, 0, berlin)), "start %s", sc.Start)
	// A schedule that does not repeat in days runs once the clocks have
	// passed the time, as before.
	for _, keys := range []string{"ScheduleStartTime=02:30\n", "ScheduleStartTime=02:30\nScheduleRepeatSecs=3600\n"} {
		sc = schedule(keys)
		require.True(t, sc.Start.Equal(time.Date(2027, 3, 28, 3, 30, 0, 0, berlin)), "%s: start %s", keys, sc.Start)
	}
}
