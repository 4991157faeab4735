package mailfetch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/store"
)

// The datastore of a task (one store.Datastore, named after the task in
// upper case) holds:
//
//	m:task                    restsync.TaskMeta: the actions run on the task (TaskList)
//	c:<collection>            the transport's cursor of the collection, written
//	                          when a Synchronize has read the collection to the end
//	r:<collection>\x00<key>   record: one delivered message (another task
//	                          of the same mailbox may mark it Again: shared.go)
//	s:                        {"g":..,"m":..}: the shape (document settings) of
//	                          the records written before records kept theirs
//	f:<collection>\x00<key>   {"n":N,"p":P,"t":T}: a message that could not
//	                          be read (mailbox.Message.Err) by the last N runs
//	                          that tried, P of them refused for good (not
//	                          mailbox.ErrTransient), the first at T (Unix
//	                          seconds), deleted once it is delivered or gone
//
// Nothing secret is stored: no password, no token, no message content.

const (
	cursorPrefix  = "c:"
	recordPrefix  = "r:"
	failurePrefix = "f:"
)

// record is what the connector keeps about one delivered message.
type record struct {
	Version string   `json:"v"`           // mailbox.Meta.Version when delivered
	Ref     string   `json:"r"`           // the message document's reference
	Kids    []string `json:"k,omitempty"` // the sections of its attachment documents
	Title   string   `json:"t,omitempty"` // its subject (Identifiers)
	Size    int64    `json:"s,omitempty"`
	// Shape is the fingerprint of the settings its documents were built
	// with (shape.fp); "" for a record written before there was one
	// (the task's legacy shape then, shapeKey).
	Shape string `json:"g,omitempty"`
	// Cut is the MaxMessageBytes the message was cut at (Truncated), 0
	// when it was read whole.
	Cut int64 `json:"x,omitempty"`
	// Again is set by another task of the same mailbox that let the
	// message go while this record held it (shared.keep): the document
	// in the index may be that task's, so the next Synchronize delivers
	// the message again, whatever its version.
	Again bool `json:"a,omitempty"`
}

// encode returns the record as json.Marshal writes it, byte for byte
// (FuzzRecordEncodeIsJSON), written by hand: json.Marshal's reflection was
// a fortieth of a synchronize's CPU, one record per message.
func (r *record) encode() []byte {
	n := 48 + len(r.Version) + len(r.Ref) + len(r.Title) + len(r.Shape)
	for _, k := range r.Kids {
		n += len(k) + 3
	}
	b := make([]byte, 0, n+n/8)
	b = append(b, `{"v":`...)
	b = appendJSONString(b, r.Version)
	b = append(b, `,"r":`...)
	b = appendJSONString(b, r.Ref)
	if len(r.Kids) > 0 {
		b = append(b, `,"k":[`...)
		for i, k := range r.Kids {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
		}
		b = append(b, ']')
	}
	if r.Title != "" {
		b = append(b, `,"t":`...)
		b = appendJSONString(b, r.Title)
	}
	if r.Size != 0 {
		b = append(b, `,"s":`...)
		b = strconv.AppendInt(b, r.Size, 10)
	}
	if r.Shape != "" {
		b = append(b, `,"g":`...)
		b = appendJSONString(b, r.Shape)
	}
	if r.Cut != 0 {
		b = append(b, `,"x":`...)
		b = strconv.AppendInt(b, r.Cut, 10)
	}
	if r.Again {
		b = append(b, `,"a":true`...)
	}
	return append(b, '}')
}

// appendJSONString appends s quoted as encoding/json quotes a string:
// HTML's <, > and & escaped, U+2028 and U+2029 escaped, a byte that is not
// UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func recordKey(collection, key string) []byte {
	return []byte(recordPrefix + collection + "\x00" + key)
}

func cursorKey(collection string) []byte { return []byte(cursorPrefix + collection) }

func failureKey(collection, key string) []byte {
	return []byte(failurePrefix + collection + "\x00" + key)
}

// failure is what the connector keeps about a message it could not read.
// An entry written before P and T were kept has neither: it is given up
// after N runs, as then.
type failure struct {
	N int   `json:"n"`           // the runs that tried, in a row
	P int   `json:"p,omitempty"` // of them, those refused for good (not mailbox.ErrTransient)
	T int64 `json:"t,omitempty"` // when the first of them failed, Unix seconds
}

func (f failure) encode() []byte {
	b := []byte(`{"n":` + strconv.Itoa(f.N))
	if f.P != 0 {
		b = append(b, `,"p":`...)
		b = strconv.AppendInt(b, int64(f.P), 10)
	}
	if f.T != 0 {
		b = append(b, `,"t":`...)
		b = strconv.AppendInt(b, f.T, 10)
	}
	return append(b, '}')
}

// failed notes one more run that could not read the message, at now,
// for err.
func (f failure) failed(err error, now time.Time) failure {
	f.N++
	if !errors.Is(err, mailbox.ErrTransient) {
		f.P++
	}
	if f.T == 0 {
		f.T = now.Unix()
	}
	return f
}

// givenUp reports whether the message is no longer read again until it
// changes: refused for good by maxMessageAttempts runs, or failing for
// transientGiveUp and maxMessageAttempts runs, the server's failures
// included.
func (f failure) givenUp(now time.Time) bool {
	return f.P >= maxMessageAttempts || f.N >= maxMessageAttempts && now.Unix()-f.T >= int64(transientGiveUp/time.Second)
}

// state is the whole datastore of a task, read once per action: records by
// collection, cursors, the messages that could not be read, by
// collection, and the legacy shape (nil when none was written yet).
type state struct {
	records map[string]map[string]*record
	cursors map[string][]byte
	failed  map[string]map[string]failure
	legacy  *shape
}

// shapeKey holds the shape of the records that have none: those written
// before records kept the settings they were built with, which are taken
// to be the settings of the first run that wrote it.
var shapeKey = []byte("s:")

// shape is what of a task's settings shapes a message's documents: a
// fingerprint of those that may change any message's documents
// (IngestAttachments, ExtractText, ExtractMaxTextBytes, MaxMimeDepth,
// MaxMimeParts) and of the extractor's version (extract.Version: an
// upgrade that extracts otherwise delivers every message again, once),
// and MaxMessageBytes, which changes only the messages larger than it, or
// cut by it before.
type shape struct {
	FP  string `json:"g"`
	Max int64  `json:"m"`
}

func shapeOf(s *settings) shape {
	h := sha256.Sum256(fmt.Appendf(nil, "attachments=%t extract=%t text=%d depth=%d parts=%d xv=%d",
		s.IngestAttachments, s.ExtractText, s.ExtractTextBytes, s.MIME.MaxDepth, s.MIME.MaxParts, extract.Version))
	return shape{FP: hex.EncodeToString(h[:6]), Max: s.MaxMessageBytes}
}

// stale reports whether rec's documents were built otherwise than now
// settings would build them, legacy being the shape of records without
// one: they are delivered again.
func (now shape) stale(rec *record, legacy shape) bool {
	fp, cut := rec.Shape, rec.Cut
	if fp == "" {
		fp = legacy.FP
		if rec.Size > legacy.Max {
			cut = legacy.Max
		}
	}
	switch {
	case fp != now.FP:
		return true
	case cut != 0:
		return cut != now.Max // cut at another limit
	default:
		return rec.Size > now.Max // read whole, cut now
	}
}

func loadState(ds store.Datastore) (*state, error) {
	st := &state{records: map[string]map[string]*record{}, cursors: map[string][]byte{}, failed: map[string]map[string]failure{}}
	err := ds.ForEach(func(k, v []byte) error {
		switch {
		case bytes.HasPrefix(k, []byte(recordPrefix)):
			coll, key, ok := strings.Cut(string(k[len(recordPrefix):]), "\x00")
			if !ok {
				return nil
			}
			r := &record{}
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
			m := st.records[coll]
			if m == nil {
				m = map[string]*record{}
				st.records[coll] = m
			}
			m[key] = r
		case bytes.HasPrefix(k, []byte(failurePrefix)):
			coll, key, ok := strings.Cut(string(k[len(failurePrefix):]), "\x00")
			if !ok {
				return nil
			}
			var f failure
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
			m := st.failed[coll]
			if m == nil {
				m = map[string]failure{}
				st.failed[coll] = m
			}
			m[key] = f
		case bytes.Equal(k, shapeKey):
			st.legacy = &shape{}
			if err := json.Unmarshal(v, st.legacy); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
		case bytes.HasPrefix(k, []byte(cursorPrefix)):
			st.cursors[string(k[len(cursorPrefix):])] = bytes.Clone(v)
		}
		return nil
	})
	return st, err
}

// known is a collection's records as a mailbox.Known. A record whose
// documents the settings now would build otherwise (stale) has a version
// no message has, so that the message is fetched again; then the cursor
// is none, so that the transport compares every message's version (a
// cursor would say only what changed in the mailbox).
type known struct {
	cursor  []byte
	records map[string]*record
	failed  map[string]failure // the messages that could not be read (mailbox.Unread)
	stale   func(*record) bool // nil: none is
}

// newKnown returns the records of a collection, and the messages of it
// that could not be read, as a mailbox.Known (and mailbox.Unread).
func newKnown(cursor []byte, recs map[string]*record, failed map[string]failure, now, legacy shape) *known {
	k := &known{cursor: cursor, records: recs, failed: failed}
	for _, r := range recs {
		if now.stale(r, legacy) {
			k.cursor, k.stale = nil, func(r *record) bool { return now.stale(r, legacy) }
			break
		}
	}
	return k
}

func (k *known) Cursor() []byte { return k.cursor }
func (k *known) Version(key string) (string, bool) {
	r, ok := k.records[key]
	if !ok {
		return "", false
	}
	if k.stale != nil && k.stale(r) {
		return r.Version + "\x00stale", true
	}
	return r.Version, true
}
func (k *known) Keys(fn func(string)) {
	for key := range k.records {
		fn(key)
	}
}
func (k *known) Len() int { return len(k.records) }

var _ mailbox.Unread = (*known)(nil)

func (k *known) Unread(key string) bool {
	_, ok := k.failed[key]
	return ok
}
func (k *known) UnreadKeys(fn func(string)) {
	for key := range k.failed {
		fn(key)
	}
}
