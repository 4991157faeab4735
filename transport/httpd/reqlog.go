package httpd

import (
	"net/netip"

	"github.com/asynkron/protoactor-go/actor"
)

// logEntry is one served request, as GetRequestLog shows it.
type logEntry struct {
	action   string
	request  string     // query text as received (truncated)
	client   netip.Addr // formatted when the log is read
	unixMs   int64
	duration float64 // milliseconds
	status   string  // success or failure
	conn     uint64
}

type getLog struct{}

type logReply struct{ entries []*logEntry }

// requestLog is an actor keeping the most recent requests in a ring. The
// HTTP handlers only Send to it (fire and forget), so logging never waits;
// its dispatcher stores an entry on the sending goroutine (Receive never
// blocks).
type requestLog struct {
	ring []*logEntry
	next int
	full bool
}

func newRequestLog(size int) actor.Producer {
	return func() actor.Actor { return &requestLog{ring: make([]*logEntry, size)} }
}

func (l *requestLog) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *logEntry:
		if len(l.ring) == 0 {
			return
		}
		l.ring[l.next] = m
		l.next++
		if l.next == len(l.ring) {
			l.next, l.full = 0, true
		}
	case *getLog:
		var out []*logEntry
		if l.full {
			out = append(out, l.ring[l.next:]...)
		}
		out = append(out, l.ring[:l.next]...)
		ctx.Respond(&logReply{entries: out})
	}
}
