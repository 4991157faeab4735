package queue

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
)

// ErrInterrupted is the error of an action that was running when the server
// crashed, under ProcessingOnRestart=Error.
var ErrInterrupted = errors.New("queue: interrupted by a server crash")

// restoreActions re-creates the actions loaded from the store, in arrival
// order. A stored status with Running set was taken while a worker ran the
// action, so the process died under it: the action is queued again (its
// restart count goes up; one paused while running stays paused), without
// the start time of the run the crash ended (it has none until it starts
// again), or ends as Error, as the policy says. After a clean shutdown nothing is running, so
// nothing is re-run.
//
// It reports false when Start's caller asked it to stop (m.cut) before it
// was over: the actions not restored yet are left in the store as they
// are, for the next start, and no retention or dispatch runs (the
// QueueManager is being stopped). A change it made to one it restored is
// written as the QueueManager stops.
func (m *manager) restoreActions(ctx actor.Context) bool {
	recs := m.restore
	m.restore = nil
	for i, r := range recs {
		m.restored.Store(int64(i)) // the ones before r
		m.starting.Add(1)
		if m.startCut() {
			m.sh.log.Info("restore stopped: the server is stopping; the actions not restored yet wait in the store for the next start",
				"restored", i, "actions", len(recs))
			return false
		}
		id, err := uuid.Parse(r.Id)
		if err != nil || r.Spec == nil || r.Status == nil {
			m.sh.log.Error("skipping unreadable stored action", "id", r.Id)
			continue
		}
		st := r.Status
		if st.Seq > m.seq {
			m.seq = st.Seq
		}
		changed := false
		switch {
		case st.State <= messages.State_STATE_UNSPECIFIED || st.State > messages.State_STATE_ERROR:
			m.sh.log.Error("stored action has an unknown state; ending it as Error", "id", r.Id, "state", int32(st.State))
			st.Error = fmt.Sprintf("queue: stored with an unknown state (%d)", int32(st.State))
			st.State, st.Running, changed = messages.State_STATE_ERROR, false, true
			if st.EndedUnixMs == 0 {
				st.EndedUnixMs = m.sh.now().UnixMilli()
			}
		case messages.Terminal(st.State):
			if st.Running { // final counts not written yet when it died
				st.Running, changed = false, true
			}
		case st.Running:
			changed = true
			st.Running = false
			switch {
			case m.cfg.OnRestart == RestartError:
				st.State = messages.State_STATE_ERROR
				st.Error = ErrInterrupted.Error()
				st.EndedUnixMs = m.sh.now().UnixMilli()
			default:
				requeued(st) // one the user paused waits, paused, for Resume
			}
		case st.State == messages.State_STATE_PROCESSING: // dispatched, never started
			st.State = messages.State_STATE_QUEUED
			changed = true
		}
		token := st.Token
		if token == "" {
			token = messages.NewToken(m.cfg.TokenHost, m.cfg.TokenPort, m.upper, id)
			st.Token = token
		}
		e, err := m.spawn(ctx, id, token, r.Spec, st)
		if err != nil {
			m.sh.log.Error("cannot restore action", "id", r.Id, "err", err)
			continue
		}
		if changed {
			m.persist(e, st)
		}
	}
	m.restored.Store(int64(len(recs)))
	// Age-based retention walks the ended actions in order of ending.
	slices.SortStableFunc(m.ended, func(a, b *entry) int { return cmp.Compare(a.endedMs, b.endedMs) })
	if len(recs) > 0 {
		m.sh.log.Info("restored actions", "actions", len(recs), "queued", m.queuedLen(), "paused", m.paused)
	}
	m.retain(ctx)
	m.dispatch(ctx)
	return !m.startCut()
}

// startCut reports whether Start's caller asked the start to stop
// (StartContext's context is done).
func (m *manager) startCut() bool {
	if m.cut == nil {
		return false
	}
	select {
	case <-m.cut:
		return true
	default:
		return false
	}
}
