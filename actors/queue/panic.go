package queue

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/messages"
)

// managerPanic keeps a panic in the QueueManager from reaching
// protoactor's default supervisor, which would restart it: a restart stops
// every task actor while the manager's entries still point at them, so
// every token would stop resolving. The panic is logged with its stack and
// the requester gets an internal error; the queue goes on.
func managerPanic(log *slog.Logger) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("queue manager panicked", "message", fmt.Sprintf("%T", env.Message), "panic", panics.Text(r), "stack", string(debug.Stack()))
					if env.Sender != nil {
						if ac, ok := c.(actor.Context); ok {
							ac.Send(env.Sender, &messages.ActionReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL,
								Message: "queue manager: panic: " + panics.Text(r)})
						}
					}
				}
			}()
			next(c, env)
		}
	}
}
