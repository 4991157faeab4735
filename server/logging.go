package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/connectorhq/connector/config"
)

// newLogger builds the process logger from [Logging].
func newLogger(l config.Logging, out io.Writer) (*slog.Logger, io.Closer, error) {
	var closer io.Closer
	if l.File != "" && l.File != "-" {
		if err := os.MkdirAll(filepath.Dir(l.File), 0o750); err != nil {
			return nil, nil, fmt.Errorf("server: [Logging] LogFile %s: %w", l.File, err)
		}
		f, err := os.OpenFile(l.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("server: [Logging] LogFile %s: %w", l.File, err)
		}
		out, closer = f, f
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
	return slog.New(h), closer, nil
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
