package httpfetch

import (
	"sync"
	"time"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// progressed counts a page or failure and publishes the crawl's progress:
// pages done over URLs the crawl admitted (an estimate: robots.txt and
// MaxPages may still skip some), below 100 until the crawl ends.
func (sr *syncRun) progressed() {
	n := sr.done.Add(1)
	pct := min(99, 100*float64(n)/float64(max(sr.admitted.Load(), n)))
	sr.prog.set(sr.index, func(t *taskProgress) { t.crawlPct = pct })
}

// progress publishes a Synchronize's progress: one stage per task, each
// with a crawl and a deletions stage.
type progress struct {
	job   *fetch.Job
	mu    sync.Mutex
	names []string
	tasks []taskProgress
	last  time.Time
}

type taskProgress struct {
	crawl, deletions       messages.State
	crawlPct, deletionsPct float64
}

func newProgress(job *fetch.Job, tasks []string) *progress {
	p := &progress{job: job, names: tasks, tasks: make([]taskProgress, len(tasks))}
	for i := range p.tasks {
		p.tasks[i] = taskProgress{crawl: messages.State_STATE_QUEUED, deletions: messages.State_STATE_QUEUED}
	}
	p.publish(true)
	return p
}

// set changes task i's progress; state changes are published at once,
// percentages at most every 100ms.
func (p *progress) set(i int, fn func(*taskProgress)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	before := p.tasks[i]
	fn(&p.tasks[i])
	after := p.tasks[i]
	p.publish(before.crawl != after.crawl || before.deletions != after.deletions)
}

// publish builds and publishes a snapshot; p.mu is held.
func (p *progress) publish(force bool) {
	now := time.Now()
	if !force && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	out := &messages.Progress{Stage: "finished"}
	total := 0.0
	for i, t := range p.tasks {
		// The crawl is most of the work: weigh it 90%, deletions 10%.
		pct := 0.9*t.crawlPct + 0.1*t.deletionsPct
		state := messages.State_STATE_QUEUED
		switch {
		case t.deletions == messages.State_STATE_FINISHED:
			state, pct = messages.State_STATE_FINISHED, 100
		case t.crawl != messages.State_STATE_QUEUED:
			state = messages.State_STATE_PROCESSING
		}
		if state == messages.State_STATE_PROCESSING {
			out.Stage = p.names[i] + " crawl"
			if t.deletions == messages.State_STATE_PROCESSING {
				out.Stage = p.names[i] + " deletions"
			}
		}
		total += pct
		out.Stages = append(out.Stages, &messages.Stage{Name: p.names[i], Percent: pct, State: state, Stages: []*messages.Stage{
			{Name: "crawl", Percent: t.crawlPct, State: t.crawl},
			{Name: "deletions", Percent: t.deletionsPct, State: t.deletions},
		}})
	}
	if len(p.tasks) > 0 {
		out.Percent = total / float64(len(p.tasks))
	}
	if out.Stage == "finished" && out.Percent < 100 {
		out.Stage = "queued"
	}
	p.job.SetProgress(out)
}
