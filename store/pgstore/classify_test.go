package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
)

// Only a failure of the way to the database is ErrUnavailable. An error
// of the client (a value pgx cannot encode: the exec-mode regression of
// 2fa7aa6 was reported as the database being unavailable), a result that
// does not decode, or a statement PostgreSQL refuses for a reason of its
// own says what it is, and is logged with its cause.
func TestOnlyConnectionFailuresAreUnavailable(t *testing.T) {
	_, encodeErr := pgtype.NewMap().Encode(0, pgx.TextFormatCode, struct{ x int }{}, nil)
	require.Error(t, encodeErr)
	unavailable := map[string]error{
		"dial":             &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		"read":             fmt.Errorf("receive message failed: %w", io.ErrUnexpectedEOF),
		"reset":            &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
		"deadline":         fmt.Errorf("timeout: %w", context.DeadlineExceeded),
		"closed conn":      fmt.Errorf("x: %w", pgconn.ErrConnClosed),
		"08006":            &pgconn.PgError{Code: "08006", Message: "connection failure"},
		"57P01":            &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"},
		"57P03":            &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"},
		"57014":            &pgconn.PgError{Code: "57014", Message: "canceling statement due to user request"},
		"53300":            &pgconn.PgError{Code: "53300", Message: "too many clients already"},
		"connect, wrapped": fmt.Errorf("connect: %w", &pgconn.PgError{Code: "57P03"}),
	}
	for name, err := range unavailable {
		var logged bytes.Buffer
		s := &Store{display: "db", log: slog.New(slog.NewTextHandler(&logged, nil))}
		got := s.fail("write", err)
		require.ErrorIs(t, got, ErrUnavailable, name)
		require.ErrorIs(t, got, err, name)
		require.Empty(t, logged.String(), "%s: the caller reports an unreachable database", name)
	}
	other := map[string]error{
		"encode":      encodeErr,
		"decode":      fmt.Errorf("can't scan into dest[1]: %w", errors.New("cannot decode")),
		"corrupt":     fmt.Errorf("undecodable action: %w: %w", store.ErrCorrupt, errors.New("proto: cannot parse")),
		"42P01":       &pgconn.PgError{Code: "42P01", Message: `relation "connector_x" does not exist`},
		"42501":       &pgconn.PgError{Code: "42501", Message: "permission denied for table connector_actions"},
		"57P04":       &pgconn.PgError{Code: "57P04", Message: "database dropped"},
		"53400":       &pgconn.PgError{Code: "53400", Message: "configuration limit exceeded"},
		"params":      errors.New("extended protocol limited to 65535 parameters"),
		"auth failed": fmt.Errorf("connect: %w", &pgconn.PgError{Code: "28P01", Message: "password authentication failed"}),
	}
	for name, err := range other {
		var logged bytes.Buffer
		s := &Store{display: "db", log: slog.New(slog.NewJSONHandler(&logged, nil))}
		got := s.fail("write", err)
		require.NotErrorIs(t, got, ErrUnavailable, name)
		require.ErrorIs(t, got, err, name)
		require.Contains(t, got.Error(), "store: postgresql db: write: "+err.Error(), name)
		var rec map[string]any
		require.NoError(t, json.Unmarshal(logged.Bytes(), &rec), "%s: one line logged", name)
		require.Equal(t, "ERROR", rec["level"], name)
		require.Contains(t, rec["msg"], "not because the database is out of reach", name)
		require.Equal(t, "write", rec["call"], name)
		require.Equal(t, err.Error(), rec["err"], "%s: the log names the cause", name)
	}
	// The store's own sentinels keep theirs, unlogged here.
	for code, want := range map[string]error{"CNF01": ErrFenced, "23505": store.ErrInvalid, "53100": store.ErrNoSpace, "25006": store.ErrReadOnly} {
		var logged bytes.Buffer
		s := &Store{display: "db", log: slog.New(slog.NewTextHandler(&logged, nil))}
		got := s.fail("write", &pgconn.PgError{Code: code})
		require.ErrorIs(t, got, want, code)
		require.NotErrorIs(t, got, ErrUnavailable, code)
		require.Empty(t, logged.String(), code)
	}
}

// End to end: a record that does not decode is ErrCorrupt, not the
// database being unavailable (the database answered), and the store logs
// the cause when a claim takes it. (A group commit whose claim takes it does not fail:
// TestDamagedClaimEndsAsError.)
func TestCorruptRecordSaysSo(t *testing.T) {
	t.Parallel()
	s, _, logged := nodeA(t)
	_, err := s.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("damaged", 0)}, 10)
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, `UPDATE connector_actions SET record = '\xffffffff'::bytea WHERE id = 'damaged'::bytea`)
	require.NoError(t, err)
	// Read alone it is shown as a list shows it (TestDamagedRowIsListed),
	// Damaged saying why.
	row, ok, err := s.Action(ctx, "fetch", "damaged")
	require.NoError(t, err)
	require.True(t, ok)
	require.Error(t, row.Damaged)
	require.ErrorIs(t, row.Damaged, store.ErrCorrupt)
	require.NotErrorIs(t, row.Damaged, ErrUnavailable)
	require.NotContains(t, row.Damaged.Error(), ErrUnavailable.Error())
	_, err = s.Commit(ctx, "fetch", "a", "a:1", Group{Claim: 1})
	require.NoError(t, err)
	require.Contains(t, logged.String(), "undecodable action", "the log names the cause")
}

// syncBuffer is a bytes.Buffer for a logger that several goroutines use.
// nodeA opens a store on a database of its own as node "a" (registered,
// 4 threads), its log in a syncBuffer; it is closed when the test ends.
func nodeA(t *testing.T) (s *Store, url string, logged *syncBuffer) {
	t.Helper()
	url, logged = server.DatabaseT(t), &syncBuffer{}
	s, err := Open(ctx, Config{URL: url, Node: "a", Logger: slog.New(slog.NewTextHandler(logged, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.RegisterNode(ctx, "a", "a:1", 4))
	return s, url, logged
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
