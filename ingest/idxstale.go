package ingest

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// The names of the temporary files an IDX folder target makes: every
// other file in the folder is left alone.
var (
	tempNameRE  = regexp.MustCompile(`^\.[0-9a-f]{16}-[0-9]+\.tmp$`) // deliver's
	probeNameRE = regexp.MustCompile(`^\.probe-[0-9]+\.tmp$`)        // prepareDir's
)

// staleAge is the age past which a temporary file of ours is taken for
// a crash's even while another target is open in the folder: a target
// writes, fsyncs and renames its file within one delivery.
const staleAge = time.Hour

// holdFolder opens folder dir, removes the temporary files that IDX
// folder targets which ended without closing (a crash) left there
// (removeStale), and returns the folder holding the shared lock that
// tells a later target this one is open. Close releases it.
func holdFolder(dir string, log *slog.Logger) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	alone, err := lockAlone(f)
	if err != nil {
		// A file system without locks (some network ones): stale files
		// are only removed by age.
		log.Debug("cannot lock the IDX folder; only old temporary files are removed", "dir", dir, "err", err)
	}
	removeStale(dir, alone, log)
	if err := shareLock(f); err != nil {
		log.Debug("cannot lock the IDX folder", "dir", dir, "err", err)
	}
	return f, nil
}

// removeStale removes, from dir, the temporary files IDX folder targets
// write (regular files named as deliver and prepareDir name them, nothing
// else): all of them when no other target is open in the folder (alone),
// else those older than staleAge. A failure is logged, and the target
// opens all the same.
func removeStale(dir string, alone bool, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Warn("could not look for temporary files left by a crash", "dir", dir, "err", err)
		return
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !tempNameRE.MatchString(e.Name()) && !probeNameRE.MatchString(e.Name()) {
			continue
		}
		if !alone {
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < staleAge {
				continue
			}
		}
		switch err := os.Remove(filepath.Join(dir, e.Name())); {
		case err == nil:
			removed = append(removed, e.Name())
		case !errors.Is(err, fs.ErrNotExist):
			log.Warn("could not remove a temporary file left by a crash", "file", filepath.Join(dir, e.Name()), "err", err)
		}
	}
	if len(removed) > 0 {
		log.Info("removed temporary files left by a crash", "dir", dir, "files", removed)
	}
}
