//go:build !linux

package main

import "os"

// noEcho leaves the terminal as it is where its settings are not known
// to this program, and asks for no password (see password_linux.go).
func noEcho(*os.File) (restore func(), ok bool) { return func() {}, false }
