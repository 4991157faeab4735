package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSysmonEnv(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []string
		want []string // nil: unchanged, nothing to do
	}{
		{"no GODEBUG", []string{"A=1", "B=2"}, []string{"A=1", "B=2", "GODEBUG=" + sysmonSetting}},
		{"empty GODEBUG", []string{"GODEBUG=", "A=1"}, []string{"GODEBUG=" + sysmonSetting, "A=1"}},
		{"other settings kept", []string{"GODEBUG=gctrace=1,madvdontneed=1"}, []string{"GODEBUG=gctrace=1,madvdontneed=1," + sysmonSetting}},
		{"the first of two GODEBUGs (the one Go reads)", []string{"GODEBUG=gctrace=1", "GODEBUG=x=2"}, []string{"GODEBUG=gctrace=1," + sysmonSetting}},
		{"schedtrace=0 chosen: left alone", []string{"A=1", "GODEBUG=gctrace=1,schedtrace=0"}, nil},
		{"schedtrace set: left alone", []string{"GODEBUG=schedtrace=1000"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := sysmonEnv(c.in)
			if c.want == nil {
				require.False(t, ok)
				require.Equal(t, c.in, got)
				return
			}
			require.True(t, ok)
			require.Equal(t, c.want, got)
		})
	}
}

// TestServerRunsWithSysmonSetting: the server executes itself again with
// the setting (same process, its arguments kept), and a GODEBUG that
// names schedtrace is left as it is.
func TestServerRunsWithSysmonSetting(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[Server]\nDataDirectory=%s\n[FetchTasks]\nNumber=0\n", filepath.Join(dir, "data"))), 0o600))
	for _, c := range []struct{ godebug, want string }{
		{"", "GODEBUG=" + sysmonSetting},
		{"gctrace=0", "GODEBUG=gctrace=0," + sysmonSetting},
		{"schedtrace=0", "GODEBUG=schedtrace=0"},
	} {
		t.Run("GODEBUG="+c.godebug, func(t *testing.T) {
			t.Setenv("GODEBUG", c.godebug)
			r := startBinary(t, bin, cfg)
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", r.cmd.Process.Pid))
			require.NoError(t, err)
			var got []string
			for _, kv := range bytes.Split(env, []byte{0}) {
				if strings.HasPrefix(string(kv), "GODEBUG=") {
					got = append(got, string(kv))
				}
			}
			require.Equal(t, []string{c.want}, got)
			args, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r.cmd.Process.Pid))
			require.NoError(t, err)
			require.Equal(t, bin+"\x00-config\x00"+cfg+"\x00-port\x000\x00", string(args))
			require.NoError(t, r.cmd.Process.Kill())
			_ = r.cmd.Wait()
		})
	}
}
