package ingest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"
)

// file is what the folder targets need of an open file.
type file interface {
	io.Writer
	Sync() error
	Close() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
}

// fileSystem is the seam between the folder targets and the disk, so tests
// can inject failures (disk full, failed fsync, failed rename).
type fileSystem interface {
	// OpenFile opens name like os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (file, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creations, renames) durable.
	SyncDir(dir string) error
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // a nil *os.File must not become a non-nil file
	}
	return f, nil
}

func (osFS) Rename(oldpath, newpath string) error  { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error              { return os.Remove(name) }
func (osFS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// lastStamp is the last file stamp handed out in this process.
var lastStamp atomic.Int64

// nextStamp returns a strictly increasing stamp: the wall clock in
// nanoseconds since 1970, or one more than the previous stamp when the clock
// has not moved on (or went back). It is process-wide, so no two targets in
// one process ever share a stamp.
func nextStamp() int64 {
	for {
		prev := lastStamp.Load()
		next := max(time.Now().UnixNano(), prev+1)
		if lastStamp.CompareAndSwap(prev, next) {
			return next
		}
	}
}

// newInstanceID returns 16 random hex digits naming one open target, so
// files of different processes (or of a restart after the clock went back)
// never collide.
func newInstanceID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("ingest: instance id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// stampedNameRE matches the names the folder targets give their files
// (stampedName), the stamp first.
var stampedNameRE = regexp.MustCompile(`^([0-9]{20})-[0-9a-f]{16}(\.idx|\.del|\.jsonl)$`)

// stampAbove makes the stamps this process hands out from now on larger
// than those of the files in dir, so that a target's files sort after
// every file already there that a consumer may not have applied yet,
// even when the clock was set back since they were written (a restart on
// a virtual machine restored from a snapshot, a clock that NTP corrected
// after boot). A folder that cannot be read is left to the clock.
func stampAbove(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var top int64
	for _, e := range entries {
		m := stampedNameRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		// Past 2116 is no clock's: ignored, so that no name can bring the
		// stamps near the end of int64.
		if v, err := strconv.ParseInt(m[1], 10, 64); err == nil && v < 1<<62 {
			top = max(top, v)
		}
	}
	for {
		prev := lastStamp.Load()
		if prev >= top || lastStamp.CompareAndSwap(prev, top) {
			return
		}
	}
}

// stampedName returns "<stamp, 20 digits>-<instance><ext>": fixed width, so
// names sort by stamp.
func stampedName(stamp int64, instance, ext string) string {
	s := strconv.FormatInt(stamp, 10)
	const width = 20
	b := make([]byte, 0, width+1+len(instance)+len(ext))
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	b = append(b, s...)
	b = append(b, '-')
	b = append(b, instance...)
	b = append(b, ext...)
	return string(b)
}

// prepareDir creates dir if needed and checks that files can be created in
// it, so a misconfigured folder is reported when the target opens rather
// than at the first delivery. The error says what is wrong with dir; Open
// turns it into a *messages.ParamError for IngestDirectory.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cannot create it: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*.tmp")
	if err != nil {
		return fmt.Errorf("is not writable: %w", err)
	}
	name := probe.Name()
	cerr := probe.Close()
	if probeWritten != nil {
		probeWritten(name)
	}
	rerr := os.Remove(name)
	if cerr != nil {
		return fmt.Errorf("is not writable: %w", cerr)
	}
	// A probe already gone was removed by a target opening beside this
	// one, alone in the folder until this one holds its lock, which took
	// the probe for one a crash left (removeStale): gone is what the
	// removal was for.
	if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove files in it: %w", rerr)
	}
	return nil
}

// probeWritten, when set (tests only), is called by prepareDir between
// the creation of its probe and its removal.
var probeWritten func(name string)

// absDir returns dir made absolute (so Describe and logs are unambiguous).
func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}
