package pgstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// A node whose key check waits for the membership (none of the nodes
// that recorded another key is a member yet: it looks again for up to
// the lease) does not hold the other nodes' checks behind it: it waited
// under the checks' lock, so every node starting meanwhile waited too (up
// to the lease, at most 10 s, in an open transaction). The checks still
// come one at a time: the node of the old key is declared dead once, and
// both nodes of the new key pass.
func TestCheckKeyWaitsForTheMembershipOutsideItsLock(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "old", "a", "b")
	old, a, b := ns[0], ns[1], ns[2]
	others, err := old.CheckKey(ctx, "old", "old:1", "key A", nil)
	require.NoError(t, err)
	require.Empty(t, others)

	// a's membership shows no node yet: it waits, as liveMembers does.
	waiting, release := make(chan struct{}), make(chan struct{})
	aDone := make(chan error, 1)
	go func() {
		others, err := a.CheckKey(ctx, "a", "a:1", "key B", func(ids []string) []string {
			select {
			case <-waiting:
			default:
				close(waiting)
			}
			<-release
			return nil
		})
		if err == nil && len(others) > 0 {
			err = errAny(others)
		}
		aDone <- err
	}()
	testwait.Recv(t, waiting, 20*time.Second, "a waiting for the membership")

	bDone := make(chan error, 1)
	go func() {
		others, err := b.CheckKey(ctx, "b", "b:1", "key B", func([]string) []string { return nil })
		if err == nil && len(others) > 0 {
			err = errAny(others)
		}
		bDone <- err
	}()
	select {
	case err := <-bDone:
		require.NoError(t, err, "b's check, while a waits for the membership")
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("b's check waited for a's look at the membership")
	}
	close(release)
	require.NoError(t, testwait.Recv(t, aDone, 20*time.Second, "a's check"))

	var dead bool
	require.NoError(t, old.Pool().QueryRow(ctx, `SELECT dead FROM connector_nodes WHERE id = 'old'`).Scan(&dead))
	require.True(t, dead, "the node of the old key, gone, is declared dead")
	// A node of the old key is refused by the live nodes of the new one.
	others, err = old.CheckKey(ctx, "c", "c:1", "key A", func(ids []string) []string { return ids })
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, others)
}

type errAny []string

func (e errAny) Error() string { return "refused: other keys of " + e[0] }
