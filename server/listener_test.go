package server

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
)

func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := func(threads, max, service int) *config.Config {
		c := &config.Config{}
		c.Actions.MaximumThreads, c.Server.MaxConnections = threads, max
		c.Service.Enabled, c.Service.MaxConnections = service > 0, service
		return c
	}
	for _, c := range []struct {
		threads, max int
		fds          uint64
		want         int
		service      int // [Service] MaxConnections; 0: no service port
	}{
		{4, 0, 1024, 1024 - 128 - 4*64, 0},
		{1, 0, 256, 64, 0}, // the reserve leaves less than a quarter: a quarter
		{4, 0, 256, 64, 0}, // the reserve is more than the limit: a quarter
		{4, 0, 1 << 20, 1<<20 - 384, 0},
		{4, 0, 0, 1 << 24, 0},   // no limit known
		{4, 5000, 256, 5000, 0}, // configured: kept (with a warning)
		{4, 100, 1 << 20, 100, 0},
		{4, 0, 1024, 1024 - 128 - 4*64 - 64, 64}, // the service port's connections are kept besides
	} {
		require.Equal(t, c.want, connectionLimit(cfg(c.threads, c.max, c.service), c.fds, discard), "%+v", c)
	}
}
