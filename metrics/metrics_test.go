package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
)

func testMetrics() *Metrics {
	m := New(Options{Queue: "fetch", FetchActions: []string{"SYNCHRONIZE", "COLLECT"}, Version: "1.2.3",
		QueueStatus: func(context.Context) (*messages.QueueStatusReply, error) {
			return &messages.QueueStatusReply{Queue: "fetch", Queued: 3, Processing: 1, PausedActions: 1, Cancelled: 2, MaximumThreads: 4, MaximumQueueSize: 100,
				Waiting: 4, Running: 1}, nil // the paused action has not started
		}})
	m.Connections(auth.ACIPort, func() float64 { return 3 }, 1000)
	m.Connections(auth.ServicePort, func() float64 { return 1 }, 64)
	return m
}

// page renders the metrics page as the service port serves it.
func page(t *testing.T, m *Metrics) []byte {
	t.Helper()
	var ctx fasthttp.RequestCtx
	m.Serve(&ctx)
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", string(ctx.Response.Header.ContentType()))
	return append([]byte(nil), ctx.Response.Body()...)
}

// exercise moves every metric once, so that every series is on the page.
func exercise(m *Metrics) {
	m.Submitted("SYNCHRONIZE")
	m.Rejected("queue_full")
	m.Started("SYNCHRONIZE", 1500*time.Millisecond)
	m.Ended(&messages.ActionSpec{FetchAction: "SYNCHRONIZE"}, &messages.ActionStatus{State: messages.State_STATE_FINISHED,
		QueuedUnixMs: 1000, StartedUnixMs: 2500, EndedUnixMs: 4500,
		Counts: []*messages.DocumentCount{{Task: "T", Seen: 5, Added: 3, Ingestadded: 3, Ingestfailed: 1}}})
	m.Stopped(3 * time.Millisecond)
	m.Committed(7, 2*time.Millisecond, nil)
	m.Committed(1, time.Millisecond, errors.New("disk full"))
	m.Request(auth.ACIPort, "Fetch", "success", time.Millisecond)
	m.Request(auth.ACIPort, "Frobnicate", "failure", time.Millisecond)
	m.Request(auth.ServicePort, "Stop", "denied", time.Millisecond)
	m.Crawled(fetch.CrawlStats{Pages: 10, NotModified: 2, Requests: 13, Bytes: 4096})
	m.TLSHandshakeFailed()
	m.ConnectionRefused(auth.ServicePort)
}

// TestPageLintsClean: the page passes client_golang's linter (the rules of
// promtool check metrics) in process.
func TestPageLintsClean(t *testing.T) {
	t.Parallel()
	m := testMetrics()
	exercise(m)
	problems, err := promlint.New(bytes.NewReader(page(t, m))).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestPromtoolChecksMetrics: Debian's promtool (package prometheus, which
// make test installs) accepts the page.
func TestPromtoolChecksMetrics(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool is missing: make test installs Debian's prometheus package")
	m := testMetrics()
	exercise(m)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(page(t, m))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	require.Empty(t, strings.TrimSpace(string(out)))
}

// TestValuesMove: each event moves its metric, and the queue's gauges are
// the counts QueueStatus reports.
func TestValuesMove(t *testing.T) {
	t.Parallel()
	m := testMetrics()
	reg := m.Registry()
	require.Equal(t, 0.0, testutil.ToFloat64(m.submitted["SYNCHRONIZE"]))
	exercise(m)
	require.Equal(t, 1.0, testutil.ToFloat64(m.submitted["SYNCHRONIZE"]))
	require.Equal(t, 1.0, testutil.ToFloat64(m.ended["SYNCHRONIZE"]["Finished"]))
	require.Equal(t, 0.0, testutil.ToFloat64(m.ended["SYNCHRONIZE"]["Cancelled"]))
	require.Equal(t, 1.0, testutil.ToFloat64(m.rejected.WithLabelValues("queue_full")))
	require.Equal(t, 5.0, testutil.ToFloat64(m.documents["seen"]))
	require.Equal(t, 1.0, testutil.ToFloat64(m.documents["ingest_failed"]))
	require.Equal(t, 4096.0, testutil.ToFloat64(m.crawlBytes))
	require.Equal(t, 1.0, testutil.ToFloat64(m.commitFailures))
	require.Equal(t, 1.0, testutil.ToFloat64(m.requests[auth.ACIPort]["other"].outcome["failure"]), "an unknown action is counted as other")
	require.Equal(t, 1.0, testutil.ToFloat64(m.requests[auth.ServicePort]["Stop"].outcome["denied"]))

	body := string(page(t, m))
	for _, want := range []string{
		`connector_queue_actions{queue="fetch",state="queued"} 3`,
		`connector_queue_actions{queue="fetch",state="cancelled"} 2`,
		`connector_queue_running_actions{queue="fetch"} 1`,
		`connector_queue_pending_actions{queue="fetch"} 4`,
		`connector_queue_paused{queue="fetch"} 0`,
		`connector_queue_max_threads{queue="fetch"} 4`,
		`connector_action_wait_seconds_sum{fetch_action="SYNCHRONIZE",queue="fetch"} 1.5`,
		`connector_action_run_seconds_sum{fetch_action="SYNCHRONIZE",queue="fetch",status="Finished"} 2`,
		`connector_action_stop_seconds_count{queue="fetch"} 1`,
		`connector_store_commit_changes_sum{queue="fetch"} 8`,
		`connector_aci_requests_total{action="Fetch",outcome="success",port="aci"} 1`,
		`connector_connections_refused_total{port="aci"} 0`,
		`connector_connections_refused_total{port="service"} 1`,
		`connector_connections_open{port="aci"} 3`,
		`connector_connections_open{port="service"} 1`,
		`connector_connections_max{port="aci"} 1000`,
		`connector_connections_max{port="service"} 64`,
		`connector_build_info{version="1.2.3"} 1`,
		`go_goroutines `, `process_resident_memory_bytes `,
	} {
		require.Contains(t, body, want)
	}
	n, err := testutil.GatherAndCount(reg, "connector_actions_ended_total")
	require.NoError(t, err)
	require.Equal(t, 3*4, n, "fetch actions SYNCHRONIZE, COLLECT and OTHER, four end statuses each: nothing built from request text")
}

// TestIngestTargetCounted: deliveries are counted, failed ones as failed.
func TestIngestTargetCounted(t *testing.T) {
	t.Parallel()
	m := testMetrics()
	ft := &failingTarget{}
	tg := m.Target(ft)
	require.NoError(t, tg.Add(context.Background(), []*ingest.Document{{Reference: "a"}, {Reference: "b"}}))
	require.NoError(t, tg.Remove(context.Background(), []string{"c"}))
	ft.fail = true
	require.Error(t, tg.Add(context.Background(), []*ingest.Document{{Reference: "d"}}))
	require.Equal(t, 2.0, testutil.ToFloat64(m.ingested["added"]))
	require.Equal(t, 1.0, testutil.ToFloat64(m.ingested["removed"]))
	require.Equal(t, 1.0, testutil.ToFloat64(m.ingested["failed"]))
	require.Equal(t, "fake", tg.Describe())
	require.Nil(t, m.Target(nil))

	// A call that delivered all but one document, refused on its own
	// (ingest.PartialError), counts the others as added.
	ft.fail, ft.partial = false, true
	require.Error(t, tg.Add(context.Background(), []*ingest.Document{{Reference: "e"}, {Reference: "f"}, {Reference: "g"}}))
	require.Equal(t, 4.0, testutil.ToFloat64(m.ingested["added"]))
	require.Equal(t, 2.0, testutil.ToFloat64(m.ingested["failed"]))
}

type failingTarget struct{ fail, partial bool }

func (f *failingTarget) Add(context.Context, []*ingest.Document) error {
	switch {
	case f.fail:
		return ingest.ErrDelivery
	case f.partial:
		return fmt.Errorf("%w: %w", ingest.ErrDelivery, &ingest.PartialError{Refused: map[int]error{1: errors.New("too large")}})
	}
	return nil
}
func (f *failingTarget) Remove(context.Context, []string) error { return nil }
func (f *failingTarget) Close() error                           { return nil }
func (f *failingTarget) Describe() string                       { return "fake" }

// BenchmarkScrapeEmpty is the cost of one scrape of an idle server (the
// Go and process collectors dominate).
func BenchmarkScrapeEmpty(b *testing.B) {
	m := testMetrics()
	exercise(m)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		m.Serve(&ctx)
	}
}

// BenchmarkRequest is what the front end adds to every request.
func BenchmarkRequest(b *testing.B) {
	m := testMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.Request(auth.ACIPort, "QueueInfo", "success", time.Microsecond)
	}
}

// TestQueueStatusUp: when the queue's counts cannot be read (the store
// fails, or does not answer in time), the connector_queue_* gauges are
// left out, and connector_queue_status_up says so (0) instead of the page
// looking as if the queue were simply gone: an alert on a gauge that
// vanished resolves silently. It is 1 when they were read.
func TestQueueStatusUp(t *testing.T) {
	t.Parallel()
	has := func(body, line string) bool { return strings.Contains("\n"+body, "\n"+line) }
	body := string(page(t, testMetrics()))
	require.True(t, has(body, `connector_queue_status_up{queue="fetch"} 1`+"\n"), "the counts were read")
	require.True(t, has(body, `connector_queue_pending_actions{queue="fetch"} 4`+"\n"))

	m := New(Options{Queue: "fetch", QueueStatus: func(context.Context) (*messages.QueueStatusReply, error) {
		return nil, messages.ErrStore
	}})
	body = string(page(t, m))
	require.True(t, has(body, `connector_queue_status_up{queue="fetch"} 0`+"\n"), "the counts could not be read")
	require.False(t, has(body, "connector_queue_pending_actions{"))
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestQueueStatusBounded: the scrape's read of the queue's counts ends
// with Options.QueueStatusTimeout; the rest of the page is served.
func TestQueueStatusBounded(t *testing.T) {
	t.Parallel()
	// Told, not asserted, in the read: it runs on the registry's
	// goroutine, where a failed require would leave the scrape waiting
	// for it for good (and a read without a deadline would never end).
	var noDeadline atomic.Bool
	m := New(Options{Queue: "fetch", QueueStatusTimeout: 50 * time.Millisecond,
		QueueStatus: func(ctx context.Context) (*messages.QueueStatusReply, error) {
			if _, ok := ctx.Deadline(); !ok {
				noDeadline.Store(true)
				return nil, errors.New("no deadline")
			}
			<-ctx.Done() // a store that does not answer
			return nil, ctx.Err()
		}})
	body := string(page(t, m))
	require.False(t, noDeadline.Load(), "the read has a deadline")
	require.NotContains(t, body, "connector_queue_actions{")
	require.Contains(t, body, `connector_build_info{version=""} 1`)
	require.Contains(t, body, "go_goroutines ")
}
