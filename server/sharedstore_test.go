package server

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/store/pgstore"
)

// A shared store whose TLS settings are wrong stops the start-up with an
// error naming [Cluster] Store and saying it is a misconfiguration of
// the connection's TLS settings; it used to read "the shared database is
// unavailable". Here the server does not speak TLS and the URL's sslmode
// requires it.
func TestSharedStoreTLSMisconfigurationNamesTheKey(t *testing.T) {
	t.Parallel()
	pg := pgtest.StartT(t, pgtest.Options{})
	url := strings.Replace(pg.DatabaseT(t), "sslmode=disable", "sslmode=require", 1)
	cfg, err := config.Parse("c.cfg", []byte(fmt.Sprintf("[Cluster]\nEnabled=true\nEtcd=http://127.0.0.1:2379\nStore=%s\n", url)), nil)
	require.NoError(t, err)
	db, err := openShared(cfg, "hunter2", "n1", slog.New(slog.DiscardHandler))
	if db != nil {
		db.Close()
	}
	var ce *config.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, "Store", ce.Key)
	require.ErrorIs(t, err, pgstore.ErrTLS)
	require.NotErrorIs(t, err, pgstore.ErrUnavailable)
	require.Contains(t, err.Error(), "config c.cfg:4: [Cluster] Store: ")
	require.Contains(t, err.Error(), "fails on its TLS settings")
	require.Contains(t, err.Error(), "server refused TLS connection")
	require.NotContains(t, err.Error(), "hunter2")
}
