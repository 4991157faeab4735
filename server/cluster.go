package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/cluster"
	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store/pgstore"
)

// ErrEvicted is what Done delivers when this node lost its cluster
// membership while it ran (it was paused, or cut off from etcd, for longer
// than its lease): the other nodes have taken its actions over, its
// writes are refused, and it has stopped its work. The command then starts
// the process again, so that it rejoins as a new member.
var ErrEvicted = errors.New("server: this node was dropped from the cluster")

// clusterComponents is the start list of a cluster node, made from the
// single node's (comps): the actor system starts before the store, since
// the node joins the cluster on it and the shared store is written in the
// name of the member it joined as; the "cluster" component (membership
// and the shared store) takes the embedded store's place. Stopped in the
// reverse order, the node hands its actions back (the queue), then leaves
// the cluster and closes the shared store, then the actor system stops.
// ctx is the start-up's (StartContext): the join stops when it is done.
func clusterComponents(ctx context.Context, s *Server, cfg *config.Config, comps []component) []component {
	join := component{name: "cluster", start: func() error {
		if cfg.Actions.UseInMemoryDatastore {
			return &config.Error{File: cfg.Path, Line: cfg.Line("Actions", "UseInMemoryDatastore"), Section: "Actions", Key: "UseInMemoryDatastore",
				Err: errors.New("cluster mode ([Cluster] Enabled=true) keeps every action in the shared store: it cannot be in memory")}
		}
		return s.joinCluster(ctx, cfg)
	}, stop: func(context.Context) error {
		s.leaveCluster()
		if s.shared != nil {
			if err := s.shared.Close(); err != nil {
				return fmt.Errorf("close the shared store: %w", err)
			}
		}
		return nil
	}}
	var actors component
	for _, c := range comps {
		if c.name == "actors" {
			actors = c
		}
	}
	out := make([]component, 0, len(comps)+1)
	for _, c := range comps {
		switch c.name {
		case "store":
			out = append(out, actors, join)
		case "actors":
		default:
			out = append(out, c)
		}
	}
	return out
}

// joinCluster makes the server a node of the cluster [Cluster] describes:
// remoting and membership on the server's actor system, and the shared
// store, which becomes the server's store (actions and datastores). It
// stops when ctx is done (the process was asked to stop while it starts),
// wherever it waits: on etcd, or on the shared store.
func (s *Server) joinCluster(ctx context.Context, cfg *config.Config) error {
	warnUnusedStore(cfg, s.log, "[Cluster] Enabled=true keeps the actions in the shared store")
	cc := cfg.Cluster
	host := cc.RemoteHost
	if host == "" {
		host = cfg.Server.Host
	}
	if err := wildcardRemoteHost(cfg, host); err != nil {
		return err
	}
	password := cc.StorePassword
	// The password first: a wrong one stops start-up before the node
	// joins.
	if secret.IsEncrypted(password) {
		key, err := secret.LoadKeyFile(cfg.Security.AESKeyFile)
		if err != nil {
			return &config.Error{File: cfg.Path, Line: cfg.Line("Cluster", "StorePassword"), Section: "Cluster", Key: "StorePassword", Err: err}
		}
		if password, err = key.Decrypt(password); err != nil {
			return &config.Error{File: cfg.Path, Line: cfg.Line("Cluster", "StorePassword"), Section: "Cluster", Key: "StorePassword", Err: err}
		}
	}
	node, err := cluster.JoinContext(ctx, s.sys, cluster.Config{
		Name: cc.Name, Endpoints: cc.Etcd, Host: host, Port: cc.RemotePort, AdvertisedAddress: cc.AdvertisedAddress,
		LeaseTTL: cc.LeaseTTL, RequestTimeout: cc.RequestTimeout, Logger: s.log.With("component", "cluster"),
		MaxMessageBytes: cluster.MaxMessageBytesFor(cfg.Server.MaxRequestBytes),
	})
	if err != nil {
		key := joinErrorKey(err)
		return &config.Error{File: cfg.Path, Line: cfg.Line("Cluster", key), Section: "Cluster", Key: key, Err: err}
	}
	s.node = node
	db, err := openShared(ctx, cfg, password, node.ID(), s.log.With("component", "store"))
	if err != nil {
		// The component did not start, so its stop will not run: leave
		// here.
		s.leaveCluster()
		return err
	}
	if err := checkClusterKey(ctx, cfg, db, node.ID(), node.Addr(), node); err != nil {
		db.Close()
		s.leaveCluster()
		return err
	}
	s.shared, s.st = db, db
	go func() {
		select {
		case <-node.Evicted():
			s.served <- fmt.Errorf("%w: %w", ErrEvicted, node.EvictedErr())
		case <-s.left:
		}
	}()
	return nil
}

// wildcardRemoteHost refuses a remoting address that is every interface
// (0.0.0.0, ::) when no AdvertisedAddress says how the other nodes reach
// this one: remoting advertises the address it listens on ("[::]:7100"),
// where every other node dials its own machine, so that no request about
// an action crossed between machines. host is RemoteHost, else [Server]
// Host, whose key the error names.
func wildcardRemoteHost(cfg *config.Config, host string) error {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil || !a.IsUnspecified() || cfg.Cluster.AdvertisedAddress != "" {
		return nil
	}
	port := "<its port>"
	if cfg.Cluster.RemotePort != 0 {
		port = strconv.Itoa(cfg.Cluster.RemotePort)
	}
	section, key, from := "Cluster", "RemoteHost", ""
	if cfg.Cluster.RemoteHost == "" {
		section, key, from = "Server", "Host", " ([Cluster] RemoteHost defaults to it)"
	}
	return &config.Error{File: cfg.Path, Line: cfg.Line(section, key), Section: section, Key: key,
		Err: fmt.Errorf("%s is every interface of this machine%s, not an address the other nodes can reach this node at: "+
			"the other nodes would dial %s, each its own machine; set [Cluster] RemoteHost to this node's address on the nodes' network, "+
			"or [Cluster] AdvertisedAddress to the host:port they reach it at", wording.Quote(host), from,
			net.JoinHostPort(a.String(), port))}
}

// joinErrorKey is the [Cluster] key a failed join is reported at: the
// node's listener for the other nodes, which remoting opens first, fails
// for RemoteHost when the host is the problem (an address that is not
// this machine's, a name that does not resolve) and for RemotePort
// otherwise (in use, or privileged); anything else is the membership's,
// Etcd. (AdvertisedAddress and LeaseTTL are checked at load.)
func joinErrorKey(err error) string {
	var op *net.OpError
	switch {
	case !errors.As(err, &op) || op.Op != "listen":
		return "Etcd"
	case hostListenError(err):
		return "RemoteHost"
	}
	return "RemotePort"
}

// openShared opens the shared store of [Cluster] Store as node. Its
// failure is the Store key's: unreachable, refused (a password, a missing
// privilege), or a misconfiguration of the connection's TLS settings
// (pgstore.ErrTLS), each said as such. It gives up when ctx is done.
func openShared(ctx context.Context, cfg *config.Config, password, node string, log *slog.Logger) (*pgstore.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := pgstore.Open(ctx, pgstore.Config{URL: cfg.Cluster.Store, Password: password, Node: node, Logger: log})
	if err != nil {
		return nil, &config.Error{File: cfg.Path, Line: cfg.Line("Cluster", "Store"), Section: "Cluster", Key: "Store", Err: err}
	}
	return db, nil
}

// checkClusterKey makes sure this node has the key file of the other
// live nodes ([Security] AESKeyFile, created when missing, as a first
// encryption would): a password a request gives is encrypted by the node
// that accepts it and decrypted by whichever node runs the action, so a
// node with a key of its own (each node's default is its own data
// folder's aes.ky) would end every such action it runs in Error.
//
// Only members count: a node that recorded another key and has left
// without being declared dead (killed when no node was left to see it
// go) is declared dead, so that a cluster stopped that way can start
// again with a new key.
//
// It gives up when ctx is done (its wait for the membership too).
func checkClusterKey(ctx context.Context, cfg *config.Config, db *pgstore.Store, node, addr string, mem membership) error {
	where := func(err error) error {
		return &config.Error{File: cfg.Path, Line: cfg.Line("Security", "AESKeyFile"), Section: "Security", Key: "AESKeyFile", Err: err}
	}
	key, err := secret.EnsureKeyFile(cfg.Security.AESKeyFile)
	if err != nil {
		return where(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	others, err := db.CheckKey(ctx, node, addr, key.Check(), func(ids []string) []string { return liveMembers(ctx, mem, ids) })
	if err != nil {
		return &config.Error{File: cfg.Path, Line: cfg.Line("Cluster", "Store"), Section: "Cluster", Key: "Store", Err: err}
	}
	if len(others) > 0 {
		return where(fmt.Errorf("%s is not the key the cluster's live nodes %s use: a password encrypted by one node must be decrypted by the node that runs the action, so every node needs the same key file (copy theirs here, or point AESKeyFile at a copy)", key.Path(), strings.Join(others, ", ")))
	}
	return nil
}

// membership is what checkClusterKey asks of the node's membership
// (*cluster.Node).
type membership interface {
	Member(id string) (string, bool)
	LeaseTTL() time.Duration
}

// liveMembers returns those of ids that are members of the cluster. A
// node joins the membership before it checks its key, but this node's
// view of the membership may lag: when none is a member yet, it looks
// again until one is, for up to the lease (at most 10 s), or until ctx is
// done.
func liveMembers(ctx context.Context, mem membership, ids []string) []string {
	deadline := time.Now().Add(min(mem.LeaseTTL(), 10*time.Second))
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var live []string
		for _, id := range ids {
			if _, ok := mem.Member(id); ok {
				live = append(live, id)
			}
		}
		if len(live) > 0 || !time.Now().Before(deadline) {
			return live
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return live
		}
	}
}

// startClusterQueue starts this node's share of the cluster's queue; it
// gives up when ctx is done.
func (s *Server) startClusterQueue(ctx context.Context, qcfg queue.Config) error {
	q, err := queue.StartClusterContext(ctx, s.sys, qcfg, s.shared, s.node)
	if err != nil {
		return err
	}
	s.api, s.stopQueue = q, q.Shutdown
	return nil
}

// leaveCluster ends the membership once the queue has handed its actions
// back (or, evicted, stopped them).
func (s *Server) leaveCluster() {
	if s.node == nil {
		return
	}
	s.leaveOnce.Do(func() {
		close(s.left)
		s.node.Leave()
	})
}

// clusterRank returns the rank of node n among the members it sees: how
// many have a smaller id. The nodes of a cluster take turns in that order
// to submit a scheduled run (scheduler).
func clusterRank(n *cluster.Node) func() int {
	return func() int {
		r := 0
		for id := range n.Members() {
			if id < n.ID() {
				r++
			}
		}
		return r
	}
}
