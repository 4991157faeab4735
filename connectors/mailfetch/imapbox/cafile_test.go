package imapbox

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// A CA file that is a FIFO is refused at once: os.ReadFile waited for a
// writer for ever (and /dev/zero was read until memory ran out).
func TestLoadCAOfNoFileIsRefused(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	err := testwait.Return(t, 10*time.Second, func() error { _, err := LoadCA(fifo); return err }, "LoadCA to end")
	require.EqualError(t, err, "read "+fifo+": not a regular file (a FIFO)")
}
