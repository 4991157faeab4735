package httpd

import (
	"net/netip"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// logEntry is one served request, as GetRequestLog shows it.
type logEntry struct {
	action string
	// text is the query text as received (truncated, redacted), written
	// into a buffer that entries reuse (see entryPool); request is that
	// text as a string, set only in the copies getLog hands out.
	text     []byte
	request  string
	client   netip.Addr // formatted when the log is read
	unixMs   int64
	duration float64 // milliseconds
	status   string  // success or failure
	conn     uint64
}

// entryPool holds the entries the request log has let go of (pushed out of
// its ring), with their text buffers, for the next requests: every request
// sends the log an entry, and an entry and its text were two allocations
// per request. An entry belongs to one owner at a time: the handler that
// fills it, then (once sent) the log, then the pool again.
type entryPool struct{ p sync.Pool }

func (ep *entryPool) get() *logEntry {
	if e, ok := ep.p.Get().(*logEntry); ok {
		return e
	}
	return &logEntry{}
}

func (ep *entryPool) put(e *logEntry) {
	if cap(e.text) > 2*maxLogged {
		return // not kept: an entry's text is cut to maxLogged
	}
	*e = logEntry{text: e.text[:0]}
	ep.p.Put(e)
}

type getLog struct{}

// logReply holds copies of the log's entries (with request set), oldest
// first: the log's own entries go back to the pool once pushed out.
type logReply struct{ entries []logEntry }

// requestLog is an actor keeping the most recent requests in a ring. The
// HTTP handlers only Send to it (fire and forget), so logging never waits;
// its dispatcher stores an entry on the sending goroutine (Receive never
// blocks).
type requestLog struct {
	ring []*logEntry
	next int
	full bool
	pool *entryPool // where entries pushed out of the ring go
}

func newRequestLog(size int, pool *entryPool) actor.Producer {
	return func() actor.Actor { return &requestLog{ring: make([]*logEntry, size), pool: pool} }
}

func (l *requestLog) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *logEntry:
		l.store(m)
	case *getLog:
		ctx.Respond(&logReply{entries: l.copies()})
	}
}

// store puts e in the ring, and the entry it pushes out back in the pool.
func (l *requestLog) store(e *logEntry) {
	if len(l.ring) == 0 {
		return
	}
	if old := l.ring[l.next]; old != nil {
		l.pool.put(old)
	}
	l.ring[l.next] = e
	l.next++
	if l.next == len(l.ring) {
		l.next, l.full = 0, true
	}
}

// copies returns copies of the ring's entries, oldest first.
func (l *requestLog) copies() []logEntry {
	var out []logEntry
	if l.full {
		out = appendCopies(out, l.ring[l.next:])
	}
	return appendCopies(out, l.ring[:l.next])
}

// appendCopies appends copies of entries to out, with their text as
// request and without their buffers.
func appendCopies(out []logEntry, entries []*logEntry) []logEntry {
	for _, e := range entries {
		c := *e
		c.request, c.text = string(e.text), nil
		out = append(out, c)
	}
	return out
}
