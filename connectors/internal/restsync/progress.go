package restsync

import (
	"sync"
	"time"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// Progress publishes a job's progress: one stage per task, with the
// container (room, folder) being read.
type Progress struct {
	mu    sync.Mutex
	job   *fetch.Job
	names []string
	pct   []float64
	cur   []string
	last  time.Time
}

// NewProgress publishes every task as queued.
func NewProgress(job *fetch.Job, tasks []string) *Progress {
	p := &Progress{job: job, names: tasks, pct: make([]float64, len(tasks)), cur: make([]string, len(tasks))}
	p.publish(true)
	return p
}

// Set says task i is pct% done, reading where ("" once done).
func (p *Progress) Set(i int, pct float64, where string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := p.cur[i] != where || pct >= 100
	p.pct[i], p.cur[i] = min(pct, 100), where
	p.publish(changed)
}

func (p *Progress) publish(force bool) {
	now := time.Now()
	if !force && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	out := &messages.Progress{Stage: "finished"}
	total := 0.0
	for i, name := range p.names {
		state := messages.State_STATE_QUEUED
		switch {
		case p.pct[i] >= 100:
			state = messages.State_STATE_FINISHED
		case p.cur[i] != "":
			state = messages.State_STATE_PROCESSING
			out.Stage = name + " " + p.cur[i]
		}
		total += p.pct[i]
		out.Stages = append(out.Stages, &messages.Stage{Name: name, Percent: p.pct[i], State: state})
	}
	if len(p.names) > 0 {
		out.Percent = total / float64(len(p.names))
	}
	if out.Stage == "finished" && out.Percent < 100 {
		out.Stage = "queued"
	}
	p.job.SetProgress(out)
}
