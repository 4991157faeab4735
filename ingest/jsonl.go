package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// ExtJSONL is the file name extension of the JSON Lines target.
const ExtJSONL = ".jsonl"

// jsonlAdd and jsonlRemove are the two line shapes (see the package doc).
type jsonlAdd struct {
	Op         string  `json:"op"`
	Reference  string  `json:"reference"`
	Fields     []Field `json:"fields"`
	Content    string  `json:"content"`
	Source     []byte  `json:"source,omitempty"`
	SourceType string  `json:"sourcetype,omitempty"`
}

type jsonlRemove struct {
	Op        string `json:"op"`
	Reference string `json:"reference"`
}

// jsonlTarget appends batches of lines to a file, fsyncing it once per
// call, and starts a new file when the current one reaches MaxFileBytes.
type jsonlTarget struct {
	dir      string
	fs       fileSystem
	log      *slog.Logger
	batch    int
	maxBytes int64
	instance string

	mu     sync.Mutex // serialises appends; guards the fields below
	closed bool
	buf    *bytes.Buffer // batch being encoded, reused between calls
	enc    *json.Encoder // writes to buf
	f      file          // current file, nil before the first batch or after a failure
	name   string        // its path
	size   int64         // bytes of complete batches in it
	// unsynced: batches were written to f since its last fsync.
	unsynced bool
}

func openJSONL(opts Options, fs fileSystem, log *slog.Logger) (*jsonlTarget, error) {
	dir, err := openDir(opts)
	if err != nil {
		return nil, err
	}
	id, err := newInstanceID()
	if err != nil {
		return nil, err
	}
	return &jsonlTarget{dir: dir, fs: fs, log: log, batch: opts.BatchSize, maxBytes: opts.MaxFileBytes, instance: id}, nil
}

// Describe implements Target.
func (t *jsonlTarget) Describe() string { return "JSONL folder " + t.dir }

// Add implements Target.
func (t *jsonlTarget) Add(ctx context.Context, docs []*Document) error {
	op := fmt.Sprintf("JSONL add of %d documents to %s", len(docs), t.dir)
	if err := validateAll(docs); err != nil {
		return delivery(op, err)
	}
	return t.deliver(ctx, op, len(docs), func(enc *json.Encoder, i int) error {
		d := docs[i]
		fields := d.Fields
		if fields == nil {
			fields = []Field{}
		}
		return enc.Encode(jsonlAdd{Op: "add", Reference: d.Reference, Fields: fields, Content: d.Content, Source: d.Source, SourceType: d.SourceType})
	})
}

// Remove implements Target.
func (t *jsonlTarget) Remove(ctx context.Context, refs []string) error {
	op := fmt.Sprintf("JSONL removal of %d references in %s", len(refs), t.dir)
	if err := validateRefs(refs); err != nil {
		return delivery(op, err)
	}
	return t.deliver(ctx, op, len(refs), func(enc *json.Encoder, i int) error {
		return enc.Encode(jsonlRemove{Op: "remove", Reference: refs[i]})
	})
}

// deliver encodes n items in batches of t.batch lines, appends each batch
// with one write, and fsyncs the file once for them all (and a full file
// before it is closed).
func (t *jsonlTarget) deliver(ctx context.Context, op string, n int, encode func(enc *json.Encoder, i int) error) error {
	if n == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return delivery(op, ErrClosed)
	}
	if t.buf == nil || t.buf.Cap() > maxPooledBuf {
		// (Re)allocate, dropping a buffer grown by a huge batch.
		t.buf = new(bytes.Buffer)
		t.enc = json.NewEncoder(t.buf)
		t.enc.SetEscapeHTML(false)
	}
	buf, enc := t.buf, t.enc
	err := chunks(n, t.batch, func(lo, hi int) error {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		buf.Reset()
		for i := lo; i < hi; i++ {
			if err := encode(enc, i); err != nil {
				return fmt.Errorf("encode: %w", err)
			}
		}
		return t.appendBatch(buf.Bytes())
	})
	if err == nil {
		err = t.sync()
	}
	if err != nil {
		return delivery(op, err)
	}
	return nil
}

// sync fsyncs the current file if batches were written to it since its
// last fsync; a failed fsync abandons it. t.mu is held.
func (t *jsonlTarget) sync() error {
	if t.f == nil || !t.unsynced {
		return nil
	}
	if err := t.f.Sync(); err != nil {
		name := t.name
		t.abandon("fsync failed", err)
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	t.unsynced = false
	return nil
}

// appendBatch writes data to the current file (starting a new one when
// needed; the full one is fsynced first); deliver fsyncs it. On a failed
// write it cuts the file back to its last complete batch; if that fails
// too, or the fsync of a full file fails, it abandons the file so the
// next batch starts a new one. t.mu is held.
func (t *jsonlTarget) appendBatch(data []byte) error {
	if err := t.checkTaken(); err != nil {
		return err
	}
	if t.f != nil && t.size > 0 && t.size+int64(len(data)) > t.maxBytes {
		if err := t.sync(); err != nil {
			return err
		}
		if err := t.f.Close(); err != nil {
			t.log.Warn("closing full ingestion file failed", "file", t.name, "err", err)
		}
		t.f = nil
	}
	if t.f == nil {
		if err := t.startFile(); err != nil {
			return err
		}
	}
	if _, err := t.f.Write(data); err != nil {
		if terr := t.f.Truncate(t.size); terr != nil {
			t.abandon("write and truncate failed", terr)
		}
		return fmt.Errorf("write %s: %w", t.name, err)
	}
	t.size += int64(len(data))
	t.unsynced = true
	return nil
}

// checkTaken makes sure the current file is still in the folder under its
// name: a consumer may have taken it (removed it once read, or moved it
// away), and what is appended to it then never reaches the folder. The
// next batch then starts a new file; if batches of the call in progress
// were already written to the taken file (not fsynced yet, so not
// reported delivered), the call fails, and is sent again whole. t.mu is
// held.
func (t *jsonlTarget) checkTaken() error {
	if t.f == nil {
		return nil
	}
	named, err := t.fs.Stat(t.name)
	if err == nil {
		var open os.FileInfo
		if open, err = t.f.Stat(); err == nil && os.SameFile(named, open) {
			return nil
		}
	}
	name, unsynced := t.name, t.unsynced
	t.log.Info("ingestion file moved or removed by its reader; starting a new one", "file", name)
	_ = t.f.Close() // taken: nothing more goes to it
	t.f = nil
	if unsynced {
		return fmt.Errorf("%s was moved or removed while this call wrote to it", name)
	}
	return nil
}

// startFile creates the next file and makes its directory entry durable.
func (t *jsonlTarget) startFile() error {
	name := filepath.Join(t.dir, stampedName(nextStamp(), t.instance, ExtJSONL))
	f, err := t.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := t.fs.SyncDir(t.dir); err != nil {
		_ = f.Close()
		_ = t.fs.Remove(name) // empty and never announced
		return fmt.Errorf("fsync %s: %w", t.dir, err)
	}
	t.f, t.name, t.size, t.unsynced = f, name, 0, false
	t.log.Debug("ingestion file started", "file", name)
	return nil
}

// abandon stops appending to the current file. Its tail may hold part of
// the failed batch (see the package doc on torn lines).
func (t *jsonlTarget) abandon(why string, err error) {
	t.log.Warn("ingestion file abandoned", "file", t.name, "why", why, "err", err)
	_ = t.f.Close() // the file is already in error
	t.f = nil
}

// Close implements Target.
func (t *jsonlTarget) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	if err != nil {
		return fmt.Errorf("ingest: close %s: %w", t.name, err)
	}
	return nil
}
