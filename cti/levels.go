package cti

import (
	"context"
	"time"
)

// CustomerLevels tells the customer levels of a tenant's caller: the level codes of the
// customers whose phone numbers match caller best (none: an unknown or withheld caller).
// cmd/ctid wires it to dataobject's caller lookup, the one the screen pop uses.
type CustomerLevels func(ctx context.Context, tenant, caller string) ([]string, error)

// customerLevelTimeout bounds the customer lookup of a waiting caller: a slow lookup must
// not hold the caller back; the call then waits without its level's priority.
const customerLevelTimeout = 500 * time.Millisecond

// SetCustomerLevels gives the queues' level rules their lookup (nil: level rules match no
// caller). It may be called while the Service runs.
func (s *Service) SetCustomerLevels(f CustomerLevels) {
	if f == nil {
		s.levels.Store(nil)
		return
	}
	s.levels.Store(&f)
}

// levelPriority is the priority q's level rules give c's caller. The caller is looked up
// only when q has level rules and the call is about to wait (a free agent takes a call
// whatever its priority).
func (s *Service) levelPriority(c *call, q *Queue) int {
	f := s.levels.Load()
	if len(q.LevelPriorities) == 0 || f == nil {
		return 0
	}
	c.mu.Lock()
	caller := c.cdr.CallerRaw
	c.mu.Unlock()
	if caller == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), customerLevelTimeout)
	defer cancel()
	levels, err := (*f)(ctx, c.tenant, caller)
	if err != nil {
		s.log.Warn("customer level of a waiting caller", "tenant", c.tenant, "call", c.id, "error", err)
		return 0
	}
	return q.levelPriority(levels)
}
