package store

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/connectorhq/connector/internal/panics"
)

// protect turns a panic (bbolt panics on some damaged pages) or a memory
// fault in the mapped file (a file truncated under us) into ErrCorrupt.
// Use as `defer s.protect(&err, what, write)()`. A panic during a write also
// stops later writes, since the file is known to be damaged.
func (s *boltStore) protect(err *error, what string, write bool) func() {
	prev := debug.SetPanicOnFault(true)
	return func() {
		r := recover()
		debug.SetPanicOnFault(prev)
		if r == nil {
			return
		}
		*err = fmt.Errorf("store: %s: %s: %w: %v", s.path, what, ErrCorrupt, r)
		s.log.Error("store panic recovered", "op", what, "panic", panics.Text(r))
		if write {
			s.fail(*err)
		}
	}
}

func (s *boltStore) fail(err error) {
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("store refuses further writes", "err", err)
	}
}

// openErr wraps an error met while opening.
func (s *boltStore) openErr(what string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("store: %s: %w (lock not obtained within %s)", s.path, ErrLocked, s.cfg.LockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum):
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrCorrupt, err)
	case errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("store: %s: %s: bbolt page format: %w: %w", s.path, what, ErrVersion, err)
	case errors.Is(err, berrors.ErrMaxSizeReached):
		return fmt.Errorf("store: %s: %s: file larger than MaxSize %d: %w: %w", s.path, what, s.cfg.MaxSize, ErrNoSpace, err)
	case strings.Contains(err.Error(), "file size too small"):
		// The one error classified by its text: bbolt (v1.5.0, db.go
		// mmapSize) returns this one from fmt.Errorf, with no sentinel.
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrCorrupt, err)
	case permissionError(err):
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrReadOnly, err)
	case spaceError(err):
		return fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrNoSpace, err)
	}
	return fmt.Errorf("store: %s: %s: %w", s.path, what, err)
}

// errUserPanic aborts a transaction whose callback panicked; the panic is
// raised again once the transaction is rolled back.
var errUserPanic = errors.New("store: callback panicked")

// commitErr wraps an error of a write; uncertain says whether the batch may
// have reached the disk in part. An uncertain outcome is ErrFailed even for
// lack of room (ENOSPC or EDQUOT from an fdatasync, as on NFS or thin
// provisioning): the batch may be applied, so it must not be reported as
// ErrNoSpace, which says that nothing is.
func (s *boltStore) commitErr(what string, err error, uncertain bool) error {
	switch {
	case permissionError(err):
		return &classifiedError{fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrReadOnly, err)}
	case uncertain:
		// ErrFailed, below
	case errors.Is(err, berrors.ErrMaxSizeReached) || spaceError(err):
		return &classifiedError{fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrNoSpace, err)}
	default:
		return &classifiedError{fmt.Errorf("store: %s: %s: %w", s.path, what, err)}
	}
	wrapped := &classifiedError{fmt.Errorf("store: %s: %s: %w: %w", s.path, what, ErrFailed, err)}
	s.fail(wrapped)
	return wrapped
}

// commitUncertain says whether a bbolt commit (transaction id) that
// failed with err may have been applied. bbolt returns the same errors
// whether they come before its meta page is written (growing the file,
// writing or syncing the data pages: nothing is applied) or from writing
// or syncing that page (the commit may be applied: the page is written
// with pwrite into the file bbolt maps, so it is visible at once, and may
// reach the disk later). For lack of room the two are told apart by
// reading the meta page: the commit is applied unless the last committed
// transaction is still an earlier one. commitMu, held by the caller, keeps
// any other commit from coming in between. Other errors stay uncertain.
func (s *boltStore) commitUncertain(err error, id int) bool {
	if !errors.Is(err, berrors.ErrMaxSizeReached) && !spaceError(err) {
		return true
	}
	tx, rerr := s.db.Begin(false)
	if rerr != nil {
		return true
	}
	last := tx.ID()
	_ = tx.Rollback()
	return last >= id
}

// classifiedError is an error commitErr has already sorted under the
// failure policy: it is passed on as it is. Its text and what it wraps
// are its cause's.
type classifiedError struct{ err error }

func (e *classifiedError) Error() string { return e.err.Error() }

func (e *classifiedError) Unwrap() error { return e.err }
