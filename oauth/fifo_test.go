package oauth

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// A token file ([Task] OAuthTokenFile) that is a FIFO is refused at once:
// os.ReadFile waited for a writer for ever, holding the action, which Stop
// cannot interrupt (and /dev/zero was read until memory ran out).
func TestTokenFileThatIsNoFileIsRefused(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "x.token")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	f := TokenFile{Path: fifo, Key: testKey(t)}
	done := make(chan error, 1)
	go func() {
		_, err := f.Load()
		done <- err
	}()
	err := testwait.Recv(t, done, 10*time.Second, "the token file's load to end")
	require.ErrorIs(t, err, ErrTokenFile)
	require.ErrorContains(t, err, "not a regular file (a FIFO)")
}
