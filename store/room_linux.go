//go:build linux

package store

import "syscall"

// roomFor reports whether the file system of dir has need bytes free for
// an unprivileged writer (true when that cannot be told).
func roomFor(dir string, need int64) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return true
	}
	return int64(st.Bavail)*st.Bsize >= need
}
