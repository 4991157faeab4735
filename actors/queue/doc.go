// Package queue is the asynchronous action queue: one QueueManager actor per
// queue (the connector's is "fetch") and one task actor per action.
//
// # Ownership
//
// The task actor owns its action: state, priority, times, the worker that
// runs it, its counts and results. GetStatus, Cancel, Stop, Pause, Resume,
// ChangePriority, Progress, GetActionParameters and Duplicate are messages
// delivered straight to it: a token decodes to the action's UUID, and the
// actor's PID is "<queue actor>/<uuid>", so no lookup table sits between a
// request and its owner.
//
// The QueueManager owns the queue: admission (MaximumQueueSize), the
// priority heap of waiting actions, the number of running actions
// (MaximumThreads), counts per state kept incrementally, the queue-wide
// pause flag, retention of ended actions, and (with a store) durability: it
// is the only writer of queue state. Task actors tell it about every change
// of state or priority with local messages.
//
// # Running work
//
// A task actor never blocks in Receive. When the QueueManager dispatches it,
// it starts the Repository's Run on a goroutine with a context; Stop cancels
// that context (cause ErrStopRequested), which aborts in-flight I/O. The
// worker reports back with a message. Every dispatch is matched by exactly
// one slot release, sent when the worker has exited, so at most
// MaximumThreads workers exist at any moment.
//
// # Failure
//
// A panic in a task actor's Receive or in its worker ends the action as
// Error with the panic message. Task actors are never restarted: a receiver
// middleware converts panics to state, and the QueueManager's supervisor
// strategy stops (never restarts) a child that fails anyway and re-creates
// it as an Error tombstone, so its token keeps answering.
package queue
