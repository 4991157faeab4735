package httpfetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// TestURLOverridesStayWithinTheTask: a request may point a task only at
// the origins its configuration allows, whichever way it writes the URL,
// so that [Task]Url cannot make the connector crawl (and then View) an
// internal service (issue 9).
func TestURLOverridesStayWithinTheTask(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n1=Open\n[MyTask]\nUrl=http://127.0.0.1:8000/docs/\n"+
		"[Open]\nUrl=http://127.0.0.1:8000/\nOverrideUrlOrigins=https://intranet.example:8443,http://127.0.0.1:9000\n"+
		"[Bare]\nDepth=1\n")
	ok := [][]string{
		{"TaskSections", "MyTask", "[MyTask]Url", "http://127.0.0.1:8000/other/page"},
		{"TaskSections", "MyTask", "[MyTask]Url0", "http://127.0.0.1:8000/a", "[MyTask]Url1", "http://127.0.0.1:8000/b"},
		{"TaskSections", "Open", "[Open]Url", "https://intranet.example:8443/x,http://127.0.0.1:9000/"},
	}
	for _, kv := range ok {
		_, err := b.repo.Validate(fetch.ActionSynchronize, params(kv...))
		require.NoError(t, err, "%v", kv)
	}
	refused := []struct {
		kv   []string
		name string
	}{
		{[]string{"TaskSections", "MyTask", "[MyTask]Url", "http://127.0.0.1:8001/"}, "[MyTask] Url"},  // another port
		{[]string{"TaskSections", "MyTask", "[MyTask]Url", "https://127.0.0.1:8000/"}, "[MyTask] Url"}, // another scheme
		{[]string{"TaskSections", "MyTask", "[MyTask]Url", "http://localhost:8000/"}, "[MyTask] Url"},  // another host
		{[]string{"TaskSections", "MyTask", "Url", "http://169.254.169.254/latest/"}, "Url"},           // unprefixed
		{[]string{"TaskSections", "MyTask", "[Default]Url", "http://10.0.0.1/"}, "[Default] Url"},      // [Default]
		{[]string{"TaskSections", "Open", "[Open]Url", "http://127.0.0.1:8000/"}, "[Open] Url"},        // OverrideUrlOrigins replaces the default
		{[]string{"TaskSections", "Bare", "[Bare]Url", "http://127.0.0.1:8000/"}, "[Bare] Url"},        // a task without a URL allows none
		{[]string{"TaskSections", "MyTask", "Config", fragment("[MyTask]\nUrl=http://127.0.0.1:22/\n")}, "Config [MyTask] Url"},
		{[]string{"TaskSections", "MyTask", "[MyTask]OverrideUrlOrigins", "http://127.0.0.1:22"}, "[MyTask] OverrideUrlOrigins"},
		{[]string{"TaskSections", "MyTask", "Config", fragment("[MyTask]\nOverrideUrlOrigins=http://x\n")}, "Config [MyTask] OverrideUrlOrigins"},
	}
	for _, tc := range refused {
		_, err := b.repo.Validate(fetch.ActionSynchronize, params(tc.kv...))
		paramErr(t, err, tc.name)
	}
	// View takes the same overrides, under the same rules.
	id := EncodeIdentifier("MYTASK", "http://127.0.0.1:8000/docs/")
	_, err := b.repo.View(context.Background(), id, params("[MyTask]Url", "http://127.0.0.1:8001/"))
	paramErr(t, err, "[MyTask] Url")
}

// TestURLOverridesCompareOriginsAsTheCrawlParsesThem: an origin is
// compared by the host the crawl fetches (the WHATWG URL parser's: IDNA,
// case, the forms of an IPv4 address), so that a start URL a request
// writes with its host in another form than the configuration's is the
// same origin. Before, origins were compared as Go's net/url wrote them,
// lower-cased: OverrideUrlOrigins=https://bücher.example (or a start URL
// there in the file) refused a request's https://xn--bcher-kva.example/,
// the same site, as most clients and libraries write it, and the reverse.
func TestURLOverridesCompareOriginsAsTheCrawlParsesThem(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=Books\n1=Cafe\n2=Local\n[Books]\nUrl=http://bücher.example:8000/\n"+
		"[Cafe]\nUrl=https://xn--caf-dma.example/menu\nOverrideUrlOrigins=https://xn--caf-dma.example,https://Straße.example\n"+
		"[Local]\nUrl=http://127.0.0.1:8000/\n")
	for _, c := range []struct {
		task, url string
		ok        bool
	}{
		{"Books", "http://xn--bcher-kva.example:8000/other", true},
		{"Books", "http://BÜCHER.example:8000/other", true},
		{"Cafe", "https://café.example/", true},
		{"Cafe", "https://CAFÉ.EXAMPLE:443/wine", true},
		{"Cafe", "https://xn--strae-oqa.example/", true},
		{"Local", "http://127.1:8000/x", true},
		{"Books", "http://xn--bcher-kva.example:8001/", false},
		{"Books", "https://bücher.example:8000/", false},
		{"Cafe", "https://cafe.example/", false},
		{"Cafe", "https://strasse.example/", false},
		{"Local", "http://127.0.0.2:8000/", false},
	} {
		_, err := b.repo.Validate(fetch.ActionSynchronize, params("TaskSections", c.task, "["+c.task+"]Url", c.url))
		if c.ok {
			require.NoError(t, err, "%s %s", c.task, c.url)
		} else {
			paramErr(t, err, "["+c.task+"] Url")
		}
	}
}

// TestOverrideCeilings: numeric overrides that size memory, connections
// or waiting are bounded by [Security] ceilings (issue 9: MaxPageBytes had
// no upper bound).
func TestOverrideCeilings(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:8000/\nMaxPageBytes=1000000000\n")
	for _, kv := range [][]string{
		{"MaxPageBytes", "67108864"}, {"Concurrency", "16"}, {"RequestTimeout", "5m"},
	} {
		_, err := b.repo.Validate(fetch.ActionSynchronize, params(kv...))
		require.NoError(t, err, "%v", kv)
	}
	for _, kv := range [][]string{
		{"MaxPageBytes", "67108865"}, {"[MyTask]Concurrency", "17"}, {"RequestTimeout", "301"},
		{"Config", fragment("[Default]\nMaxPageBytes=1099511627776\n")},
	} {
		_, err := b.repo.Validate(fetch.ActionSynchronize, params(kv...))
		require.ErrorIs(t, err, messages.ErrInvalidParam, "%v", kv)
		require.ErrorContains(t, err, "[Security] MaxOverride", "%v", kv)
	}
	// The file's own value is not a request's: it stands.
	_, err := b.repo.Validate(fetch.ActionSynchronize, nil)
	require.NoError(t, err)
	// The ceilings are configurable.
	b2 := setup(t, "[Security]\nMaxOverridePageBytes=1024\n[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:8000/\n")
	_, err = b2.repo.Validate(fetch.ActionSynchronize, params("MaxPageBytes", "2048"))
	require.ErrorContains(t, err, "[Security] MaxOverridePageBytes (1024)")
}

// basicSite requires HTTP Basic credentials user:pass on every page.
func basicSite(t *testing.T, user, pass string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var denied atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			denied.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="t"`)
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/" {
			_, _ = w.Write([]byte(`<html><head><title>Home</title></head><body><a href="/two">two</a></body></html>`))
			return
		}
		_, _ = w.Write([]byte(`<html><head><title>Two</title></head><body>two</body></html>`))
	}))
	t.Cleanup(s.Close)
	return s, &denied
}

// TestSecretSettings: a password given as an override is sealed (IDOL's
// encrypted form) for the queue and the store, shown redacted, used in
// clear for the crawl, and never in an error; one given encrypted in the
// file is decrypted with [Security] AESKeyFile.
func TestSecretSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "aes.ky")
	s, denied := basicSite(t, "crawler", "pa ss\"word")
	cfg := "[Security]\nAESKeyFile=" + keyPath + "\n[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=" + s.URL + "/\nBasicAuthUsername=crawler\n"
	b := setup(t, cfg)

	const clear = "pa ss\"word"
	p := params("[MyTask]BasicAuthPassword", clear, "Config", fragment("[MyTask]\nDepth=3\nBasicAuthPassword=\""+strings.ReplaceAll(clear, `"`, `\"`)+"\"\n"))
	tasks, err := b.repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err)
	sealed, err := b.repo.Seal(p)
	require.NoError(t, err)
	require.Equal(t, clear, p[0].Value, "Seal does not change its input")
	require.True(t, secret.IsEncrypted(sealed[0].Value))
	frag, err := base64.StdEncoding.DecodeString(sealed[1].Value)
	require.NoError(t, err)
	require.NotContains(t, string(frag), "pa ss")
	require.Contains(t, string(frag), "Depth=3")
	again, err := b.repo.Seal(sealed)
	require.NoError(t, err)
	require.Equal(t, sealed, again, "sealing twice changes nothing")

	shown := b.repo.Redact(sealed)
	require.Equal(t, secret.Redacted, shown[0].Value)
	frag, err = base64.StdEncoding.DecodeString(shown[1].Value)
	require.NoError(t, err)
	require.Contains(t, string(frag), "BasicAuthPassword="+secret.Redacted)
	shown = b.repo.Redact(p) // clear values too
	require.Equal(t, secret.Redacted, shown[0].Value)
	frag, err = base64.StdEncoding.DecodeString(shown[1].Value)
	require.NoError(t, err)
	require.NotContains(t, string(frag), "pa ss")

	// Run gets the sealed parameters (as the queue stores them) and the
	// site gets the clear password.
	job := fetch.NewJob("token", fetch.ActionSynchronize, sealed, tasks)
	_, err = b.repo.Run(context.Background(), job)
	require.NoError(t, err)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(job, "MYTASK"))
	require.Zero(t, denied.Load())

	// Without the password the site refuses.
	job, _ = b.run(t, fetch.ActionSynchronize, nil)
	require.NotZero(t, countsOf(job, "MYTASK").Errors)

	// Errors never quote a secret value.
	basic := base64.StdEncoding.EncodeToString([]byte("[PASSWORD]\nType=Basic\nPassword=c2VjcmV0\n"))
	for _, v := range []string{basic, "line\nbreak-secret"} {
		_, err = b.repo.Validate(fetch.ActionSynchronize, params("BasicAuthPassword", v))
		pe := paramErr(t, err, "BasicAuthPassword")
		require.Equal(t, secret.Redacted, pe.Value)
		require.NotContains(t, err.Error(), "c2VjcmV0")
		require.NotContains(t, err.Error(), "break-secret")
	}
	// An unknown parameter is ignored (as IDOL connectors do); only its
	// name is logged.
	_, err = b.repo.Validate(fetch.ActionSynchronize, params("Password", "hunter2"))
	require.NoError(t, err)

	// The file may hold the password encrypted with the key file (as
	// autpassword -e -tAES writes it).
	k, err := secret.LoadKeyFile(keyPath) // Seal created it
	require.NoError(t, err)
	enc, err := k.Encrypt(clear)
	require.NoError(t, err)
	b2 := setup(t, cfg+"BasicAuthPassword="+enc+"\n")
	job, _ = b2.run(t, fetch.ActionSynchronize, nil)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(job, "MYTASK"))

	// ... and not with another key: start-up names the key, not the value.
	other, err := secret.EnsureKeyFile(filepath.Join(dir, "other.ky"))
	require.NoError(t, err)
	enc2, err := other.Encrypt(clear)
	require.NoError(t, err)
	c, err := config.Parse("test.cfg", []byte(cfg+"BasicAuthPassword="+enc2+"\n"), TaskKeys)
	require.NoError(t, err)
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer st.Close()
	_, err = New(Options{Config: c, Store: st})
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "BasicAuthPassword", ce.Key)
	require.ErrorContains(t, err, "was not encrypted with the key in "+k.Path())
	require.NotContains(t, err.Error(), enc2)
}

// TestURLPasswordsRefusedAsBrowsersSpellThem: a start URL whose password
// follows its scheme as the crawl's parser reads it (http:\\u:p@h/,
// http:/u:p@h/, http:u:p@h/: all http://u:p@h/) is refused as any other
// start URL with a password, and never quoted. Before, only "://" was
// looked for: the file's was accepted, and a request's was queued (its
// origin is the task's) and shown with its password by
// GetActionParameters and the request log, and kept so in the store.
func TestURLPasswordsRefusedAsBrowsersSpellThem(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:8000/\n")
	for _, u := range []string{`http:\\u:topsecret@127.0.0.1:8000/`, `http:/u:topsecret@127.0.0.1:8000/`, `http:u:topsecret@127.0.0.1:8000/`} {
		_, err := config.Parse("test.cfg", []byte("[FetchTasks]\n0=T\n[T]\nUrl="+u+"\n"), TaskKeys)
		require.ErrorContains(t, err, "must not carry a password", u)
		require.NotContains(t, err.Error(), "topsecret")
		_, err = b.repo.Validate(fetch.ActionSynchronize, params("[MyTask]Url", u))
		pe := paramErr(t, err, "[MyTask] Url")
		require.NotContains(t, pe.Value, "topsecret")
		require.NotContains(t, err.Error(), "topsecret")
	}
}

// TestURLPasswordsRefused: a start URL with a password would put it in
// every document's reference, the datastore and the logs; it is refused
// without being quoted.
func TestURLPasswordsRefused(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("test.cfg", []byte("[FetchTasks]\n0=T\n[T]\nUrl=http://u:topsecret@127.0.0.1/\n"), TaskKeys)
	require.ErrorContains(t, err, "must not carry a password")
	require.NotContains(t, err.Error(), "topsecret")
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:8000/\n")
	_, err = b.repo.Validate(fetch.ActionSynchronize, params("[MyTask]Url", "http://u:topsecret@127.0.0.1:8000/"))
	pe := paramErr(t, err, "[MyTask] Url")
	require.Equal(t, "http://u:[REDACTED]@127.0.0.1:8000/", pe.Value)
	require.NotContains(t, err.Error(), "topsecret")
}

// TestDeniedAddressesAtCrawl: a link to a denied address (the default
// list denies link-local and metadata addresses; here a loopback alias
// stands in for 169.254.169.254) is never fetched, even with StayOnSite
// off.
func TestDeniedAddressesAtCrawl(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	var hits atomic.Int32
	md := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("credentials"))
	}))
	md.Listener = ln
	md.Start()
	t.Cleanup(md.Close)
	s := newSite(t, map[string]*page{"/": htmlPage("Home", md.URL+"/latest/meta-data/")})
	b := setup(t, siteConfig(s, "StayOnSite=false")+"[Security]\nDeniedAddresses=127.0.0.2,169.254.0.0/16\n")
	job := b.sync(t)
	require.Zero(t, hits.Load())
	require.Equal(t, uint64(1), countsOf(job, "MYTASK").Errors)
	require.Equal(t, uint64(1), countsOf(job, "MYTASK").Seen)
}

// TestInsertReadsOnlyAllowedFiles is the regression test of Insert
// reading any file the server could read (/etc/shadow into an IDX the
// client can read) and telling whether a file exists: every path outside
// [Security] InsertFolders, through a symbolic link out of it, missing, or
// not a regular file gets the same refusal, and nothing outside is read.
func TestInsertReadsOnlyAllowedFiles(t *testing.T) {
	t.Parallel()
	inbox, outside := t.TempDir(), t.TempDir()
	secretFile := filepath.Join(outside, "shadow")
	require.NoError(t, os.WriteFile(secretFile, []byte("root:$6$hash"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(inbox, "ok.txt"), []byte("fine"), 0o600))
	require.NoError(t, os.Symlink(secretFile, filepath.Join(inbox, "link.txt")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(inbox, "fifo"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(inbox, "dir"), 0o700))
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:8000/\nMaxPageBytes=64\n",
		setupOpts{extra: "[Security]\nInsertFolders=" + inbox + "\n"})
	insert := func(typ, path string) error {
		xml := `<insert><reference>r</reference><file><type>` + typ + `</type><content>` + path + `</content></file></insert>`
		_, err := b.repo.Validate(fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", xml))
		return err
	}
	require.NoError(t, insert("file", filepath.Join(inbox, "ok.txt")))
	require.NoError(t, insert("file", "ok.txt"), "a relative path is inside the first folder")
	var msgs []string
	for _, p := range []string{
		secretFile, "/etc/passwd", filepath.Join(outside, "missing"), filepath.Join(inbox, "missing"),
		filepath.Join(inbox, "link.txt"), "../" + filepath.Base(outside) + "/shadow", filepath.Join(inbox, "..", filepath.Base(outside), "shadow"),
		filepath.Join(inbox, "fifo"), filepath.Join(inbox, "dir"), inbox, "/dev/zero",
	} {
		err := insert("file", p)
		pe := paramErr(t, err, "InsertXML")
		msgs = append(msgs, pe.Reason)
	}
	for _, m := range msgs {
		require.Equal(t, errInsertFile.Error(), m, "one error, whatever the reason")
	}
	// tempfile deletes the file: it needs an explicit setting.
	err := insert("tempfile", filepath.Join(inbox, "ok.txt"))
	require.ErrorContains(t, err, "[Security] AllowTempFileDeletion=true")
	_, err = os.Stat(filepath.Join(inbox, "ok.txt"))
	require.NoError(t, err)

	// A file above MaxPageBytes is refused when the action runs, without
	// being read whole.
	require.NoError(t, os.WriteFile(filepath.Join(inbox, "big.txt"), bytes.Repeat([]byte("x"), 65), 0o600))
	job, res := b.run(t, fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML",
		`<insert><reference>big</reference><file><type>file</type><content>big.txt</content></file></insert>`))
	_, failed := results(t, res)
	require.Contains(t, failed[EncodeIdentifier("MYTASK", "big")], "larger than MaxPageBytes (64 bytes)")
	require.Equal(t, uint64(1), countsOf(job, "MYTASK").Errors)

	// With the default settings, only DataDirectory/insert is readable.
	data := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(data, "insert"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(data, "insert", "in.txt"), []byte("in"), 0o600))
	d := setup(t, "[Server]\nDataDirectory="+data+"\n[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:8000/\n")
	_, err = d.repo.Validate(fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML",
		`<insert><reference>r</reference><file><content>in.txt</content></file></insert>`))
	require.NoError(t, err)
	_, err = d.repo.Validate(fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML",
		`<insert><reference>r</reference><file><content>`+secretFile+`</content></file></insert>`))
	paramErr(t, err, "InsertXML")
}

// TestCollectWritesOnlyIntoAllowedFolders is the regression test of
// Collect writing a fetched page anywhere (over an authorized_keys file):
// a destination outside [Security] CollectFolders is refused, and a
// symbolic link inside one that leads out is not followed.
func TestCollectWritesOnlyIntoAllowedFolders(t *testing.T) {
	t.Parallel()
	out, outside := t.TempDir(), t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(out, "escape")))
	b, s := crawled(t, setupOpts{extra: "[Security]\nCollectFolders=" + out + "\n"})
	a := EncodeIdentifier("MyTask", s.URL+"/a")
	for _, dest := range []string{outside, "/root/.ssh", "../" + filepath.Base(outside), filepath.Join(out, "..")} {
		_, err := b.repo.Validate(fetch.ActionCollect, params("Identifiers", a, "Destination", dest))
		pe := paramErr(t, err, "Destination")
		require.Equal(t, errCollectFolder.Error(), pe.Reason)
	}
	xml := `<identifier value="` + a + `" destination="` + outside + `" filename="authorized_keys"/>`
	_, err := b.repo.Validate(fetch.ActionCollect, params("IdentifiersXML", xml))
	paramErr(t, err, "IdentifiersXML")

	// Through a link that leads out of the folder: the write fails.
	_, res := b.run(t, fetch.ActionCollect, params("IdentifiersXML",
		`<identifier value="`+a+`" destination="escape" filename="authorized_keys"/>`))
	_, failed := results(t, res)
	require.Contains(t, failed[a], "collect")
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing was written outside the folder")

	// Inside, relative destinations are created.
	_, res = b.run(t, fetch.ActionCollect, params("Identifiers", a, "Destination", "sub/dir"))
	ok, _ := results(t, res)
	require.Equal(t, []string{a}, ok)
	files, err := filepath.Glob(filepath.Join(out, "sub", "dir", "*_a"))
	require.NoError(t, err)
	require.Len(t, files, 1)
}

// TestParameterXMLIsBounded: IdentifiersXML and InsertXML hold at most one
// element per 256 bytes of [Server] MaxRequestBytes (issue 9: XML
// parameters grew about 30 times their size in memory).
func TestParameterXMLIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, "[Server]\nMaxRequestBytes=262144\n[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:8000/\n")
	require.Equal(t, 1024, maxXMLElements(262144))
	docs := strings.Repeat("<insert><reference>r</reference></insert>", 512) // 1024 elements
	_, err := b.repo.Validate(fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", docs))
	require.NoError(t, err)
	_, err = b.repo.Validate(fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", docs+"<a/>"))
	require.ErrorIs(t, err, messages.ErrTooLarge)
	require.ErrorContains(t, err, "InsertXML has more than 1024 XML elements (one per 256 bytes of [Server] MaxRequestBytes)")
	id := EncodeIdentifier("MyTask", "http://127.0.0.1:8000/")
	_, err = b.repo.Validate(fetch.ActionUpdate, params("IdentifiersXML", strings.Repeat(`<identifier value="`+id+`"/>`, 1025)))
	require.ErrorIs(t, err, messages.ErrTooLarge)
}

// TestInsertBatchesAreBoundedInBytes: an Insert delivers a batch once its
// documents hold [Server] MaxRequestBytes, not IngestBatchSize files at
// once.
func TestInsertBatchesAreBoundedInBytes(t *testing.T) {
	t.Parallel()
	inbox := t.TempDir()
	var xml strings.Builder
	for i := range 10 {
		name := fmt.Sprintf("f%d.txt", i)
		require.NoError(t, os.WriteFile(filepath.Join(inbox, name), bytes.Repeat([]byte("x"), 3000), 0o600))
		fmt.Fprintf(&xml, "<insert><reference>r%d</reference><file><content>%s</content></file></insert>", i, name)
	}
	b := setup(t, "[Server]\nMaxRequestBytes=8192\n[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:8000/\n",
		setupOpts{extra: "[Security]\nInsertFolders=" + inbox + "\n"})
	job, _ := b.run(t, fetch.ActionInsert, params("ConfigSection", "MyTask", "InsertXML", xml.String()))
	require.Equal(t, uint64(10), countsOf(job, "MYTASK").Inserted)
	b.target.mu.Lock()
	calls := b.target.calls
	b.target.mu.Unlock()
	require.Equal(t, 4, calls, "3+3+3+1 documents of 3000 bytes: a batch is sent once it holds 8192 bytes")
}

// TestIgnoredSecretParametersAreNotKept: a parameter that looks like a
// secret but names no setting (ignored by the action, as IDOL connectors
// ignore what they do not have) is kept as secret.Redacted by Seal, so its
// value never reaches the queue or the store; one that names a setting
// whose name merely contains "password" keeps its value.
func TestIgnoredSecretParametersAreNotKept(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	p := params("MyTaskPassword", "hunter2", "[MyTask]ApiSecret", "s3cret", "[MyTaskPassword", "x", "Depth", "2")
	_, err := b.repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err)
	sealed, err := b.repo.Seal(p)
	require.NoError(t, err)
	require.Equal(t, "hunter2", p[0].Value, "Seal does not change its input")
	for i := 0; i < 3; i++ {
		require.Equal(t, secret.Redacted, sealed[i].Value, sealed[i].Name)
	}
	require.Equal(t, "2", sealed[3].Value)
	require.False(t, b.repo.schema.ignoredSecret("BasicAuthPassword"), "a secret setting is sealed, not dropped")
}

// TestIgnoredCredentialParametersAreNotKept: the same for parameters whose
// names say key, token, auth, credential or cookie rather than password
// or secret (secret.SensitiveName), as a script written for another
// service sends them. On main, ApiKey=… and AccessToken=… were queued,
// stored (connector.db, PostgreSQL in cluster mode) and shown by
// GetActionParameters and the request log in clear. The ACI Token and a
// setting that only names where a secret is (OAuthTokenUrl) keep theirs.
func TestIgnoredCredentialParametersAreNotKept(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	p := params("ApiKey", "k1", "AccessToken", "t1", "X-Auth", "a1", "[MyTask]SigningKey", "k2", "Cookie", "c1",
		"Credentials", "c2", "Passphrase", "p1", "Token", "abc", "OAuthTokenUrl", "http://h/token")
	_, err := b.repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err)
	sealed, err := b.repo.Seal(p)
	require.NoError(t, err)
	for i := 0; i < 7; i++ {
		require.Equal(t, secret.Redacted, sealed[i].Value, sealed[i].Name)
	}
	require.Equal(t, "abc", sealed[7].Value)
	require.Equal(t, "http://h/token", sealed[8].Value)
}

// TestIgnoredParametersKeepNoURLPassword: a parameter the actions ignore
// is kept with the password of every URL in it redacted, whatever its
// name: on main, Bogus=http://u:pw@h/ was queued and stored (connector.db,
// PostgreSQL in cluster mode) in clear, although GetActionParameters and
// the request log showed it redacted. A task setting and an action's own
// parameter keep their values (the action reads them; a start URL with a
// password is refused anyway).
func TestIgnoredParametersKeepNoURLPassword(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	p := params("Bogus", "http://u:hunter2@h/", "[MyTask]Nothing", "x https://a:b@c/ y", "[Bogus", "ftp://u:p@h",
		"UrlMustHaveRegex", "http://u:p@h/", "Plain", "http://u@h/")
	_, err := b.repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err)
	sealed, err := b.repo.Seal(p)
	require.NoError(t, err)
	require.Equal(t, "http://u:[REDACTED]@h/", sealed[0].Value)
	require.Equal(t, "x https://a:[REDACTED]@c/ y", sealed[1].Value)
	require.Equal(t, "ftp://u:[REDACTED]@h", sealed[2].Value)
	require.Equal(t, "http://u:p@h/", sealed[3].Value, "a setting's value is the action's")
	require.Equal(t, "http://u@h/", sealed[4].Value)
	require.Equal(t, "http://u:hunter2@h/", p[0].Value, "Seal does not change its input")
	plain := params("Bogus", "http://u@h/", "Depth", "2")
	sealedPlain, err := b.repo.Seal(plain)
	require.NoError(t, err)
	require.Equal(t, plain, sealedPlain)
}

// TestRedactHidesURLPasswordsInFragments: a Config fragment is shown
// (GetActionParameters, GetRequestLog) with the password of every URL in
// its values redacted, as an override's value is. On main, a fragment's
// UserAgent=bot (+http://u:pw@h/) was shown as the base64 it came in,
// password and all, while the same override as a parameter was shown
// redacted; so was a refused fragment's Url=http://u:pw@h/ in the request
// log. What the action runs with (Seal) is left as given.
func TestRedactHidesURLPasswordsInFragments(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	frag := fragment("[MyTask]\nUserAgent=bot (+http://u:hunter2@h/)\nDepth=2\n")
	p := params("Config", frag)
	_, err := b.repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err)
	shown := b.repo.Redact(p)
	text, err := base64.StdEncoding.DecodeString(shown[0].Value)
	require.NoError(t, err)
	require.Equal(t, "[MyTask]\nUserAgent=\"bot (+http://u:[REDACTED]@h/)\"\nDepth=2\n", string(text))
	sealed, err := b.repo.Seal(p)
	require.NoError(t, err)
	require.Equal(t, frag, sealed[0].Value, "the action runs with the value as given")
	// A fragment the action refuses is still shown by the request log.
	refused := params("Config", fragment("[MyTask]\nUrl=http://u:hunter2@127.0.0.1:1/\n"))
	_, err = b.repo.Validate(fetch.ActionSynchronize, refused)
	require.Error(t, err)
	text, err = base64.StdEncoding.DecodeString(b.repo.Redact(refused)[0].Value)
	require.NoError(t, err)
	require.Equal(t, "[MyTask]\nUrl=http://u:[REDACTED]@127.0.0.1:1/\n", string(text))
}

// TestRedactWithoutSecretsCopiesNothing: parameters with no secret come
// back as they are (the request log redacts every request's), while a
// secret among them still gives a redacted copy and leaves them alone;
// settings are looked up in any case.
func TestRedactWithoutSecretsCopiesNothing(t *testing.T) { // not parallel: AllocsPerRun
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	plain := params("QueueName", "fetch", "QueueAction", "GetStatus", "Token", "abc", "[MyTask]DEPTH", "3")
	require.Equal(t, plain, b.repo.Redact(plain))
	require.Zero(t, testing.AllocsPerRun(10, func() { b.repo.Redact(plain) }))
	withSecret := params("Token", "abc", "[MyTask]BASICAUTHPASSWORD", "pw", "[MyTask]basicauthpassword", "pw2", "[MyTask]Bäsicauthpassword", "pw3")
	shown := b.repo.Redact(withSecret)
	require.Equal(t, "abc", shown[0].Value)
	require.Equal(t, secret.Redacted, shown[1].Value)
	require.Equal(t, secret.Redacted, shown[2].Value)
	require.Equal(t, "pw", withSecret[1].Value)
	require.Equal(t, "pw2", withSecret[2].Value)
	for _, key := range []string{"Depth", "DEPTH", " depth ", "BasicAuthPassword", "Bäsicauthpassword", "Url", strings.Repeat("x", 70)} {
		require.Equal(t, b.repo.schema.byName[strings.ToLower(strings.TrimSpace(key))], b.repo.schema.spec(key), "%q", key)
	}
}

// TestConfigFragmentSyntaxErrorsHideSecrets: a Config fragment whose
// secret setting the configuration syntax refuses (a trailing comment, an
// unclosed quote) is refused with an error, the reply's
// errordescription, that names the setting without quoting its value.
func TestConfigFragmentSyntaxErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\nBasicAuthUsername=crawler\n")
	for _, line := range []string{"BasicAuthPassword=hunter2 #1", `BasicAuthPassword="hunter2`} {
		_, err := b.repo.Validate(fetch.ActionSynchronize, params("Config", fragment("[MyTask]\n"+line+"\n")))
		pe := paramErr(t, err, "Config [MyTask] BasicAuthPassword")
		require.Equal(t, secret.Redacted, pe.Value)
		require.NotContains(t, err.Error(), "hunter2")
	}
}

// TestRedactReadsFragmentsWithoutCheckingThem: Redact (GetActionParameters,
// the request log) reads a Config fragment's sections and keys only, not
// every task section's settings as the action does: a fragment of 100
// task sections costs it under 30 allocations a section, where checking
// it (config.Parse) cost 159, and about 150 µs of CPU a section; so that
// a page of 1000 listed actions, each with a small fragment, cost 1.5 s
// at every GetActionParameters. What it shows of a fragment the action
// accepts is what redacting the checked fragment showed. Not parallel:
// AllocsPerRun.
func TestRedactReadsFragmentsWithoutCheckingThem(t *testing.T) {
	const sections = 100
	cfg := "[FetchTasks]\n"
	for i := range sections {
		cfg += fmt.Sprintf("%d=Task%d\n", i, i)
	}
	cfg += "[MyTask]\nUrl=http://127.0.0.1:1/\n"
	for i := range sections {
		cfg += fmt.Sprintf("[Task%d]\nUrl=http://127.0.0.1:1/\n", i)
	}
	b := setup(t, cfg)
	var sb strings.Builder
	for i := range sections {
		fmt.Fprintf(&sb, "[Task%d]\nUrl=http://127.0.0.1:1/a%d\nDepth=2\nBasicAuthPassword=\"hunter %d\"\nStayOnSite=true\n\n", i, i, i)
	}
	p := params("Config", fragment(sb.String()))
	_, err := b.repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err, "a fragment the action accepts")
	allocs := testing.AllocsPerRun(5, func() { b.repo.Redact(p) })
	require.Less(t, allocs, float64(30*sections), "Redact of a fragment of %d task sections: %v allocations", sections, allocs)

	for _, text := range []string{
		sb.String(),
		"[MyTask]\nDepth=2\n",
		"// comment\n[MyTask]\r\nBasicAuthUsername=u\r\nbasicauthpassword='a \"b\" ; c'\r\n",
		"[Default]\nBasicAuthPassword=x\n[MyTask]\nMaxPages=3\n",
	} {
		v := fragment(text)
		want, err := b.repo.schema.rewriteFragment(v, func(string) (string, error) { return secret.Redacted, nil })
		require.NoError(t, err, text)
		require.Equal(t, want, b.repo.Redact(params("Config", v))[0].Value, "%q", text)
	}
	// A key that names no setting but looks secret is hidden too, as such
	// a parameter is; a fragment that cannot be read, whole.
	shown := b.repo.Redact(params("Config", fragment("[MyTask]\nMyPassword=hunter2\n")))[0].Value
	data, err := base64.StdEncoding.DecodeString(shown)
	require.NoError(t, err)
	require.NotContains(t, string(data), "hunter2")
	require.Equal(t, secret.Redacted, b.repo.Redact(params("Config", fragment("[MyTask\nBasicAuthPassword=hunter2\n")))[0].Value)
	// A key that names no setting, a misspelt secret one among them (the
	// action refuses the fragment, the request log shows it): its value
	// is hidden, the settings' are shown (rv20).
	shown = b.repo.Redact(params("Config", fragment("[MyTask]\nBasicAuthPasword=hunter2\nDepth=2\n")))[0].Value
	data, err = base64.StdEncoding.DecodeString(shown)
	require.NoError(t, err)
	require.NotContains(t, string(data), "hunter2")
	require.Contains(t, string(data), "Depth=2")
}

// A task whose start URL names its host in Unicode (an IDN,
// http://bücher.example/) sends its Basic credentials to that host: the
// crawl requests the host's ASCII form (xn--bcher-kva.example), and the
// origins the credentials go to are compared in that form too. Before,
// the origin was kept as written, matched no request, and every page
// was answered 401: the task indexed nothing.
func TestBasicAuthReachesAnIDNStartURL(t *testing.T) {
	t.Parallel()
	s, denied := basicSite(t, "crawler", "secret")
	addr := s.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr) // every host is the test site
	}}
	t.Cleanup(tr.CloseIdleConnections)
	_, port, _ := net.SplitHostPort(addr)
	start := "http://bücher.example:" + port + "/"
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl="+start+"\nBasicAuthUsername=crawler\nBasicAuthPassword=secret\n",
		setupOpts{client: &http.Client{Transport: tr}})
	job := b.sync(t)
	require.Zero(t, denied.Load(), "pages answered 401")
	require.EqualValues(t, 2, countsOf(job, "MYTASK").Added)
}

// TestURLQuerySecretsNeitherShownNorKept: a URL whose query carries a
// credential (?access_token=) is shown with it redacted inside a Config
// fragment, as it is in a parameter (secret.RedactURLs), and a parameter
// the action ignores is kept without it, as it is kept without a URL's
// password. On main both looked only for a URL's password: a fragment's
// UserAgent=bot https://h/?access_token=... was shown as the base64
// it came in, token and all, and Bogus=https://h/?token=... was queued
// and stored in clear. What the action runs with is left as given.
func TestURLQuerySecretsNeitherShownNorKept(t *testing.T) {
	t.Parallel()
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	frag := fragment("[MyTask]\nUserAgent=bot https://h/?access_token=sekrit1 x\nDepth=2\n")
	p := params("Config", frag, "Bogus", "https://h/x?token=sekrit2&a=1", "UrlMustHaveRegex", "https://h/?token=t")
	_, err := b.repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err)
	shown := b.repo.Redact(p)
	text, err := base64.StdEncoding.DecodeString(shown[0].Value)
	require.NoError(t, err)
	require.Equal(t, "[MyTask]\nUserAgent=\"bot https://h/?access_token=[REDACTED] x\"\nDepth=2\n", string(text))
	sealed, err := b.repo.Seal(p)
	require.NoError(t, err)
	require.Equal(t, frag, sealed[0].Value, "the action runs with the value as given")
	require.Equal(t, "https://h/x?token=[REDACTED]&a=1", sealed[1].Value)
	require.Equal(t, "https://h/?token=t", sealed[2].Value, "a setting's value is the action's")
}
