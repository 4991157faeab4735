package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/testwait"
)

// TestShutdownDoesNotWaitOutAHungDelivery: a clean shutdown ends within
// its budget while a delivery to a CFS that does not answer is under way.
// Closing the ingestion target waited for that delivery, up to
// [Ingestion] IngestTimeout for each request (and a stopped action's
// delivery has minutes of grace), past [Server] ShutdownTimeout and the
// whole shutdown's deadline: a SIGTERM took as long as CFS's timeout, and
// a service manager's stop timeout (docker stop -t 30, systemd) killed
// the process instead. The delivery fails, and is sent again by the next
// run.
func TestShutdownDoesNotWaitOutAHungDelivery(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	received := make(chan struct{}, 1)
	cfs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case received <- struct{}{}:
		default:
		}
		select { // never answers while the test runs
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer cfs.Close()
	defer close(release)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(cfs.URL, "http://"))
	cfg := opsConfig(t, "ShutdownTimeout=1s\n", "IngesterType=CFS\nIngestHost="+host+"\nIngestPort="+port+"\nIngestTimeout=10m\n", "")
	var target ingest.Target
	s, err := Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(d Deps) (fetch.Repository, error) {
		target = d.Target
		return newTestRepo(), nil
	}})
	require.NoError(t, err)
	delivered := make(chan error, 1)
	go func() {
		delivered <- target.Add(context.Background(), []*ingest.Document{{Reference: "http://x/1", Content: "hello"}})
	}()
	testwait.For(t, 10*time.Second, func() bool { return len(received) == 1 }, "the delivery to reach CFS")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	serr := receive(t, done, "Shutdown to return while the delivery hangs")
	require.ErrorIs(t, serr, context.DeadlineExceeded)
	require.ErrorContains(t, serr, "close the ingestion target")
	http.DefaultClient.CloseIdleConnections()

	release <- struct{}{}
	derr := receive(t, delivered, "the delivery to end once CFS answered")
	require.True(t, derr == nil || errors.Is(derr, ingest.ErrDelivery), "%v", derr)
}

// receive returns the first value sent on ch, waiting for it at most 30
// seconds (what: what is waited for, in the failure).
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	var v T
	testwait.For(t, 30*time.Second, func() bool {
		select {
		case v = <-ch:
			return true
		default:
			return false
		}
	}, "%s", what)
	return v
}
