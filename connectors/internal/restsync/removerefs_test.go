package restsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/ingest"
)

// cfsLike refuses a Remove holding a reference with a comma before
// sending anything, as the CFS target does (ingest/cfs.go), and counts the
// calls it sends; down makes every sent call fail (a CFS that is down, or
// hangs until IngestTimeout).
type cfsLike struct {
	recTarget
	down bool

	mu2     sync.Mutex
	sent    int // calls that reached the (fake) server
	refused int // calls refused before sending
}

func (t *cfsLike) Remove(_ context.Context, refs []string) error {
	t.mu2.Lock()
	defer t.mu2.Unlock()
	for _, r := range refs {
		if strings.Contains(r, ",") {
			t.refused++
			return fmt.Errorf("%w: %w: reference %q contains a comma", ingest.ErrDelivery, ingest.ErrInvalidDocument, r)
		}
	}
	t.sent++
	if t.down {
		return fmt.Errorf("%w: CFS did not answer within IngestTimeout", ingest.ErrDelivery)
	}
	t.removed = append(t.removed, refs...)
	return nil
}

func refsWithComma(n int) []string {
	refs := []string{"http://site/a,b"}
	for i := range n {
		refs = append(refs, fmt.Sprintf("http://site/p%04d", i))
	}
	return refs
}

// A removal refused whole for one reference the target cannot take (CFS
// and a comma) was tried again one reference at a time, each a request of
// its own: with CFS down or hanging, every one of them failed after its
// own IngestTimeout (30 s by default), so a batch of 1000 removals held
// the Synchronize for over eight hours, all of them failing. Once a
// request fails for a reason that is not the reference, the references
// not sent yet fail with it, unsent.
func TestRemoveRefsStopsAtTheFirstFailedRequest(t *testing.T) {
	tgt := &cfsLike{down: true}
	refs := refsWithComma(200)
	errs := RemoveRefs(context.Background(), tgt, refs)
	require.Len(t, errs, len(refs))
	require.ErrorIs(t, errs[0], ingest.ErrInvalidDocument, "the comma reference is refused for what it is")
	for i, err := range errs[1:] {
		require.ErrorIs(t, err, ingest.ErrDelivery, "ref %d", i+1)
		require.False(t, errors.Is(err, ingest.ErrInvalidDocument), "ref %d: a failed request is tried again next run", i+1)
	}
	require.Equal(t, 1, tgt.sent, "no request after the first that failed")
}

// With CFS up, the references it can take are still removed in few
// requests, not one each (a batch of 1000 removals with one comma was
// 1001 calls, 1000 of them requests, each queued as an action by CFS).
func TestRemoveRefsSplitsAroundARefusedReference(t *testing.T) {
	tgt := &cfsLike{}
	refs := refsWithComma(1000)
	errs := RemoveRefs(context.Background(), tgt, refs)
	require.Len(t, errs, len(refs))
	require.ErrorIs(t, errs[0], ingest.ErrInvalidDocument)
	for i, err := range errs[1:] {
		require.NoError(t, err, "ref %d", i+1)
	}
	require.Equal(t, refs[1:], tgt.removed, "every other reference removed, in order")
	require.LessOrEqual(t, tgt.sent, 11, "requests: one per chunk a halving leaves without the comma (log2 of 1001)")
}
