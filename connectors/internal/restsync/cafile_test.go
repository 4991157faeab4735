package restsync

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// An SSLCACertificate that is a FIFO is refused at once: os.ReadFile
// waited for a writer for ever, holding the action, which Stop cannot
// interrupt (and /dev/zero was read until memory ran out).
func TestCAFileThatIsNoFileIsRefused(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() {
		_, err := HTTPClient(nil, TLS{CheckCertificate: true, CAFile: fifo}, time.Second)
		done <- err
	}()
	err := testwait.Recv(t, done, 10*time.Second, "the HTTP client's set-up to end")
	require.ErrorContains(t, err, "SSLCACertificate: read "+fifo+": not a regular file (a FIFO)")
}
