// Package metrics is the connector's Prometheus metrics, served at GET
// /metrics on the service port: the queue (actions per state, submitted,
// rejected and ended actions, wait, run and stop latencies, group commits),
// ACI requests by port, action and outcome, connections refused
// (MaxConnectionsPerClient) and open (MaxConnections) by port, TLS
// handshake failures, crawls (pages, requests, bytes), documents by
// outcome, ingestion deliveries, and the Go runtime and process.
//
// Nothing here adds work to a hot path beyond atomic increments: counters
// and histograms are updated where events happen, through children
// resolved once (never a label lookup per request), and the per-state
// gauges are read at scrape time from the counts the QueueManager keeps
// anyway (one QueueStatus request per scrape). No label value comes from a
// token, a URL, a client address or any other unbounded input: fetch
// actions come from the repository's fixed list, ACI actions from the role
// table (anything else is "other").
//
// protoactor's own Prometheus provider is never enabled: it listens on
// every interface.
package metrics

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/messages"
)

// Options describe what the metrics cover.
type Options struct {
	Queue        string   // the queue's name ("fetch")
	FetchActions []string // the repository's fetch actions (upper case)
	// QueueStatus returns the queue's counts (Queue.QueueStatus); called
	// once per scrape, with a context that ends after QueueStatusTimeout.
	QueueStatus func(context.Context) (*messages.QueueStatusReply, error)
	// QueueStatusTimeout bounds that read (0: DefaultQueueStatusTimeout).
	QueueStatusTimeout time.Duration
	Version            string
	Logger             *slog.Logger
}

// DefaultQueueStatusTimeout bounds a scrape's read of the queue's counts:
// half of Prometheus' default scrape_timeout (10 s). A store that does not
// answer (a cluster's PostgreSQL, whose calls wait up to 30 s) costs the
// scrape its queue gauges, never the whole page.
const DefaultQueueStatusTimeout = 5 * time.Second

// Metrics holds the registry and every metric.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	submitted map[string]prometheus.Counter // by fetch action
	rejected  *prometheus.CounterVec
	ended     map[string]map[string]prometheus.Counter  // fetch action → status
	wait      map[string]prometheus.Observer            // by fetch action
	run       map[string]map[string]prometheus.Observer // fetch action → status
	stop      prometheus.Observer
	other     actionMetrics // a fetch action the list did not have
	vecs      struct {
		submitted, ended *prometheus.CounterVec
		wait, run        *prometheus.HistogramVec
	}

	commitSize     prometheus.Observer
	commitDuration prometheus.Observer
	commitFailures prometheus.Counter

	requests [2]map[string]*requestMetrics // by port, then action (table spelling)

	documents map[string]prometheus.Counter // by outcome
	// documentsByIndex: the same, in documentOutcomes order
	documentsByIndex []prometheus.Counter
	crawlPages       prometheus.Counter
	crawlNotMod      prometheus.Counter
	crawlReqs        prometheus.Counter
	crawlBytes       prometheus.Counter
	ingested         map[string]prometheus.Counter // by outcome
	tlsFailures      prometheus.Counter
	connsRefused     [2]prometheus.Counter // by port
}

type actionMetrics struct {
	submitted prometheus.Counter
	wait      prometheus.Observer
	ended     map[string]prometheus.Counter
	run       map[string]prometheus.Observer
}

type requestMetrics struct {
	outcome  map[string]prometheus.Counter
	duration prometheus.Observer
}

// endStatuses are the statuses an action ends with.
var endStatuses = []string{"Finished", "Cancelled", "Stopped", "Error"}

// Outcomes of an ACI request.
var outcomes = []string{"success", "failure", "denied"}

// documentOutcomes are the document counts an action reports, by the name
// of their label value, in the order of messages.DocumentCount's fields
// that Ended reads.
var documentOutcomes = []string{"seen", "added", "updated", "deleted", "unchanged", "collected", "inserted", "ingest_added", "ingest_updated", "ingest_deleted", "ingest_failed", "errors"}

// Histogram buckets, in seconds.
var (
	waitBuckets   = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400}
	runBuckets    = []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400}
	stopBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	commitBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
	sizeBuckets   = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000}
	reqBuckets    = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// New builds the metrics and registers them, with the Go runtime and
// process collectors and a collector of the queue's per-state counts.
func New(o Options) *Metrics {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewPedanticRegistry()
	m := &Metrics{reg: reg, log: o.Logger.With("component", "metrics")}
	q := prometheus.Labels{"queue": o.Queue}

	submitted := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connector_actions_submitted_total",
		Help: "Actions accepted into the queue (a token was given out).", ConstLabels: q}, []string{"fetch_action"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connector_actions_rejected_total",
		Help: "Submissions the queue refused, by reason (queue_full, shutting_down, store).", ConstLabels: q}, []string{"reason"})
	ended := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connector_actions_ended_total",
		Help: "Actions that ended, by final status, counted once their worker has exited.", ConstLabels: q}, []string{"fetch_action", "status"})
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "connector_action_wait_seconds",
		Help: "Time from submission to start of each action that started.", ConstLabels: q, Buckets: waitBuckets}, []string{"fetch_action"})
	run := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "connector_action_run_seconds",
		Help: "Time from start to end of each action that ran, by final status.", ConstLabels: q, Buckets: runBuckets}, []string{"fetch_action", "status"})
	stop := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "connector_action_stop_seconds",
		Help: "Time from the stop of a running action (QueueAction=Stop or shutdown) to the exit of its worker.", ConstLabels: q, Buckets: stopBuckets})
	m.stop = stop
	reg.MustRegister(submitted, m.rejected, ended, wait, run, stop)
	for _, r := range []string{"queue_full", "shutting_down", "store"} {
		m.rejected.WithLabelValues(r)
	}
	m.vecs.submitted, m.vecs.ended, m.vecs.wait, m.vecs.run = submitted, ended, wait, run
	m.submitted, m.ended, m.wait, m.run = map[string]prometheus.Counter{}, map[string]map[string]prometheus.Counter{}, map[string]prometheus.Observer{}, map[string]map[string]prometheus.Observer{}
	m.SetFetchActions(o.FetchActions)
	m.other = m.mk("OTHER")

	commitSize := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "connector_store_commit_changes",
		Help: "Changes written by each group commit of the queue.", ConstLabels: q, Buckets: sizeBuckets})
	commitDuration := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "connector_store_commit_duration_seconds",
		Help: "Duration of each group commit of the queue, fsync included.", ConstLabels: q, Buckets: commitBuckets})
	commitFailures := prometheus.NewCounter(prometheus.CounterOpts{Name: "connector_store_commit_failures_total",
		Help: "Group commits of the queue that failed (their changes are written again).", ConstLabels: q})
	m.commitSize, m.commitDuration, m.commitFailures = commitSize, commitDuration, commitFailures
	reg.MustRegister(commitSize, commitDuration, commitFailures)

	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connector_aci_requests_total",
		Help: "ACI requests by port (aci, service), action and outcome (success, failure, denied)."}, []string{"port", "action", "outcome"})
	durations := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "connector_aci_request_duration_seconds",
		Help: "Time to answer an ACI request, by port and action.", Buckets: reqBuckets}, []string{"port", "action"})
	reg.MustRegister(requests, durations)
	for _, port := range []auth.Port{auth.ACIPort, auth.ServicePort} {
		pl := portLabel(port)
		byAction := map[string]*requestMetrics{}
		for _, a := range append(auth.Actions(port), "other") {
			rm := &requestMetrics{outcome: map[string]prometheus.Counter{}, duration: durations.WithLabelValues(pl, a)}
			for _, oc := range outcomes {
				rm.outcome[oc] = requests.WithLabelValues(pl, a, oc)
			}
			byAction[a] = rm
		}
		m.requests[port] = byAction
	}

	docs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connector_documents_total",
		Help: "Documents of the actions that ended, by outcome (the document counts of GetStatus).", ConstLabels: q}, []string{"outcome"})
	m.documents = map[string]prometheus.Counter{}
	for _, oc := range documentOutcomes {
		m.documents[oc] = docs.WithLabelValues(oc)
		m.documentsByIndex = append(m.documentsByIndex, m.documents[oc])
	}
	m.crawlPages = prometheus.NewCounter(prometheus.CounterOpts{Name: "connector_crawl_pages_total", Help: "Pages fetched by crawls (200 and 203 answers)."})
	m.crawlNotMod = prometheus.NewCounter(prometheus.CounterOpts{Name: "connector_crawl_not_modified_total", Help: "Pages crawls found not modified (304, or a sitemap's lastmod)."})
	m.crawlReqs = prometheus.NewCounter(prometheus.CounterOpts{Name: "connector_crawl_requests_total", Help: "HTTP requests sent by crawls (pages, redirects, robots.txt, sitemaps)."})
	m.crawlBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "connector_crawl_response_bytes_total", Help: "Response body bytes read by crawls."})
	ingested := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connector_ingest_documents_total",
		Help: "Documents handed to the ingestion target, by outcome (added, removed, failed), per delivery: a refused batch delivered again by a later run counts in failed, then in added or removed."}, []string{"outcome"})
	m.ingested = map[string]prometheus.Counter{}
	for _, oc := range []string{"added", "removed", "failed"} {
		m.ingested[oc] = ingested.WithLabelValues(oc)
	}
	m.tlsFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "connector_tls_handshake_failures_total",
		Help: "TLS handshakes the ACI and service ports did not complete (old protocols, missing or foreign client certificates, not TLS, or a client that stopped, reset or closed half-way)."})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connector_connections_refused_total",
		Help: "Connections the ACI and service ports refused because their client (an IPv4 address or an IPv6 /64) had as many open as [Server] or [Service] MaxConnectionsPerClient allows, by port."}, []string{"port"})
	for _, port := range []auth.Port{auth.ACIPort, auth.ServicePort} {
		m.connsRefused[port] = refused.WithLabelValues(portLabel(port))
	}
	reg.MustRegister(docs, m.crawlPages, m.crawlNotMod, m.crawlReqs, m.crawlBytes, ingested, m.tlsFailures, refused)

	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "connector_build_info",
		Help: "Always 1; the labels say which build runs.", ConstLabels: prometheus.Labels{"version": o.Version}})
	build.Set(1)
	reg.MustRegister(build)
	if o.QueueStatus != nil {
		reg.MustRegister(newQueueCollector(o.Queue, o.QueueStatus, cmp.Or(o.QueueStatusTimeout, DefaultQueueStatusTimeout), m.log))
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func portLabel(p auth.Port) string {
	if p == auth.ServicePort {
		return "service"
	}
	return "aci"
}

// Registry is the registry (for tests and in-process checks).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Serve writes the metrics in Prometheus' text format.
func (m *Metrics) Serve(ctx *fasthttp.RequestCtx) {
	mfs, err := m.reg.Gather()
	if err != nil {
		m.log.Warn("gathering metrics", "err", err)
	}
	ctx.SetContentType(string(expfmt.FmtText))
	enc := expfmt.NewEncoder(ctx, expfmt.FmtText)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			m.log.Warn("writing metrics", "err", err)
			return
		}
	}
}

// Request counts one ACI request (httpd.Metrics).
func (m *Metrics) Request(port auth.Port, action, outcome string, d time.Duration) {
	rm := m.requests[port&1][action]
	if rm == nil {
		rm = m.requests[port&1]["other"]
	}
	c := rm.outcome[outcome]
	if c == nil {
		c = rm.outcome["failure"]
	}
	c.Inc()
	rm.duration.Observe(d.Seconds())
}

// TLSHandshakeFailed counts a refused TLS handshake.
func (m *Metrics) TLSHandshakeFailed() { m.tlsFailures.Inc() }

// ConnectionRefused counts a connection refused for its client's
// MaxConnectionsPerClient (httpd.Metrics).
func (m *Metrics) ConnectionRefused(port auth.Port) { m.connsRefused[port&1].Inc() }

// Connections adds the gauges of a port's connections: those open, read
// at scrape time from open, and the most it keeps open at once, max
// ([Server] or [Service] MaxConnections; when they are open, new clients
// wait in the kernel's listen queue). Call it once per port, before the
// first scrape.
func (m *Metrics) Connections(port auth.Port, open func() float64, max int) {
	pl := prometheus.Labels{"port": portLabel(port)}
	limit := prometheus.NewGauge(prometheus.GaugeOpts{Name: "connector_connections_max", ConstLabels: pl,
		Help: "Connections the ACI and service ports keep open at most ([Server] or [Service] MaxConnections; further clients wait until one closes), by port."})
	limit.Set(float64(max))
	m.reg.MustRegister(limit, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "connector_connections_open", ConstLabels: pl,
		Help: "Connections open on the ACI and service ports (idle kept-alive connections included), by port."}, open))
}

// SetFetchActions resolves the per-fetch-action metrics of the
// repository's actions (their label values); call it before the queue
// starts.
func (m *Metrics) SetFetchActions(fas []string) {
	for _, fa := range fas {
		if _, ok := m.submitted[fa]; ok {
			continue
		}
		a := m.mk(fa)
		m.submitted[fa], m.ended[fa], m.wait[fa], m.run[fa] = a.submitted, a.ended, a.wait, a.run
	}
}

func (m *Metrics) mk(fa string) actionMetrics {
	a := actionMetrics{submitted: m.vecs.submitted.WithLabelValues(fa), wait: m.vecs.wait.WithLabelValues(fa),
		ended: map[string]prometheus.Counter{}, run: map[string]prometheus.Observer{}}
	for _, s := range endStatuses {
		a.ended[s] = m.vecs.ended.WithLabelValues(fa, s)
		a.run[s] = m.vecs.run.WithLabelValues(fa, s)
	}
	return a
}
