package actor

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

type ProcessRegistryValue struct {
	SequenceID     uint64
	ActorSystem    *ActorSystem
	Address        string
	LocalPIDs      *SliceMap
	RemoteHandlers []AddressResolver
}

// SliceMap holds the local processes by id.
//
// connector patch: one level of shards, each a plain map under its own
// lock, chosen by one hash of the id. Upstream kept 1024 concurrent maps
// of 32 shards each (32768 small maps, two hashes of the id per call:
// murmur3 to pick the map, FNV to pick its shard), so that every spawn,
// stop and first send to a PID touched a random small map far from the
// last one: ProcessRegistryValue.Add was a tenth or more of the
// connector's in-memory submit (one task actor spawned per action). The registry's
// methods and their meaning are unchanged: ids are unique, Add refuses a
// taken id, Remove marks an ActorProcess dead.
type SliceMap struct {
	seed   maphash.Seed
	shards [registryShards]registryShard
}

// registryShards is a power of two, so that a shard is picked with a mask.
// 256 keeps the lock of each shard rarely contended even with many cores
// spawning at once, and each shard's map large enough that Go's map
// grows it in place (its tables split) rather than 32768 maps each
// growing on their own.
const registryShards = 256

type registryShard struct {
	mu sync.RWMutex
	m  map[string]Process
	_  [32]byte // a cache line of its own: RWMutex 24 B + map 8 B + 32 B = 64 B
}

func newSliceMap() *SliceMap {
	sm := &SliceMap{seed: maphash.MakeSeed()}
	for i := range sm.shards {
		sm.shards[i].m = make(map[string]Process)
	}

	return sm
}

func (s *SliceMap) shard(key string) *registryShard {
	return &s.shards[maphash.String(s.seed, key)&(registryShards-1)]
}

// setIfAbsent stores process under key unless the key is taken, and
// reports whether it stored it.
func (s *SliceMap) setIfAbsent(key string, process Process) bool {
	sh := s.shard(key)
	sh.mu.Lock()
	_, taken := sh.m[key]
	if !taken {
		sh.m[key] = process
	}
	sh.mu.Unlock()

	return !taken
}

func (s *SliceMap) get(key string) (Process, bool) {
	sh := s.shard(key)
	sh.mu.RLock()
	p, ok := sh.m[key]
	sh.mu.RUnlock()

	return p, ok
}

// pop removes key and returns what it held.
func (s *SliceMap) pop(key string) (Process, bool) {
	sh := s.shard(key)
	sh.mu.Lock()
	p, ok := sh.m[key]
	if ok {
		delete(sh.m, key)
	}
	sh.mu.Unlock()

	return p, ok
}

const (
	localAddress = "nonhost"
)

func NewProcessRegistry(actorSystem *ActorSystem) *ProcessRegistryValue {
	return &ProcessRegistryValue{
		ActorSystem: actorSystem,
		Address:     localAddress,
		LocalPIDs:   newSliceMap(),
	}
}

// An AddressResolver is used to resolve remote actors
type AddressResolver func(*PID) (Process, bool)

func (pr *ProcessRegistryValue) RegisterAddressResolver(handler AddressResolver) {
	pr.RemoteHandlers = append(pr.RemoteHandlers, handler)
}

const (
	digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ~+"
)

func uint64ToId(u uint64) string {
	var buf [13]byte
	i := 13
	// base is power of 2: use shifts and masks instead of / and %
	for u >= 64 {
		i--
		buf[i] = digits[uintptr(u)&0x3f]
		u >>= 6
	}
	// u < base
	i--
	buf[i] = digits[uintptr(u)]
	i--
	buf[i] = '$'

	return string(buf[i:])
}

func (pr *ProcessRegistryValue) NextId() string {
	counter := atomic.AddUint64(&pr.SequenceID, 1)

	return uint64ToId(counter)
}

func (pr *ProcessRegistryValue) Add(process Process, id string) (*PID, bool) {
	return &PID{
		Address: pr.Address,
		Id:      id,
	}, pr.LocalPIDs.setIfAbsent(id, process)
}

func (pr *ProcessRegistryValue) Remove(pid *PID) {
	ref, _ := pr.LocalPIDs.pop(pid.Id)
	if l, ok := ref.(*ActorProcess); ok {
		atomic.StoreInt32(&l.dead, 1)
	}
}

func (pr *ProcessRegistryValue) Get(pid *PID) (Process, bool) {
	if pid == nil {
		return pr.ActorSystem.DeadLetter, false
	}

	if pid.Address != localAddress && pid.Address != pr.Address {
		for _, handler := range pr.RemoteHandlers {
			ref, ok := handler(pid)
			if ok {
				return ref, true
			}
		}

		return pr.ActorSystem.DeadLetter, false
	}

	ref, ok := pr.LocalPIDs.get(pid.Id)
	if !ok {
		return pr.ActorSystem.DeadLetter, false
	}

	return ref, true
}

func (pr *ProcessRegistryValue) GetLocal(id string) (Process, bool) {
	ref, ok := pr.LocalPIDs.get(id)
	if !ok {
		return pr.ActorSystem.DeadLetter, false
	}

	return ref, true
}
