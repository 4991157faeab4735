package server

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/etcdtest"
	"github.com/connectorhq/connector/internal/pgtest"
)

// scrapeBound is how long a scrape of a cluster node's /metrics may take
// while its shared store does not answer: Prometheus' default
// scrape_timeout (10 s). Past it, Prometheus drops the whole scrape.
const scrapeBound = 10 * time.Second

// A scrape of a cluster node's /metrics while PostgreSQL does not answer
// (its host frozen: the connections stay open, nothing comes back) read
// the queue's counts with no deadline of its own: it waited for the
// store's (30 s per call), well past Prometheus' scrape timeout, so the
// whole scrape was lost (up = 0, every metric gone, the store's failure
// counters and the process's included) just when the operator needed
// them. The counts are read with a bound of a few seconds; the rest of
// the page is served, with connector_queue_status_up 0 saying that the
// queue's gauges are left out.
func TestClusterScrapeWhileTheStoreDoesNotAnswer(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartT(t, etcdtest.Options{Dir: t.TempDir(), Members: 1})
	pg := pgtest.StartT(t, pgtest.Options{})
	cfg := diffConfig(t, 1, "", fmt.Sprintf(`[Service]
ServicePort=0
[Security]
AESKeyFile=%s
[Cluster]
Enabled=true
Name=scrape
Etcd=%s
Store=%s
RemoteHost=127.0.0.1
`, filepath.Join(t.TempDir(), "aes.ky"), e.Members[0].ClientURL, pg.DatabaseT(t)))
	s := diffStart(t, cfg, diffRepo())
	client := &http.Client{Timeout: 2 * time.Minute}
	scrape := func() (string, time.Duration) {
		t.Helper()
		began := time.Now()
		resp, err := client.Get("http://" + s.ServiceAddr().String() + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return string(b), time.Since(began)
	}
	page, _ := scrape()
	require.Contains(t, page, `connector_queue_actions{queue="fetch",state="queued"} 0`)
	require.Contains(t, page, `connector_queue_status_up{queue="fetch"} 1`)

	// PostgreSQL stops (as a frozen host), and goes on before the node
	// stops (cleanups run last first).
	require.NoError(t, pg.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = pg.Signal(syscall.SIGCONT) })
	page, took := scrape()
	t.Logf("the scrape took %s", took)
	require.Less(t, took, scrapeBound, "a scrape while the store does not answer")
	require.Contains(t, page, "go_goroutines ")
	require.Contains(t, page, "connector_store_commit_failures_total")
	require.Contains(t, page, `connector_queue_status_up{queue="fetch"} 0`)
	require.NotContains(t, page, "connector_queue_actions{")
}
