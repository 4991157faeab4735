//go:build unix

package server

import "syscall"

// raiseFDLimit raises the soft limit on open files to the hard limit and
// returns the limit in effect (0 when it cannot be read).
func raiseFDLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return uint64(rl.Cur), err
		}
		rl = raised
	}
	return uint64(rl.Cur), nil
}
