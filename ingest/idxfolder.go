package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// File name extensions of the IDX folder target.
const (
	ExtIDX     = ".idx" // documents added, in IDX (WriteIDX)
	ExtRemoval = ".del" // references removed (#DREDELETEREF lines)
	extTemp    = ".tmp"
)

// idxFolder writes each batch to its own file in a folder; see the package
// documentation for the layout.
type idxFolder struct {
	dir      string
	fs       fileSystem
	log      *slog.Logger
	batch    int
	instance string
	tmpSeq   atomic.Uint64

	// mu is held shared by deliveries and exclusively by Close, so Close
	// waits for deliveries in progress.
	mu     sync.RWMutex
	closed bool
	// renameMu orders the renames: a file's stamp is taken and the file
	// renamed to it under this lock, so within one target the files appear
	// in the folder in the order of their names.
	renameMu sync.Mutex
}

// bufPool recycles render buffers; buffers grown past maxPooledBuf by a
// huge batch are left to the garbage collector.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooledBuf = 4 << 20

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}

func openIDXFolder(opts Options, fs fileSystem, log *slog.Logger) (*idxFolder, error) {
	dir, err := openDir(opts)
	if err != nil {
		return nil, err
	}
	id, err := newInstanceID()
	if err != nil {
		return nil, err
	}
	return &idxFolder{dir: dir, fs: fs, log: log, batch: opts.BatchSize, instance: id}, nil
}

// Describe implements Target.
func (t *idxFolder) Describe() string { return "IDX folder " + t.dir }

// Add implements Target: one .idx file per BatchSize documents.
func (t *idxFolder) Add(ctx context.Context, docs []*Document) error {
	op := fmt.Sprintf("IDX add of %d documents to %s", len(docs), t.dir)
	if err := validateAll(docs); err != nil {
		return delivery(op, err)
	}
	return t.deliver(ctx, op, len(docs), ExtIDX, func(b []byte, lo, hi int) []byte {
		b = slices.Grow(b, idxSize(docs[lo:hi])) // one allocation, not a doubling series
		for _, d := range docs[lo:hi] {
			b = appendIDX(b, d)
		}
		return b
	})
}

// Remove implements Target: one .del file per BatchSize references.
func (t *idxFolder) Remove(ctx context.Context, refs []string) error {
	op := fmt.Sprintf("IDX removal of %d references in %s", len(refs), t.dir)
	if err := validateRefs(refs); err != nil {
		return delivery(op, err)
	}
	return t.deliver(ctx, op, len(refs), ExtRemoval, func(b []byte, lo, hi int) []byte {
		return appendDeleteRefs(b, refs[lo:hi])
	})
}

// deliver writes n items in chunks of t.batch, each rendered by render into
// a temporary file; fsyncs those files together (syncFiles); then renames
// them all, in order, to their final names and fsyncs the folder once.
func (t *idxFolder) deliver(ctx context.Context, op string, n int, ext string, render func(b []byte, lo, hi int) []byte) error {
	if n == 0 {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return delivery(op, ErrClosed)
	}
	bp := getBuf()
	defer putBuf(bp)
	var (
		temps []string
		files []file
	)
	removeTemps := func(from int) {
		for _, tmp := range temps[from:] {
			_ = t.fs.Remove(tmp) // best effort: a leftover .tmp file is ignored by consumers
		}
	}
	closeFiles := func() {
		for _, f := range files {
			_ = f.Close() // after an error already reported
		}
		files = nil
	}
	err := chunks(n, t.batch, func(lo, hi int) error {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		*bp = render((*bp)[:0], lo, hi)
		tmp := filepath.Join(t.dir, "."+t.instance+"-"+strconv.FormatUint(t.tmpSeq.Add(1), 10)+extTemp)
		f, err := t.writeFile(tmp, *bp)
		if err != nil {
			return err
		}
		temps, files = append(temps, tmp), append(files, f)
		return nil
	})
	if err == nil {
		err = t.syncFiles(temps, files)
		files = nil // closed by syncFiles
	}
	if err != nil {
		closeFiles()
		removeTemps(0)
		return delivery(op, err)
	}
	names := make([]string, 0, len(temps))
	t.renameMu.Lock()
	for i, tmp := range temps {
		final := filepath.Join(t.dir, stampedName(nextStamp(), t.instance, ext))
		if err := t.fs.Rename(tmp, final); err != nil {
			t.renameMu.Unlock()
			removeTemps(i)
			return delivery(op, fmt.Errorf("rename %s: %w", tmp, err))
		}
		names = append(names, final)
	}
	t.renameMu.Unlock()
	if err := t.fs.SyncDir(t.dir); err != nil {
		return delivery(op, fmt.Errorf("fsync %s: %w", t.dir, err))
	}
	t.log.Debug("ingestion files written", "files", names, "items", n)
	return nil
}

// maxParallelSyncs bounds the fsyncs syncFiles runs at once.
const maxParallelSyncs = 8

// syncFiles fsyncs and closes files (named paths), several at once when
// there are several: the file system commits its journal once for the
// fsyncs that wait together, where one after the other would commit it
// once each. It returns the first error; every file is closed.
func (t *idxFolder) syncFiles(paths []string, files []file) error {
	syncClose := func(i int) error {
		err := files[i].Sync()
		if err != nil {
			err = fmt.Errorf("fsync %s: %w", paths[i], err)
		}
		if cerr := files[i].Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", paths[i], cerr)
		}
		return err
	}
	if len(files) == 1 {
		return syncClose(0)
	}
	errs := make([]error, len(files))
	sem := make(chan struct{}, maxParallelSyncs)
	var wg sync.WaitGroup
	for i := range files {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = syncClose(i)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// writeFile creates path (which must not exist) and writes data; the
// caller syncs and closes the file. On failure it closes and removes what
// it created.
func (t *idxFolder) writeFile(path string, data []byte) (file, error) {
	f, err := t.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		_ = t.fs.Remove(path) // the error reported is the write's
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return f, nil
}

// Close implements Target.
func (t *idxFolder) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return nil
}
