package ingest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Errors of this package.
var (
	// ErrDelivery: documents (or removals) were not all durably handed
	// over. Every error Add and Remove return wraps it; the caller counts
	// the whole batch as ingestfailed and sends it again on a later run
	// (only the items a *PartialError lists, when it is the cause).
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

// PartialError is the cause of an Add or Remove error (errors.As finds
// it) when every item of the call was delivered but those in Refused,
// each refused on its own (CFS: a document too large for a request of its
// own). Refused maps the index of each of them, in the call's docs or
// refs, to its error. A caller may count the others as delivered, and
// send only those again; otherwise sending the whole call again is
// harmless, as after any failed delivery.
type PartialError struct {
	Refused map[int]error
}

// Error implements error: the first refused item's error, after how many
// there are when more than one.
func (e *PartialError) Error() string {
	errs := e.Unwrap()
	switch len(errs) {
	case 0:
		return "no item refused"
	case 1:
		return errs[0].Error()
	}
	return fmt.Sprintf("%d items refused on their own, the first: %v", len(errs), errs[0])
}

// Unwrap returns the errors of the refused items, in the order of the
// items.
func (e *PartialError) Unwrap() []error {
	idx := slices.Sorted(maps.Keys(e.Refused))
	errs := make([]error, len(idx))
	for i, k := range idx {
		errs[i] = e.Refused[k]
	}
	return errs
}
