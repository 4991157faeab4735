package messages

import (
	"errors"
	"fmt"

	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/secret"
)

// Domain errors. They say what went wrong in the connector's own terms; the
// ACI codec (transport/aci) is the only place that knows which wire error
// code each one becomes, and its test checks that every error listed in
// DomainErrors is mapped.
var (
	// ErrUnknownToken: the token is garbled, was never issued by this
	// server, or its action has been removed by retention.
	ErrUnknownToken = errors.New("queue: unknown token")
	// ErrUnknownQueue: QueueName names no queue of this server.
	ErrUnknownQueue = errors.New("queue: unknown queue")
	// ErrQueueFull: the queue holds MaximumQueueSize actions already.
	ErrQueueFull = errors.New("queue: queue is full")
	// ErrActionRunning: Cancel was sent for an action that has started;
	// QueueAction=Stop is the verb for running actions.
	ErrActionRunning = errors.New("queue: action is running")
	// ErrActionEnded: a control (Cancel, Stop, Pause, ...) was sent for an
	// action that has already ended.
	ErrActionEnded = errors.New("queue: action has ended")
	// ErrNotQueued: ChangePriority was sent for an action that is no
	// longer waiting in the queue.
	ErrNotQueued = errors.New("queue: action is not queued")
	// ErrNotPaused: Resume was sent for an action that is not paused.
	ErrNotPaused = errors.New("queue: action is not paused")
	// ErrShuttingDown: the server is stopping and accepts no new work.
	ErrShuttingDown = errors.New("queue: server is shutting down")
	// ErrStore: the durable store could not record a change. The message
	// says what became of it: a submission is not queued; a change to an
	// action or to the queue is in effect but not yet on disk.
	ErrStore = errors.New("queue: store unavailable")
	// ErrTimeout: an actor did not answer in time (overload).
	ErrTimeout = errors.New("queue: no answer in time")
	// ErrInternal: a bug or an unexpected condition.
	ErrInternal = errors.New("connector: internal error")

	// ErrUnknownAction: the ACI action is not implemented.
	ErrUnknownAction = errors.New("aci: unknown action")
	// ErrInvalidParam: a parameter value is not acceptable. Usually
	// wrapped in a *ParamError that names the parameter.
	ErrInvalidParam = errors.New("aci: invalid parameter")
	// ErrMissingParam: a required parameter is absent. Usually wrapped in a
	// *ParamError that names the parameter.
	ErrMissingParam = errors.New("aci: missing parameter")
	// ErrBadRequest: the HTTP request could not be parsed as an ACI
	// request at all (malformed encoding, body too large, ...).
	ErrBadRequest = errors.New("aci: malformed request")
	// ErrNotFound: a synchronous action (View, ...) was asked for an item
	// that does not exist.
	ErrNotFound = errors.New("connector: not found")
	// ErrTooLarge: the request exceeds a configured limit (body size,
	// parameter count, elements of a parameter's XML); the message names
	// the limit.
	ErrTooLarge = errors.New("aci: request exceeds a limit")
	// ErrPermissionDenied: no authorization role of the client allows the
	// action ([AuthorizationRoles]).
	ErrPermissionDenied = errors.New("auth: permission denied")
	// ErrRefusedOrigin: a browser sent the request from another site
	// (Sec-Fetch-Site), or its Host header names a host the server does
	// not answer for ([Server] AllowedHosts).
	ErrRefusedOrigin = errors.New("aci: request refused")
	// ErrClientLimit: the client (an IPv4 address, or an IPv6 /64) holds
	// as many connections as the server gives one client ([Server]
	// MaxConnectionsPerClient), or a large reply would take the replies it
	// has waiting to be sent past [Server] MaxReplyBytesPerClient.
	ErrClientLimit = errors.New("aci: client limit reached")
)

// DomainErrors lists every sentinel above, for the codec's completeness test.
var DomainErrors = []error{
	ErrUnknownToken, ErrUnknownQueue, ErrQueueFull, ErrActionRunning,
	ErrActionEnded, ErrNotQueued, ErrNotPaused, ErrShuttingDown, ErrStore,
	ErrTimeout, ErrInternal, ErrUnknownAction, ErrInvalidParam,
	ErrMissingParam, ErrBadRequest, ErrNotFound, ErrTooLarge,
	ErrPermissionDenied, ErrRefusedOrigin, ErrClientLimit,
}

// ParamError reports a bad or missing parameter (or configuration setting
// given as a parameter) by name.
type ParamError struct {
	Name    string // parameter as the user should recognise it, e.g. "Priority" or "[MyTask] Depth"
	Value   string // offending value; empty when missing
	Reason  string // what is wrong, e.g. "must be an integer"
	Missing bool
}

// Error implements error.
func (e *ParamError) Error() string {
	if e.Missing {
		if e.Reason != "" {
			return fmt.Sprintf("missing required parameter %s: %s", e.Name, e.Reason)
		}
		return "missing required parameter " + e.Name
	}
	// The value is quoted to show what is wrong, but not a URL's password
	// (an Identifiers or Reference of http://user:password@host/...),
	// and only its first 100 bytes when it is longer (wording.Quote):
	// this text is the error reply and the log line.
	return fmt.Sprintf("invalid value %s for parameter %s: %s", wording.Quote(secret.RedactURLs(e.Value)), e.Name, e.Reason)
}

// Is lets errors.Is match ErrMissingParam or ErrInvalidParam.
func (e *ParamError) Is(target error) bool {
	if e.Missing {
		return target == ErrMissingParam
	}
	return target == ErrInvalidParam
}

// Missing returns a *ParamError for an absent required parameter.
func Missing(name string) error { return &ParamError{Name: name, Missing: true} }

// Invalid returns a *ParamError for a bad value.
func Invalid(name, value, reason string) error {
	return &ParamError{Name: name, Value: value, Reason: reason}
}

// codeErrors pairs reply codes with sentinels, in the order Code tries
// them (first match wins, so the result is deterministic).
var codeErrors = []struct {
	code ErrorCode
	err  error
}{
	{ErrorCode_ERROR_CODE_UNKNOWN_TOKEN, ErrUnknownToken},
	{ErrorCode_ERROR_CODE_QUEUE_FULL, ErrQueueFull},
	{ErrorCode_ERROR_CODE_ACTION_RUNNING, ErrActionRunning},
	{ErrorCode_ERROR_CODE_ACTION_ENDED, ErrActionEnded},
	{ErrorCode_ERROR_CODE_NOT_QUEUED, ErrNotQueued},
	{ErrorCode_ERROR_CODE_NOT_PAUSED, ErrNotPaused},
	{ErrorCode_ERROR_CODE_SHUTTING_DOWN, ErrShuttingDown},
	{ErrorCode_ERROR_CODE_STORE, ErrStore},
	{ErrorCode_ERROR_CODE_MISSING_PARAM, ErrMissingParam},
	{ErrorCode_ERROR_CODE_INVALID_PARAM, ErrInvalidParam},
	{ErrorCode_ERROR_CODE_INTERNAL, ErrInternal},
}

// Err turns a reply's code and message back into an error that matches the
// domain sentinel with errors.Is and reads as message. It returns nil for
// ERROR_CODE_NONE.
func Err(code ErrorCode, message string) error {
	if code == ErrorCode_ERROR_CODE_NONE {
		return nil
	}
	base := ErrInternal
	for _, ce := range codeErrors {
		if ce.code == code {
			base = ce.err
			break
		}
	}
	if message == "" || message == base.Error() {
		return base
	}
	return &codedError{base: base, msg: message}
}

// Code returns the reply code for err, and the message to send with it.
func Code(err error) (ErrorCode, string) {
	if err == nil {
		return ErrorCode_ERROR_CODE_NONE, ""
	}
	for _, ce := range codeErrors {
		if errors.Is(err, ce.err) {
			return ce.code, err.Error()
		}
	}
	return ErrorCode_ERROR_CODE_INTERNAL, err.Error()
}

type codedError struct {
	base error
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.base }
