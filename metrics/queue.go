package metrics

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
)

// The queue's events (queue.Observer): counters and histograms only.

func (m *Metrics) action(fa string) actionMetrics {
	if c, ok := m.submitted[fa]; ok {
		return actionMetrics{submitted: c, wait: m.wait[fa], ended: m.ended[fa], run: m.run[fa]}
	}
	return m.other
}

// Submitted implements queue.Observer.
func (m *Metrics) Submitted(fetchAction string) { m.action(fetchAction).submitted.Inc() }

// Rejected implements queue.Observer.
func (m *Metrics) Rejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// Started implements queue.Observer.
func (m *Metrics) Started(fetchAction string, wait time.Duration) {
	m.action(fetchAction).wait.Observe(max(wait.Seconds(), 0))
}

// Ended implements queue.Observer.
func (m *Metrics) Ended(spec *messages.ActionSpec, st *messages.ActionStatus) {
	a := m.action(spec.GetFetchAction())
	status := messages.StatusName(st.GetState())
	if c := a.ended[status]; c != nil {
		c.Inc()
	}
	if st.GetStartedUnixMs() != 0 && st.GetEndedUnixMs() >= st.GetStartedUnixMs() {
		if o := a.run[status]; o != nil {
			o.Observe(float64(st.GetEndedUnixMs()-st.GetStartedUnixMs()) / 1000)
		}
	}
	for _, dc := range st.GetCounts() {
		for i, n := range [...]uint64{dc.Seen, dc.Added, dc.Updated, dc.Deleted, dc.Unchanged, dc.Collected, dc.Inserted,
			dc.Ingestadded, dc.Ingestupdated, dc.Ingestdeleted, dc.Ingestfailed, dc.Errors} {
			if n > 0 {
				m.documentsByIndex[i].Add(float64(n))
			}
		}
	}
}

// Stopped implements queue.Observer.
func (m *Metrics) Stopped(d time.Duration) { m.stop.Observe(d.Seconds()) }

// Committed implements queue.Observer.
func (m *Metrics) Committed(n int, d time.Duration, err error) {
	m.commitSize.Observe(float64(n))
	m.commitDuration.Observe(d.Seconds())
	if err != nil {
		m.commitFailures.Inc()
	}
}

// Crawled adds the figures of one finished crawl (fetch.Deps.Crawled).
func (m *Metrics) Crawled(s fetch.CrawlStats) {
	m.crawlPages.Add(float64(s.Pages))
	m.crawlNotMod.Add(float64(s.NotModified))
	m.crawlReqs.Add(float64(s.Requests))
	m.crawlBytes.Add(float64(s.Bytes))
}

// Target wraps an ingestion target so that its deliveries are counted.
func (m *Metrics) Target(t ingest.Target) ingest.Target {
	if t == nil {
		return nil
	}
	return &countingTarget{Target: t, m: m}
}

type countingTarget struct {
	ingest.Target
	m *Metrics
}

func (c *countingTarget) Add(ctx context.Context, docs []*ingest.Document) error {
	err := c.Target.Add(ctx, docs)
	if pe := (*ingest.PartialError)(nil); errors.As(err, &pe) {
		// All delivered but those refused on their own.
		c.count("added", len(docs)-len(pe.Refused), nil)
		c.count("failed", len(pe.Refused), nil)
		return err
	}
	c.count("added", len(docs), err)
	return err
}

func (c *countingTarget) Remove(ctx context.Context, refs []string) error {
	err := c.Target.Remove(ctx, refs)
	if len(refs) > 1 && errors.Is(err, ingest.ErrInvalidDocument) {
		// Refused whole for a reference the target cannot take (CFS and
		// a comma), before anything was delivered: every removal goes
		// through restsync.RemoveRefs, which then removes them in
		// smaller calls, and those count each reference once (those it
		// leaves unsent after a failed call are not counted).
		return err
	}
	if pe := (*ingest.PartialError)(nil); errors.As(err, &pe) {
		c.count("removed", len(refs)-len(pe.Refused), nil)
		c.count("failed", len(pe.Refused), nil)
		return err
	}
	c.count("removed", len(refs), err)
	return err
}

func (c *countingTarget) count(outcome string, n int, err error) {
	if err != nil {
		outcome = "failed"
	}
	c.m.ingested[outcome].Add(float64(n))
}

// queueCollector reads the queue's counts per state at scrape time: the
// QueueManager keeps them anyway (QueueStatus), so nothing is recounted.
type queueCollector struct {
	status                                func(context.Context) (*messages.QueueStatusReply, error)
	timeout                               time.Duration
	log                                   *slog.Logger
	actions, paused, maxThreads, maxQueue *prometheus.Desc
	running, pending, up                  *prometheus.Desc
}

func newQueueCollector(queue string, status func(context.Context) (*messages.QueueStatusReply, error), timeout time.Duration, log *slog.Logger) *queueCollector {
	q := prometheus.Labels{"queue": queue}
	return &queueCollector{
		status:     status,
		timeout:    timeout,
		log:        log,
		actions:    prometheus.NewDesc("connector_queue_actions", "Actions in the queue, by state (ended ones until retention removes them).", []string{"state"}, q),
		paused:     prometheus.NewDesc("connector_queue_paused", "1 while the whole queue is paused.", nil, q),
		maxThreads: prometheus.NewDesc("connector_queue_max_threads", "Actions that may run at once ([Actions] MaximumThreads).", nil, q),
		maxQueue:   prometheus.NewDesc("connector_queue_max_size", "Waiting actions the queue accepts ([Actions] MaximumQueueSize).", nil, q),
		running:    prometheus.NewDesc("connector_queue_running_actions", "Actions holding a worker thread (processing, paused while running, or stopped while their worker exits).", nil, q),
		pending:    prometheus.NewDesc("connector_queue_pending_actions", "Actions waiting for a worker thread or for their Resume (queued, or paused before they ran): what MaximumQueueSize bounds.", nil, q),
		up:         prometheus.NewDesc("connector_queue_status_up", "1 when this scrape read the queue's counts; 0 when the read failed or timed out (the store did not answer), and the other connector_queue_ gauges are left out.", nil, q),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.actions, c.paused, c.maxThreads, c.maxQueue, c.running, c.pending, c.up} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	qs, err := c.status(ctx)
	if err != nil {
		c.log.Warn("queue status for metrics", "err", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for state, n := range map[string]uint64{
		"queued": qs.Queued, "processing": qs.Processing, "paused": qs.PausedActions, "finished": qs.Finished,
		"cancelled": qs.Cancelled, "stopped": qs.Stopped, "error": qs.Error,
	} {
		ch <- prometheus.MustNewConstMetric(c.actions, prometheus.GaugeValue, float64(n), state)
	}
	paused := 0.0
	if qs.Paused {
		paused = 1
	}
	ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused)
	ch <- prometheus.MustNewConstMetric(c.maxThreads, prometheus.GaugeValue, float64(qs.MaximumThreads))
	ch <- prometheus.MustNewConstMetric(c.maxQueue, prometheus.GaugeValue, float64(qs.MaximumQueueSize))
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(qs.Running))
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(qs.Waiting))
}
