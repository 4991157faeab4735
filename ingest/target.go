package ingest

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/messages"
)

// Target receives the documents a Synchronize produces. Implementations
// are safe for concurrent use by several goroutines.
type Target interface {
	// Add delivers new or changed documents; a document replaces an earlier
	// one with the same reference. It returns nil only when every document
	// has been durably handed over; otherwise an error wrapping ErrDelivery
	// (and ErrInvalidDocument when a document fails Validate, in which case
	// nothing was delivered). After an error some documents of the call may
	// already have been delivered; sending them again is harmless because
	// delivery replaces by reference. When every document but some was
	// delivered, each of those refused on its own, the error's cause is a
	// *PartialError naming them (errors.As). Add does not retain docs.
	Add(ctx context.Context, docs []*Document) error
	// Remove deletes documents by reference, with Add's error contract.
	Remove(ctx context.Context, refs []string) error
	// Close releases resources. Deliveries in progress finish first; later
	// ones fail with ErrClosed. Closing twice is harmless.
	Close() error
	// Describe returns a short description (type and destination) for logs
	// and TaskList, e.g. "IDX folder /var/lib/connector/ingest".
	Describe() string
}

// Target types accepted in Options.Type (case-insensitive).
const (
	TypeIDX   = "IDX"
	TypeJSONL = "JSONL"
	TypeCFS   = "CFS"
	TypeNone  = "NONE"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultBatchSize    = 100
	DefaultTimeout      = 30 * time.Second
	DefaultMaxFileBytes = 64 << 20
)

// Options configure a target. The zero value of every field but Type,
// Directory, Host and Port is a usable default. Names in parentheses are
// the [Ingestion] configuration keys that Open's errors refer to.
type Options struct {
	// Type is IDX (the default when empty), JSONL, CFS or NONE
	// (IngesterType).
	Type string
	// Directory is the output folder of IDX and JSONL; created if missing,
	// and must be writable (IngestDirectory).
	Directory string
	// Host and Port locate the CFS ACI port (IngestHost, IngestPort).
	Host string
	Port int
	// SSL sends to CFS over HTTPS (IngestSSL).
	SSL bool
	// TLSConfig customises HTTPS (CA pool, client certificate); nil means
	// the system roots. Used only with SSL.
	TLSConfig *tls.Config
	// Timeout bounds one CFS request, connection to reply
	// (IngestTimeout); default DefaultTimeout.
	Timeout time.Duration
	// BatchSize is the most documents (or references) per IDX file, JSONL
	// batch or CFS request (IngestBatchSize); larger calls are split;
	// default DefaultBatchSize.
	BatchSize int
	// MaxFileBytes is the size at which the JSONL target starts a new file;
	// default DefaultMaxFileBytes, which the server uses (there is no
	// [Ingestion] key for it: IngestMaxFileBytes in Open's error is this
	// field). A batch never spans two files.
	MaxFileBytes int64
}

// Open validates opts and returns the target they describe. Bad options
// give a *messages.ParamError naming the setting (IngesterType,
// IngestDirectory, ...). Type NONE returns (nil, ErrDisabled). log may be
// nil.
func Open(opts Options, log *slog.Logger) (Target, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "ingest")
	typ := strings.ToUpper(strings.TrimSpace(opts.Type))
	if typ == "" {
		typ = TypeIDX
	}
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	var (
		t   Target
		err error
	)
	switch typ {
	case TypeNone:
		return nil, ErrDisabled
	case TypeIDX:
		t, err = openIDXFolder(opts, osFS{}, log)
	case TypeJSONL:
		t, err = openJSONL(opts, osFS{}, log)
	case TypeCFS:
		t, err = openCFS(opts, log)
	default:
		return nil, messages.Invalid("IngesterType", opts.Type, "must be IDX, JSONL, CFS or NONE")
	}
	if err != nil {
		return nil, err
	}
	log.Info("ingestion target opened", "target", t.Describe())
	return t, nil
}

// withDefaults fills zero fields and rejects negative ones.
func (o *Options) withDefaults() error {
	switch {
	case o.BatchSize < 0:
		return messages.Invalid("IngestBatchSize", strconv.Itoa(o.BatchSize), "must be a positive number")
	case o.Timeout < 0:
		return messages.Invalid("IngestTimeout", o.Timeout.String(), "must be positive")
	case o.MaxFileBytes < 0:
		return messages.Invalid("IngestMaxFileBytes", strconv.FormatInt(o.MaxFileBytes, 10), "must be a positive number")
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	return nil
}

// openDir validates and prepares the folder of a folder target.
func openDir(opts Options) (string, error) {
	if strings.TrimSpace(opts.Directory) == "" {
		return "", messages.Missing("IngestDirectory")
	}
	if err := prepareDir(opts.Directory); err != nil {
		return "", messages.Invalid("IngestDirectory", opts.Directory, err.Error())
	}
	stampAbove(opts.Directory)
	return absDir(opts.Directory), nil
}

// chunks splits n items into runs of at most size, calling fn with each
// [lo, hi) range until fn fails.
func chunks(n, size int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += size {
		if err := fn(lo, min(lo+size, n)); err != nil {
			return err
		}
	}
	return nil
}
