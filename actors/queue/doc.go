// Package queue is the asynchronous action queue: one QueueManager actor per
// queue (the connector's is "fetch") and one task actor per action. Its
// clients (the ACI front end, the scheduler) reach it through API, a typed
// interface with a context, which *Queue implements in process.
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
// A queued action's task actor is spawned when it is first needed (in
// process; the cluster's QueueManager spawns at once): when the action is
// dispatched, or when a request for it comes. Until then the action is the
// QueueManager's entry and its task's memory, allocated with it; a request
// by token that finds no actor goes to the QueueManager (lookupTombstone),
// which spawns the actor and forwards the request, as does CancelQueued's
// Cancel (askEach). A list's reads spawn nothing: the QueueManager hands
// out copies of the task's memory, which it owns until it spawns the
// actor (listViews; task.unspawnedReply for a request that found no
// actor), so a dashboard left open on its queued actions does not give
// each an actor. The list's requester makes the statuses from those copies
// on its own goroutine and asks the other actions' actors itself: the
// QueueManager's share of a list of k actions is a walk of its indexes and
// k copies, with no message per action. Spawning (protoactor's registry insert,
// the actor's context, process and mailbox) was ~15 % of an in-memory
// submit's server CPU and ~400 bytes per queued action, paid for actions
// that wait unasked in a paused or busy queue. The task's mailbox holds
// what reaches it before its Started (taskBox.system): protoactor registers
// an actor's process before its mailbox's handlers.
//
// The QueueManager owns the queue: admission (MaximumQueueSize), the
// priority heap of waiting actions, the number of running actions
// (MaximumThreads), counts per state kept incrementally, the queue-wide
// pause flag, retention of ended actions, and (with a store) durability: it
// is the only writer of queue state. Task actors tell it about every change
// of state or priority with messages (TaskChanged, SlotReleased: protobuf,
// addressed to the owner PID the task was given, so that a task actor does
// not depend on being the QueueManager's child).
//
// # Files by role
//
// One actor owns the queue's state; its roles live in files of their own,
// as river splits producer, completer and maintenance:
//
//	api.go, queue.go   the client side: API, *Queue, typed requests
//	submit.go          admit: the one check every submission passes
//	ids.go             action ids (UUIDv7, randomness read in blocks)
//	manager.go         the QueueManager actor: its state and message loop, submit, spawn
//	dispatch.go        thread slots and dispatch (the producer)
//	exclusive.go       actions that hold their tasks exclusively
//	commit.go          group commit to the store (the completer), retries
//	retention.go       removing ended actions by count and age (maintenance)
//	list.go            listings, sorting and queue status
//	index.go           the list indexes: per state, entries ordered by each sort key
//	control.go         queue pause and resume, shutdown
//	tombstone.go       task actors that failed outside their own recovery
//	restore.go         re-creating stored actions at start
//	task.go            the task actor and its worker
//	panic.go           the QueueManager's panic middleware
//	reply.go, retire.go  protoactor workarounds (reply pool, retirement guard)
//	mailbox.go         the task actors' mailbox (lock-free, one allocation; queues made when a message waits)
//	dispatcher.go      the QueueManager's goroutine, kept between bursts
//
// and in cluster mode (docs/cluster.md), the same roles over the shared store:
//
//	cluster_queue.go     the client side: *ClusterQueue, requests sent to their owner's node
//	cluster_manager.go   the cluster QueueManager: its state, message loop, submit, task reports
//	cluster_pipeline.go  its store operations, one at a time: group commits, claims, fencing
//	cluster_takeover.go  taking over departed nodes' actions, reconciliation, retention
//	cluster_control.go   its ticks and idle poll, shutdown, StartCluster
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
// Error with the panic message. Task actors are never restarted: their
// Receive converts panics to state, and the QueueManager's supervisor
// strategy stops (never restarts) a child that fails anyway and keeps an
// Error tombstone of it (its entry), from which the QueueManager answers
// requests for its token (tombstoneReply: its status; a change refused as
// for an ended action), the request whose handling failed (answerFailing),
// the requests its mailbox held when it was stopped (taskBox.orphan), and
// lists, which show it as Error.
//
// Task actors are the QueueManager's children (their failures go to its
// supervisor strategy) but unlisted ones (actor.WithUnlistedChild):
// protoactor counts them instead of keeping a set of them beside the
// QueueManager's entries, so the QueueManager stops them itself when it
// stops (stopTasks), and protoactor still ends its stop only after the
// last of them. Hence two rules of its Stopping: stopTasks runs even if
// what comes before it panics (it is deferred), and a stopping
// QueueManager, which protoactor still hands user messages, spawns no
// task actor (it is shutting down: submissions are refused, and a request
// for a queued action that has no actor yet is answered ShuttingDown).
package queue
