package ingest

import (
	"errors"
	"strings"
)

// Errors of this package.
var (
	// ErrDelivery: documents (or removals) were not all durably handed
	// over. Every error Add and Remove return wraps it; the caller counts
	// the whole batch as ingestfailed and sends it again on a later run.
	ErrDelivery = errors.New("ingest: delivery failed")
	// ErrInvalidDocument: a document or reference cannot be delivered
	// faithfully (see Document.Validate). Sending it again will not help.
	ErrInvalidDocument = errors.New("ingest: invalid document")
	// ErrUnavailable: nothing was sent, because the target did not answer
	// a recent request within its timeout (CFS: IngestTimeout) and is
	// not tried again yet; see the CFS section of the package doc.
	ErrUnavailable = errors.New("ingest: target not answering")
	// ErrClosed: the target was closed.
	ErrClosed = errors.New("ingest: target closed")
	// ErrDisabled is returned by Open for Type NONE (EnableIngestion=false):
	// there is no target, and the caller must not count any ingest* numbers.
	ErrDisabled = errors.New("ingest: ingestion disabled")
)

// deliveryError is what Add and Remove return: it matches ErrDelivery and
// its cause with errors.Is / errors.As.
type deliveryError struct {
	op    string
	cause error
}

func (e *deliveryError) Error() string {
	return "ingest: " + e.op + ": " + strings.TrimPrefix(e.cause.Error(), "ingest: ")
}

func (e *deliveryError) Unwrap() []error { return []error{ErrDelivery, e.cause} }

func delivery(op string, cause error) error { return &deliveryError{op: op, cause: cause} }
