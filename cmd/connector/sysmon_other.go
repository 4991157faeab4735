//go:build !unix

package main

import "errors"

// execSelf: not done where a process cannot replace itself.
func execSelf(string, []string, []string) error {
	return errors.New("not supported on this system")
}
