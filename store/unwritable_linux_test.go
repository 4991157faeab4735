package store_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

const unwritableEnv = "CONNECTOR_STORE_UNWRITABLE_DIR"

// TestUnwritableFolderRefused: a store whose file can be written but whose
// folder cannot (no new file can be made there: no journal, no new store
// file) is refused at Open with ErrReadOnly naming the folder (issue 9,
// item 7: it was accepted, and then every submission was refused). As
// root, permissions do not stop writes, so the check runs in a child
// process (this test binary) as the user nobody.
func TestUnwritableFolderRefused(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "connector-unwritable-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700); _ = os.RemoveAll(dir) })
	s, err := store.Open(store.Config{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{storetest.Put(storetest.Record("a", 1, 1))}))
	require.NoError(t, s.Close())

	if os.Geteuid() != 0 {
		require.NoError(t, os.Chmod(dir, 0o500))
		openUnwritable(t, dir)
		return
	}
	const nobody = 65534
	require.NoError(t, filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, nobody, nobody)
	}))
	require.NoError(t, os.Chmod(dir, 0o500)) // nobody may read and enter it, not create files
	// A copy of this test binary that nobody may run.
	binDir, err := os.MkdirTemp("", "connector-test-bin-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(binDir) })
	require.NoError(t, os.Chmod(binDir, 0o755))
	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(binDir, "store.test")
	copyExecutable(t, self, bin)
	cmd := exec.Command(bin, "-test.run=^TestUnwritableFolderChild$", "-test.v")
	cmd.Env = append(os.Environ(), unwritableEnv+"="+dir)
	cmd.Dir = binDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child, as nobody:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestUnwritableFolderChild", "%s", out)
}

// TestUnwritableFolderChild is TestUnwritableFolderRefused's child process.
func TestUnwritableFolderChild(t *testing.T) {
	dir := os.Getenv(unwritableEnv)
	if dir == "" {
		t.Skip("run by TestUnwritableFolderRefused, as another user")
	}
	openUnwritable(t, dir)
}

func openUnwritable(t *testing.T, dir string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, store.DefaultFile), os.O_RDWR, 0)
	require.NoError(t, err, "the store file itself can be written")
	require.NoError(t, f.Close())
	_, err = store.Open(store.Config{Dir: dir})
	require.ErrorIs(t, err, store.ErrReadOnly)
	require.True(t, errors.Is(err, os.ErrPermission), "%v", err)
	require.Contains(t, err.Error(), fmt.Sprintf("the folder %s cannot be written", dir))
}

func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
