package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// Cluster operations. In a cluster every action row has an owner (the
// member id of the node whose task actor owns it; "" while nobody does)
// and an epoch. The owner's writes are conditional on both: an owner that
// was declared dead, or lost an action to another node's claim, writes
// nothing (ErrFenced, or the ids it reports as fenced). Sequence numbers
// come from a PostgreSQL sequence, so any node may accept submissions.

const (
	stateQueued     = int16(messages.State_STATE_QUEUED)
	stateProcessing = int16(messages.State_STATE_PROCESSING)
	statePaused     = int16(messages.State_STATE_PAUSED)
)

var clusterSchema = []string{
	// connector_claim gives node up to n queued actions of queue, in
	// priority order then arrival order, skipping actions another claim
	// holds and actions whose exclusive tasks a running action holds; it
	// takes those tasks, makes node the owner and bumps the epoch. Nothing
	// while the queue is paused, CNF01 when node is not a live member.
	// Its rows are read one at a time (FETCH), so that it locks only those
	// it takes: a FOR loop reads ten at a time, and a claim of one locked
	// ten, which a concurrent claim of another node then skipped as taken
	// (issue 17). Actions whose tasks are held are left out by the
	// cursor's query, not passed over in the loop, so that they are not
	// locked either: a claim that ran while the holder released the task
	// skipped the next action of that task as locked and took a
	// lower-priority one of the same task. The loop checks the holds again
	// (a claim that committed since the cursor opened may have taken one).
	//
	// The claim records the start as well: the row becomes Processing,
	// running, started at at (the claimer's clock, Unix ms), so that the
	// claimer's task actor need not write its start (one row of a group
	// commit per action: issue 17). Readers take the start time from the
	// started_ms column (the record inside keeps the queued status until
	// the owner's next write).
	`CREATE OR REPLACE FUNCTION connector_claim(q bytea, node text, addr text, n int, at bigint)
	RETURNS TABLE (id bytea, epoch bigint, prev_owner text, prev_addr text, seq bigint, priority int, started_ms bigint, record bytea) AS $$
	DECLARE
		c CURSOR FOR SELECT a.id, a.epoch, a.owner, a.owner_addr, a.exclusive FROM connector_actions a
			WHERE a.queue = q AND a.state = 1
				AND (cardinality(a.exclusive) = 0 OR NOT EXISTS (
					SELECT 1 FROM connector_task_holds h WHERE h.queue = q AND h.task = ANY(a.exclusive)))
			ORDER BY a.priority DESC, a.seq
			FOR UPDATE SKIP LOCKED;
		r record;
		got int := 0;
		held int;
	BEGIN
		PERFORM 1 FROM connector_nodes WHERE connector_nodes.id = node AND NOT dead FOR SHARE;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'node % is not a live member of the cluster', node USING ERRCODE = 'CNF01';
		END IF;
		IF n <= 0 OR EXISTS (SELECT 1 FROM connector_queues qs WHERE qs.queue = q AND qs.paused) THEN
			RETURN;
		END IF;
		OPEN c;
		LOOP
			EXIT WHEN got >= n;
			FETCH c INTO r;
			EXIT WHEN NOT FOUND;
			IF cardinality(r.exclusive) > 0 THEN
				IF EXISTS (SELECT 1 FROM connector_task_holds h WHERE h.queue = q AND h.task = ANY(r.exclusive)) THEN
					CONTINUE;
				END IF;
				INSERT INTO connector_task_holds (queue, task, id)
					SELECT q, t, r.id FROM unnest(r.exclusive) AS t ON CONFLICT DO NOTHING;
				GET DIAGNOSTICS held = ROW_COUNT;
				IF held < cardinality(r.exclusive) THEN -- a concurrent claim took one
					DELETE FROM connector_task_holds h WHERE h.queue = q AND h.id = r.id;
					CONTINUE;
				END IF;
			END IF;
			RETURN QUERY UPDATE connector_actions a
				SET owner = node, owner_addr = addr, epoch = a.epoch + 1, state = 2, running = true,
					started_ms = at, ended_ms = 0
				WHERE a.queue = q AND a.id = r.id
				RETURNING a.id, a.epoch, r.owner, r.owner_addr, a.seq, a.priority, a.started_ms, a.record;
			got := got + 1;
		END LOOP;
		CLOSE c;
	END $$ LANGUAGE plpgsql`,
	// connector_write_owned applies an owner's writes to queue q (the
	// arrays hold one action each, by position): each row only while node
	// owns it at that epoch, its exclusive tasks given up as well when
	// w_release says so. It returns the ids it wrote. Row by row, each
	// UPDATE by the whole primary key: the plan PostgreSQL keeps for it is
	// an index probe whatever the table's size and statistics. One UPDATE
	// joined with the arrays got, when its plan was made while the table
	// was small and not yet analyzed (the first minute of every new
	// cluster), a plan that read every row of the queue, or every row the
	// node ever owned, at every group commit, and kept it (pgcpu19).
	`CREATE OR REPLACE FUNCTION connector_write_owned(q bytea, node text, w_ids bytea[], w_epochs bigint[], w_recs bytea[],
		w_states smallint[], w_prios int[], w_running boolean[], w_queued bigint[], w_started bigint[], w_ended bigint[],
		w_release boolean[])
	RETURNS SETOF bytea AS $$
	BEGIN
		FOR i IN 1 .. coalesce(array_length(w_ids, 1), 0) LOOP
			UPDATE connector_actions a SET record = w_recs[i], state = w_states[i], priority = w_prios[i],
				running = w_running[i], queued_ms = w_queued[i], started_ms = w_started[i], ended_ms = w_ended[i]
			WHERE a.queue = q AND a.id = w_ids[i] AND a.owner = node AND a.epoch = w_epochs[i];
			IF FOUND THEN
				IF w_release[i] THEN
					DELETE FROM connector_task_holds h WHERE h.queue = q AND h.id = w_ids[i];
				END IF;
				RETURN NEXT w_ids[i];
			END IF;
		END LOOP;
	END $$ LANGUAGE plpgsql`,
}

// Row is an action as the shared store has it: its record (whose status
// the columns complete: state, priority, running and seq are the row's),
// its owner and epoch.
type Row struct {
	Record    *messages.StoredAction
	Owner     string // member id; "" when no node owns it
	OwnerAddr string // the owner's remote address
	Epoch     int64
	// Damaged (ErrCorrupt) is set, by a read that does not take the row
	// (Action, ListRows), when its record does not decode: Record is then
	// damagedView's, made of the row's columns.
	Damaged error
}

// RegisterNode records node (a new member id per process) as a live
// member: it may then claim and write. store.ErrVersion, and nothing
// recorded, when a node of a newer build has upgraded the tables since
// this store opened them (connector_layout).
func (s *Store) RegisterNode(ctx context.Context, node, addr string, maxThreads int) error {
	if err := s.usable("register node", true); err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT connector_layout($1)`, schemaVersion)
	b.Queue(`INSERT INTO connector_nodes (id, addr, max_threads) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, max_threads = excluded.max_threads`, node, addr, maxThreads)
	_, err := s.writeBatch(ctx, "register node "+node, b)
	return err
}

// CheckKey records check, node's secret.Key.Check of its [Security]
// AESKeyFile, and returns the other live members (not declared dead) that
// recorded another: a password one node encrypts (a request's, sealed
// with the action) must be decrypted by whichever node runs the action,
// so every node needs the same key. The checks of nodes declared dead are
// removed. Older nodes record none and are not compared.
//
// node is registered (as RegisterNode does, with addr and no threads
// yet) in the same transaction, and the checks are taken one at a time
// (an advisory lock): of two nodes starting at once with different keys,
// the second sees the first's check and is refused. Before, a check
// counted only once its node had registered, when its queue started,
// after the check: two nodes starting within that moment both passed. A
// node refused records nothing (neither its check nor its registration).
//
// Like RegisterNode, it refuses (store.ErrVersion, nothing recorded) when
// a node of a newer build has upgraded the tables since this store opened
// them: the upgrade declared dead the nodes registered before it, and this
// one, registered after it, would have been live (connector_layout).
//
// members, given those other nodes, returns the ones that are members of
// the cluster (it may wait for the membership to show a node that has
// just joined); nil counts them all. The others left without being
// declared dead (killed when no node was left to see them go, or before
// their queue started) and are declared dead now: a key change is made
// by starting every node with the new key, which their checks would have
// refused for good.
//
// members is asked outside the lock: its wait (up to the lease, when none
// of the nodes is a member yet) held every other node's key check, and so
// its start, behind it. The check is then taken again, under the lock,
// with the nodes judged so (a node's id is never reused: one judged gone
// does not come back); nodes that recorded a key meanwhile are judged in
// turn, and after checkKeyRounds rounds they are judged under the lock,
// as before.
func (s *Store) CheckKey(ctx context.Context, node, addr, check string, members func(ids []string) []string) ([]string, error) {
	what := "check the key file against the other nodes'"
	if err := s.usable(what, true); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	live := map[string]bool{} // the nodes judged (members or not) so far
	for round := 1; ; round++ {
		judge := members
		if members != nil && round < checkKeyRounds {
			judge = nil
		}
		others, unjudged, err := s.checkKey(ctx, node, addr, check, live, members != nil, judge)
		if err != nil {
			return nil, s.fail(what, err)
		}
		if len(unjudged) == 0 {
			return others, nil
		}
		are := members(unjudged)
		for _, id := range unjudged {
			live[id] = slices.Contains(are, id)
		}
	}
}

// checkKeyRounds is how many times CheckKey takes the check with the
// membership asked outside its lock before it asks it under the lock.
const checkKeyRounds = 3

// checkKey is a round of CheckKey, in one transaction: the lock is held
// until it ends, and each statement after it sees what the checks before
// it committed. A node refused records nothing: neither its check nor its
// registration would let a node of the cluster's key start after it.
// When judging (the membership is asked), the other nodes with another
// key are judged by live, else by judge when it is given; when it is nil
// and some are not in live, the transaction is rolled back and they are
// returned (unjudged) to be judged outside it.
func (s *Store) checkKey(ctx context.Context, node, addr, check string, live map[string]bool, judging bool,
	judge func(ids []string) []string) (others, unjudged []string, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback(ctx)
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockKeyCheck)
	b.Queue(`SELECT connector_layout($1)`, schemaVersion)
	b.Queue(`DELETE FROM connector_key_checks k USING connector_nodes n WHERE n.id = k.node AND n.dead`)
	b.Queue(`INSERT INTO connector_nodes (id, addr) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, node, addr)
	b.Queue(`INSERT INTO connector_key_checks (node, key_check) VALUES ($1, $2)
		ON CONFLICT (node) DO UPDATE SET key_check = excluded.key_check`, node, check)
	b.Queue(`SELECT k.node FROM connector_key_checks k JOIN connector_nodes n ON n.id = k.node
		WHERE NOT n.dead AND k.node <> $1 AND k.key_check <> $2 ORDER BY k.node`, node, check)
	br := tx.SendBatch(ctx, b)
	for i := 0; i < b.Len()-1 && err == nil; i++ {
		_, err = br.Exec()
	}
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			others, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, err
	}
	if len(others) > 0 && judging {
		var are []string
		for _, id := range others {
			switch on, ok := live[id]; {
			case !ok:
				unjudged = append(unjudged, id)
			case on:
				are = append(are, id)
			}
		}
		if len(unjudged) > 0 {
			if judge == nil {
				return nil, unjudged, nil // rolled back
			}
			are = append(are, judge(unjudged)...)
			slices.Sort(are)
		}
		gone := slices.DeleteFunc(slices.Clone(others), func(id string) bool { return slices.Contains(are, id) })
		if len(are) == 0 && len(gone) > 0 {
			s.log.Warn("nodes that left without being declared dead recorded another key: declared dead now",
				"database", s.display, "nodes", gone)
			if _, err := tx.Exec(ctx, `UPDATE connector_nodes SET dead = true WHERE id = ANY($1)`, gone); err != nil {
				return nil, nil, err
			}
		}
		others = are
	}
	if len(others) > 0 {
		return others, nil, nil // rolled back
	}
	return nil, nil, tx.Commit(ctx)
}

// NewAction is a submission for Submit.
type NewAction struct {
	Record    *messages.StoredAction // Status.Seq is ignored: PostgreSQL allocates it
	Exclusive []string               // tasks the action holds exclusively while it runs
}

// Submit inserts actions as queued, owned by node (epoch 1), with
// sequence numbers from the database, in one transaction. At most
// maxWaiting actions may wait (Queued, or Paused without a worker) in the
// queue: those that do not fit are left out. It returns the seq of each
// action, 0 for one left out.
func (s *Store) Submit(ctx context.Context, queue, node, addr string, acts []NewAction, maxWaiting int) ([]uint64, error) {
	if len(acts) == 0 {
		if err := checkName("queue", queue); err != nil {
			return nil, err
		}
		return nil, s.usable("submit to "+queue, true)
	}
	r, err := s.Commit(ctx, queue, node, addr, Group{Submits: acts, MaxWaiting: maxWaiting})
	return r.Seqs, err
}

// submitCols are the columns of a submission's INSERT.
type submitCols struct {
	ids, recs [][]byte
	prios     []int32
	queued    []int64
	excl      []string
}

func (s *Store) submitCols(queue, what string, acts []NewAction) (*submitCols, error) {
	c := &submitCols{ids: make([][]byte, len(acts)), recs: make([][]byte, len(acts)), prios: make([]int32, len(acts)),
		queued: make([]int64, len(acts)), excl: make([]string, len(acts))}
	for i, a := range acts {
		if a.Record.GetId() == "" || len(a.Record.Id) > store.MaxKeySize {
			return nil, fmt.Errorf("store: queue %s: submission %d: bad id: %w", queue, i, store.ErrInvalid)
		}
		if err := s.hookWrite(what); err != nil {
			return nil, err
		}
		raw, err := proto.Marshal(a.Record)
		if err != nil {
			return nil, fmt.Errorf("store: queue %s: encode action %s: %w: %w", queue, a.Record.Id, store.ErrInvalid, err)
		}
		c.ids[i], c.recs[i] = []byte(a.Record.Id), raw
		c.prios[i], c.queued[i] = a.Record.GetStatus().GetPriority(), a.Record.GetStatus().GetQueuedUnixMs()
		c.excl[i] = strings.Join(a.Exclusive, "\n")
	}
	return c, nil
}

// queue adds the submission's statements to b; the INSERT's rows (id,
// seq) are its last statement's. The queue's own row is inserted too
// unless queueRow says it exists.
func (c *submitCols) queue(b *pgx.Batch, queue, node, addr string, maxWaiting int, queueRow bool) {
	if !queueRow {
		b.Queue(`INSERT INTO connector_queues (queue) VALUES ($1) ON CONFLICT DO NOTHING`, []byte(queue))
	}
	b.Queue(submitSQL+` RETURNING id, seq`, []byte(queue), node, addr, byteaArray(c.ids), intArray(c.prios), intArray(c.queued),
		textArray(oidText, c.excl), byteaArray(c.recs), maxWaiting)
}

// queueAgain adds Resubmit's statements to b: the submission's INSERT,
// but of the actions whose id has no row.
func (c *submitCols) queueAgain(b *pgx.Batch, queue, node, addr string, maxWaiting int) {
	b.Queue(`INSERT INTO connector_queues (queue) VALUES ($1) ON CONFLICT DO NOTHING`, []byte(queue))
	b.Queue(resubmitSQL, []byte(queue), node, addr, byteaArray(c.ids), intArray(c.prios), intArray(c.queued),
		textArray(oidText, c.excl), byteaArray(c.recs), maxWaiting)
}

// submitSQL inserts a submission's actions (submitCols), as many as
// maxWaiting ($9) lets wait; resubmitSQL those of them whose id has no
// row (those that have one do not count against maxWaiting).
var submitSQL, resubmitSQL = submitInsert(""), submitInsert(
	"WHERE NOT EXISTS (SELECT 1 FROM connector_actions x WHERE x.queue = $1 AND x.id = u.id)") + " ON CONFLICT (queue, id) DO NOTHING"

func submitInsert(where string) string {
	return `INSERT INTO connector_actions (queue, id, seq, state, priority, queued_ms, owner, owner_addr, epoch, exclusive, record)
		SELECT $1, u.id, nextval('connector_action_seq'), 1, u.prio, u.queued, $2, $3, 1,
			CASE WHEN u.excl = '' THEN '{}'::text[] ELSE string_to_array(u.excl, E'\n') END, u.rec
		FROM unnest($4::bytea[], $5::int[], $6::bigint[], $7::text[], $8::bytea[]) WITH ORDINALITY AS u(id, prio, queued, excl, rec, ord)
		` + where + `
		ORDER BY u.ord
		LIMIT greatest(0, $9 - (SELECT count(*) FROM connector_actions w WHERE w.queue = $1 AND w.state IN (1, 3) AND NOT w.running))`
}

// writeBatchRows is writeBatch for a batch whose statements numbered by
// the keys of read return rows, each read by its function.
func (s *Store) writeBatchRows(ctx context.Context, what string, b *pgx.Batch, read map[int]func(pgx.Rows) error) error {
	if f := s.cfg.Faults; f != nil {
		if err := f.Commit(); err != nil {
			if spaceError(err) {
				return fmt.Errorf("store: postgresql %s: %s: %w: %w", s.display, what, store.ErrNoSpace, err)
			}
			return fmt.Errorf("store: postgresql %s: %s: %w", s.display, what, err)
		}
	}
	if err := s.readBatch(ctx, b, read); err != nil {
		if unanswered(err) {
			return fmt.Errorf("%w (%w)", s.fail(what, err), ErrUncertain)
		}
		return s.fail(what, err)
	}
	if f := s.cfg.Faults; f != nil {
		if err := f.Synced(); err != nil {
			s.mu.Lock()
			s.failed = fmt.Errorf("store: postgresql %s: %s: %w: %w", s.display, what, store.ErrFailed, err)
			err = s.failed
			s.mu.Unlock()
			return err
		}
	}
	return nil
}

// unanswered reports whether err, a batch's failure, may have come after
// its statements reached PostgreSQL, and before its answer: not
// PostgreSQL's own error (which rolled the batch back), nor a failure to
// connect, nor one that pgx says came before anything was sent.
func unanswered(err error) bool {
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	return !errors.As(err, &pe) && !errors.As(err, &ce) && !pgconn.SafeToRetry(err)
}

// Resubmitted is where Resubmit found an action: its seq (0: not queued,
// as Submit leaves out one that MaxWaiting does not let in), its owner and
// epoch.
type Resubmitted struct {
	Seq   uint64
	Owner string
	Epoch int64
}

// Resubmit settles the fate of submissions whose group commit failed
// with ErrUncertain: each of acts is inserted as Submit does, unless a
// row of its id is there, and the row of each is read back. An INSERT of
// the failed commit that PostgreSQL still carries out (not yet
// committed) is waited for (the primary key); one that comes later finds
// this one's row and fails, with its whole transaction. So the answer is
// final: an action Resubmit does not find (Seq 0) is not queued, and
// will not be. It fails with ErrUncertain in turn as Commit does: it is
// then called again.
func (s *Store) Resubmit(ctx context.Context, queue, node, addr string, acts []NewAction, maxWaiting int) ([]Resubmitted, error) {
	what := "submit again to " + queue
	if err := checkName("queue", queue); err != nil {
		return nil, err
	}
	if err := s.usable(what, true); err != nil {
		return nil, err
	}
	sub, err := s.submitCols(queue, what, acts)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT connector_fence($1)`, node)
	sub.queueAgain(b, queue, node, addr, maxWaiting)
	b.Queue(`SELECT id, seq, owner, epoch FROM connector_actions WHERE queue = $1 AND id = ANY($2::bytea[])`,
		[]byte(queue), byteaArray(sub.ids))
	found := map[string]Resubmitted{}
	read := map[int]func(pgx.Rows) error{b.Len() - 1: func(rows pgx.Rows) error {
		for rows.Next() {
			var id []byte
			var r Resubmitted
			var seq int64
			if err := rows.Scan(&id, &seq, &r.Owner, &r.Epoch); err != nil {
				return err
			}
			r.Seq = uint64(seq)
			found[string(id)] = r
		}
		return rows.Err()
	}}
	if err := s.writeBatchRows(ctx, what, b, read); err != nil {
		return nil, err
	}
	out := make([]Resubmitted, len(acts))
	for i, a := range acts {
		out[i] = found[a.Record.Id]
	}
	return out, nil
}

// Claimed is an action a claim gave this node. Its Record is the action
// as it was queued; the store has it Processing and running since
// StartedMs (the claim's time). When the same commit submitted the
// action, the Record's Status is a copy of the submitted one but its
// Spec is the submitted record's own: neither side may change a spec
// once it is submitted.
//
// Damaged (ErrCorrupt) is set when the action's record does not decode.
// The claim took it all the same (a claim is committed before its rows
// are read), so node owns it, Processing and running, at Epoch; but it
// cannot be run. Its Record is then what taking it again makes of it
// (damagedRecord): the claimer ends it by taking it again at Epoch
// (Reown), as its reconciliation does with any action it owns without a
// worker, and so does a node that takes over the claimer's actions
// (Adopt).
type Claimed struct {
	Row
	PrevOwner, PrevAddr string // the owner before the claim (its task actor retires)
	StartedMs           int64
	Damaged             error
}

// Claim gives node up to n queued actions of queue (see connector_claim),
// started now (each becomes Processing and running in the store, as its
// worker starts on node).
func (s *Store) Claim(ctx context.Context, queue, node, addr string, n int) ([]Claimed, error) {
	return s.ClaimAt(ctx, queue, node, addr, n, time.Now().UnixMilli())
}

// ClaimAt is Claim with the start time atMs (Unix ms, the claimer's clock).
func (s *Store) ClaimAt(ctx context.Context, queue, node, addr string, n int, atMs int64) ([]Claimed, error) {
	what := "claim from " + queue
	if err := s.usable(what, true); err != nil {
		return nil, err
	}
	// The claim, then the read of the versions of the listings cached
	// here (listcache.go), in one transaction.
	b := &pgx.Batch{}
	b.Queue(`SELECT id, epoch, prev_owner, prev_addr, seq, priority, started_ms, record FROM connector_claim($1, $2, $3, $4, $5)`,
		[]byte(queue), node, addr, n, atMs)
	chk := s.lc.check()
	var out []Claimed
	read := map[int]func(pgx.Rows) error{0: func(rows pgx.Rows) error {
		var err error
		out, err = s.readClaimed(queue, node, addr, rows, nil)
		return err
	}}
	chk.queue(b, read)
	err := s.readBatch(ctx, b, read)
	if err != nil {
		s.lc.handedOut() // what was claimed is not known
		if errors.Is(err, store.ErrCorrupt) {
			return nil, err
		}
		return nil, s.fail(what, err)
	}
	s.lc.apply(chk, len(out) > 0)
	return out, nil
}

// readBatch sends b and reads the rows of its statements numbered by the
// keys of read, each with its function (the others' results are
// dropped); it stops at the first error.
func (s *Store) readBatch(ctx context.Context, b *pgx.Batch, read map[int]func(pgx.Rows) error) error {
	br := s.pool.SendBatch(ctx, b)
	var err error
	for i := 0; i < b.Len() && err == nil; i++ {
		if fn := read[i]; fn != nil {
			var rows pgx.Rows
			rows, err = br.Query()
			if err == nil {
				err = fn(rows)
				rows.Close()
				if err == nil {
					err = rows.Err()
				}
			}
			continue
		}
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// readClaimed reads the rows of connector_claim. A row without its
// record is one of submitted (the records the group commit that claimed
// it submitted, by id: Commit), whose record is taken from there rather
// than read back and decoded.
func (s *Store) readClaimed(queue, node, addr string, rows pgx.Rows, submitted map[string]*messages.StoredAction) ([]Claimed, error) {
	var out []Claimed
	for rows.Next() {
		// id, epoch, prev_owner, prev_addr, seq, priority, started_ms,
		// record (NULL: one of submitted)
		var c Claimed
		var id, raw []byte
		var ints [4]int64 // epoch, seq, priority, started_ms
		if binaryCols(rows, 0, 1, 4, 5, 6, 7) {
			v := rows.RawValues()
			if len(v) != 8 || v[0] == nil || v[1] == nil || v[2] == nil || v[3] == nil || v[4] == nil || v[5] == nil || v[6] == nil {
				return nil, fmt.Errorf("store: postgresql: queue %s: a claimed row of %d columns, or with NULLs: %w", queue, len(v), errDamaged)
			}
			id, raw = v[0], v[7]
			for i, col := range [4]int{1, 4, 5, 6} {
				var err error
				if ints[i], err = rawInt(v[col]); err != nil {
					return nil, err
				}
			}
			c.PrevOwner, c.PrevAddr = string(v[2]), string(v[3])
		} else if err := rows.Scan(&id, &ints[0], &c.PrevOwner, &c.PrevAddr, &ints[1], &ints[2], &ints[3], &raw); err != nil {
			return nil, err
		}
		c.Epoch, c.StartedMs = ints[0], ints[3]
		seq, prio := ints[1], int32(ints[2])
		var rec *messages.StoredAction
		sub := submitted[string(id)]
		switch {
		case raw == nil && sub == nil:
			return nil, fmt.Errorf("store: postgresql: queue %s: claimed action %s came without its record: %w", queue, id, errDamaged)
		case raw == nil:
			// What the row holds (this transaction inserted it from
			// sub), with a status of its own: the caller changes it.
			rec = &messages.StoredAction{Id: sub.Id, Spec: sub.Spec, Status: proto.CloneOf(sub.Status)}
			if rec.Spec == nil {
				rec.Spec = &messages.ActionSpec{}
			}
			if rec.Status == nil {
				rec.Status = &messages.ActionStatus{}
			}
		default:
			var err error
			if rec, err = decode(queue, raw); err != nil {
				// Claimed and committed: failing here failed the
				// group (its submissions answered as not accepted)
				// and left the action Processing with no worker.
				s.log.Error("a claimed action's record is damaged: it is not run, and ends as Error when this node takes it again",
					"database", s.display, "queue", queue, "id", string(id), "epoch", ints[0], "err", err)
				c.Damaged, rec = err, damagedRecord(string(id), err)
			}
		}
		// The record as it was queued: the claimer's task actor starts it.
		rec.Status.Seq, rec.Status.Priority = uint64(seq), prio
		c.Record, c.Owner, c.OwnerAddr = rec, node, addr
		out = append(out, c)
	}
	return out, rows.Err()
}

// damagedRecord is what an action whose record does not decode (err)
// becomes when a node takes it (Adopt, Reown, Release): ended as Error,
// saying why, with an empty spec (its own cannot be read). Its row's
// columns complete it (rowColumns: seq, priority, start; collectRows:
// queued_ms, and ended_ms when it had ended already). The damaged
// bytes are not kept (nor logged: a spec may hold secrets).
func damagedRecord(id string, err error) *messages.StoredAction {
	return &messages.StoredAction{Id: id, Spec: &messages.ActionSpec{}, Status: &messages.ActionStatus{
		State:       messages.State_STATE_ERROR,
		Error:       fmt.Sprintf("the action's record in the shared store is damaged and cannot be read, so the action is not run: %v", err),
		EndedUnixMs: time.Now().UnixMilli(),
	}}
}

// damagedView is what a read that does not take it (Action, ListRows)
// shows of an action whose record does not decode (err): its row's
// columns (rowColumns: state, seq, priority, running, start; collectRows:
// queued_ms, ended_ms), an empty spec, no token (the record held it; the
// queue makes one from the id, or answers with the one asked for) and an
// error saying why the rest is missing. The state is the row's, which
// the list's filters select on; the queue presents the entry as Error
// (ClusterQueue.ownerGone), so that the error reaches an ACI client,
// whose encoders write it in that state only. Nothing is written: the
// row stays as it is until a node takes it (damagedRecord) or retention
// removes it. The damaged bytes are not kept (nor logged).
func damagedView(id string, err error) *messages.StoredAction {
	return &messages.StoredAction{Id: id, Spec: &messages.ActionSpec{}, Status: &messages.ActionStatus{
		Error: fmt.Sprintf("the action's record in the shared store is damaged and cannot be read: %v", err),
	}}
}

func decode(queue string, raw []byte) (*messages.StoredAction, error) {
	a := &messages.StoredAction{}
	if err := proto.Unmarshal(raw, a); err != nil {
		return nil, fmt.Errorf("store: postgresql: queue %s: undecodable action: %w: %w", queue, errDamaged, err)
	}
	if a.Spec == nil {
		a.Spec = &messages.ActionSpec{}
	}
	if a.Status == nil {
		a.Status = &messages.ActionStatus{}
	}
	return a, nil
}

// OwnedWrite is a change an owner makes to its action: the record's new
// status (Record), and Release to give up the tasks it held exclusively
// (its worker has exited).
type OwnedWrite struct {
	Epoch   int64
	Record  *messages.StoredAction
	Release bool
}

// WriteOwned applies an owner's changes in one transaction, each only if
// node still owns the action at that epoch; it returns the ids of those
// it no longer owns (fenced: not written). ErrFenced when node itself is
// not a live member (nothing written).
func (s *Store) WriteOwned(ctx context.Context, queue, node string, ws []OwnedWrite) (fenced []string, err error) {
	if len(ws) == 0 {
		return nil, s.usable("write to "+queue, true)
	}
	r, err := s.Commit(ctx, queue, node, "", Group{Writes: ws})
	return r.Fenced, err
}

// Group is what a cluster node's group commit carries (Commit).
type Group struct {
	Writes     []OwnedWrite // as WriteOwned
	Submits    []NewAction  // as Submit, with MaxWaiting
	MaxWaiting int
	Claim      int   // then claim up to this many queued actions, as Claim
	ClaimAtMs  int64 // started at this time (Unix ms; 0: now), as ClaimAt
}

// GroupResult is what Commit returns: the seq of each submission (0 for
// one left out by MaxWaiting), the ids of owned writes fenced by their
// epoch (not written), and the actions claimed.
type GroupResult struct {
	Seqs    []uint64
	Fenced  []string
	Claimed []Claimed
}

// Commit is a cluster node's group commit, in one transaction (one round
// trip): its owned writes (each only at its epoch), its submissions, a
// claim for its free threads (which may take those very submissions),
// and the store's deferred datastore writes (deferred.go). ErrFenced, and
// nothing written, when node is not a live member. A write fenced by its
// epoch leaves the rest of the group, the deferred writes included, to
// commit.
func (s *Store) Commit(ctx context.Context, queue, node, addr string, g Group) (res GroupResult, err error) {
	ws, acts, maxWaiting := g.Writes, g.Submits, g.MaxWaiting
	what := "write to " + queue
	if len(acts) > 0 {
		what = "submit to " + queue
		if len(ws) > 0 {
			what = "write and submit to " + queue
		}
	}
	if g.Claim > 0 && len(ws) == 0 && len(acts) == 0 {
		what = "claim from " + queue
	}
	if err := checkName("queue", queue); err != nil {
		return res, err
	}
	if err := s.usable(what, true); err != nil {
		return res, err
	}
	var own *ownedCols
	if len(ws) > 0 {
		if own, err = s.ownedCols(queue, what, ws); err != nil {
			return res, err
		}
	}
	var sub *submitCols
	if len(acts) > 0 {
		if sub, err = s.submitCols(queue, what, acts); err != nil {
			return res, err
		}
	}
	var written map[string]bool
	var got map[string]uint64
	var chk *listCheck
	var submitted map[string]*messages.StoredAction
	if sub != nil && g.Claim > 0 {
		submitted = make(map[string]*messages.StoredAction, len(acts))
		for _, a := range acts {
			submitted[a.Record.Id] = a.Record
		}
	}
	_, queueRow := s.queueRows.Load(queue)
	claimAt := g.ClaimAtMs
	if claimAt == 0 {
		claimAt = time.Now().UnixMilli()
	}
	send := func(w *deferredWrites) error {
		b := &pgx.Batch{}
		read := map[int]func(pgx.Rows) error{}
		b.Queue(`SELECT connector_fence($1)`, node)
		if own != nil {
			own.queue(b, queue, node)
			read[own.rowsAt] = func(rows pgx.Rows) error {
				for rows.Next() {
					if !binaryCols(rows, 0) {
						var id []byte
						if err := rows.Scan(&id); err != nil {
							return err
						}
						written[string(id)] = true
						continue
					}
					written[string(rows.RawValues()[0])] = true
				}
				return rows.Err()
			}
		}
		if sub != nil {
			sub.queue(b, queue, node, addr, maxWaiting, queueRow)
			read[b.Len()-1] = func(rows pgx.Rows) error {
				for rows.Next() {
					if !binaryCols(rows, 0, 1) {
						var id []byte
						var seq int64
						if err := rows.Scan(&id, &seq); err != nil {
							return err
						}
						got[string(id)] = uint64(seq)
						continue
					}
					v := rows.RawValues()
					seq, err := rawInt(v[1])
					if err != nil {
						return err
					}
					got[string(v[0])] = uint64(seq)
				}
				return rows.Err()
			}
		}
		if g.Claim > 0 {
			if sub != nil {
				// The rows this transaction submitted come back
				// without their records: readClaimed has them.
				b.Queue(`SELECT id, epoch, prev_owner, prev_addr, seq, priority, started_ms,
						CASE WHEN id = ANY($6::bytea[]) THEN NULL ELSE record END
					FROM connector_claim($1, $2, $3, $4, $5)`,
					[]byte(queue), node, addr, g.Claim, claimAt, byteaArray(sub.ids))
			} else {
				b.Queue(`SELECT id, epoch, prev_owner, prev_addr, seq, priority, started_ms, record FROM connector_claim($1, $2, $3, $4, $5)`,
					[]byte(queue), node, addr, g.Claim, claimAt)
			}
			read[b.Len()-1] = func(rows pgx.Rows) error {
				got, rerr := s.readClaimed(queue, node, addr, rows, submitted)
				res.Claimed = got
				return rerr
			}
		}
		// Last: the rows they lock (a task's entries, which every node
		// writes) are held for the shortest time.
		w.queue(b)
		if g.Claim > 0 {
			// After the claim and this node's own datastore writes: the
			// versions of the listings cached here (listcache.go).
			chk = s.lc.check()
			chk.queue(b, read)
		}
		return s.writeBatchRows(ctx, what, b, read)
	}
	// A deadlock or serialization failure rolled the whole transaction
	// back (PostgreSQL chose it as the victim of a lock cycle with
	// another node's commit): it is sent again, as PostgreSQL advises,
	// rather than failing the group's submissions and writes.
	for attempt := 1; ; attempt++ {
		written, got, res, chk = map[string]bool{}, map[string]uint64{}, GroupResult{}, nil
		err = s.withDeferred(send)
		if err == nil || attempt == rolledBackAttempts || !rolledBack(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		if g.Claim > 0 {
			s.lc.handedOut() // what was claimed is not known
		}
		return GroupResult{}, err
	}
	if g.Claim > 0 {
		s.lc.apply(chk, len(res.Claimed) > 0)
	}
	if sub != nil && !queueRow {
		s.queueRows.Store(queue, true)
	}
	if own != nil {
		for _, id := range own.order {
			if !written[id] {
				res.Fenced = append(res.Fenced, id)
			}
		}
	}
	if sub != nil {
		res.Seqs = make([]uint64, len(acts))
		for i, a := range acts {
			res.Seqs[i] = got[a.Record.Id]
		}
	}
	return res, nil
}

// ownedCols are the columns of an owner's writes.
type ownedCols struct {
	order                          []string
	ids, recs                      [][]byte
	epochs, queued, started, ended []int64
	states                         []int16
	prios                          []int32
	running, release               []bool
	rowsAt                         int // the statement number of the writes
}

func (s *Store) ownedCols(queue, what string, ws []OwnedWrite) (*ownedCols, error) {
	// The last change of an action wins (a group commit may carry
	// several); a release is kept.
	last := map[string]int{}
	c := &ownedCols{}
	release := map[string]bool{}
	for i, w := range ws {
		id := w.Record.GetId()
		if _, ok := last[id]; !ok {
			c.order = append(c.order, id)
		}
		last[id] = i
		if w.Release {
			release[id] = true
		}
	}
	n := len(c.order)
	c.ids, c.recs = make([][]byte, n), make([][]byte, n)
	c.epochs, c.queued, c.started, c.ended = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	c.states, c.prios, c.running, c.release = make([]int16, n), make([]int32, n), make([]bool, n), make([]bool, n)
	for i, id := range c.order {
		if err := s.hookWrite(what); err != nil {
			return nil, err
		}
		w := ws[last[id]]
		raw, err := proto.Marshal(w.Record)
		if err != nil {
			return nil, fmt.Errorf("store: queue %s: encode action %s: %w: %w", queue, id, store.ErrInvalid, err)
		}
		st := w.Record.GetStatus()
		c.ids[i], c.recs[i], c.epochs[i] = []byte(id), raw, w.Epoch
		c.states[i], c.prios[i], c.running[i] = int16(st.GetState()), st.GetPriority(), st.GetRunning()
		c.queued[i], c.started[i], c.ended[i] = st.GetQueuedUnixMs(), st.GetStartedUnixMs(), st.GetEndedUnixMs()
		c.release[i] = release[id]
	}
	return c, nil
}

// queue adds the owner's statement to b (connector_write_owned); it
// returns the ids it wrote (statement c.rowsAt).
func (c *ownedCols) queue(b *pgx.Batch, queue, node string) {
	c.rowsAt = b.Len()
	b.Queue(`SELECT * FROM connector_write_owned($1, $2, $3::bytea[], $4::bigint[], $5::bytea[], $6::smallint[], $7::int[],
			$8::boolean[], $9::bigint[], $10::bigint[], $11::bigint[], $12::boolean[])`,
		[]byte(queue), node, byteaArray(c.ids), intArray(c.epochs), byteaArray(c.recs), intArray(c.states),
		intArray(c.prios), boolArray(c.running), intArray(c.queued), intArray(c.started), intArray(c.ended), boolArray(c.release))
}

// Action returns the row of action id of queue; ok is false when there is
// none. A row whose record does not decode comes back as a list shows it
// (collectRows): Damaged set, damagedView's record, nothing logged; so
// GetStatus by token and a list answer the same for it.
func (s *Store) Action(ctx context.Context, queue, id string) (Row, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := "read from " + queue
	if err := s.usable(what, false); err != nil {
		return Row{}, false, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+rowCols+`
		FROM connector_actions WHERE queue = $1 AND id = $2`, []byte(queue), []byte(id))
	if err != nil {
		return Row{}, false, s.fail(what, err)
	}
	got, err := s.collectRows(queue, what, rows, false)
	if err != nil || len(got) == 0 {
		return Row{}, false, err
	}
	return got[0], true, nil
}

// rowColumns completes st, a record's status, with its row's columns,
// which the owner's writes keep equal to it, except that a claim writes
// only the columns (the start: Processing, running, started_ms).
func rowColumns(st *messages.ActionStatus, seq int64, state int16, prio int32, running bool, started int64) {
	st.Seq, st.State, st.Priority, st.Running = uint64(seq), messages.State(state), prio, running
	st.StartedUnixMs = started
}

// rowCols are the columns collectRows reads.
const rowCols = "id, owner, owner_addr, epoch, seq, state, priority, running, started_ms, queued_ms, ended_ms, record"

// collectRows reads rows of the columns rowCols. A record that does not
// decode does not fail the read. When take, the rows are taken by this
// node (Adopt, Reown, Release), which writes them back, and such a record
// is what damagedRecord makes of it (ended as Error, logged), so that one
// damaged record neither stops the others being taken nor stays owned,
// unrun, by nobody who can read it. Otherwise (a read: Action, ListRows)
// its row comes back with Damaged set and damagedView's record, not
// logged (a list may be asked for every second; the entry says it): one
// damaged row, which nobody may ever take (an ended action is neither
// claimed nor taken over), no longer fails every list that includes it
// until retention removes it.
func (s *Store) collectRows(queue, what string, rows pgx.Rows, take bool) ([]Row, error) {
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var id, raw []byte
		var seq int64
		var state int16
		var prio int32
		var running bool
		var started, queued, ended int64
		if err := rows.Scan(&id, &r.Owner, &r.OwnerAddr, &r.Epoch, &seq, &state, &prio, &running, &started, &queued, &ended, &raw); err != nil {
			return nil, s.fail(what, err)
		}
		rec, err := decode(queue, raw)
		if err != nil && !take {
			r.Damaged, rec = err, damagedView(string(id), err)
			rowColumns(rec.Status, seq, state, prio, running, started)
			// Its times are the row's too (the record held them).
			rec.Status.QueuedUnixMs, rec.Status.EndedUnixMs = queued, ended
		} else if err != nil {
			s.log.Error("an action's record is damaged: it ends as Error as this node takes it",
				"database", s.display, "call", what, "id", string(id), "err", err)
			rec = damagedRecord(string(id), err)
			rowColumns(rec.Status, seq, int16(messages.State_STATE_ERROR), prio, false, started)
			// takeRows writes the record's times into the row: keep the
			// row's queued time, and its end if it had ended already.
			rec.Status.QueuedUnixMs = queued
			if ended != 0 {
				rec.Status.EndedUnixMs = ended
			}
		} else {
			rowColumns(rec.Status, seq, state, prio, running, started)
		}
		r.Record = rec
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(what, err)
	}
	return out, nil
}

// Adopt makes node the owner of the actions of queue whose owner is dead,
// or "" (nobody), in one transaction: dead owners are declared dead first
// (so they write nothing more, datastores included), the tasks their
// running actions held are freed, and fix turns each running action's
// record into what it becomes (queued again, or ended, by the policy for
// actions interrupted by a crash) before it is written back. It returns
// the adopted rows, owned by node at their new epoch.
//
// It takes at most limit actions (limit <= 0: all), the running ones
// first, then in submission order: a call that returns limit rows may
// have left more, which a call with the same owners takes (the dead are
// declared dead by the first). Every row taken is read, decoded, written
// back and handed to the caller, so one transaction for all of them grew
// with the dead node's actions, its ended ones included: 100,000 took
// longer than the caller's timeout (8.5 s on a loaded 2-core machine),
// which cancelled it every time, and the take-over never happened.
func (s *Store) Adopt(ctx context.Context, queue, node, addr string, dead []string, limit int, fix func(*messages.StoredAction)) ([]Row, error) {
	what := "take over actions of " + queue
	if err := s.usable(what, true); err != nil {
		return nil, err
	}
	// The actions it gives this node were not checked against the
	// listings cached here (listcache.go).
	defer s.lc.handedOut()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, s.fail(what, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT connector_fence($1)`, node); err != nil {
		return nil, s.fail(what, err)
	}
	if len(dead) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE connector_nodes SET dead = true WHERE id = ANY($1) AND NOT dead`, dead); err != nil {
			return nil, s.fail(what, err)
		}
	}
	owners := append([]string{""}, dead...)
	var lim *int64 // NULL: LIMIT ALL
	if limit > 0 {
		n := int64(limit)
		lim = &n
	}
	rows, err := tx.Query(ctx, `SELECT `+rowCols+`
		FROM connector_actions WHERE queue = $1 AND owner = ANY($2) ORDER BY running DESC, seq LIMIT $3 FOR UPDATE SKIP LOCKED`,
		[]byte(queue), owners, lim)
	if err != nil {
		return nil, s.fail(what, err)
	}
	got, err := s.collectRows(queue, what, rows, true)
	if err != nil {
		return nil, err
	}
	return s.takeRows(ctx, tx, what, queue, node, addr, got, fix)
}

// takeRows makes node the owner of got (rows of queue locked by tx) at
// their next epoch, after fix turned each running one into what an
// interrupted action becomes; the tasks they held are freed. It commits
// tx and returns got as written.
func (s *Store) takeRows(ctx context.Context, tx pgx.Tx, what, queue, node, addr string, got []Row, fix func(*messages.StoredAction)) ([]Row, error) {
	if len(got) == 0 {
		return nil, tx.Commit(ctx)
	}
	n := len(got)
	ids, recs := make([][]byte, n), make([][]byte, n)
	states, prios := make([]int16, n), make([]int32, n)
	queued, started, ended := make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range got {
		r := &got[i]
		if r.Record.Status.Running {
			fix(r.Record)
		}
		st := r.Record.Status
		raw, err := proto.Marshal(r.Record)
		if err != nil {
			return nil, fmt.Errorf("store: queue %s: encode action %s: %w", queue, r.Record.Id, err)
		}
		ids[i], recs[i] = []byte(r.Record.Id), raw
		states[i], prios[i] = int16(st.State), st.Priority
		queued[i], started[i], ended[i] = st.QueuedUnixMs, st.StartedUnixMs, st.EndedUnixMs
		r.Owner, r.OwnerAddr, r.Epoch = node, addr, r.Epoch+1
	}
	if _, err := tx.Exec(ctx, `DELETE FROM connector_task_holds WHERE queue = $1 AND id = ANY($2)`, []byte(queue), ids); err != nil {
		return nil, s.fail(what, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE connector_actions a SET owner = $2, owner_addr = $3, epoch = a.epoch + 1, running = false,
			record = u.rec, state = u.state, priority = u.prio, queued_ms = u.queued, started_ms = u.started, ended_ms = u.ended
		FROM unnest($4::bytea[], $5::bytea[], $6::smallint[], $7::int[], $8::bigint[], $9::bigint[], $10::bigint[])
			AS u(id, rec, state, prio, queued, started, ended)
		WHERE a.queue = $1 AND a.id = u.id`, []byte(queue), node, addr, ids, recs, states, prios, queued, started, ended); err != nil {
		return nil, s.fail(what, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, s.fail(what, err)
	}
	return got, nil
}

// Orphaned returns the owners of queue's actions that are not among live
// and joined the cluster more than grace ago (or are unknown, or declared
// dead): the nodes whose actions nobody will answer for until adopted;
// and whether queue has actions no node owns (a node that left cleanly
// released them). One query: a node that finds neither has nothing to
// take over and needs no transaction to look (Adopt).
func (s *Store) Orphaned(ctx context.Context, queue string, live []string, graceSeconds int) (owners []string, unowned bool, err error) {
	what := "find orphaned actions of " + queue
	if err := s.usable(what, false); err != nil {
		return nil, false, err
	}
	rows, err := s.pool.Query(ctx, orphanedSQL, []byte(queue), live, graceSeconds)
	if err != nil {
		return nil, false, s.fail(what, err)
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, s.fail(what, err)
	}
	for _, o := range all {
		if o == "" {
			unowned = true
			continue
		}
		owners = append(owners, o)
	}
	return owners, unowned, nil
}

// orphanedSQL is Orphaned's query. The owners are found by skipping from one to the next in the index on
// (queue, owner, state): one probe per distinct owner (the live nodes,
// and those whose actions are to be taken over), whatever the number of
// actions. SELECT DISTINCT over the queue's rows read every one of them,
// the ended actions retention keeps included: with 100,000 of them, each
// node read the whole table every lease.
const orphanedSQL = `WITH RECURSIVE o(owner) AS (
			SELECT min(owner) FROM connector_actions WHERE queue = $1
		UNION ALL
			SELECT (SELECT min(a.owner) FROM connector_actions a WHERE a.queue = $1 AND a.owner > o.owner)
			FROM o WHERE o.owner IS NOT NULL)
		SELECT o.owner FROM o LEFT JOIN connector_nodes n ON n.id = o.owner
		WHERE o.owner IS NOT NULL AND (o.owner = '' OR NOT (o.owner = ANY($2))
			AND (n.id IS NULL OR n.dead OR n.joined < now() - make_interval(secs => $3)))`

// HasUnowned reports whether queue has actions no node owns.
func (s *Store) HasUnowned(ctx context.Context, queue string) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connector_actions WHERE queue = $1 AND owner = '')`, []byte(queue)).Scan(&ok)
	if err != nil {
		return false, s.fail("find unowned actions of "+queue, err)
	}
	return ok, nil
}

// Release gives up node's ownership of every action of queue (a node
// leaving the cluster cleanly, after its workers stopped): running ones
// are put back as fix says (their record, state and start and end times
// as fix leaves them), and all become unowned, for the others to
// adopt. The node is declared dead: it writes nothing more.
//
// The running actions go in one transaction, with the node's tasks and
// its death; the others after it, releaseBatch at a time, for as long as
// ctx lets them: those left are a departed node's (declared dead), which
// the others take over as any (Adopt). One transaction for all of them
// grew with the node's actions, its ended ones included: 100,000 outlasted
// the caller's deadline, and the node left without handing its running
// actions back.
func (s *Store) Release(ctx context.Context, queue, node string, fix func(*messages.StoredAction)) error {
	what := "release actions of " + queue
	if err := s.usable(what, true); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fail(what, err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT `+rowCols+`
		FROM connector_actions WHERE queue = $1 AND owner = $2 AND running FOR UPDATE`, []byte(queue), node)
	if err != nil {
		return s.fail(what, err)
	}
	got, err := s.collectRows(queue, what, rows, true)
	if err != nil {
		return err
	}
	for _, r := range got {
		fix(r.Record)
		raw, err := proto.Marshal(r.Record)
		if err != nil {
			return fmt.Errorf("store: queue %s: encode action %s: %w", queue, r.Record.Id, err)
		}
		st := r.Record.Status
		if _, err := tx.Exec(ctx, `UPDATE connector_actions SET record = $3, state = $4, running = false, ended_ms = $5, started_ms = $6
			WHERE queue = $1 AND id = $2`, []byte(queue), []byte(r.Record.Id), raw, int16(st.State), st.EndedUnixMs, st.StartedUnixMs); err != nil {
			return s.fail(what, err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM connector_task_holds h USING connector_actions a
		WHERE h.queue = $1 AND a.queue = $1 AND a.id = h.id AND a.owner = $2`, []byte(queue), node); err != nil {
		return s.fail(what, err)
	}
	ids := make([][]byte, len(got))
	for i, r := range got {
		ids[i] = []byte(r.Record.Id)
	}
	if _, err := tx.Exec(ctx, `UPDATE connector_actions SET owner = '', owner_addr = '', epoch = epoch + 1
		WHERE queue = $1 AND owner = $2 AND id = ANY($3)`, []byte(queue), node, ids); err != nil {
		return s.fail(what, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE connector_nodes SET dead = true WHERE id = $1`, node); err != nil {
		return s.fail(what, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.fail(what, err)
	}
	for {
		tag, err := s.pool.Exec(ctx, `UPDATE connector_actions a SET owner = '', owner_addr = '', epoch = a.epoch + 1
			WHERE a.queue = $1 AND a.owner = $2 AND a.id = ANY(ARRAY(SELECT id FROM connector_actions
				WHERE queue = $1 AND owner = $2 LIMIT $3))`, []byte(queue), node, releaseBatch)
		if err != nil {
			// Declared dead: the others take the rest over.
			s.log.Info("the actions this node has not handed back yet are taken over by the others", "queue", queue, "err", err)
			return nil
		}
		if tag.RowsAffected() < releaseBatch {
			return nil
		}
	}
}

// releaseBatch is how many actions of a node leaving cleanly, other than
// its running ones, one statement of Release un-owns.
const releaseBatch = 1000

// SetPaused sets queue's cluster-wide pause flag.
func (s *Store) SetPaused(ctx context.Context, queue string, paused bool) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := "pause " + queue
	if err := s.usable(what, true); err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO connector_queues (queue, paused) VALUES ($1, $2)
		ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused`, []byte(queue), paused)
	_, err := s.writeBatch(ctx, what, b)
	return err
}

// Counts returns how many actions of queue are in each state (waiting:
// Queued, or Paused without a worker), and the pause flag.
//
// The counts by state read only the index of owners (queue, owner,
// state: an index-only scan, no row of the table), the waiting ones the
// index of waiting actions (connector_actions_waiting). Grouped by state
// and running, as before, the count read every row of the queue, ended
// ones and their records included: 0.2 s per QueueStatus with 100,000
// actions kept, against 0.03 s so (fix22c's figures).
//
// Both counts and the flag are one statement (countsSQL), so one
// snapshot: as two statements, each saw the commits made before it, and
// an action submitted or claimed between them was counted waiting but in
// no state, or Queued but not waiting (QueueStatus's queued and waiting
// disagreed, and its running was off by as many).
const (
	countsByStateSQL = `SELECT state, count(*) FROM connector_actions WHERE queue = $1 GROUP BY state`
	countsWaitingSQL = `SELECT count(*) FROM connector_actions WHERE queue = $1 AND state IN (1, 3) AND NOT running`
	// countsSQL: the counts by state, then the waiting count (in the row
	// of state -1: countsWaitingRow) and the pause flag as 0 or 1 (-2:
	// countsPausedRow).
	countsSQL = `(` + countsByStateSQL + `)
		UNION ALL SELECT -1, (` + countsWaitingSQL + `)
		UNION ALL SELECT -2, (SELECT count(*) FROM connector_queues WHERE queue = $1 AND paused)`
	countsWaitingRow = -1
	countsPausedRow  = -2
)

func (s *Store) Counts(ctx context.Context, queue string) (byState [8]uint64, waiting uint64, paused bool, err error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := "count actions of " + queue
	if err := s.usable(what, false); err != nil {
		return byState, 0, false, err
	}
	rows, err := s.pool.Query(ctx, countsSQL, []byte(queue))
	if err != nil {
		return byState, 0, false, s.fail(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st int16
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return byState, 0, false, s.fail(what, err)
		}
		switch {
		case st == countsWaitingRow:
			waiting = uint64(n)
		case st == countsPausedRow:
			paused = n > 0
		case st >= 0 && int(st) < len(byState):
			byState[st] += uint64(n)
		}
	}
	if err := rows.Err(); err != nil {
		return byState, 0, false, s.fail(what, err)
	}
	return byState, waiting, paused, nil
}

// Removed is an action retention deleted, and its owner (whose task actor
// retires).
type Removed struct {
	ID, Owner, OwnerAddr string
}

// Retain deletes ended actions of queue beyond the newest keep ones, and
// those that ended before endedBeforeMs (0: no age limit): at most limit
// of them (limit > 0), the oldest first. A call that returns limit
// actions may have left more: call again. One statement for all of them
// deleted every row in one transaction: after a long outage, or with
// MaximumFinishedActions lowered, a million ended actions took longer
// than the caller's timeout, which cancelled it, every pass, and
// retention never removed anything again.
func (s *Store) Retain(ctx context.Context, queue string, keep int, endedBeforeMs int64, limit int) ([]Removed, error) {
	what := "retain actions of " + queue
	if err := s.usable(what, true); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("store: postgresql %s: %s: limit %d is not positive: %w", s.display, what, limit, store.ErrInvalid)
	}
	// An ended action that still holds tasks (its worker has not exited
	// yet, its owner's release is not written) stays until the next
	// pass: removed, its hold would lose its action, and nothing would
	// free it (every action of those tasks would wait, forever).
	// The newest keep ended actions stay: those beyond them are the ones
	// that sort at or before the (keep+1)-th newest (none when there are
	// not that many: the comparison with no row is null).
	// ($3 is cast: PostgreSQL would take it for an int4 from "$3 > 0",
	// and a time in milliseconds does not fit.)
	// The ids go to the DELETE as an array, so that it finds each row by
	// its key: joined to the batch instead, it read the whole table (a
	// hash join), a second per 200,000 ended actions.
	rows, err := s.pool.Query(ctx, `DELETE FROM connector_actions a
		WHERE a.queue = $1 AND a.state >= 4 AND a.id = ANY(ARRAY(SELECT d.id FROM connector_actions d
			WHERE d.queue = $1 AND d.state >= 4 AND (
				(d.ended_ms, d.seq) <= (SELECT ended_ms, seq FROM connector_actions
					WHERE queue = $1 AND state >= 4 ORDER BY ended_ms DESC, seq DESC OFFSET $2 LIMIT 1)
				OR $3::bigint > 0 AND d.ended_ms < $3)
				AND NOT EXISTS (SELECT 1 FROM connector_task_holds h WHERE h.queue = $1 AND h.id = d.id)
			ORDER BY d.ended_ms, d.seq LIMIT $4))
		RETURNING a.id, a.owner, a.owner_addr`, []byte(queue), max(keep, 0), endedBeforeMs, limit)
	if err != nil {
		return nil, s.fail(what, err)
	}
	defer rows.Close()
	var out []Removed
	for rows.Next() {
		var r Removed
		var id []byte
		if err := rows.Scan(&id, &r.Owner, &r.OwnerAddr); err != nil {
			return nil, s.fail(what, err)
		}
		r.ID = string(id)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(what, err)
	}
	return out, nil
}

// List returns the ids of queue's actions that f selects, in f's order,
// with its paging, as the in-process queue's List does.
func (s *Store) List(ctx context.Context, queue string, f *messages.ListActions) ([]string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.listQuery(ctx, queue, f, "id")
	if err != nil {
		return nil, err
	}
	raw, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, s.fail("list actions of "+queue, err)
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = string(r)
	}
	return out, nil
}

// ListRows is List with each action's row (owner and record). A row
// whose record does not decode is listed with Damaged set (collectRows).
func (s *Store) ListRows(ctx context.Context, queue string, f *messages.ListActions) ([]Row, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.listQuery(ctx, queue, f, rowCols)
	if err != nil {
		return nil, err
	}
	return s.collectRows(queue, "list actions of "+queue, rows, false)
}

func (s *Store) listQuery(ctx context.Context, queue string, f *messages.ListActions, cols string) (pgx.Rows, error) {
	what := "list actions of " + queue
	if err := s.usable(what, false); err != nil {
		return nil, err
	}
	if f == nil {
		f = &messages.ListActions{}
	}
	var where []string
	args := []any{[]byte(queue)}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where = append(where, "queue = $1")
	if len(f.GetStates()) > 0 {
		st := make([]int16, len(f.States))
		for i, s := range f.States {
			st[i] = int16(s)
		}
		where = append(where, "state = ANY("+arg(st)+"::smallint[])")
	}
	if f.GetNotStarted() {
		where = append(where, "state < 4 AND NOT running")
	}
	if v := f.GetQueuedAfterUnixMs(); v != 0 {
		where = append(where, "queued_ms > "+arg(v))
	}
	if v := f.GetQueuedBeforeUnixMs(); v != 0 {
		where = append(where, "queued_ms < "+arg(v))
	}
	if v := f.GetFinishedAfterUnixMs(); v != 0 {
		where = append(where, "ended_ms <> 0 AND ended_ms > "+arg(v))
	}
	if v := f.GetFinishedBeforeUnixMs(); v != 0 {
		where = append(where, "ended_ms <> 0 AND ended_ms < "+arg(v))
	}
	if f.GetHasMinPriority() {
		where = append(where, "priority >= "+arg(f.MinPriority))
	}
	if f.GetHasMaxPriority() {
		where = append(where, "priority <= "+arg(f.MaxPriority))
	}
	key := "queued_ms"
	switch f.GetSortBy() {
	case messages.SortBy_SORT_BY_START_TIME:
		key = "started_ms"
	case messages.SortBy_SORT_BY_FINISH_TIME:
		key = "ended_ms"
	case messages.SortBy_SORT_BY_PRIORITY:
		key = "priority"
	}
	dir := "DESC"
	if f.GetAscending() {
		dir = "ASC"
	}
	q := "SELECT " + cols + " FROM connector_actions WHERE " + strings.Join(where, " AND ") +
		fmt.Sprintf(" ORDER BY %s %s, seq %s", key, dir, dir)
	if k := f.GetMaxResults(); k > 0 {
		q += " LIMIT " + arg(int64(k))
	}
	if sk := f.GetSkip(); sk > 0 {
		q += " OFFSET " + arg(int64(sk))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, s.fail(what, err)
	}
	return rows, nil
}

// Threads returns the MaximumThreads of the given nodes, added up.
func (s *Store) Threads(ctx context.Context, nodes []string) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(max_threads), 0) FROM connector_nodes WHERE id = ANY($1) AND NOT dead`, nodes).Scan(&n); err != nil {
		return 0, s.fail("count threads", err)
	}
	return n, nil
}

// NodeAlive reports whether node is a live member (not declared dead).
func (s *Store) NodeAlive(ctx context.Context, node string) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var dead bool
	err := s.pool.QueryRow(ctx, `SELECT dead FROM connector_nodes WHERE id = $1`, node).Scan(&dead)
	if err == pgx.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, s.fail("read node "+node, err)
	}
	return !dead, nil
}
