package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// TestSIGTERMDuringARestoreStopsIt: SIGTERM while the server restores a
// big queue stops the start-up there, cleanly (exit status 0), without
// finishing the restore or starting the server, and loses nothing: every
// stored action is still in the store, as it was. The signal was answered
// ("shutting down") but acted on only once the whole queue was restored
// and the server had started, which on a big store is long enough for
// systemd's stop timeout to end it with SIGKILL, and for a user to take
// Ctrl-C for ignored.
func TestSIGTERMDuringARestoreStopsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const n = 20000 // a restore of a second or so, far longer than the signal takes
	st, err := store.Open(store.Config{Dir: data})
	require.NoError(t, err)
	for i := 0; i < n; i += 5000 { // n is a multiple of 5000
		muts := make([]store.ActionMutation, 0, 5000)
		for j := i; j < i+5000; j++ {
			muts = append(muts, store.ActionMutation{Put: &messages.StoredAction{
				Id:   fmt.Sprintf("0190a8a4-8d3e-7000-8000-%012d", j+1),
				Spec: &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"}},
				Status: &messages.ActionStatus{Seq: uint64(j + 1), State: messages.State_STATE_QUEUED,
					QueuedUnixMs: time.Now().UnixMilli()},
			}})
		}
		require.NoError(t, st.ApplyActions("fetch", muts))
	}
	require.NoError(t, st.Close())
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte("[Server]\nDataDirectory="+data+"\n"), 0o600))

	cmd := exec.Command(bin, "-config", cfg, "-port", "0")
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var stderr syncLines
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			stderr.add(sc.Text())
		}
		exited <- cmd.Wait() // the one Wait, after the output is read
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // by PID: the process this test started
			<-exited
		}
	})
	// The store is open: the queue's restore comes next.
	testwait.For(t, 30*time.Second, func() bool { return strings.Contains(stderr.String(), `msg="store opened"`) },
		"the store to be opened")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "a stop on request during start-up is a clean stop (status 0); standard error:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not exit within 60s of SIGTERM; standard error:\n%s", stderr.String())
	}
	out := stderr.String()
	require.NotContains(t, out, `msg="connector started"`, "the start-up went on to its end after SIGTERM")
	require.Contains(t, out, "start-up stopped on request")

	// Nothing is lost: every action is in the store, queued as it was.
	st, err = store.Open(store.Config{Dir: data})
	require.NoError(t, err)
	defer st.Close()
	recs := storetest.Load(t, st, "fetch")
	require.Len(t, recs, n)
	for _, r := range recs {
		require.Equal(t, messages.State_STATE_QUEUED, r.Status.State, "action %s", r.Id)
		require.False(t, r.Status.Running, "action %s", r.Id)
	}
}
