// Package syncdir syncs a folder, so that a file just created, linked or
// renamed in it stays so after a crash or a power loss: a file's own sync
// does not make its name durable.
package syncdir

import "os"

// Sync syncs the folder dir.
func Sync(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
