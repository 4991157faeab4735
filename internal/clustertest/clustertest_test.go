package clustertest

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testport"
)

// A node whose picked port is taken before it binds it (another test's
// pick) exits at start; AddNode tries another port.
func TestAddNodeTriesAnotherPortWhenItsIsTaken(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "connector")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/connectorhq/connector/cmd/connector").CombinedOutput()
	require.NoError(t, err, "%s", out)
	c, err := Start(Options{Binary: bin, Nodes: 1, Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop()) })

	taken := testport.Held(t)
	pickN, calls := testport.TakenFirst(taken)
	pickPort = testport.First(pickN)
	defer func() { pickPort = testport.Pick }()
	n, err := c.AddNode()
	require.NoError(t, err)
	require.Equal(t, 2, *calls)
	require.NotEqual(t, taken, n.Port)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(n.URL() + "/action=GetVersion")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
