//go:build !linux

package store

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

// allocate extends f to size bytes.
func allocate(f *os.File, size int64) error { return f.Truncate(size) }
