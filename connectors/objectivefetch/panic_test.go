package objectivefetch

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/internal/panics"
)

// A panic while a document is read would end the process: its requests
// run on goroutines of the task's own (one per document, and one per
// request of a document when they overlap), outside the worker's
// recovery. The Synchronize ends with an error naming it instead, so the
// action ends as Error. Here the wait before the request is tried again
// (the server answered 503) panics, standing for any fault of the
// reading of a server's answer: for the content (on the document's
// goroutine) and for the permissions (on a request's).
func TestPanicReadingADocumentIsTheSynchronizesError(t *testing.T) {
	for _, path := range []string{"content", "permissions"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t, "")
			bigFolder(e, "a", 3) // fewer than Concurrency: a document's requests overlap
			e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
				if strings.HasPrefix(r.URL.Path, "/api/resources/documents/") && strings.HasSuffix(r.URL.Path, "/"+path) {
					return &objectivetest.Fault{Status: http.StatusServiceUnavailable}
				}
				return nil
			})
			r, err := New(Options{Config: e.cfg, Store: e.st, Target: e.target,
				Sleep: func(context.Context, time.Duration) error { panic("kaboom waiting for " + path) }})
			require.NoError(t, err)
			e.repo = r
			_, _, err = e.run("SYNCHRONIZE")
			require.ErrorIs(t, err, panics.ErrPanic)
			require.ErrorContains(t, err, "panic: kaboom waiting for "+path)
		})
	}
}
