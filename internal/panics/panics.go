// Package panics turns a panic on a goroutine that no recovery reaches
// into the error that ends the work: the house rule is that a panic in a
// task ends the action as Error with its message, never the process. The
// worker that runs an action recovers its own panics (actors/queue); the
// goroutines the work starts (a connector's builders, deliverers, page
// fetchers) defer Catch, and hand the error on the way they hand any
// other.
package panics

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/connectorhq/connector/secret"
)

// ErrPanic is wrapped by every error Catch and CatchAs make, so that
// errors.Is tells a recovered panic from the failures the work expects
// (a panic is never one to count and go on after). Its text is "panic".
var ErrPanic = errors.New("panic")

// Catch, deferred (defer panics.Catch(log, what, &err)), recovers a panic
// of the function that deferred it and makes it *err: an error
// "<what>: panic: <value>" that wraps ErrPanic (and not the value, even
// an error: a panic's value is not the failure it names). It logs the
// panic at error level, "<what> panicked", with its value, the stack
// where it happened and args (slog's key-value pairs); a nil log logs
// nothing.
//
// It must be the deferred function itself (recover does nothing in a
// function the deferred one calls). It recovers nothing but a panic: a
// goroutine that ends with runtime.Goexit (t.FailNow) goes on ending, *err
// as it was; panic(nil) is a panic (*runtime.PanicNilError). A panic
// raised after it returns (by a function deferred before it) is not its
// own: it goes on up.
func Catch(log *slog.Logger, what string, err *error, args ...any) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %w: %s", what, ErrPanic, Text(r))
		logPanic(log, what+" panicked", r, args)
	}
}

// CatchAs is Catch for an error that wraps kind as well: *err is
// "<kind>: panic: <value>" and errors.Is(*err, kind) holds; the log's
// message is kind's text.
func CatchAs(log *slog.Logger, kind error, err *error, args ...any) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %w: %s", kind, ErrPanic, Text(r))
		logPanic(log, kind.Error(), r, args)
	}
}

func logPanic(log *slog.Logger, msg string, r any, args []any) {
	if log == nil {
		return
	}
	log.Error(msg, append(args, "panic", Text(r), "stack", string(debug.Stack()))...)
}

// Text is a panic's value as an error, a status or a log shows it: its
// text (fmt's %v) with the password of every URL in it redacted
// (secret.RedactURLs), since a panic's message is code's, not the
// connector's, and may quote a URL a user configured with its
// credentials (docs/security.md).
func Text(r any) string { return secret.RedactURLs(fmt.Sprint(r)) }
