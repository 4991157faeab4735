package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/connectorhq/connector/messages"
)

// Reconciliation: a node compares its task actors with the owners of
// record now and then, because what tells it of a change of owner can be
// lost: a claim notice (ActionMoved) is sent once, over remoting, by a node
// that may die before it leaves; a claim or take-over whose COMMIT went
// through may still report an error (a timeout), so its node starts no
// task actor for actions the store says it owns.

// Ownership is what the store says of one action: who owns it, at which
// epoch, its state and whether a worker runs it.
type Ownership struct {
	ID      string
	Owner   string
	Epoch   int64
	State   messages.State
	Running bool
}

// Owners returns the ownership of the actions ids of queue (those the
// store no longer has are left out) and of every action of queue that node
// owns and that has not ended.
func (s *Store) Owners(ctx context.Context, queue, node string, ids []string) ([]Ownership, error) {
	out, _, _, err := s.OwnersPaused(ctx, queue, node, ids, nil)
	return out, err
}

// OwnersPaused is Owners, and queue's cluster-wide pause flag (SetPaused),
// in the same round trip: a node that missed a Pause or Resume of the
// queue (its message lost, or overtaken by an older one from another
// node) follows the flag at its next reconciliation. gone is those of
// ended (ids of ended actions the node holds) that the store no longer
// has: retention removed them, and its notice never reached the node.
// Only their absence is read (an ended action does not move).
func (s *Store) OwnersPaused(ctx context.Context, queue, node string, ids, ended []string) (out []Ownership, gone []string, paused bool, err error) {
	what := "read the owners of " + queue
	if err := s.usable(what, false); err != nil {
		return nil, nil, false, err
	}
	b := &pgx.Batch{}
	b.Queue(ownersSQL, []byte(queue), bytesOf(ids), node)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM connector_queues WHERE queue = $1 AND paused)`, []byte(queue))
	read := map[int]func(pgx.Rows) error{}
	if len(ended) > 0 {
		b.Queue(`SELECT u.id FROM unnest($2::bytea[]) AS u(id)
			WHERE NOT EXISTS (SELECT 1 FROM connector_actions a WHERE a.queue = $1 AND a.id = u.id)`,
			[]byte(queue), byteaArray(bytesOf(ended)))
		read[2] = func(rows pgx.Rows) error {
			for rows.Next() {
				var id []byte
				if err := rows.Scan(&id); err != nil {
					return err
				}
				gone = append(gone, string(id))
			}
			return rows.Err()
		}
	}
	read[0] = func(rows pgx.Rows) error {
		for rows.Next() {
			var o Ownership
			var id []byte
			var state int16
			if err := rows.Scan(&id, &o.Owner, &o.Epoch, &state, &o.Running); err != nil {
				return err
			}
			o.ID, o.State = string(id), messages.State(state)
			out = append(out, o)
		}
		return nil
	}
	read[1] = func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&paused); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.readBatch(ctx, b, read); err != nil {
		return nil, nil, false, s.fail(what, err)
	}
	return out, gone, paused, nil
}

// bytesOf is ids as bytea values.
func bytesOf(ids []string) [][]byte {
	raw := make([][]byte, len(ids))
	for i, id := range ids {
		raw[i] = []byte(id)
	}
	return raw
}

const ownersSQL = `SELECT id, owner, epoch, state, running FROM connector_actions
		WHERE queue = $1 AND (id = ANY($2) OR owner = $3 AND state < 4)`

// Reown takes again, in one transaction, the actions ids of queue that
// node owns, each still at its epoch in epochs, for which node has no
// task actor (or one that runs nothing while the row says a worker runs
// it): as Adopt does for a dead node's actions, fix turns each running
// one into what an interrupted action becomes, the tasks they held are
// freed and the epoch is raised. It returns the rows taken, owned by node
// at their new epoch (an action whose owner or epoch changed meanwhile is
// left out).
func (s *Store) Reown(ctx context.Context, queue, node, addr string, ids []string, epochs []int64, fix func(*messages.StoredAction)) ([]Row, error) {
	what := "take again actions of " + queue
	if err := s.usable(what, true); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// The actions it gives this node were not checked against the
	// listings cached here (listcache.go).
	defer s.lc.handedOut()
	raw := make([][]byte, len(ids))
	for i, id := range ids {
		raw[i] = []byte(id)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, s.fail(what, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT connector_fence($1)`, node); err != nil {
		return nil, s.fail(what, err)
	}
	rows, err := tx.Query(ctx, `SELECT a.id, a.owner, a.owner_addr, a.epoch, a.seq, a.state, a.priority, a.running, a.started_ms, a.queued_ms, a.ended_ms, a.record
		FROM connector_actions a JOIN unnest($3::bytea[], $4::bigint[]) AS u(id, epoch) ON a.id = u.id AND a.epoch = u.epoch
		WHERE a.queue = $1 AND a.owner = $2 ORDER BY a.seq FOR UPDATE OF a`, []byte(queue), node, raw, epochs)
	if err != nil {
		return nil, s.fail(what, err)
	}
	got, err := s.collectRows(queue, what, rows, true)
	if err != nil {
		return nil, err
	}
	return s.takeRows(ctx, tx, what, queue, node, addr, got, fix)
}
