package fetch

import "github.com/connectorhq/connector/messages"

// Secrets is implemented by repositories whose settings include secrets
// (passwords, tokens). The front end calls Redact wherever a request's
// parameters are shown (the request log, GetActionParameters, the server
// log) and Seal on a fetch action's parameters before it queues them, so
// that the queue, the store and every reply hold a secret only in its
// encrypted form (package secret).
type Secrets interface {
	// Redact returns params fit to be shown: every secret value (and
	// every secret inside a Config fragment) replaced by secret.Redacted.
	// params is not changed.
	Redact(params messages.Params) messages.Params
	// Seal returns params with every secret given in clear replaced by
	// its encrypted form, which Run accepts as well. params is not
	// changed.
	Seal(params messages.Params) (messages.Params, error)
}
