package cti

import (
	"context"
	"sync"
	"time"
)

// configTTL is how long routing configuration (trunks, numbers, queues) read from the
// database is reused: admins' changes reach calls within it, without a restart.
const configTTL = 2 * time.Second

// maxCached bounds a cache; when full it starts over (entries are cheap to read again).
const maxCached = 10_000

// ttlCache remembers values for its ttl (default configTTL). Errors are not remembered. When a value is too
// old, one caller reads it again while the others go on with the old one for that long:
// hundreds of calls a second must not all reload a queue of a thousand members at once.
type ttlCache[K comparable, V any] struct {
	ttl time.Duration // 0: configTTL
	mu  sync.Mutex
	m   map[K]*cached[V]
	// gen counts forget and clear: a value read before one of them may be the old one, so
	// a load that started before is returned but not remembered.
	gen uint64
}

type cached[V any] struct {
	v       V
	at      time.Time
	loading bool // a caller is reading it again
}

func (c *ttlCache[K, V]) get(k K, load func() (V, error)) (V, error) {
	now := time.Now()
	ttl := c.ttl
	if ttl == 0 {
		ttl = configTTL
	}
	c.mu.Lock()
	e := c.m[k]
	if e != nil && (now.Sub(e.at) < ttl || e.loading) {
		v := e.v
		c.mu.Unlock()
		return v, nil
	}
	if e != nil {
		e.loading = true
	}
	gen := c.gen
	c.mu.Unlock()
	v, err := load()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e != nil {
		e.loading = false // the entry may be gone (clear); then this changes nothing
	}
	if err != nil || c.gen != gen {
		return v, err
	}
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[K]*cached[V]{}
	}
	c.m[k] = &cached[V]{v: v, at: now}
	return v, nil
}

// forget drops one entry: the next get reads it again.
func (c *ttlCache[K, V]) forget(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.gen++
	c.mu.Unlock()
}

func (c *ttlCache[K, V]) clear() {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.mu.Unlock()
}

// SaveQueue saves a queue (see the package function) and makes calls see it at once.
// Without a running Service, the package functions do the same; a Service then sees the
// change within configTTL.
func (s *Service) SaveQueue(ctx context.Context, tenant string, q Queue) error {
	defer s.queueCfg.clear()
	return SaveQueue(ctx, s.pool, tenant, q)
}

// SetQueueMember changes a queue's members and makes calls see it at once.
func (s *Service) SetQueueMember(ctx context.Context, tenant, queue string, agentID int64, level int) error {
	defer s.queueCfg.clear()
	return SetQueueMember(ctx, s.pool, tenant, queue, agentID, level)
}

// SaveDID saves a number's route and makes calls see it at once.
func (s *Service) SaveDID(ctx context.Context, tenant string, d DID) error {
	defer s.dids.clear()
	return SaveDID(ctx, s.pool, tenant, d)
}

// SaveTrunk saves a trunk and makes calls see it at once.
func (s *Service) SaveTrunk(ctx context.Context, t Trunk) error {
	defer s.trunks.clear()
	return SaveTrunk(ctx, s.pool, t)
}
