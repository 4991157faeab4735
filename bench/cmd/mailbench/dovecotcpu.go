package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// dovecotCPU is the CPU time (user and system) the Dovecot started with
// its configuration in dir has used so far: that of its processes alive
// (its process group: the master, imap, imap-login, auth...) and of those
// that ended (the master's reaped children). 0 when it is not found.
func dovecotCPU(dir string) time.Duration {
	master := 0
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err == nil && bytes.HasPrefix(cmd, []byte("/usr/sbin/dovecot\x00")) && bytes.Contains(cmd, []byte(dir)) {
			master, _ = strconv.Atoi(filepath.Base(p))
			break
		}
	}
	if master == 0 {
		return 0
	}
	var ticks int64
	for _, p := range procs {
		stat, err := os.ReadFile(filepath.Join(p, "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces) in
		// parentheses: state ppid pgrp ... utime(14) stime cutime cstime.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 15 {
			continue
		}
		if pgrp, _ := strconv.Atoi(f[2]); pgrp != master {
			continue
		}
		n := 2 // utime, stime
		if filepath.Base(p) == strconv.Itoa(master) {
			n = 4 // and the ended children's
		}
		for _, v := range f[11 : 11+n] {
			t, _ := strconv.ParseInt(v, 10, 64)
			ticks += t
		}
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ
}

// dovecotSettled is dovecotCPU once the session that just logged out has
// ended: its imap process's time moves to the master when it is reaped,
// so the figure is read until it stops changing (at most a second).
func dovecotSettled(dir string) time.Duration {
	last := dovecotCPU(dir)
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		now := dovecotCPU(dir)
		if now == last {
			return now
		}
		last = now
	}
	return last
}
