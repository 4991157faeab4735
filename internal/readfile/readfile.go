// Package readfile reads the small files a configuration names (TLS
// certificates and keys, the AES key file) without letting a wrong path
// hang or exhaust the server: os.ReadFile of a FIFO waits for a writer for
// ever, and of a device such as /dev/zero grows without end, both while
// start-up ignores Ctrl-C.
package readfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Regular returns the content of the regular file at path (symbolic links
// followed), or an error naming path when it is no regular file (a folder,
// FIFO, device or socket) or holds more than limit bytes (a regular file
// larger than limit is refused by its size, before it is read). The file is
// opened without blocking, so a FIFO is refused rather than waited on.
// Errors are *fs.PathError, as os.ReadFile's are.
func Regular(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("not a regular file (%s)", Kind(st.Mode()))}
	}
	tooBig := &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("more than %d bytes: not the file expected here", limit)}
	if st.Size() > limit {
		return nil, tooBig // refused by its size, unread
	}
	// Read up to limit+1 all the same: the file may grow meanwhile.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err // *fs.PathError from File.Read
	}
	if int64(len(data)) > limit {
		return nil, tooBig
	}
	return data, nil
}

// Kind names what a file that is not a regular one is (mode m): "a
// folder", "a FIFO", "a socket", "a device", for an error that says why
// the file was refused.
func Kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "not a plain file"
}
