package httpfetch

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/connectorhq/connector/messages"
)

// Local files a request names are confined, with os.Root, to the folders
// the configuration allows: [Security] InsertFolders for Insert's <file>
// (file, tempfile), [Security] CollectFolders for Collect's Destination.
// Inside a folder, os.Root refuses ".." and symbolic links that lead out of
// it; non-regular files (devices, FIFOs, sockets) are refused too. Every
// refusal of a file to read is the same error, whatever the reason, so
// that a client cannot learn whether a file exists.

// errInsertFile is Insert's one answer for a file it will not read.
var errInsertFile = errors.New("the file is not in a folder that [Security] InsertFolders allows, or cannot be read")

// errCollectFolder is Collect's answer for a destination outside
// [Security] CollectFolders.
var errCollectFolder = errors.New("the folder is not inside a folder that [Security] CollectFolders allows")

// confined is a path inside one of the allowed folders: the folder, and
// the path relative to it (never empty, never starting with "..").
type confined struct {
	folder, rel string
}

// confine maps p to one of folders: a relative p is taken inside the
// first folder, an absolute one must lie (lexically) inside one of them.
// It touches no file.
func confine(folders []string, p string) (confined, bool) {
	p = strings.TrimSpace(p)
	if p == "" || len(folders) == 0 || strings.ContainsRune(p, 0) {
		return confined{}, false
	}
	if !filepath.IsAbs(p) {
		rel := filepath.Clean(p)
		if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return confined{}, false
		}
		return confined{folder: folders[0], rel: rel}, true
	}
	p = filepath.Clean(p)
	for _, f := range folders {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		return confined{folder: f, rel: rel}, true
	}
	return confined{}, false
}

// openInsertFile opens a file Insert names, read-only, inside
// [Security] InsertFolders. Any failure is errInsertFile.
func (r *Repository) openInsertFile(p string) (*os.File, confined, error) {
	c, ok := confine(r.cfg.Security.InsertFolders, p)
	if !ok || c.rel == "." {
		return nil, c, errInsertFile
	}
	root, err := os.OpenRoot(c.folder)
	if err != nil {
		return nil, c, errInsertFile
	}
	defer root.Close()
	// O_NONBLOCK: opening a FIFO must not wait for a writer; a regular
	// file reads the same with it.
	f, err := root.OpenFile(c.rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, c, errInsertFile
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, c, errInsertFile
	}
	return f, c, nil
}

// checkInsertFiles checks, when an Insert is submitted, that every file it
// names may be read, and that tempfile (which deletes the file) is
// allowed.
func (r *Repository) checkInsertFiles(docs []insertDoc) error {
	for _, d := range docs {
		switch d.fileType {
		case "file", "tempfile":
		default:
			continue
		}
		if d.fileType == "tempfile" && !r.cfg.Security.AllowTempFileDeletion {
			return messages.Invalid("InsertXML", d.reference, "<file><type>tempfile deletes the file after ingestion, which needs [Security] AllowTempFileDeletion=true; use <type>file")
		}
		f, _, err := r.openInsertFile(d.path)
		if err != nil {
			return messages.Invalid("InsertXML", d.path, err.Error())
		}
		_ = f.Close()
	}
	return nil
}

// readInsertFile reads a file Insert names, at most limit bytes: a larger
// file is refused without being read further.
func (r *Repository) readInsertFile(p string, limit int64) ([]byte, error) {
	f, _, err := r.openInsertFile(p)
	if err != nil {
		return nil, fmt.Errorf("httpfetch: insert %s: %w", p, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > limit {
		return nil, fmt.Errorf("httpfetch: insert %s: the file is larger than MaxPageBytes (%d bytes)", p, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("httpfetch: insert %s: %w", p, errInsertFile)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("httpfetch: insert %s: the file is larger than MaxPageBytes (%d bytes)", p, limit)
	}
	return data, nil
}

// removeInsertFile deletes a tempfile after ingestion (inside
// [Security] InsertFolders only).
func (r *Repository) removeInsertFile(p string) error {
	c, ok := confine(r.cfg.Security.InsertFolders, p)
	if !ok || c.rel == "." {
		return errInsertFile
	}
	root, err := os.OpenRoot(c.folder)
	if err != nil {
		return errInsertFile
	}
	defer root.Close()
	return root.Remove(c.rel)
}

// collectDestination checks a Collect destination when the action is
// submitted: it must lie inside [Security] CollectFolders. Nothing is
// touched.
func (r *Repository) collectDestination(name, dir string) error {
	if _, ok := confine(r.cfg.Security.CollectFolders, dir); !ok {
		return messages.Invalid(name, dir, errCollectFolder.Error())
	}
	return nil
}

// writeCollected writes data to dir/name and the sidecar idx to
// dir/name.idx, dir inside [Security] CollectFolders, each through a
// temporary file renamed into place once both are written; on an error
// neither is left in place. The folder is created when missing.
func (r *Repository) writeCollected(dir, name string, data, idx []byte) error {
	c, ok := confine(r.cfg.Security.CollectFolders, dir)
	if !ok {
		return fmt.Errorf("httpfetch: collect: %s: %w", dir, errCollectFolder)
	}
	if err := os.MkdirAll(c.folder, 0o750); err != nil {
		return fmt.Errorf("httpfetch: collect: %w", err)
	}
	root, err := os.OpenRoot(c.folder)
	if err != nil {
		return fmt.Errorf("httpfetch: collect: %w", err)
	}
	defer root.Close()
	if err := root.MkdirAll(c.rel, 0o750); err != nil {
		return fmt.Errorf("httpfetch: collect: %s: %w", dir, err)
	}
	// Both files are written to temporary names first, then renamed into
	// place: a failure leaves neither half (an item without its sidecar)
	// behind.
	files := []struct {
		name, tmp string
		data      []byte
	}{{name: name, data: data}, {name: name + ".idx", data: idx}}
	clean := func(upTo int) {
		for _, f := range files[upTo:] {
			if f.tmp != "" {
				_ = root.Remove(f.tmp)
			}
		}
	}
	for i := range files {
		f := &files[i]
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		tmp := filepath.Join(c.rel, ".collect-"+hex.EncodeToString(rnd[:])+".tmp")
		out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			clean(0)
			return fmt.Errorf("httpfetch: collect: %w", err)
		}
		f.tmp = tmp
		_, werr := out.Write(f.data)
		if werr == nil {
			werr = out.Sync()
		}
		if cerr := out.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			clean(0)
			return fmt.Errorf("httpfetch: collect: write %s: %w", filepath.Join(dir, f.name), werr)
		}
	}
	for i, f := range files {
		if err := root.Rename(f.tmp, filepath.Join(c.rel, f.name)); err != nil {
			clean(i)
			if i > 0 {
				_ = root.Remove(filepath.Join(c.rel, files[0].name))
			}
			return fmt.Errorf("httpfetch: collect: write %s: %w", filepath.Join(dir, f.name), err)
		}
	}
	return nil
}
