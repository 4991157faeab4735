// Package etcd is a cluster provider that keeps the member list in etcd:
// each member puts a key under a lease it keeps alive, and watches the
// cluster's prefix.
//
// connector patch (see ../../../PATCHES.md): rewritten from upstream's
// provider, keeping its key layout and API, to fix what a connector cluster
// depends on:
//   - the lease TTL, the retry interval and the request timeout are options
//     (upstream: a fixed 3s TTL and no timeout at all on etcd requests);
//   - a member whose own key is deleted or whose lease is lost (it was
//     paused or cut off from etcd for longer than the TTL) is evicted: the
//     provider publishes SelfEvicted and calls the WithSelfEvicted handler,
//     and stops (upstream re-registered under the same id, which every
//     other member had blocked for good, so the member stayed alive but
//     belonged to no cluster, and said so only in INFO logs);
//   - the watch starts at the revision the member list was read at, and a
//     broken watch lists the members again before it resumes (upstream could
//     miss events between its list and its watch, and after watch errors);
//   - the member map is guarded (upstream: plain fields used by several
//     goroutines);
//   - Shutdown revokes the lease, stops the goroutines and closes the client
//     it made (upstream leaked the keepalive and the gRPC connection);
//   - a member's id is its actor system's id, as with the other providers
//     (upstream: "<cluster>@<id>", so MemberList.BroadcastEvent never
//     recognised itself).
package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// SelfEvicted is published on the actor system's event stream when this
// member lost its membership while it was running: its key was deleted or
// its lease expired. The other members have left it for good (its id is
// blocked); the process must stop its work and leave, and come back as a
// new member (a new actor system).
type SelfEvicted struct {
	MemberID string
	Reason   error
}

// Option configures a Provider.
type Option func(p *Provider)

// WithTTL sets the lease time to live: a member that dies is removed this
// long (at most) after its last renewal. Renewals happen every TTL/3.
// Whole seconds; default 3s.
func WithTTL(ttl time.Duration) Option {
	return func(p *Provider) { p.ttl = ttl }
}

// WithRetryInterval sets the wait before a failed watch is re-established.
// Default 1s.
func WithRetryInterval(d time.Duration) Option {
	return func(p *Provider) { p.retryInterval = d }
}

// WithRequestTimeout bounds each request to etcd. Default 5s.
func WithRequestTimeout(d time.Duration) Option {
	return func(p *Provider) { p.requestTimeout = d }
}

// WithStartContext makes StartMember stop when ctx is done (the process
// was asked to stop while it started): its requests to etcd end at once
// and it returns ctx's error, instead of waiting out the request timeout
// of each (an etcd frozen or cut off). Only StartMember: once it has
// returned, ctx no longer matters.
func WithStartContext(ctx context.Context) Option {
	return func(p *Provider) { p.startCtx = ctx }
}

// WithSelfEvicted sets a handler called (once, on its own goroutine) when
// this member is evicted; see SelfEvicted.
func WithSelfEvicted(fn func(SelfEvicted)) Option {
	return func(p *Provider) { p.onEvicted = fn }
}

type Provider struct {
	client         *clientv3.Client
	ownClient      bool
	baseKey        string
	ttl            time.Duration
	retryInterval  time.Duration
	requestTimeout time.Duration
	onEvicted      func(SelfEvicted)
	startCtx       context.Context // WithStartContext

	cluster     *cluster.Cluster
	clusterName string
	self        *Node
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	mu           sync.Mutex
	members      map[string]*Node // by id; contains self for a member
	leaseID      clientv3.LeaseID
	clusterError error
	evicted      bool
	shutdown     bool
}

// New connects to an etcd on 127.0.0.1:2379.
func New(opts ...Option) (*Provider, error) {
	return NewWithConfig("/protoactor", clientv3.Config{
		Endpoints:   []string{"127.0.0.1:2379"},
		DialTimeout: time.Second * 5,
	}, opts...)
}

// NewWithConfig makes a client from cfg; Shutdown closes it.
func NewWithConfig(baseKey string, cfg clientv3.Config, opts ...Option) (*Provider, error) {
	client, err := clientv3.New(cfg)
	if err != nil {
		return nil, err
	}
	p := NewWithClient(baseKey, client, opts...)
	p.ownClient = true
	return p, nil
}

// NewWithClient uses client, which the caller closes after Shutdown.
func NewWithClient(baseKey string, client *clientv3.Client, opts ...Option) *Provider {
	p := &Provider{
		client:         client,
		baseKey:        baseKey,
		ttl:            3 * time.Second,
		retryInterval:  time.Second,
		requestTimeout: 5 * time.Second,
		members:        map[string]*Node{},
	}
	for _, o := range opts {
		o(p)
	}
	if p.ttl < time.Second {
		p.ttl = time.Second
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

func (p *Provider) init(c *cluster.Cluster) error {
	host, port, err := splitHostPort(c.ActorSystem.Address())
	if err != nil {
		return err
	}
	p.cluster = c
	p.clusterName = c.Config.Name
	p.self = NewNode(c.ActorSystem.ID, host, port, c.GetClusterKinds())
	p.self.SetMeta("id", p.self.ID)
	return nil
}

func (p *Provider) logger() *slog.Logger { return p.cluster.Logger() }

// StartMember registers this member under a new lease, lists the members
// and watches for changes from the revision of that list.
//
// connector patch: with WithStartContext, a start asked to stop ends its
// requests at once (it cancels the provider's context, which every
// request derives from) and returns the start context's error; the lease
// it registered under is revoked within stoppedRevokeTimeout, not the
// request timeout.
func (p *Provider) StartMember(c *cluster.Cluster) error {
	if err := p.init(c); err != nil {
		return err
	}
	if p.startCtx != nil {
		stop := context.AfterFunc(p.startCtx, p.cancel)
		defer stop()
	}
	if err := p.register(); err != nil {
		return fmt.Errorf("etcd provider: register member %s: %w", p.self.ID, p.startErr(err))
	}
	rev, err := p.resync()
	if err == nil && p.startCtx != nil && p.startCtx.Err() != nil {
		err = p.startCtx.Err()
	}
	if err != nil {
		timeout := p.requestTimeout
		if p.startCtx != nil && p.startCtx.Err() != nil {
			// Asked to stop: the revoke is a courtesy (the lease lapses
			// by itself within its TTL), and an etcd that froze after
			// the registration, which is why the start was stopped, never
			// answers it: the full request timeout held the stop 5 s.
			timeout = min(timeout, stoppedRevokeTimeout)
		}
		p.revokeLease(timeout)
		return fmt.Errorf("etcd provider: list members: %w", p.startErr(err))
	}
	p.wg.Add(2)
	go p.watchLoop(rev)
	go p.keepAliveLoop()
	return nil
}

// stoppedRevokeTimeout bounds the revoke of the lease of a start that was
// asked to stop (WithStartContext) after it registered: an etcd that
// answers revokes it in milliseconds, so the others see the member go at
// once; a frozen one lets it lapse within its TTL.
const stoppedRevokeTimeout = 500 * time.Millisecond

// startErr is err, or, when the start was asked to stop (its requests
// were cancelled for that), the start context's error with it.
func (p *Provider) startErr(err error) error {
	if p.startCtx != nil && p.startCtx.Err() != nil && !errors.Is(err, p.startCtx.Err()) {
		return fmt.Errorf("%w: %w", context.Cause(p.startCtx), err)
	}
	return err
}

// StartClient lists and watches the members without registering.
func (p *Provider) StartClient(c *cluster.Cluster) error {
	if err := p.init(c); err != nil {
		return err
	}
	rev, err := p.resync()
	if err != nil {
		return fmt.Errorf("etcd provider: list members: %w", err)
	}
	p.wg.Add(1)
	go p.watchLoop(rev)
	return nil
}

// Shutdown stops watching and renewing, revokes the lease (so the others
// see this member leave at once) and closes the client if the provider
// made it.
func (p *Provider) Shutdown(graceful bool) error {
	p.mu.Lock()
	if p.shutdown {
		p.mu.Unlock()
		return nil
	}
	p.shutdown = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	err := p.revokeLease(p.requestTimeout)
	if p.ownClient {
		if cerr := p.client.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// GetHealthStatus returns the last error the provider met, if it has not
// recovered from it.
func (p *Provider) GetHealthStatus() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clusterError
}

func (p *Provider) setError(err error) {
	p.mu.Lock()
	p.clusterError = err
	p.mu.Unlock()
}

func (p *Provider) requestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, p.requestTimeout)
}

func (p *Provider) register() error {
	data, err := p.self.Serialize()
	if err != nil {
		return err
	}
	ctx, cancel := p.requestContext()
	defer cancel()
	lease, err := p.client.Grant(ctx, int64(p.ttl/time.Second))
	if err != nil {
		return err
	}
	if _, err := p.client.Put(ctx, p.selfKey(), string(data), clientv3.WithLease(lease.ID)); err != nil {
		return err
	}
	p.mu.Lock()
	p.leaseID = lease.ID
	p.mu.Unlock()
	return nil
}

// revokeLease revokes the member's lease, waiting at most timeout for etcd.
func (p *Provider) revokeLease(timeout time.Duration) error {
	p.mu.Lock()
	id := p.leaseID
	p.leaseID = 0
	p.mu.Unlock()
	if id == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := p.client.Revoke(ctx, id)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		err = nil // expired already
	}
	return err
}

// keepAliveLoop renews the lease until Shutdown. If the renewals stop
// (the lease expired, or etcd could not be reached for a whole TTL), the
// member is evicted, unless etcd, asked again within one more TTL, says the
// lease still lives: then the renewals start again.
//
// connector patch: the client closes the keepalive channel when no renewal
// came back for a whole TTL, which also happens while etcd elects a new
// leader (seconds, on a loaded machine) although no lease expires then
// (the new leader extends every lease). Evicting on that alone made every
// member drop out of the cluster when etcd's leader died.
func (p *Provider) keepAliveLoop() {
	defer p.wg.Done()
	p.mu.Lock()
	id := p.leaseID
	p.mu.Unlock()
	for {
		ch, err := p.client.KeepAlive(p.ctx, id)
		if err == nil {
			for resp := range ch {
				if resp == nil {
					break
				}
			}
		}
		if p.ctx.Err() != nil {
			return // Shutdown
		}
		if err == nil {
			alive, lerr := p.leaseAlive(id)
			if p.ctx.Err() != nil {
				return
			}
			if alive {
				p.logger().Warn("etcd provider: lease renewals stalled for a whole TTL but the lease lives; renewing again",
					slog.String("member", p.self.ID), slog.Duration("ttl", p.ttl))
				continue
			}
			err = fmt.Errorf("lease %x of member %s is lost: not renewed within its %s TTL", int64(id), p.self.ID, p.ttl)
			if lerr != nil {
				err = fmt.Errorf("%w (and etcd could not be asked for it within another TTL: %w)", err, lerr)
			}
		}
		p.evict(err)
		return
	}
}

// leaseAlive asks etcd, for up to one TTL, whether lease id still lives.
// false with an error when etcd could not be asked.
func (p *Provider) leaseAlive(id clientv3.LeaseID) (bool, error) {
	deadline := time.Now().Add(p.ttl)
	var last error
	for p.ctx.Err() == nil && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, min(p.requestTimeout, time.Until(deadline)))
		resp, err := p.client.TimeToLive(ctx, id)
		cancel()
		switch {
		case err == nil:
			return resp.TTL > 0, nil
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			return false, nil
		}
		last = err
		select {
		case <-p.ctx.Done():
		case <-time.After(min(p.retryInterval, max(time.Until(deadline), 0))):
		}
	}
	return false, last
}

// evict reports this member's loss of membership, once, and stops the
// provider's goroutines.
func (p *Provider) evict(reason error) {
	p.mu.Lock()
	if p.evicted || p.shutdown {
		p.mu.Unlock()
		return
	}
	p.evicted = true
	p.clusterError = reason
	p.mu.Unlock()
	p.logger().Error("etcd provider: this member was evicted from the cluster", slog.String("member", p.self.ID), slog.Any("reason", reason))
	ev := SelfEvicted{MemberID: p.self.ID, Reason: reason}
	p.cluster.ActorSystem.EventStream.Publish(&ev)
	if p.onEvicted != nil {
		go p.onEvicted(ev)
	}
	p.cancel()
}

// watchLoop watches the cluster's prefix from revision rev+1. When the
// watch breaks, it lists the members again (publishing what changed
// meanwhile) and resumes from that list's revision.
func (p *Provider) watchLoop(rev int64) {
	defer p.wg.Done()
	for p.ctx.Err() == nil {
		err := p.watch(rev + 1)
		if p.ctx.Err() != nil {
			return
		}
		p.logger().Warn("etcd provider: member watch broke; listing the members again", slog.Any("error", err))
		p.setError(err)
		for p.ctx.Err() == nil {
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(p.retryInterval):
			}
			r, err := p.resync()
			if err == nil {
				rev = r
				p.setError(nil)
				break
			}
			p.setError(err)
			p.logger().Warn("etcd provider: cannot list the members", slog.Any("error", err))
		}
	}
}

// watch follows the prefix from revision from until the watch fails or
// the provider stops.
func (p *Provider) watch(from int64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(p.ctx))
	defer cancel()
	for resp := range p.client.Watch(ctx, p.clusterKey()+"/", clientv3.WithPrefix(), clientv3.WithRev(from)) {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Canceled {
			return errors.New("watch canceled")
		}
		if p.apply(resp.Events) {
			p.publish()
		}
	}
	if p.ctx.Err() != nil {
		return p.ctx.Err()
	}
	return errors.New("watch closed")
}

// apply records the events and reports whether the member set changed. A
// deletion of this member's own key evicts it.
func (p *Provider) apply(events []*clientv3.Event) bool {
	changed := false
	for _, ev := range events {
		key := string(ev.Kv.Key)
		id := memberIDOf(key)
		if p.self != nil && id == p.self.ID && p.isMember() {
			if ev.Type == clientv3.EventTypeDelete {
				p.evict(fmt.Errorf("the key %s of member %s was deleted (its lease expired or was revoked)", key, id))
				return false
			}
			continue
		}
		p.mu.Lock()
		switch ev.Type {
		case clientv3.EventTypePut:
			node, err := NewNodeFromBytes(ev.Kv.Value)
			if err != nil || node.ID != id {
				p.mu.Unlock()
				p.logger().Error("etcd provider: invalid member", slog.String("key", key))
				continue
			}
			p.members[id] = node
			changed = true
		case clientv3.EventTypeDelete:
			if _, ok := p.members[id]; ok {
				delete(p.members, id)
				changed = true
			}
		}
		p.mu.Unlock()
	}
	return changed
}

func (p *Provider) isMember() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leaseID != 0
}

// resync lists the members, replaces the member map with what it read,
// publishes the topology, and returns the list's revision.
func (p *Provider) resync() (int64, error) {
	ctx, cancel := p.requestContext()
	defer cancel()
	resp, err := p.client.Get(ctx, p.clusterKey()+"/", clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	members := make(map[string]*Node, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		node, err := NewNodeFromBytes(kv.Value)
		if err != nil || node.ID != memberIDOf(string(kv.Key)) {
			p.logger().Error("etcd provider: invalid member", slog.String("key", string(kv.Key)))
			continue
		}
		members[node.ID] = node
	}
	if p.isMember() {
		if _, ok := members[p.self.ID]; !ok {
			// Our key is gone already: the lease expired.
			p.evict(fmt.Errorf("the key of member %s is missing from etcd (its lease expired)", p.self.ID))
			return 0, errors.New("evicted")
		}
	}
	p.mu.Lock()
	p.members = members
	p.mu.Unlock()
	p.publish()
	return resp.Header.Revision, nil
}

func (p *Provider) publish() {
	p.mu.Lock()
	if p.evicted || p.shutdown {
		p.mu.Unlock()
		return
	}
	res := make([]*cluster.Member, 0, len(p.members))
	for _, m := range p.members {
		res = append(res, m.MemberStatus())
	}
	p.mu.Unlock()
	p.logger().Debug("etcd provider: cluster members", slog.Int("members", len(res)))
	p.cluster.MemberList.UpdateClusterTopology(res)
}

func (p *Provider) clusterKey() string { return p.baseKey + "/" + p.clusterName }

func (p *Provider) selfKey() string { return p.clusterKey() + "/" + p.self.ID }

func memberIDOf(key string) string {
	return key[strings.LastIndexByte(key, '/')+1:]
}

func splitHostPort(addr string) (host string, port int, err error) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("etcd provider: member address %q: %w", addr, err)
	}
	port, err = strconv.Atoi(ps)
	if err != nil {
		return "", 0, fmt.Errorf("etcd provider: member address %q: %w", addr, err)
	}
	return h, port, nil
}
