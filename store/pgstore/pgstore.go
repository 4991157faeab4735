// Package pgstore is the connector's store in a PostgreSQL database that
// several connector nodes share: the actions of every queue and the crawl
// datastores of every task, durable when a call returns (PostgreSQL's
// synchronous commit), safe for any number of processes at once.
//
// It implements store.Store (and passes its conformance suite,
// store/storetest), so a single node can run on it as on the embedded
// store. Cluster mode uses the rest of its API (cluster.go): actions
// submitted with sequence numbers PostgreSQL allocates, claimed in
// priority order across the cluster, and written by their owner only
// while it owns them (fencing by ownership epoch).
//
// # Writes
//
// Every write is one round trip: its statements go to the server as one
// pipelined batch, which PostgreSQL runs as one transaction. Callers group
// their changes (the QueueManager's group commit, a crawl's page batches),
// so a commit (and its WAL flush) is paid once per group. A cluster
// node's group commit (Commit) carries its owned writes, its submissions,
// a claim for its free threads, and the bookkeeping its tasks deferred
// (store.Bookkeeper, deferred.go), in one transaction. Rows go to the
// server as array parameters (unnest), which the package encodes in
// PostgreSQL's binary format itself rather than through pgx's per-element
// encoding, and the group commit reads its results from the raw values
// (arrays.go); with default_query_exec_mode=exec or simple_protocol in the
// URL (behind PgBouncer in transaction pooling), which send parameters and
// read results in text format, they go through pgx's own codecs instead.
//
// # Listings
//
// A cluster node serves an action's listing of a task's keys under a
// prefix (store.ForEachPrefix: the HTTP connector's Identifiers) from a
// cache, without a round trip, while the task's datastore is unchanged:
// every write of a datastore's keys raises the task's version in its
// transaction, and every claim reads the versions of the cached tasks
// before the actions it claims start (listcache.go).
//
// # Failures
//
// Errors wrap the store package's sentinels where one fits (ErrInvalid,
// ErrClosed, ErrNoSpace, ErrReadOnly, ErrCorrupt: for a row that does not
// decode, errDamaged, whose text speaks of the database instead of
// ErrCorrupt's file), ErrUnavailable when the
// database cannot be reached (the outcome of a write that was sent is then
// unknown; nothing is kept locally, so the store stays usable and the next
// call tries again), ErrFenced when a node writes what it no longer owns,
// and ErrTLS when the connection fails on its TLS settings (a
// misconfiguration, logged at Error level). Any other failure (a value
// pgx cannot encode, a result that does not decode, a statement
// PostgreSQL refuses for a reason of its own)
// wraps none of them: its text says what it is, and the store logs it at
// Error level, since trying again does not cure it.
package pgstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// Engine is the store's Info().Engine.
const Engine = "postgresql"

var (
	// ErrUnavailable: the database could not be reached, or the
	// connection broke, within the call (see classify for the errors
	// that say so). A write's outcome is unknown.
	ErrUnavailable = errors.New("store: the shared database is unavailable")
	// ErrTLS: the connection to the database failed on its TLS settings
	// (see tlsMisconfigured): the server's certificate does not verify
	// (an unknown authority, expired, another host name), the server
	// refuses the TLS that sslmode requires, or it ends the handshake
	// (a client certificate it wants). A misconfiguration of the
	// connection URL (sslmode, sslrootcert, sslcert) or of the server's
	// certificate, not the database being out of reach: trying again
	// does not cure it.
	ErrTLS = errors.New("store: the connection to the shared database fails on its TLS settings (sslmode, sslrootcert, sslcert, or the server's certificate): a misconfiguration, not the database being out of reach")
	// ErrFenced: this node wrote an action (or a datastore) it no longer
	// owns: another node took it over. Nothing was written.
	ErrFenced = errors.New("store: no longer the owner")
	// ErrUncertain: a write's statements were sent and no answer came
	// (the connection broke, or the call's deadline passed, while
	// PostgreSQL carried them out): its transaction may have committed,
	// or may yet commit (PostgreSQL finishes the statements it has,
	// though the caller has given up). It comes with ErrUnavailable.
	// Resubmit settles the fate of a submission that failed so.
	ErrUncertain = errors.New("store: the write may have been committed")
)

// Config says which database to use and how.
type Config struct {
	// URL is a PostgreSQL connection URL or keyword/value string
	// (postgres://user:password@host:5432/db?sslmode=...).
	URL string
	// Password, when set, is the database password (the URL has none).
	Password string
	// Node is this process's member id in a cluster; "" outside one.
	// Datastore writes of a node are refused (ErrFenced) once the cluster
	// has declared the node dead (see cluster.go).
	Node string
	// MaxConns caps the connection pool. Default 16.
	MaxConns int
	// Timeout bounds each call (0: 30s). A call that cannot reach the
	// database within it fails with ErrUnavailable.
	Timeout time.Duration
	// DeferInterval bounds how long a deferred datastore write
	// (store.Deferrer) waits for a group commit to carry it before it is
	// written on its own. Default 1s.
	DeferInterval time.Duration
	// ListCacheBytes bounds the memory of a cluster node's listing cache
	// (store.ForEachPrefix: a task's listing served without a round trip
	// while its datastore has not changed; listcache.go). Default 4 MiB;
	// negative: no cache. Outside a cluster (Node "") there is none.
	ListCacheBytes int
	// Logger receives open/close and failure events. Default: discard.
	Logger *slog.Logger
	// Faults is consulted at each step of every write (tests only).
	Faults store.FaultInjector
}

// Store is an open pgstore. Safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	cfg     Config
	log     *slog.Logger
	display string // URL without password

	mu     sync.RWMutex
	closed bool
	failed error // set by an injected sync failure (store.FaultInjector)

	// tlsBroken is set by the first ErrTLS and cleared by the next
	// connection made (connected): fail logs ErrTLS at level error once
	// per change, not for each call that fails while a certificate
	// stays expired.
	tlsBroken atomic.Bool

	dsMu sync.Mutex
	ds   map[string]*datastore

	def deferState // deferred datastore writes (deferred.go)
	lc  listCache  // listings of datastores (listcache.go)

	// deferMu is held for reading by a deferred write (UpdateBookkeeping,
	// MergeBookkeeping) for its whole call, and for writing by Close to
	// set closing before its final flush: a deferred write that returned
	// nil is in what that flush writes, and a later one is refused
	// (ErrClosed) instead of waiting in memory for a flush that never
	// comes. (So an UpdateBookkeeping's fn must not make another
	// deferred write: it would wait behind a Close under way.)
	deferMu sync.RWMutex
	closing bool

	// queueRows holds the names of the queues whose connector_queues row
	// a commit of this store has seen exist (the rows are never
	// deleted): a cluster node's group commit inserts the row only until
	// then, not in every transaction that submits (issue 17: a statement
	// less per group commit).
	queueRows sync.Map
}

// schemaVersion is the layout this build writes; Open upgrades a
// database of an older layout (upgrades) and refuses one of a newer.
// Version 2: connector_datastores.version (listcache.go), which every
// node must raise as it writes a datastore: a node of an older build,
// which does not, refuses the upgraded database.
const schemaVersion = 2

// upgrades[v] are the statements that take the tables from layout v to
// v+1 (schema creates the latest layout in an empty database).
var upgrades = map[int][]string{
	1: {`ALTER TABLE connector_datastores ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0`},
}

// lockSchema serialises schema set-up between nodes starting at once.
const lockSchema = 0x636f6e6e // "conn"

// lockTurns is the first key of the locks of Turn (the second is the
// hash of the turn's name).
const lockTurns = 0x7475726e // "turn"

// lockKeyCheck serialises the key checks of nodes starting at once
// (CheckKey).
const lockKeyCheck = 0x636b6579 // "ckey"

var schema = []string{
	`CREATE TABLE IF NOT EXISTS connector_schema (version int NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS connector_queues (
		queue bytea PRIMARY KEY,
		paused boolean NOT NULL DEFAULT false)`,
	`CREATE SEQUENCE IF NOT EXISTS connector_action_seq`,
	// One row per action. record is the StoredAction (protobuf); the
	// other columns are what queries filter, sort and fence on.
	`CREATE TABLE IF NOT EXISTS connector_actions (
		queue bytea NOT NULL,
		id bytea NOT NULL,
		seq bigint NOT NULL,
		state smallint NOT NULL,
		priority int NOT NULL DEFAULT 0,
		queued_ms bigint NOT NULL DEFAULT 0,
		started_ms bigint NOT NULL DEFAULT 0,
		ended_ms bigint NOT NULL DEFAULT 0,
		started boolean NOT NULL DEFAULT false,
		running boolean NOT NULL DEFAULT false,
		owner text NOT NULL DEFAULT '',
		owner_addr text NOT NULL DEFAULT '',
		epoch bigint NOT NULL DEFAULT 0,
		exclusive text[] NOT NULL DEFAULT '{}',
		record bytea NOT NULL,
		PRIMARY KEY (queue, id),
		CONSTRAINT connector_actions_seq UNIQUE (queue, seq) DEFERRABLE INITIALLY DEFERRED)`,
	`CREATE INDEX IF NOT EXISTS connector_actions_claim ON connector_actions (queue, priority DESC, seq) WHERE state = 1`,
	// The actions of each owner, by queue, the unfinished first: a
	// node's look for orphans (Orphaned) skips from owner to owner in
	// it, its reconciliation (Owners) reads its unfinished actions, a
	// take-over or release its actions. It replaces an index on owner
	// alone, with which both scans, every lease on every node, read
	// every ended action the cluster retains. Created by Open in a
	// database made before it, whose index on owner alone it drops.
	`CREATE INDEX IF NOT EXISTS connector_actions_queue_owner ON connector_actions (queue, owner, state)`,
	`DROP INDEX IF EXISTS connector_actions_owner`,
	`CREATE INDEX IF NOT EXISTS connector_actions_ended ON connector_actions (queue, ended_ms) WHERE state >= 4`,
	// The actions waiting for a worker (Queued, or Paused without one),
	// which every submission counts against its queue's limit
	// (submitCols.queue): without it that count read every row of the
	// queue, finished ones included (pgcpu19). Created by Open in a
	// database made before it too (these statements run at every Open).
	`CREATE INDEX IF NOT EXISTS connector_actions_waiting ON connector_actions (queue) WHERE state IN (1, 3) AND NOT running`,
	// version rises with every transaction that puts, deletes or clears
	// keys of the task (listcache.go).
	`CREATE TABLE IF NOT EXISTS connector_datastores (task bytea PRIMARY KEY, version bigint NOT NULL DEFAULT 0)`,
	`CREATE TABLE IF NOT EXISTS connector_datastore_entries (
		task bytea NOT NULL,
		key bytea NOT NULL,
		value bytea NOT NULL,
		PRIMARY KEY (task, key))`,
	// The nodes of a cluster; a node declared dead writes nothing more.
	`CREATE TABLE IF NOT EXISTS connector_nodes (
		id text PRIMARY KEY,
		addr text NOT NULL,
		max_threads int NOT NULL DEFAULT 0,
		joined timestamptz NOT NULL DEFAULT now(),
		dead boolean NOT NULL DEFAULT false)`,
	// Each node's check of its [Security] AESKeyFile (secret.Key.Check):
	// a secret one node encrypts, another may have to decrypt (CheckKey).
	`CREATE TABLE IF NOT EXISTS connector_key_checks (
		node text PRIMARY KEY,
		key_check text NOT NULL)`,
	// Tasks held exclusively by running actions (fetch.Exclusive), so
	// that one such action per task runs in the whole cluster.
	`CREATE TABLE IF NOT EXISTS connector_task_holds (
		queue bytea NOT NULL,
		task text NOT NULL,
		id bytea NOT NULL,
		PRIMARY KEY (queue, task))`,
	// connector_fence raises CNF01 unless node is a live member: the
	// first statement of every datastore write of a cluster node. FOR
	// SHARE orders it against the UPDATE that declares the node dead.
	`CREATE OR REPLACE FUNCTION connector_fence(node text) RETURNS void AS $$
	BEGIN
		PERFORM 1 FROM connector_nodes WHERE id = node AND NOT dead FOR SHARE;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'node % is not a live member of the cluster (declared dead, its work taken over)', node
				USING ERRCODE = 'CNF01';
		END IF;
	END $$ LANGUAGE plpgsql`,
	// connector_layout raises CNF02 unless the tables are of layout v,
	// the one the caller's build opened them as: the first statement of a
	// node's key check and registration. A node of a newer build may have
	// upgraded them since (migrate), declaring dead every node it saw
	// registered; one that registers after that would be live, and write
	// as its build does. FOR SHARE orders it against the upgrade: a
	// registration that comes first is seen, and declared dead, by the
	// upgrade; one that comes after it waits for its commit and is
	// refused.
	`CREATE OR REPLACE FUNCTION connector_layout(v int) RETURNS void AS $$
	DECLARE
		cur int;
	BEGIN
		SELECT version INTO cur FROM connector_schema FOR SHARE;
		IF cur IS DISTINCT FROM v THEN
			RAISE EXCEPTION 'the tables are of layout version % since a node of a newer build upgraded them, this build reads %: stop the nodes of this build before starting those of the newer one', cur, v
				USING ERRCODE = 'CNF02';
		END IF;
	END $$ LANGUAGE plpgsql`,
	// connector_merge_json applies a deferred merge (store.Merge,
	// deferred.go) to a datastore value: old as a JSON object ({} when it
	// is absent or is not one), each member of adds added to old's integer
	// of that name (0 when absent or not an integer), then sets' members
	// put over it. It never fails on what old holds: a damaged record
	// must not fail the group commit that carries the merge.
	`CREATE OR REPLACE FUNCTION connector_merge_json(old bytea, sets jsonb, adds jsonb) RETURNS bytea AS $$
	DECLARE
		o jsonb;
		k text;
		v jsonb;
	BEGIN
		IF old IS NOT NULL THEN
			BEGIN
				o := convert_from(old, 'UTF8')::jsonb;
			EXCEPTION WHEN others THEN
				o := NULL;
			END;
		END IF;
		IF o IS NULL OR jsonb_typeof(o) <> 'object' THEN
			o := '{}';
		END IF;
		FOR k, v IN SELECT * FROM jsonb_each(coalesce(adds, '{}')) LOOP
			o := o || jsonb_build_object(k, (CASE WHEN jsonb_typeof(o->k) = 'number' AND (o->>k) ~ '^-?[0-9]+$'
				THEN (o->>k)::numeric ELSE 0 END) + (v #>> '{}')::numeric);
		END LOOP;
		RETURN convert_to((o || coalesce(sets, '{}'))::text, 'UTF8');
	END $$ LANGUAGE plpgsql`,
}

// Open connects to the database, creates the tables if needed and checks
// their version.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.DeferInterval <= 0 {
		cfg.DeferInterval = time.Second
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("store: postgresql: connection URL: %w: %w", store.ErrInvalid, err)
	}
	pc.MaxConns = int32(cfg.MaxConns)
	if cfg.Password != "" {
		pc.ConnConfig.Password = cfg.Password
	}
	pc.ConnConfig.ConnectTimeout = min(cfg.Timeout, 10*time.Second)
	// Statements are prepared once per connection (pgx's statement cache),
	// unless the URL's default_query_exec_mode says otherwise. Array
	// parameters built by arrays.go are sent as they are (in binary
	// format; see arrays.go for the text format of exec and
	// simple_protocol).
	s := &Store{cfg: cfg, log: cfg.Logger.With("component", "store", "engine", Engine), display: displayURL(pc)}
	pc.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		s.connected()
		registerArrays(conn)
		return nil
	}
	s.def.lc = &s.lc
	if cfg.Node != "" && cfg.ListCacheBytes >= 0 {
		s.lc.max = cfg.ListCacheBytes
		if s.lc.max == 0 {
			s.lc.max = defaultListCacheBytes
		}
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, s.fail("connect", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	s.log.Info("store opened", "database", s.display)
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(s.cfg.Timeout, time.Minute))
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fail("set up tables", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockSchema); err != nil {
		return s.fail("set up tables", err)
	}
	stmts := append(schema, clusterSchema...)
	have, err := existingIndexes(ctx, tx, stmts)
	if err != nil {
		return s.fail("set up tables", err)
	}
	for _, q := range stmts {
		if m := createIndex.FindStringSubmatch(q); m != nil && have[m[1]] {
			continue
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			return s.fail("set up tables", err)
		}
	}
	var versions []int
	rows, err := tx.Query(ctx, `SELECT version FROM connector_schema`)
	if err != nil {
		return s.fail("set up tables", err)
	}
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return s.fail("set up tables", err)
	}
	switch {
	case len(versions) == 0:
		if _, err := tx.Exec(ctx, `INSERT INTO connector_schema (version) VALUES ($1)`, schemaVersion); err != nil {
			return s.fail("set up tables", err)
		}
	case versions[0] > schemaVersion || versions[0] < 1:
		return fmt.Errorf("store: postgresql %s: tables of layout version %d, this build reads %d: %w",
			s.display, versions[0], schemaVersion, store.ErrVersion)
	case versions[0] < schemaVersion:
		for v := versions[0]; v < schemaVersion; v++ {
			for _, q := range upgrades[v] {
				if _, err := tx.Exec(ctx, q); err != nil {
					return s.fail(fmt.Sprintf("upgrade tables from layout version %d", v), err)
				}
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE connector_schema SET version = $1`, schemaVersion); err != nil {
			return s.fail("set up tables", err)
		}
		// Every node registered before now runs a build of the older
		// layout (one of this layout would have upgraded the tables
		// itself), and one already running does not read the layout
		// again: it would go on writing as its build does (datastores
		// without raising their versions, layout 2). Declared dead,
		// it is fenced at its next write or claim (ErrFenced: it stops
		// its work and restarts, and its restart refuses these tables),
		// and its actions are taken over by the nodes of this build.
		tag, err := tx.Exec(ctx, `UPDATE connector_nodes SET dead = true WHERE NOT dead`)
		if err != nil {
			return s.fail("set up tables", err)
		}
		s.log.Info("tables upgraded", "database", s.display, "from", versions[0], "to", schemaVersion,
			"older_nodes_fenced", tag.RowsAffected())
	}
	if err := tx.Commit(ctx); err != nil {
		return s.fail("set up tables", err)
	}
	return nil
}

// createIndex matches a statement of the schema that creates an index
// unless it exists, and gives the index's name.
var createIndex = regexp.MustCompile(`^CREATE INDEX IF NOT EXISTS (\w+) `)

// existingIndexes returns which of the indexes that stmts create exist
// already. Open runs only the statements of those that do not: CREATE
// INDEX IF NOT EXISTS takes a SHARE lock on its table before it finds the
// index there, so every node's start waited for the writes in flight on
// the actions' table (a take-over's batch, retention's DELETE, a frozen
// node's transaction, for up to a minute), and every node's writes that
// came after waited behind it.
func existingIndexes(ctx context.Context, tx pgx.Tx, stmts []string) (map[string]bool, error) {
	var names []string
	for _, q := range stmts {
		if m := createIndex.FindStringSubmatch(q); m != nil {
			names = append(names, m[1])
		}
	}
	rows, err := tx.Query(ctx, `SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NOT NULL`, names)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(found))
	for _, n := range found {
		have[n] = true
	}
	return have, nil
}

// displayURL is the connection's address without its password.
func displayURL(pc *pgxpool.Config) string {
	u := url.URL{Scheme: "postgres", Host: fmt.Sprintf("%s:%d", pc.ConnConfig.Host, pc.ConnConfig.Port), Path: "/" + pc.ConnConfig.Database}
	if pc.ConnConfig.User != "" {
		u.User = url.User(pc.ConnConfig.User)
	}
	return u.String()
}

// Pool is the store's connection pool (for cluster operations and tests).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Info implements store.Store.
func (s *Store) Info() store.Info {
	return store.Info{Path: s.display, Engine: Engine}
}

// Close implements store.Store. Deferred datastore writes not yet written
// are written first; the error says if they could not be.
func (s *Store) Close() error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil
	}
	s.deferMu.Lock()
	s.closing = true
	s.deferMu.Unlock()
	ferr := s.flushDeferred()
	if errors.Is(ferr, ErrFenced) {
		// A node declared dead must not write them: dropping them is
		// what fencing asks, not a failure of Close.
		s.log.Warn("deferred datastore writes dropped: this node was declared dead", "database", s.display)
		ferr = nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.def.mu.Lock()
	if s.def.timer != nil {
		s.def.timer.Stop()
	}
	s.def.mu.Unlock()
	s.pool.Close()
	if ferr != nil {
		s.log.Error("store closed; deferred datastore writes were lost", "database", s.display, "err", ferr)
		return ferr
	}
	s.log.Info("store closed", "database", s.display)
	return nil
}

// usable checks the store may serve a call.
func (s *Store) usable(what string, write bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("store: postgresql %s: %s: %w", s.display, what, store.ErrClosed)
	}
	if write && s.failed != nil {
		return fmt.Errorf("store: postgresql %s: %s: %w (after: %w)", s.display, what, store.ErrFailed, s.failed)
	}
	return nil
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.Timeout)
}

// bound is ctx with the store's deadline (Timeout) unless its own comes
// first: a call given a context that never ends (an ACI request's) must
// not wait for ever on a database that does not answer (its host frozen
// or cut off: the connection stays open, nothing comes back).
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

// errDamaged is store.ErrCorrupt as this store says it: errors.Is(err,
// store.ErrCorrupt) holds, as for the embedded store, but its text says
// that data in the shared database is damaged, not a file (ErrCorrupt's
// "file is corrupt", which a damaged row's entry would otherwise show a
// client: damagedView).
var errDamaged error = damagedData{}

type damagedData struct{}

func (damagedData) Error() string        { return "store: damaged data in the shared database" }
func (damagedData) Is(target error) bool { return target == store.ErrCorrupt }

// fail classifies err from the database. An error that is neither the
// database being out of reach nor one of the store's sentinels (a value
// pgx could not encode, a result that does not decode, a statement
// PostgreSQL refuses for a reason of its own), or that says what the
// database holds is damaged (store.ErrCorrupt), is logged here with its
// cause: it is a bug, damage or a misconfiguration, which trying again
// does not cure.
func (s *Store) fail(what string, err error) error {
	out, unexpected := classify(fmt.Sprintf("store: postgresql %s: %s", s.display, what), err)
	if unexpected {
		s.mu.RLock()
		closed := s.closed
		s.mu.RUnlock()
		if closed { // a call that raced Close: its pool was closed under it
			return fmt.Errorf("store: postgresql %s: %s: %w: %w", s.display, what, store.ErrClosed, err)
		}
		if errors.Is(out, ErrTLS) {
			// Once at level error until a connection is made again
			// (connected); claims, ticks, retries and requests fail
			// alike meanwhile, several a second.
			level := slog.LevelDebug
			if s.tlsBroken.CompareAndSwap(false, true) {
				level = slog.LevelError
			}
			s.log.Log(context.Background(), level, "the connection to the shared database fails on its TLS settings: check the URL's sslmode, sslrootcert and sslcert, and the server's certificate",
				"database", s.display, "call", what, "err", err)
		} else {
			s.log.Error("a database call failed, not because the database is out of reach", "database", s.display, "call", what, "err", err)
		}
	}
	return out
}

// connected is called for each connection the pool makes: after an
// ErrTLS, it says so once and lets the next ErrTLS be logged at level
// error again.
func (s *Store) connected() {
	if s.tlsBroken.Swap(false) {
		s.log.Info("a connection to the shared database was made again after it failed on its TLS settings", "database", s.display)
	}
}

// classify wraps err, the failure of a call to the database, with prefix
// and the sentinel that says what it is. unexpected is true when no
// sentinel fits (err then stands for itself) or err is store.ErrCorrupt.
//
// ErrUnavailable is only for the way to the database failing: the
// connection could not be made or broke (dial and I/O errors, a
// connection pgx had closed, PostgreSQL's class 08), the call's deadline
// passed (57014, a query cancelled, which is how pgx ends a call whose
// context is done), the server is shutting down or not yet accepting
// connections (57P01-57P03) or ended an idle session (57P05), or it ran
// out of a resource a later call may find (53000, 53200 memory, 53300
// connections).
func classify(prefix string, err error) (out error, unexpected bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "CNF01":
			return fmt.Errorf("%s: %w: %w", prefix, ErrFenced, err), false
		case "CNF02":
			return fmt.Errorf("%s: %w: %w", prefix, store.ErrVersion, err), false
		case "23505", "23514", "22021", "54000":
			// unique (a seq taken), check, bad encoding, too large
			return fmt.Errorf("%s: %w: %w", prefix, store.ErrInvalid, err), false
		case "53100":
			return fmt.Errorf("%s: %w: %w", prefix, store.ErrNoSpace, err), false
		case "25006":
			return fmt.Errorf("%s: %w: %w", prefix, store.ErrReadOnly, err), false
		case "57014", "57P01", "57P02", "57P03", "57P05", "53000", "53200", "53300":
			return fmt.Errorf("%s: %w: %w", prefix, ErrUnavailable, err), false
		case "40001", "40P01":
			// A serialization failure or deadlock that outlived the
			// retries (rolledBack): nothing was written. Not a fault
			// of the store's own; the caller's next attempt may pass.
			return fmt.Errorf("%s: %w", prefix, err), false
		}
		if strings.HasPrefix(pe.Code, "08") {
			return fmt.Errorf("%s: %w: %w", prefix, ErrUnavailable, err), false
		}
		return fmt.Errorf("%s: %w", prefix, err), true
	}
	if errors.Is(err, store.ErrCorrupt) {
		return fmt.Errorf("%s: %w", prefix, err), true
	}
	if tlsMisconfigured(err) {
		return fmt.Errorf("%s: %w: %w", prefix, ErrTLS, err), true
	}
	for _, known := range []error{store.ErrInvalid, store.ErrNoSpace, store.ErrReadOnly, store.ErrClosed, ErrFenced} {
		if errors.Is(err, known) {
			return fmt.Errorf("%s: %w", prefix, err), false
		}
	}
	if unreachable(err) {
		return fmt.Errorf("%s: %w: %w", prefix, ErrUnavailable, err), false
	}
	return fmt.Errorf("%s: %w", prefix, err), true
}

// unreachable reports whether err, which is not PostgreSQL's answer, says
// the database could not be reached or the connection to it failed.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ETIMEDOUT) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// tlsMisconfigured reports whether err is a failure to connect
// (*pgconn.ConnectError, which pgx returns for a connection's set-up,
// also when the pool makes one for a call) that failed on TLS in every
// attempt it made (each host of the URL; sslmode=prefer or allow tries
// with and without TLS): a connection that also failed otherwise
// (refused, timed out) may be out of reach, and is left to unreachable.
// A TLS error on a connection already made (an alert or a bad record in
// the middle of a query: damage on the path, a proxy resetting the
// stream) is a broken connection, left to unreachable too.
func tlsMisconfigured(err error) bool {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		return false
	}
	return everyAttemptTLS(ce.Unwrap())
}

// everyAttemptTLS reports whether err, a ConnectError's cause, is a TLS
// failure (tlsFailure), and if it joins several attempts, whether each
// is.
func everyAttemptTLS(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all := j.Unwrap()
		for _, e := range all {
			if !everyAttemptTLS(e) {
				return false
			}
		}
		return len(all) > 0
	}
	return tlsFailure(err)
}

// tlsFailure reports whether err is a TLS failure that trying again does
// not cure: the server's certificate did not verify (crypto/tls's
// verification, or pgx's own for verify-ca and require with sslrootcert,
// which returns x509's errors), the server refused TLS (pgconn's
// startTLS: a server without ssl and sslmode=require or stricter),
// answered with something other than TLS, or sent an alert (crypto/tls
// reports a peer's alert as a net.OpError "remote error": a client
// certificate it wants or does not accept, no protocol version in
// common).
func tlsFailure(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		roots    x509.SystemRootsError
		record   tls.RecordHeaderError
		op       *net.OpError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &invalid) ||
		errors.As(err, &hostname) || errors.As(err, &roots) || errors.As(err, &record) ||
		errors.As(err, &op) && op.Op == "remote error" ||
		strings.Contains(err.Error(), "server refused TLS connection") // pgconn: errors.New
}

// rolledBackAttempts is how many times a group commit is sent when
// PostgreSQL rolls it back as a deadlock or serialization victim.
const rolledBackAttempts = 3

// rolledBack reports whether err says PostgreSQL rolled the transaction
// back because of a lock cycle (40P01) or a serialization failure
// (40001): nothing of it was applied, and sending it again is safe.
func rolledBack(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

func spaceError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) ||
		errors.Is(err, syscall.EDQUOT) || errors.Is(err, store.ErrNoSpace)
}

// --- write plumbing -------------------------------------------------------

// writeBatch runs the statements of b as one transaction (one round trip),
// calling the fault hooks as store.FaultInjector says: Write per row
// (done by the caller as it builds b), Commit before sending, Synced
// after.
func (s *Store) writeBatch(ctx context.Context, what string, b *pgx.Batch) ([]pgconn.CommandTag, error) {
	if f := s.cfg.Faults; f != nil {
		if err := f.Commit(); err != nil {
			if spaceError(err) {
				return nil, fmt.Errorf("store: postgresql %s: %s: %w: %w", s.display, what, store.ErrNoSpace, err)
			}
			return nil, fmt.Errorf("store: postgresql %s: %s: %w", s.display, what, err)
		}
	}
	tags, err := s.sendBatch(ctx, b)
	if err != nil {
		return nil, s.fail(what, err)
	}
	if f := s.cfg.Faults; f != nil {
		if err := f.Synced(); err != nil {
			s.mu.Lock()
			s.failed = fmt.Errorf("store: postgresql %s: %s: %w: %w", s.display, what, store.ErrFailed, err)
			err = s.failed
			s.mu.Unlock()
			return nil, err
		}
	}
	return tags, nil
}

// sendBatch sends b outside any explicit transaction: PostgreSQL runs a
// pipelined batch as one implicit transaction (all or nothing).
func (s *Store) sendBatch(ctx context.Context, b *pgx.Batch) ([]pgconn.CommandTag, error) {
	br := s.pool.SendBatch(ctx, b)
	tags := make([]pgconn.CommandTag, 0, b.Len())
	for i := 0; i < b.Len(); i++ {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return nil, err
		}
		tags = append(tags, tag)
	}
	return tags, br.Close()
}

func (s *Store) hookWrite(what string) error {
	if s.cfg.Faults == nil {
		return nil
	}
	if err := s.cfg.Faults.Write(); err != nil {
		return fmt.Errorf("store: postgresql %s: %s: %w", s.display, what, err)
	}
	return nil
}

// --- store.Store: actions --------------------------------------------------

// loadChunk is how many actions LoadActions reads per query.
const loadChunk = 512

// LoadActions implements store.Store.
func (s *Store) LoadActions(queue string, fn func(*messages.StoredAction) error) error {
	if err := checkName("queue", queue); err != nil {
		return err
	}
	last := int64(-1) << 63
	first := true
	for {
		if err := s.usable("load "+queue, false); err != nil {
			return err
		}
		ctx, cancel := s.ctx()
		rows, err := s.pool.Query(ctx, `SELECT seq, record FROM connector_actions
			WHERE queue = $1 AND (seq > $2 OR $3) ORDER BY seq LIMIT $4`, []byte(queue), last, first, loadChunk)
		if err != nil {
			cancel()
			return s.fail("load "+queue, err)
		}
		var recs []*messages.StoredAction
		var seqs []int64
		for rows.Next() {
			var seq int64
			var raw []byte
			if err := rows.Scan(&seq, &raw); err != nil {
				rows.Close()
				cancel()
				return s.fail("load "+queue, err)
			}
			a := &messages.StoredAction{}
			if err := proto.Unmarshal(raw, a); err != nil {
				rows.Close()
				cancel()
				return fmt.Errorf("store: postgresql %s: queue %s: undecodable action at seq %d: %w: %w", s.display, queue, seq, errDamaged, err)
			}
			if a.Status == nil {
				a.Status = &messages.ActionStatus{}
			}
			a.Status.Seq = uint64(seq)
			recs, seqs = append(recs, a), append(seqs, seq)
		}
		err = rows.Err()
		cancel()
		if err != nil {
			return s.fail("load "+queue, err)
		}
		for _, a := range recs {
			if err := fn(a); err != nil {
				return err
			}
		}
		if len(recs) < loadChunk {
			return nil
		}
		last, first = seqs[len(seqs)-1], false
	}
}

// ApplyActions implements store.Store. The batch's last mutation of each
// id decides: a Put upserts the record (columns from its status), a
// Delete removes it. Sequence numbers are checked when the transaction
// commits, so a batch may move records between them.
func (s *Store) ApplyActions(queue string, batch []store.ActionMutation) error {
	what := "apply to " + queue
	if err := checkName("queue", queue); err != nil {
		return err
	}
	if err := s.usable(what, true); err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}
	type op struct {
		put *messages.StoredAction
		del bool
	}
	final := make(map[string]op, len(batch))
	order := make([]string, 0, len(batch))
	for i, m := range batch {
		if err := checkMutation(queue, i, m); err != nil {
			return err
		}
		id := m.Delete
		if m.Put != nil {
			id = m.Put.Id
		}
		if _, seen := final[id]; !seen {
			order = append(order, id)
		}
		if m.Put != nil {
			final[id] = op{put: m.Put}
		} else {
			final[id] = op{del: true}
		}
	}
	var dels [][]byte
	cols := newActionCols()
	for _, id := range order {
		if err := s.hookWrite(what); err != nil {
			return err
		}
		o := final[id]
		if o.del {
			dels = append(dels, []byte(id))
			continue
		}
		if err := cols.add(queue, o.put); err != nil {
			return err
		}
	}
	ctx, cancel := s.ctx()
	defer cancel()
	// The deferred datastore writes ride this transaction (deferred.go).
	return s.withDeferred(func(w *deferredWrites) error {
		b := &pgx.Batch{}
		if !w.empty() {
			s.fence(b)
		}
		if len(dels) > 0 {
			b.Queue(`DELETE FROM connector_actions WHERE queue = $1 AND id = ANY($2)`, []byte(queue), byteaArray(dels))
		}
		if cols.n > 0 {
			b.Queue(`INSERT INTO connector_queues (queue) VALUES ($1) ON CONFLICT DO NOTHING`, []byte(queue))
			cols.upsert(b, []byte(queue))
		}
		w.queue(b)
		_, err := s.writeBatch(ctx, what, b)
		return err
	})
}

// actionCols holds the columns of a multi-row upsert.
type actionCols struct {
	n                            int
	ids, records                 [][]byte
	seqs, queued, started, ended []int64
	states                       []int16
	prios                        []int32
	startedFlag, running         []bool
}

func newActionCols() *actionCols { return &actionCols{} }

func (c *actionCols) add(queue string, a *messages.StoredAction) error {
	st := a.GetStatus()
	raw, err := proto.Marshal(a)
	if err != nil {
		return fmt.Errorf("store: postgresql: queue %s: encode action %s: %w: %w", queue, a.Id, store.ErrInvalid, err)
	}
	if len(raw) > store.MaxValueSize {
		return fmt.Errorf("store: postgresql: queue %s: action %s of %d bytes, limit %d: %w", queue, a.Id, len(raw), store.MaxValueSize, store.ErrInvalid)
	}
	if st.GetSeq() > 1<<63-1 {
		return fmt.Errorf("store: postgresql: queue %s: action %s: seq %d out of range: %w", queue, a.Id, st.GetSeq(), store.ErrInvalid)
	}
	c.n++
	c.ids = append(c.ids, []byte(a.Id))
	c.records = append(c.records, raw)
	c.seqs = append(c.seqs, int64(st.GetSeq()))
	c.states = append(c.states, int16(st.GetState()))
	c.prios = append(c.prios, st.GetPriority())
	c.queued = append(c.queued, st.GetQueuedUnixMs())
	c.started = append(c.started, st.GetStartedUnixMs())
	c.ended = append(c.ended, st.GetEndedUnixMs())
	c.startedFlag = append(c.startedFlag, st.GetStartedUnixMs() != 0)
	c.running = append(c.running, st.GetRunning())
	return nil
}

func (c *actionCols) upsert(b *pgx.Batch, queue []byte) {
	b.Queue(`INSERT INTO connector_actions
			(queue, id, seq, state, priority, queued_ms, started_ms, ended_ms, started, running, record)
		SELECT $1, * FROM unnest($2::bytea[], $3::bigint[], $4::smallint[], $5::int[], $6::bigint[], $7::bigint[], $8::bigint[], $9::boolean[], $10::boolean[], $11::bytea[])
		ON CONFLICT (queue, id) DO UPDATE SET
			seq = excluded.seq, state = excluded.state, priority = excluded.priority,
			queued_ms = excluded.queued_ms, started_ms = excluded.started_ms, ended_ms = excluded.ended_ms,
			started = excluded.started, running = excluded.running, record = excluded.record`,
		queue, byteaArray(c.ids), intArray(c.seqs), intArray(c.states), intArray(c.prios), intArray(c.queued),
		intArray(c.started), intArray(c.ended), boolArray(c.startedFlag), boolArray(c.running), byteaArray(c.records))
}

// QueueNames implements store.Store.
func (s *Store) QueueNames() ([]string, error) {
	return s.names("queue names", `SELECT queue FROM connector_queues ORDER BY queue`)
}

// DatastoreNames implements store.Store.
func (s *Store) DatastoreNames() ([]string, error) {
	return s.names("datastore names", `SELECT task FROM connector_datastores ORDER BY task`)
}

func (s *Store) names(what, q string) ([]string, error) {
	if err := s.usable(what, false); err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, q)
	if err != nil {
		return nil, s.fail(what, err)
	}
	raw, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, s.fail(what, err)
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = string(r)
	}
	sort.Strings(out) // bytea orders as bytes already; cheap insurance
	return out, nil
}

// --- input checks (the same limits as every store) ------------------------

func checkMutation(queue string, i int, m store.ActionMutation) error {
	switch {
	case m.Put != nil && m.Delete != "":
		return fmt.Errorf("store: queue %s: mutation %d sets both Put and Delete: %w", queue, i, store.ErrInvalid)
	case m.Put == nil && m.Delete == "":
		return fmt.Errorf("store: queue %s: mutation %d sets neither Put nor Delete: %w", queue, i, store.ErrInvalid)
	case m.Put != nil && m.Put.GetId() == "":
		return fmt.Errorf("store: queue %s: mutation %d puts a record without an id: %w", queue, i, store.ErrInvalid)
	case len(m.Put.GetId()) > store.MaxKeySize || len(m.Delete) > store.MaxKeySize:
		return fmt.Errorf("store: queue %s: mutation %d: id longer than %d bytes: %w", queue, i, store.MaxKeySize, store.ErrInvalid)
	}
	return nil
}

func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("store: empty %s name: %w", kind, store.ErrInvalid)
	}
	if len(name) > store.MaxKeySize {
		return fmt.Errorf("store: %s name longer than %d bytes: %w", kind, store.MaxKeySize, store.ErrInvalid)
	}
	return nil
}

func checkKey(task string, key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("store: datastore %s: empty key: %w", task, store.ErrInvalid)
	}
	if len(key) > store.MaxKeySize {
		return fmt.Errorf("store: datastore %s: key of %d bytes, limit %d: %w", task, len(key), store.MaxKeySize, store.ErrInvalid)
	}
	return nil
}

var _ store.Store = (*Store)(nil)
