package httpfetch

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// TestLoggedURLsHideCredentials: the logs name pages by URL, and a link's
// credentials must not show there (docs/security.md): its user information
// with a password is dropped before the crawl keeps the URL, and its query
// (a token) cut to "?…", in the crawl's debug lines and the connector's
// own.
func TestLoggedURLsHideCredentials(t *testing.T) {
	t.Parallel()
	var buf testlog.Buffer
	s := newSite(t, map[string]*page{"/x": htmlPage("X")})
	withCreds := strings.Replace(s.URL, "://", "://alice:hunter2@", 1)
	s.set("/", htmlPage("Home", withCreds+"/x?access_token=tok3n", withCreds+"/missing?access_token=tok3n"))
	b := setup(t, siteConfig(s), setupOpts{logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	b.run(t, fetch.ActionSynchronize, nil)
	l := buf.String()
	require.Contains(t, l, "page fetched")
	require.Contains(t, l, "fetch failed")
	require.Contains(t, l, "url="+s.URL+"/x?…", "the link is followed without its user information (the crawl drops a password's)")
	require.NotContains(t, l, "hunter2")
	require.NotContains(t, l, "tok3n")
}

// TestLinkPasswordsNeverReachDocuments: a page that links (or redirects)
// to http://alice:hunter2@host/... made that URL, password and all, the
// page's reference: in the IDX output (#DREREFERENCE, URL, and base64 in
// AUTN_IDENTIFIER), the datastore, and a failure's URL in GetStatus, the
// store and the log's summary line, where docs/security.md says a secret
// never is in clear. Credentials are the task's business (BasicAuth, to
// its own origins): the crawl follows such a link without its user
// information, so the page is fetched, and known, by its URL alone.
func TestLinkPasswordsNeverReachDocuments(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{"/x": htmlPage("X"), "/y": htmlPage("Y")})
	withCreds := strings.Replace(s.URL, "://", "://alice:hunter2@", 1)
	// The links' text is not their URL: the page's own text is the
	// site's, and is indexed as it is.
	s.set("/", &page{body: `<html><head><title>Home</title></head><body><a href="` + withCreds + `/x">x</a> <a href="` +
		withCreds + `/missing">m</a> <a href="/moved">r</a></body></html>`})
	s.set("/moved", &page{status: 302, loc: withCreds + "/y"})
	storeDir := t.TempDir()
	st, err := store.Open(store.Config{Driver: store.DriverBolt, Dir: storeDir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	b := setup(t, siteConfig(s), setupOpts{store: st})
	q := startQueue(t, b.repo)
	status := waitState(t, q, submitSync(t, q, b.repo, nil), messages.State_STATE_FINISHED)

	var refs []string
	for _, d := range b.target.added {
		refs = append(refs, d.Reference)
	}
	require.Contains(t, refs, s.URL+"/x", "the linked page is fetched, by its URL without credentials")
	require.Contains(t, refs, s.URL+"/y", "and so is the redirect's target")
	require.Len(t, status.Failures, 1, "%v", status.Failures)
	require.Equal(t, s.URL+"/missing", status.Failures[0].Url)
	require.NotContains(t, status.String(), "hunter2")
	for _, d := range b.target.added {
		require.NotContains(t, d.Reference, "hunter2")
		require.NotContains(t, d.Reference, "alice")
	}
	require.NoError(t, st.Close())
	for _, dir := range []string{b.target.dir, storeDir} {
		require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			if i := bytes.Index(data, []byte("hunter2")); i >= 0 {
				t.Errorf("%s holds the link's password: %q", p, data[max(0, i-200):min(len(data), i+50)])
			}
			return nil
		}))
	}
}

// TestConnectorWritesNoSecondActionEndedLine: an action's end is one
// "action ended" line, the queue's, with its status and counts
// (docs/operations.md). The connector marks the end of its own run with
// a line of another name. On main it wrote "action ended" too: every
// action had two such lines, and a count of them (an operator's grep, a
// log-based alert) counted each action twice.
func TestConnectorWritesNoSecondActionEndedLine(t *testing.T) {
	t.Parallel()
	var log testlog.Buffer
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n", setupOpts{logger: slog.New(slog.NewTextHandler(&log, nil))})
	b.sync(t, "TaskSections", "MyTask")
	require.Contains(t, log.String(), `msg="action started"`)
	require.Contains(t, log.String(), `msg="action run ended"`)
	require.NotContains(t, log.String(), `msg="action ended"`)
}
