//go:build !unix

package ingest

import "os"

// Without file locks, a target never knows it is alone in its folder:
// only the age rule removes stale files (removeStale).
func lockAlone(*os.File) (bool, error) { return false, nil }

func shareLock(*os.File) error { return nil }
