//go:build unix

package main

import "syscall"

// execSelf replaces the process with exe (same process id); it returns
// only on failure.
func execSelf(exe string, args, env []string) error { return syscall.Exec(exe, args, env) }
