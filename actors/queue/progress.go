package queue

import "github.com/connectorhq/connector/messages"

// stagesAs returns p with every stage that has not ended (Queued,
// Processing or Paused) in state s, at every depth: an action that has
// ended (s Stopped, Error, ...) ends each of its stages with it, and the
// running stages of a paused action read Paused. Stages that had ended
// keep their own state. p is a published snapshot, shared with the worker
// and never changed: the result is a copy where anything changes.
func stagesAs(p *messages.Progress, s messages.State) *messages.Progress {
	if p == nil || len(p.GetStages()) == 0 {
		return p
	}
	stages, changed := restage(p.GetStages(), s)
	if !changed {
		return p
	}
	return &messages.Progress{Percent: p.GetPercent(), Stage: p.GetStage(), Stages: stages}
}

func restage(stages []*messages.Stage, s messages.State) ([]*messages.Stage, bool) {
	out := make([]*messages.Stage, len(stages))
	changed := false
	for i, st := range stages {
		if st == nil {
			continue
		}
		state := st.GetState()
		if !messages.Terminal(state) && state != s && (s != messages.State_STATE_PAUSED || state == messages.State_STATE_PROCESSING) {
			state = s
		}
		inner, innerChanged := restage(st.GetStages(), s)
		if state == st.GetState() && !innerChanged {
			out[i] = st
			continue
		}
		changed = true
		out[i] = &messages.Stage{Name: st.GetName(), Percent: st.GetPercent(), State: state, Stages: inner}
	}
	return out, changed
}
