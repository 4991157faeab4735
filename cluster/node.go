// Package cluster runs a connector as one node of a cluster: membership
// (protoactor's cluster with the etcd provider, patched in
// third_party/protoactor-go), remoting between nodes (protoactor's remote:
// requests about an action are protobuf messages to its owning task actor
// on whichever node that is; the router that lets any node answer any
// request is actors/queue's ClusterQueue). The shared state lives in PostgreSQL
// (store/pgstore); docs/cluster.md says what runs where and what happens
// when a node, etcd or the database fails.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/grpclog"
)

func init() {
	// gRPC's own logger (used by the etcd client and remoting) stays
	// silent: their failures reach our log through the callers. Set once,
	// before any gRPC goroutine exists (remote.Start no longer does it:
	// PATCHES.md).
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
}

// Config configures a node's membership and remoting ([Cluster] keys).
type Config struct {
	// Name of the cluster: nodes of one cluster share it (etcd keys live
	// under BaseKey/Name). Default "connector".
	Name string
	// Endpoints are the etcd client URLs.
	Endpoints []string
	// BaseKey is the etcd key prefix. Default "/connector".
	BaseKey string
	// Host and Port are where remoting listens (Port 0: any free port).
	Host string
	Port int
	// AdvertisedAddress is host:port as the other nodes reach this one;
	// default the address listened on.
	AdvertisedAddress string
	// LeaseTTL: a node that stops renewing its membership (killed,
	// paused, cut off from etcd) is dropped this long after its last
	// renewal, and its actions are taken over. Whole seconds; default 5s.
	LeaseTTL time.Duration
	// RequestTimeout bounds a request to another node's actor. Default 2s.
	RequestTimeout time.Duration
	// MaxMessageBytes is the largest gRPC message remoting sends to or
	// accepts from another node. A reply may carry an accepted action's
	// parameters, which may be as large as a request: the server sets
	// MaxMessageBytesFor([Server] MaxRequestBytes). Default
	// MaxMessageBytesFor(64 MiB).
	MaxMessageBytes int
	// Provider replaces etcd (tests: protoactor's in-memory provider).
	Provider pcluster.ClusterProvider
	Logger   *slog.Logger
}

// Defaults.
const (
	DefaultName     = "connector"
	DefaultBaseKey  = "/connector"
	DefaultLeaseTTL = 5 * time.Second
	// Remoting gives up on a node it cannot connect to after
	// (remoteRetries-1) × remoteRetryWait: a request in flight to a dead
	// node fails in about two seconds (upstream: ten).
	remoteRetries   = 3
	remoteRetryWait = time.Second
	// gossipInterval is how often protoactor's cluster gossips its state
	// (upstream: every 300 ms, to every member). The connector uses none
	// of that state: membership and failure detection come from etcd (a
	// member that leaves is blocked by the member list at once), requests
	// go to task actors' PIDs, not grains. Gossip's only effect left is
	// its heartbeat, which blocks a member whose heartbeat is older than
	// HeartbeatExpiration (20 s): ten rounds at this interval. Each round
	// is a remote request to every other member, so at 300 ms it was most
	// of an idle node's CPU in a cluster (issue 17: ≈8 ms/s per node of
	// three, ≈3 ms/s alone).
	gossipInterval = 2 * time.Second
	// endpointWriterQueue is the first size of the queue of messages
	// waiting to go to another node (one queue per node this one talks
	// to). The queue grows by doubling when it fills, so this is no
	// bound; upstream's default, a million, made each queue a 16 MB
	// slice of interfaces at once: two peers put 32 MB on the heap of
	// every node of three, which the GC scans on every cycle and which
	// doubled the heap's goal, so each new node faulted in tens of
	// megabytes of fresh pages before its first collections (issue 17:
	// three idle nodes spent ≈110 ms/s of CPU, ≈23 ms/s without).
	endpointWriterQueue = 1024
	// grpcWindow is the fixed HTTP/2 flow-control window (per stream and
	// per connection) of the node's gRPC connections: remoting between
	// nodes, both ways, and its etcd client. With gRPC's default, a
	// window that follows a bandwidth-delay estimate, the receiver of
	// every data frame that finds no estimate under way sends a PING
	// (and the sender answers it): on an idle cluster, where every
	// message is a gossip round or a lease keep-alive, that is two more
	// writes and wake-ups per message on the two nodes (two thirds of
	// the remoting connections' writes; issue 17). (The etcd server
	// keeps its default: only the node's side of that connection stops
	// sending them.) A fixed 1 MiB is far
	// above what a LAN's bandwidth-delay product asks (1 Gbit/s × 1 ms
	// is 125 kB), and the cluster's messages are a few kB but for the
	// rare reply that carries an action's large parameters (a larger
	// message takes more round trips, no more).
	grpcWindow = 1 << 20
	// remoteBatchBytes bounds a batch of remoting's endpoint writer (the
	// messages to one node it packs into one gRPC message, up to 1000):
	// it sends a batch once its messages reach this many bytes, so a gRPC
	// message is at most remoteBatchBytes plus one message (and the
	// batch's framing: type names and PIDs, a few hundred bytes).
	remoteBatchBytes = 1 << 20
	// messageMargin is what MaxMessageBytesFor adds to the largest
	// request: the batch packed before the largest message
	// (remoteBatchBytes), and, with room to spare, what a reply adds to
	// the parameters it carries (status, names, framing).
	messageMargin = 4 << 20
)

// MaxMessageBytesFor is the largest remoting message a node needs to
// exchange when an accepted request may be maxRequestBytes long: an
// action's parameters come from its request, and a node asked about an
// action it does not own gets them from the owner in one message.
func MaxMessageBytesFor(maxRequestBytes int) int {
	return int(min(int64(maxRequestBytes)+messageMargin, math.MaxInt32))
}

func (c *Config) withDefaults() error {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.BaseKey == "" {
		c.BaseKey = DefaultBaseKey
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.LeaseTTL < time.Second {
		return fmt.Errorf("cluster: lease TTL %s is below a second", c.LeaseTTL)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 2 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = MaxMessageBytesFor(64 << 20)
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Provider == nil && len(c.Endpoints) == 0 {
		return errors.New("cluster: no etcd endpoints")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Member is a node of the cluster as the membership sees it.
type Member struct {
	ID   string // the node's member id (its actor system's id: new per process)
	Addr string // its remoting address, host:port
}

// Node is this process's membership of the cluster.
type Node struct {
	cfg     Config
	sys     *actor.ActorSystem
	c       *pcluster.Cluster
	members atomic.Pointer[map[string]string] // id → address, this node included
	sub     *eventstream.Subscription

	mu       sync.Mutex
	watchers []func(ids []string)
	evicted  chan struct{}
	evictErr error
	stopped  bool
}

// Join starts remoting on sys and makes this process a member of the
// cluster. sys must be new (remoting attaches to it). After an error sys
// must be discarded, not given to Join again: a failed start stops gossip
// and remoting, but leaves parts of the cluster's set-up on sys
// (third_party/protoactor-go/PATCHES.md).
func Join(sys *actor.ActorSystem, cfg Config) (n *Node, err error) {
	return JoinContext(context.Background(), sys, cfg)
}

// JoinContext is Join, which stops when ctx is done (the process was
// asked to stop while it started: SIGTERM, Ctrl-C): its requests to etcd
// end at once, and the error wraps ctx's, instead of each waiting out its
// timeout (5 s) when etcd is frozen or cut off. Only the join: once it
// has returned, ctx no longer matters.
func JoinContext(ctx context.Context, sys *actor.ActorSystem, cfg Config) (n *Node, err error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	n = &Node{cfg: cfg, sys: sys, evicted: make(chan struct{})}
	empty := map[string]string{}
	n.members.Store(&empty)
	provider := cfg.Provider
	if provider == nil {
		p, err := etcd.NewWithConfig(cfg.BaseKey, clientv3.Config{
			Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second,
			DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second,
			DialOptions: []grpc.DialOption{grpc.WithStaticStreamWindowSize(grpcWindow), grpc.WithStaticConnWindowSize(grpcWindow)},
			Logger:      zap.NewNop(),
		}, etcd.WithTTL(cfg.LeaseTTL), etcd.WithRequestTimeout(5*time.Second), etcd.WithStartContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("cluster: etcd %v: %w", cfg.Endpoints, err)
		}
		provider = p
	}
	opts := []remote.ConfigOption{
		remote.WithMaxRetryCount(remoteRetries), remote.WithRetryInterval(remoteRetryWait),
		remote.WithShutdownTimeout(2 * time.Second),
		remote.WithEndpointWriterQueueSize(endpointWriterQueue),
		// gRPC refuses a message over 4 MiB by default; a batch of
		// replies, or one reply carrying an action's parameters, may be
		// larger: the receiver broke the stream and the requests timed
		// out. The batch bound keeps a gRPC message under the limit
		// whatever the number of messages queued.
		remote.WithEndpointWriterBatchBytes(remoteBatchBytes),
		// A message larger than that limit (an action's parameters grow
		// when their secrets are sealed: twice base64) is dropped alone,
		// its requester told at once: sent, it failed the stream, and
		// every message to that node queued with it was lost (requests
		// timed out).
		remote.WithEndpointWriterMaxMessageBytes(cfg.MaxMessageBytes),
		remote.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithStaticStreamWindowSize(grpcWindow), grpc.WithStaticConnWindowSize(grpcWindow),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(cfg.MaxMessageBytes), grpc.MaxCallRecvMsgSize(cfg.MaxMessageBytes))),
		remote.WithServerOptions(grpc.StaticStreamWindowSize(grpcWindow), grpc.StaticConnWindowSize(grpcWindow),
			grpc.MaxRecvMsgSize(cfg.MaxMessageBytes), grpc.MaxSendMsgSize(cfg.MaxMessageBytes)),
	}
	if cfg.AdvertisedAddress != "" {
		opts = append(opts, remote.WithAdvertisedHost(cfg.AdvertisedAddress))
	}
	rc := remote.Configure(remoteHost(cfg.Host), cfg.Port, opts...)
	pc := pcluster.Configure(cfg.Name, provider, disthash.New(), rc,
		pcluster.WithStartupDelay(0), pcluster.WithShutdownDelay(0),
		pcluster.WithRequestTimeout(cfg.RequestTimeout), pcluster.WithGossipInterval(gossipInterval))
	n.c = pcluster.New(sys, pc)
	n.sub = sys.EventStream.Subscribe(func(ev any) {
		switch e := ev.(type) {
		case *pcluster.ClusterTopology:
			n.topology(e)
		case *etcd.SelfEvicted:
			n.evict(fmt.Errorf("cluster: this node was dropped from the cluster: %w", e.Reason))
		}
	})
	if err := n.c.StartMemberE(); err != nil {
		sys.EventStream.Unsubscribe(n.sub)
		_ = provider.Shutdown(false)
		err = fmt.Errorf("cluster: join %s (etcd %v, remoting on %s): %w", cfg.Name, cfg.Endpoints,
			net.JoinHostPort(strings.Trim(cfg.Host, "[]"), strconv.Itoa(cfg.Port)), err)
		if ctx.Err() == nil {
			if cause := etcdTLSCause(cfg.Endpoints); cause != nil {
				err = fmt.Errorf("%w; the TLS connection to etcd fails (an https:// endpoint's certificate is checked "+
					"against the system's certificate authorities; the node presents no client certificate): %w", err, cause)
			}
		}
		return nil, err
	}
	cfg.Logger.Info("joined the cluster", "cluster", cfg.Name, "member", n.ID(), "address", n.Addr(), "lease", cfg.LeaseTTL)
	return n, nil
}

// etcdTLSCause is why a TLS handshake with the first https:// endpoint
// that fails on TLS fails (its certificate does not verify, or it does not
// speak TLS), or nil. The etcd client gives up on such an endpoint without
// a word: its requests end as "context deadline exceeded" after the dial
// timeout, so a join that failed asks once more, itself (bounded as the
// etcd client's dial is).
func etcdTLSCause(endpoints []string) error {
	for _, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "https" {
			continue
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host,
			&tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
			continue
		}
		var (
			verify *tls.CertificateVerificationError
			record tls.RecordHeaderError
			op     *net.OpError
		)
		if errors.As(err, &verify) || errors.As(err, &record) || errors.As(err, &op) && op.Op == "remote error" {
			return fmt.Errorf("%s: %w", ep, err)
		}
	}
	return nil
}

// remoteHost is Config.Host as remoting takes it: remoting writes
// host:port by putting a colon between them, so an IPv6 address
// ("::1", as [Server] Host and [Cluster] RemoteHost may give it) needs its
// brackets.
func remoteHost(host string) string {
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		return "[" + host + "]"
	}
	return host
}

// ID is this node's member id.
func (n *Node) ID() string { return n.sys.ID }

// Addr is this node's remoting address.
func (n *Node) Addr() string { return n.sys.Address() }

// System is the actor system the node's remoting serves.
func (n *Node) System() *actor.ActorSystem { return n.sys }

// RequestTimeout bounds a request to another node.
func (n *Node) RequestTimeout() time.Duration { return n.cfg.RequestTimeout }

// LeaseTTL is the membership lease.
func (n *Node) LeaseTTL() time.Duration { return n.cfg.LeaseTTL }

// Members returns the members as this node sees them now (itself
// included once it has seen its own registration).
func (n *Node) Members() map[string]string { return *n.members.Load() }

// Member reports whether id is a member now, and its address.
func (n *Node) Member(id string) (string, bool) {
	a, ok := (*n.members.Load())[id]
	return a, ok
}

// OnLeft registers fn to be called (on the membership's goroutine: fn
// must not block) with the ids of the members that left, at every change.
func (n *Node) OnLeft(fn func(ids []string)) {
	n.mu.Lock()
	n.watchers = append(n.watchers, fn)
	n.mu.Unlock()
}

func (n *Node) topology(t *pcluster.ClusterTopology) {
	m := make(map[string]string, len(t.Members))
	for _, mb := range t.Members {
		m[mb.Id] = mb.Address()
	}
	n.members.Store(&m)
	if len(t.Left) == 0 {
		return
	}
	left := make([]string, len(t.Left))
	for i, mb := range t.Left {
		left[i] = mb.Id
	}
	n.cfg.Logger.Warn("cluster members left", "left", left, "members", len(m))
	n.mu.Lock()
	ws := append([]func([]string){}, n.watchers...)
	n.mu.Unlock()
	for _, w := range ws {
		w(left)
	}
}

// Evicted is closed when this node lost its membership while running
// (paused or cut off from etcd longer than the lease): the others have
// taken its actions over, and it must stop its work and leave.
func (n *Node) Evicted() <-chan struct{} { return n.evicted }

// EvictedErr says why the node was evicted (nil before).
func (n *Node) EvictedErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.evictErr
}

func (n *Node) evict(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.evictErr != nil || n.stopped {
		return
	}
	n.evictErr = err
	close(n.evicted)
	n.cfg.Logger.Error("this node lost its cluster membership; it stops its work and leaves", "err", err)
}

// Evict makes the node leave as if the membership had dropped it: used
// when the shared store reports the node declared dead (its writes are
// fenced) before the membership says so.
func (n *Node) Evict(err error) { n.evict(err) }

// Leave ends the membership (revoking the lease, so the others see the
// node go at once) and stops remoting.
func (n *Node) Leave() {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.stopped = true
	n.mu.Unlock()
	n.c.Shutdown(true)
	n.sys.EventStream.Unsubscribe(n.sub)
}
