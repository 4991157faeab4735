//go:build !linux

package store

// roomFor reports whether the file system of dir has need bytes free: it
// cannot be told here, so making the segment is the test.
func roomFor(dir string, need int64) bool { return true }
