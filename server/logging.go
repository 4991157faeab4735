package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	"github.com/connectorhq/connector/config"
)

// newLogger builds the process logger from [Logging]; an error is the log
// file's, which cannot be created or opened.
func newLogger(l config.Logging, out io.Writer) (*slog.Logger, io.Closer, error) {
	var closer io.Closer
	if l.File != "" && l.File != "-" {
		// The errors name the path (*fs.PathError); Start says where the
		// configuration sets it.
		if err := os.MkdirAll(filepath.Dir(l.File), 0o750); err != nil {
			return nil, nil, err
		}
		f, err := openLogFile(l.File)
		if err != nil {
			return nil, nil, err
		}
		lf := &logFile{path: l.File, f: f}
		out, closer = lf, lf
	}
	if out == nil {
		out = os.Stderr
	}
	var level slog.Level
	switch l.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(out, opts)
	if l.Format == "json" {
		h = slog.NewJSONHandler(out, opts)
	}
	return slog.New(uniqueKeys{h: h}), closer, nil
}

// uniqueKeys keeps one value per top-level key in every record: a logger
// derived from another one (the crawl's from the HTTP connector's, both
// saying which component they are) would otherwise write "component" twice,
// which a JSON log reader either rejects or reads as the last one. The
// attributes added with With are held here, the later value of a key
// replacing the earlier one, and a record's own attribute replaces a held
// one of the same key. After WithGroup, keys are qualified by the group and
// cannot collide with the held ones: the held attributes are then handed to
// the handler and everything is passed through.
type uniqueKeys struct {
	h     slog.Handler
	attrs []slog.Attr // held With attributes, one per key, in order
}

func (u uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool { return u.h.Enabled(ctx, l) }

func (u uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
	if len(u.attrs) == 0 {
		return u.h.Handle(ctx, r)
	}
	own := make(map[string]bool, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		own[a.Key] = true
		return true
	})
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	for _, a := range u.attrs {
		if !own[a.Key] {
			out.AddAttrs(a)
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return u.h.Handle(ctx, out)
}

func (u uniqueKeys) WithAttrs(as []slog.Attr) slog.Handler {
	held := append([]slog.Attr(nil), u.attrs...)
	for _, a := range as {
		if i := slices.IndexFunc(held, func(h slog.Attr) bool { return h.Key == a.Key }); i >= 0 {
			held = slices.Delete(held, i, i+1)
		}
		held = append(held, a)
	}
	return uniqueKeys{h: u.h, attrs: held}
}

func (u uniqueKeys) WithGroup(name string) slog.Handler {
	if name == "" {
		return u
	}
	return u.h.WithAttrs(u.attrs).WithGroup(name)
}

// libHandler passes protoactor's records to our handler, keeping its INFO
// chatter (actor system started, dead letters) out unless LogLevel=debug.
type libHandler struct {
	h     slog.Handler
	debug bool
}

func (l libHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	if !l.debug && lv < slog.LevelWarn {
		return false
	}
	return l.h.Enabled(ctx, lv)
}

func (l libHandler) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }

func (l libHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return libHandler{h: l.h.WithAttrs(a), debug: l.debug}
}

func (l libHandler) WithGroup(n string) slog.Handler {
	return libHandler{h: l.h.WithGroup(n), debug: l.debug}
}

// openLogFile opens [Logging] LogFile for appending. O_NONBLOCK: a file
// that is a named pipe (FIFO) which no process reads is refused at once
// (ENXIO) instead of waiting in the open, for ever, for a reader (start-up,
// or a SIGHUP's reopen, hung). A FIFO that has a reader is written to as
// it reads (Go waits in its poller when the pipe is full); O_NONBLOCK
// changes nothing for a regular file or a character device.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0o640)
	if errors.Is(err, syscall.ENXIO) {
		if fi, serr := os.Stat(path); serr == nil && fi.Mode()&fs.ModeNamedPipe != 0 {
			return nil, fmt.Errorf("%s is a named pipe (FIFO) and no process reads it", path)
		}
	}
	return f, err
}

// logFile is [Logging] LogFile, which reopen opens again by its path
// (SIGHUP: after logrotate has moved it away, the log goes on in a new
// file instead of the moved one). mu orders the writes with the swap.
type logFile struct {
	path   string
	mu     sync.Mutex
	f      *os.File
	closed bool
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// reopen opens the file at the log's path and writes there from now on.
// If that fails, the log goes on in the file it was in.
func (l *logFile) reopen() error {
	f, err := openLogFile(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return f.Close()
	}
	old := l.f
	l.f = f
	return old.Close()
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.f.Close()
}
