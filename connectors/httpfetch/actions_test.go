package httpfetch

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// results flattens a <tasks> result into success and failed identifiers.
// An Insert's <identifiers> (insertIDs) may follow it.
func results(t *testing.T, res []*messages.Element) (ok []string, failed map[string]string) {
	t.Helper()
	require.NotEmpty(t, res)
	require.LessOrEqual(t, len(res), 2)
	if len(res) == 2 {
		require.Equal(t, "identifiers", res[1].Name)
	}
	require.Equal(t, "tasks", res[0].Name)
	failed = map[string]string{}
	for _, c := range res[0].Children {
		require.True(t, c.List)
		switch c.Name {
		case "success":
			ok = append(ok, c.Text)
		case "failed":
			require.Equal(t, "message", c.Attrs[0].Name)
			failed[c.Text] = c.Attrs[0].Value
		default:
			t.Fatalf("unexpected element %s", c.Name)
		}
	}
	return ok, failed
}

// insertIDs reads an Insert's <identifiers>: identifier to insert_id.
func insertIDs(t *testing.T, res []*messages.Element) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range res[1:] {
		require.Equal(t, "identifiers", r.Name)
		require.True(t, r.List)
		for _, c := range r.Children {
			require.Equal(t, "identifier", c.Name)
			require.True(t, c.List)
			require.Len(t, c.Attrs, 1)
			require.Equal(t, "insert_id", c.Attrs[0].Name)
			out[c.Text] = c.Attrs[0].Value
		}
	}
	return out
}

// crawled is a bundle that has synchronised a small site once.
func crawled(t *testing.T, opts ...setupOpts) (*bundle, *site) {
	t.Helper()
	s := newSite(t, map[string]*page{
		"/":           htmlPage("Home", "/a", "/doc.pdf", "/list"),
		"/a":          htmlPage("Page A"),
		"/doc.pdf":    {body: realPDF, ctype: "application/pdf"},
		"/list":       htmlPage("List"),
		"/gone":       htmlPage("Gone"),
		"/robots.txt": {body: "User-agent: *\nDisallow: /secret\n", ctype: "text/plain"},
	})
	b := setup(t, siteConfig(s, "UrlCantHaveRegex=.*/list"), opts...)
	b.sync(t)
	return b, s
}

func TestCollect(t *testing.T) {
	t.Parallel()
	dest, other := t.TempDir(), t.TempDir()
	b, s := crawled(t, setupOpts{extra: "[Security]\nCollectFolders=" + dest + "," + other + "\n"})
	a := EncodeIdentifier("MyTask", s.URL+"/a")
	pdf := EncodeIdentifier("MyTask", s.URL+"/doc.pdf")
	unknown := EncodeIdentifier("MyTask", s.URL+"/never-crawled")
	job, res := b.run(t, fetch.ActionCollect, params("Identifiers", a+","+pdf+","+unknown, "Destination", dest))
	ok, failed := results(t, res)
	require.Equal(t, []string{a, pdf}, ok)
	require.Contains(t, failed[unknown], "not a page known to task MYTASK")
	require.Equal(t, cnt{Collected: 2, Errors: 1}, countsOf(job, "MYTASK"))

	files, err := filepath.Glob(filepath.Join(dest, "*"))
	require.NoError(t, err)
	require.Len(t, files, 4)
	var pdfPath string
	for _, f := range files {
		if strings.HasSuffix(f, "_doc.pdf") {
			pdfPath = f
		}
	}
	require.NotEmpty(t, pdfPath)
	data, err := os.ReadFile(pdfPath)
	require.NoError(t, err)
	require.Equal(t, realPDF, string(data))
	f, err := os.Open(pdfPath + ".idx")
	require.NoError(t, err)
	defer f.Close()
	docs, err := ingest.ReadIDX(f)
	require.NoError(t, err)
	require.Len(t, docs, 1)
	require.Equal(t, s.URL+"/doc.pdf", docs[0].Reference)
	require.Equal(t, pdf, fieldValue(docs[0], FieldIdentifier))
	require.NotEmpty(t, fieldValue(docs[0], FieldCollectTime))

	// IdentifiersXML: per-item destination, file name and metadata; a page
	// gone from the site fails.
	s.set("/a", nil)
	xml := `<identifiersXML><identifier value="` + pdf + `" destination="` + other + `" filename="mine.pdf"><metadata name="EXTRA" value="1"/></identifier>` +
		`<identifier value="` + a + `"/></identifiersXML>`
	job, res = b.run(t, fetch.ActionCollect, params("IdentifiersXML", xml, "Destination", dest))
	ok, failed = results(t, res)
	require.Equal(t, []string{pdf}, ok)
	require.Contains(t, failed[a], "HTTP 404")
	require.Equal(t, cnt{Collected: 1, Errors: 1}, countsOf(job, "MYTASK"))
	data, err = os.ReadFile(filepath.Join(other, "mine.pdf"))
	require.NoError(t, err)
	require.Equal(t, realPDF, string(data))
	side, err := os.ReadFile(filepath.Join(other, "mine.pdf.idx"))
	require.NoError(t, err)
	require.Contains(t, string(side), `#DREFIELD EXTRA="1"`)
}

func TestIdentifiers(t *testing.T) {
	t.Parallel()
	b, s := crawled(t)
	job, res := b.run(t, fetch.ActionIdentifiers, params("ConfigSection", "mytask"))
	require.Len(t, res, 1)
	g := res[0]
	require.Equal(t, "identifiers", g.Name)
	require.True(t, g.List)
	require.Equal(t, "parent_identifier", g.Attrs[0].Name)
	require.Equal(t, "ROOT", g.Attrs[0].Value)
	names := map[string]string{}
	for _, el := range g.Children {
		require.Equal(t, "identifier", el.Name)
		id, err := DecodeIdentifier(el.Text)
		require.NoError(t, err)
		attrs := map[string]string{}
		for _, a := range el.Attrs {
			attrs[a.Name] = a.Value
		}
		require.Equal(t, "Web Page", attrs["type"])
		require.Equal(t, "document", attrs["attributes"])
		names[id.Reference] = attrs["name"]
	}
	require.Equal(t, map[string]string{s.URL + "/": "Home", s.URL + "/a": "Page A", s.URL + "/doc.pdf": "doc.pdf"}, names)
	require.Equal(t, cnt{Seen: 3}, countsOf(job, "MYTASK"))

	// ShowExcluded adds the crawled-only page; Show* switch attributes off.
	_, res = b.run(t, fetch.ActionIdentifiers, params("ConfigSection", "MyTask", "ShowExcluded", "true", "ShowNames", "false", "ShowTypes", "false"))
	require.Len(t, res[0].Children, 4)
	for _, el := range res[0].Children {
		require.Len(t, el.Attrs, 1)
		require.Equal(t, "attributes", el.Attrs[0].Name)
	}
	// Pages have no children; other types and ContainersOnly list nothing.
	a := EncodeIdentifier("MyTask", s.URL+"/a")
	_, res = b.run(t, fetch.ActionIdentifiers, params("ConfigSection", "MyTask", "ParentIdentifiers", a+",ROOT"))
	require.Len(t, res, 2)
	require.Equal(t, a, res[0].Attrs[0].Value)
	require.Empty(t, res[0].Children)
	require.Len(t, res[1].Children, 3)
	_, res = b.run(t, fetch.ActionIdentifiers, params("ConfigSection", "MyTask", "FilterTypes", "Directory"))
	require.Empty(t, res[0].Children)
	_, res = b.run(t, fetch.ActionIdentifiers, params("ConfigSection", "MyTask", "ContainersOnly", "true"))
	require.Empty(t, res[0].Children)
}

func TestDelete(t *testing.T) {
	t.Parallel()
	b, s := crawled(t)
	a := EncodeIdentifier("MyTask", s.URL+"/a")
	pdf := EncodeIdentifier("MyTask", s.URL+"/doc.pdf")
	job, res := b.run(t, fetch.ActionDelete, params("Identifiers", a+", "+pdf))
	ok, failed := results(t, res)
	require.Equal(t, []string{a, pdf}, ok)
	require.Empty(t, failed)
	require.Equal(t, cnt{Deleted: 2, IngestDeleted: 2}, countsOf(job, "MYTASK"))
	require.Equal(t, []string{s.URL + "/a", s.URL + "/doc.pdf"}, b.target.removals())
	recs := b.records(t, "MYTASK")
	require.NotContains(t, recs, s.URL+"/a")

	// A failing target: nothing forgotten.
	b.target.fail.Store(true)
	home := EncodeIdentifier("MyTask", s.URL+"/")
	job, res = b.run(t, fetch.ActionDelete, params("Identifiers", home))
	_, failed = results(t, res)
	require.Contains(t, failed[home], "target is down")
	require.Equal(t, cnt{IngestFailed: 1, Errors: 1}, countsOf(job, "MYTASK"))
	require.Contains(t, b.records(t, "MYTASK"), s.URL+"/")

	// Deleted pages still on the site come back with the next Synchronize.
	b.target.fail.Store(false)
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 4, Added: 2, Unchanged: 1, IngestAdded: 2}, countsOf(job, "MYTASK"))
}

func TestInsert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, _ := crawled(t, setupOpts{extra: "[Security]\nInsertFolders=" + dir + "\nAllowTempFileDeletion=true\n"})
	tmp := filepath.Join(dir, "upload.txt")
	require.NoError(t, os.WriteFile(tmp, []byte("from a temp file"), 0o600))
	keep := filepath.Join(dir, "keep.html")
	require.NoError(t, os.WriteFile(keep, []byte("<html><title>T</title><p>Hello <b>there</b></p></html>"), 0o600))
	xml := `<insertXML>
<insert><reference>doc-1</reference><metadata name="AUTHOR" value="me"/><file><type>content</type><displayname>a.pdf</displayname><content>` +
		base64.StdEncoding.EncodeToString([]byte(realPDF)) + `</content></file><insert_id>i1</insert_id></insert>
<insert><reference>doc-2</reference><file><type>drecontent</type><content>Some text</content></file></insert>
<insert><reference>doc-3</reference><file><type>tempfile</type><content>` + tmp + `</content></file><insert_id>i3</insert_id></insert>
<insert><reference>doc-4</reference><property name="p" value="v"/><file><content>` + keep + `</content></file></insert>
</insertXML>`
	job, res := b.run(t, fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", xml))
	ok, failed := results(t, res)
	require.Empty(t, failed)
	require.Len(t, ok, 4)
	require.Equal(t, cnt{Inserted: 4, IngestAdded: 4}, countsOf(job, "MYTASK"))
	require.Equal(t, map[string]string{EncodeIdentifier("MYTASK", "doc-1"): "i1", EncodeIdentifier("MYTASK", "doc-3"): "i3"},
		insertIDs(t, res))

	d1 := b.target.doc("doc-1")
	require.Equal(t, []byte(realPDF), d1.Source)
	require.Equal(t, "application/pdf", d1.SourceType)
	require.Contains(t, d1.Content, "The zebra crossed the meadow at dawn.", "an inserted PDF's text is extracted")
	require.Equal(t, "1", fieldValue(d1, FieldPageCount))
	require.Equal(t, "me", fieldValue(d1, "AUTHOR"))
	require.Equal(t, "a.pdf", fieldValue(d1, FieldFileName))
	id, err := DecodeIdentifier(fieldValue(d1, FieldIdentifier))
	require.NoError(t, err)
	require.Equal(t, Identifier{Task: "MYTASK", Reference: "doc-1"}, id)
	require.Equal(t, "Some text", b.target.doc("doc-2").Content)
	require.Equal(t, "from a temp file", b.target.doc("doc-3").Content)
	require.Equal(t, "Hello there", b.target.doc("doc-4").Content)
	_, err = os.Stat(tmp)
	require.True(t, os.IsNotExist(err), "a tempfile is removed once ingested")
	_, err = os.Stat(keep)
	require.NoError(t, err, "a file is kept")

	// Single document without <insert>; a failing target.
	b.target.fail.Store(true)
	job, res = b.run(t, fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", "<insertXML><reference>doc-5</reference></insertXML>"))
	_, failed = results(t, res)
	require.Len(t, failed, 1)
	require.Equal(t, cnt{IngestFailed: 1, Errors: 1}, countsOf(job, "MYTASK"))

	// Inserted documents are not in the datastore: a Synchronize leaves them.
	b.target.fail.Store(false)
	job = b.sync(t)
	require.Zero(t, countsOf(job, "MYTASK").Deleted)
}

// An inserted file's media type comes from its name (mime.TypeByExtension),
// which adds "charset=utf-8" to every text/* type: that is Go's default,
// not the file's declaration, yet the extractor took it as one. A Latin-1
// text file or a page whose <meta charset> says windows-1252 lost every
// accented letter to U+FFFD ("caf\ufffd") where a crawled one keeps them.
func TestInsertFileCharsetIsTheFiles(t *testing.T) {
	t.Parallel()
	b, _ := crawled(t)
	content := func(ref, name, data string) string {
		return `<insert><reference>` + ref + `</reference><file><type>content</type><displayname>` + name +
			`</displayname><content>` + base64.StdEncoding.EncodeToString([]byte(data)) + `</content></file></insert>`
	}
	xml := `<insertXML>` +
		content("latin1", "notes.txt", "caf\xe9 cr\xe8me") +
		content("meta", "page.html", `<html><head><meta charset="windows-1252"></head><body><p>`+"na\xefve \x93quoted\x94"+`</p></body></html>`) +
		content("utf8", "other.txt", "déjà vu") +
		`</insertXML>`
	_, res := b.run(t, fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", xml))
	ok, failed := results(t, res)
	require.Empty(t, failed)
	require.Len(t, ok, 3)
	got := map[string]string{}
	for _, ref := range []string{"latin1", "meta", "utf8"} {
		got[ref] = b.target.doc(ref).Content
	}
	require.Equal(t, map[string]string{"latin1": "café crème", "meta": "naïve “quoted”", "utf8": "déjà vu"}, got)
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	b, s := crawled(t)
	a := EncodeIdentifier("MyTask", s.URL+"/a")
	list := EncodeIdentifier("MyTask", s.URL+"/list")
	never := EncodeIdentifier("MyTask", s.URL+"/never")
	b.target.reset()
	xml := `<identifier value="` + a + `"><metadata name="CATEGORY" value="news"/></identifier>` +
		`<identifier value="` + list + `"/><identifier value="` + never + `"/>`
	job, res := b.run(t, fetch.ActionUpdate, params("IdentifiersXML", xml))
	ok, failed := results(t, res)
	require.Equal(t, []string{a}, ok)
	require.Contains(t, failed[list], "excluded")
	require.Contains(t, failed[never], "not a page known")
	require.Equal(t, cnt{Updated: 1, IngestUpdated: 1, Errors: 2}, countsOf(job, "MYTASK"))
	d := b.target.doc(s.URL + "/a")
	require.Equal(t, "news", fieldValue(d, "CATEGORY"))

	// The metadata stays with the document when a Synchronize sends a new
	// version; a second Update replaces it by name.
	s.set("/a", htmlPage("Page A v2"))
	b.target.reset()
	job = b.sync(t)
	require.Equal(t, uint64(1), countsOf(job, "MYTASK").IngestUpdated)
	require.Equal(t, "news", fieldValue(b.target.doc(s.URL+"/a"), "CATEGORY"))
	b.run(t, fetch.ActionUpdate, params("IdentifiersXML", `<identifier value="`+a+`"><metadata name="CATEGORY" value="sport"/></identifier>`))
	d = b.target.doc(s.URL + "/a")
	n := 0
	for _, f := range d.Fields {
		if f.Name == "CATEGORY" {
			n++
			require.Equal(t, "sport", f.Value)
		}
	}
	require.Equal(t, 1, n)
}

func TestView(t *testing.T) {
	t.Parallel()
	b, s := crawled(t)
	a := EncodeIdentifier("MyTask", s.URL+"/a")
	v, err := b.repo.View(context.Background(), a, params("Identifier", a, "NoACI", "false"))
	require.NoError(t, err)
	require.Equal(t, s.URL+"/a", v.Reference)
	require.Equal(t, "text/html; charset=utf-8", v.MimeType)
	require.Equal(t, "a", v.FileName)
	require.Contains(t, string(v.Content), "<title>Page A</title>")
	meta := map[string]string{}
	for _, m := range v.Metadata {
		meta[m.Name] = m.Value
	}
	require.Equal(t, "Page A", meta["DRETITLE"])
	require.Equal(t, a, meta[FieldIdentifier])
	require.Equal(t, "1", meta[FieldDepth])

	pdf := EncodeIdentifier("MyTask", s.URL+"/doc.pdf")
	v, err = b.repo.View(context.Background(), pdf, nil)
	require.NoError(t, err)
	require.Equal(t, "application/pdf", v.MimeType)
	require.Equal(t, "doc.pdf", v.FileName)

	// The task's user agent (and a request override of it) is used.
	_, err = b.repo.View(context.Background(), a, params("UserAgent", "viewer/1.0"))
	require.NoError(t, err)
	hits := s.requests()
	require.Equal(t, "/a", hits[len(hits)-1].path)
	require.Equal(t, "viewer/1.0", hits[len(hits)-1].ua)

	// Errors.
	_, err = b.repo.View(context.Background(), "garbage", nil)
	paramErr(t, err, "Identifier")
	_, err = b.repo.View(context.Background(), EncodeIdentifier("Nope", s.URL+"/a"), nil)
	paramErr(t, err, "Identifier")
	_, err = b.repo.View(context.Background(), a, params("Depth", "x"))
	paramErr(t, err, "Depth")
	_, err = b.repo.View(context.Background(), a, params("Bogus", "1", "[MyTask]Bogus", "2"))
	require.NoError(t, err, "a parameter View does not know is ignored, as IDOL's connectors do")
	_, err = b.repo.View(context.Background(), EncodeIdentifier("MyTask", "http://127.0.0.1:1/elsewhere"), nil)
	require.ErrorIs(t, err, messages.ErrNotFound, "only known pages can be viewed")
	_, err = b.repo.View(context.Background(), EncodeIdentifier("MyTask", "doc-1"), nil)
	require.ErrorIs(t, err, messages.ErrNotFound)
	s.set("/a", nil)
	_, err = b.repo.View(context.Background(), a, nil)
	require.ErrorIs(t, err, messages.ErrNotFound)
	s.set("/a", &page{status: 500})
	_, err = b.repo.View(context.Background(), a, nil)
	require.Error(t, err)
	require.NotErrorIs(t, err, messages.ErrNotFound)

	// A task that never ran.
	b2 := setup(t, siteConfig(s))
	_, err = b2.repo.View(context.Background(), a, nil)
	require.ErrorIs(t, err, messages.ErrNotFound)
}

// TestViewRobots: View obeys robots.txt, like the crawl.
func TestViewRobots(t *testing.T) {
	t.Parallel()
	b, s := crawled(t)
	s.set("/robots.txt", &page{body: "User-agent: *\nDisallow: /a\n", ctype: "text/plain"})
	_, err := b.repo.View(context.Background(), EncodeIdentifier("MyTask", s.URL+"/a"), nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "robots.txt")
	require.Zero(t, s.count("/a")-1, "only the Synchronize fetched /a")
}

func TestTaskList(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := store.Open(store.Config{Dir: dir})
	require.NoError(t, err)
	s := newSite(t, map[string]*page{"/": htmlPage("Home")})
	text := "[FetchTasks]\n0=MyTask\n1=Idle\n[MyTask]\nUrl=" + s.URL + "/\n[Idle]\nUrl=" + s.URL + "/\n[Side]\nUrl=" + s.URL + "/\n"
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg, err := config.Parse("t.cfg", []byte(text), TaskKeys)
	require.NoError(t, err)
	r, err := New(Options{Config: cfg, Store: st, Now: func() time.Time { return now }, Logger: quietLogger()})
	require.NoError(t, err)
	for _, p := range []messages.Params{nil, params("TaskSections", "Side"), nil} {
		tasks, err := r.Validate(fetch.ActionSynchronize, p)
		require.NoError(t, err)
		_, err = r.Run(context.Background(), fetch.NewJob("t", fetch.ActionSynchronize, p, tasks))
		require.NoError(t, err)
	}
	_, err = r.Run(context.Background(), fetch.NewJob("t", fetch.ActionIdentifiers, params("ConfigSection", "MyTask"), []string{"MYTASK"}))
	require.NoError(t, err)
	require.NoError(t, st.Close())

	// A restart: the list survives.
	st, err = store.Open(store.Config{Dir: dir})
	require.NoError(t, err)
	defer st.Close()
	r, err = New(Options{Config: cfg, Store: st})
	require.NoError(t, err)
	list, err := r.TaskList()
	require.NoError(t, err)
	require.Len(t, list, 3)
	dbPath := filepath.Join(dir, store.DefaultFile)
	require.Equal(t, fetch.TaskInfo{Name: "MYTASK", Action: fetch.ActionIdentifiers, Calls: 3, Datastore: dbPath + " [datastore MYTASK]", LastStart: now, LastFinish: now}, norm(list[0]))
	require.Equal(t, fetch.TaskInfo{Name: "IDLE", Action: fetch.ActionSynchronize, Calls: 2, Datastore: dbPath + " [datastore IDLE]", LastStart: now, LastFinish: now}, norm(list[1]))
	require.Equal(t, fetch.TaskInfo{Name: "SIDE", Action: fetch.ActionSynchronize, Calls: 1, Datastore: dbPath + " [datastore SIDE]", LastStart: now, LastFinish: now}, norm(list[2]))

	// Never run: every task section is listed, with nothing recorded.
	mem := setup(t, text)
	list, err = mem.repo.TaskList()
	require.NoError(t, err)
	require.Equal(t, []fetch.TaskInfo{{Name: "MYTASK", Datastore: "memory [datastore MYTASK]"}, {Name: "IDLE", Datastore: "memory [datastore IDLE]"},
		{Name: "SIDE", Datastore: "memory [datastore SIDE]"}}, list)
}

func norm(ti fetch.TaskInfo) fetch.TaskInfo {
	ti.LastStart, ti.LastFinish = ti.LastStart.UTC(), ti.LastFinish.UTC()
	return ti
}

// TestRunErrors: a Run whose parameters no longer validate, and a failing
// datastore, end the action with an error.
func TestRunErrors(t *testing.T) {
	t.Parallel()
	b, _ := crawled(t)
	_, err := b.repo.Run(context.Background(), fetch.NewJob("t", fetch.ActionSynchronize, params("TaskSections", "Nope"), []string{"NOPE"}))
	paramErr(t, err, "TaskSections")
	require.NoError(t, b.st.Close())
	_, err = b.repo.Run(context.Background(), fetch.NewJob("t", fetch.ActionSynchronize, nil, []string{"MYTASK"}))
	require.True(t, errors.Is(err, store.ErrClosed), "%v", err)
}

// TestInsertIDs: connectors.xsd allows no attribute on <success>, so an
// Insert reports each request's insert_id in <identifiers>, after <tasks>,
// as <identifier insert_id="...">ID</identifier> (connectors.xsd's
// ResponseIdentifier), for delivered and failed documents alike, in request
// order; without any insert_id there is no <identifiers>. (Every result
// here is also validated against the schema when the test ends.)
func TestInsertIDs(t *testing.T) {
	t.Parallel()
	id := func(ref string) string { return EncodeIdentifier("MYTASK", ref) }
	doc := func(ref, insertID string) string {
		x := "<insert><reference>" + ref + "</reference><file><type>drecontent</type><content>text of " + ref + "</content></file>"
		if insertID != "" {
			x += "<insert_id>" + insertID + "</insert_id>"
		}
		return x + "</insert>"
	}
	cases := []struct {
		name       string
		xml        string
		failTarget bool
		ok         []string
		failed     []string
		ids        []string // identifier=insert_id, in order
	}{
		{"no insert_id", "<insertXML>" + doc("d1", "") + doc("d2", "") + "</insertXML>", false,
			[]string{id("d1"), id("d2")}, nil, nil},
		{"some insert_ids", "<insertXML>" + doc("d1", "first") + doc("d2", "") + doc("d3", "third") + "</insertXML>", false,
			[]string{id("d1"), id("d2"), id("d3")}, nil, []string{id("d1") + "=first", id("d3") + "=third"}},
		{"one document without <insert>", "<insertXML><reference>d9</reference><insert_id>nine</insert_id></insertXML>", false,
			[]string{id("d9")}, nil, []string{id("d9") + "=nine"}},
		{"target refuses: still mapped", "<insertXML>" + doc("d1", "first") + doc("d2", "") + "</insertXML>", true,
			nil, []string{id("d1"), id("d2")}, []string{id("d1") + "=first"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b, _ := crawled(t)
			b.target.fail.Store(c.failTarget)
			_, res := b.run(t, fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", c.xml))
			ok, failed := results(t, res)
			require.Equal(t, c.ok, ok)
			require.Len(t, failed, len(c.failed))
			for _, f := range c.failed {
				require.Contains(t, failed, f)
			}
			for _, s := range res[0].Children {
				require.Empty(t, attrsNamed(s, "insert_id"), "no insert_id on <%s>", s.Name)
			}
			var ids []string
			if len(res) > 1 {
				for _, e := range res[1].Children {
					ids = append(ids, e.Text+"="+e.Attrs[0].Value)
				}
			}
			require.Equal(t, c.ids, ids)
		})
	}
}

func attrsNamed(e *messages.Element, name string) []*messages.Param {
	var out []*messages.Param
	for _, a := range e.Attrs {
		if a.Name == name {
			out = append(out, a)
		}
	}
	return out
}

// A page whose URL ends in a segment longer than a file name may be is
// still collected: its file name is cut to fit (with room for ".idx").
func TestCollectLongURLSegment(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	long := "/" + strings.Repeat("a", 300) + ".html"
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", long),
		long: htmlPage("Long"),
	})
	b := setup(t, siteConfig(s, ""), setupOpts{extra: "[Security]\nCollectFolders=" + dest + "\n"})
	b.sync(t)
	id := EncodeIdentifier("MyTask", s.URL+long)
	_, res := b.run(t, fetch.ActionCollect, params("Identifiers", id, "Destination", dest))
	ok, failed := results(t, res)
	require.Empty(t, failed)
	require.Equal(t, []string{id}, ok)
	files, err := filepath.Glob(filepath.Join(dest, "*"))
	require.NoError(t, err)
	require.Len(t, files, 2, "the page and its sidecar")
	for _, f := range files {
		require.LessOrEqual(t, len(filepath.Base(f)), 255)
	}
}

// An item whose sidecar cannot be written (its name is taken by a folder)
// fails whole: the page is not left in the folder without its sidecar,
// and no temporary file stays behind.
func TestCollectFailedSidecarLeavesNoItem(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	b, s := crawled(t, setupOpts{extra: "[Security]\nCollectFolders=" + dest + "\n"})
	require.NoError(t, os.Mkdir(filepath.Join(dest, "mine.pdf.idx"), 0o755))
	pdf := EncodeIdentifier("MyTask", s.URL+"/doc.pdf")
	xml := `<identifiersXML><identifier value="` + pdf + `" filename="mine.pdf"/></identifiersXML>`
	_, res := b.run(t, fetch.ActionCollect, params("IdentifiersXML", xml, "Destination", dest))
	ok, failed := results(t, res)
	require.Empty(t, ok)
	require.Contains(t, failed, pdf)
	entries, err := os.ReadDir(dest)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.Equal(t, []string{"mine.pdf.idx"}, names, "only the folder that was there")
}

// commaSite is a bundle that has synchronised a site of two pages, one
// with a comma in its URL ("/a,b") and one without ("/c").
func commaSite(t *testing.T) (*bundle, *site) {
	t.Helper()
	s := newSite(t, map[string]*page{
		"/":    htmlPage("Home", "/a,b", "/c"),
		"/a,b": htmlPage("Comma"),
		"/c":   htmlPage("C"),
	})
	b := setup(t, siteConfig(s, ""))
	b.sync(t)
	return b, s
}

// A target that refuses one reference of a removal (CFS cannot remove a
// reference with a comma) refuses that one alone: the other pages gone
// from the site are still removed.
func TestSyncRemovalRefusedAloneForOneReference(t *testing.T) {
	t.Parallel()
	b, s := commaSite(t)
	require.Equal(t, []string{s.URL + "/", s.URL + "/a,b", s.URL + "/c"}, b.target.refs())
	b.target.noCommas.Store(true)
	s.set("/a,b", nil)
	s.set("/c", nil)
	b.target.reset()
	job := b.sync(t)
	require.Equal(t, []string{s.URL + "/c"}, b.target.removals())
	c := countsOf(job, "MYTASK")
	require.Equal(t, uint64(1), c.IngestDeleted)
	require.NotZero(t, c.IngestFailed)
	recs := b.records(t, "MYTASK")
	require.NotContains(t, recs, s.URL+"/c")
	require.NotContains(t, recs, s.URL+"/a,b", "reported and forgotten: no run can remove it (TestSyncRemovalNeverPossibleIsReportedOnce)")
}

// A page gone from the site whose reference the target can never remove
// (CFS cannot carry a comma in its removes list) is reported once (a
// failure naming it, ingestfailed, a warning) and forgotten as if it was
// removed: its document stays in the index for an administrator to
// remove. Before, its record was kept "to remove again next run", and
// every later Synchronize sent the same removal, was refused the same way
// and counted and listed it again, for ever, while the restsync
// connectors (mail, Webex, Objective) report such a removal once.
func TestSyncRemovalNeverPossibleIsReportedOnce(t *testing.T) {
	t.Parallel()
	b, s := commaSite(t)
	b.target.noCommas.Store(true)
	s.set("/", htmlPage("Home", "/c"))
	s.set("/a,b", nil)
	b.target.reset()
	job := b.sync(t)
	require.Empty(t, b.target.removals())
	c := countsOf(job, "MYTASK")
	require.Equal(t, uint64(1), c.IngestFailed, "%+v", c)
	require.Equal(t, uint64(1), c.Deleted, "%+v", c)
	require.Zero(t, c.IngestDeleted, "%+v", c)
	fl := job.Failures()
	require.NotNil(t, fl)
	require.Len(t, fl.Items, 1)
	require.Equal(t, s.URL+"/a,b", fl.Items[0].Url)
	require.Contains(t, fl.Items[0].Reason, "stays in the index")
	require.NotContains(t, b.records(t, "MYTASK"), s.URL+"/a,b", "forgotten: no run can remove it")

	b.target.reset()
	job = b.sync(t)
	c = countsOf(job, "MYTASK")
	require.Zero(t, c.IngestFailed, "the same refusal again: %+v", c)
	require.Zero(t, c.Deleted, "%+v", c)
	if fl := job.Failures(); fl != nil {
		require.Empty(t, fl.Items)
	}
}

// A delivery has no deadline of its own while the Synchronize runs: the
// target bounds its requests ([Ingestion] IngestTimeout, per CFS
// request). Before, every apply had deliveryTimeout (2 minutes) from its
// start for all of its requests, and the batches that waited while a slow
// CFS took the previous one are applied together, in one call of up to
// 17 requests: the slower the CFS, the larger the call, until every call
// was cut short (context deadline exceeded) and its pages refused, run
// after run. Insert and Delete have no deadline either.
func TestDeliveriesHaveNoDeadlineWhileTheActionRuns(t *testing.T) {
	t.Parallel()
	b, s := commaSite(t)
	s.set("/c", nil)
	b.sync(t)
	require.Contains(t, b.target.removals(), s.URL+"/c")
	_, res := b.run(t, fetch.ActionDelete, params("Identifiers", EncodeIdentifier("MyTask", s.URL+"/a,b")))
	ok, _ := results(t, res)
	require.Len(t, ok, 1)
	_, res = b.run(t, fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", "<insertXML><reference>doc-1</reference></insertXML>"))
	ok, _ = results(t, res)
	require.Len(t, ok, 1)
	require.Zero(t, b.target.deadlines.Load(), "calls whose context had a deadline")
}

// Delete: a reference the target refuses fails alone.
func TestDeleteRefusedAloneForOneReference(t *testing.T) {
	t.Parallel()
	b, s := commaSite(t)
	b.target.noCommas.Store(true)
	comma := EncodeIdentifier("MyTask", s.URL+"/a,b")
	c := EncodeIdentifier("MyTask", s.URL+"/c")
	job, res := b.run(t, fetch.ActionDelete, params("Identifiers", comma+","+c))
	ok, failed := results(t, res)
	require.Equal(t, []string{c}, ok)
	require.Contains(t, failed[comma], "comma")
	require.Equal(t, cnt{Deleted: 1, IngestDeleted: 1, IngestFailed: 1, Errors: 1}, countsOf(job, "MYTASK"))
	require.Equal(t, []string{s.URL + "/c"}, b.target.removals())
	recs := b.records(t, "MYTASK")
	require.NotContains(t, recs, s.URL+"/c")
	require.Contains(t, recs, s.URL+"/a,b")
}
