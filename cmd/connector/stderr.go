package main

import (
	"errors"
	"io"
	"sync/atomic"
	"syscall"
)

// brokenPipe is the server's standard error: once a write found the pipe
// closed (EPIPE: whoever read it has gone, and a pipe never gets a reader
// back), the later writes are dropped and succeed, so the log costs
// nothing more and nothing that writes to it fails. The server itself
// goes on: run catches SIGPIPE, whose default for descriptors 1 and 2
// would end the process at that first write.
type brokenPipe struct {
	w      io.Writer
	broken atomic.Bool
}

func (b *brokenPipe) Write(p []byte) (int, error) {
	if b.broken.Load() {
		return len(p), nil
	}
	n, err := b.w.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		b.broken.Store(true)
		return len(p), nil
	}
	return n, err
}
