package cti

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// queueRuntime is a queue's live state in this process: callers waiting in FIFO order and
// the round-robin position. Configuration is read from the database per call.
type queueRuntime struct {
	mu      sync.Mutex
	waiting []*call
	next    int // round robin: index of the member after the last one offered
}

type queueKey struct{ tenant, name string }

type acd struct {
	mu     sync.Mutex
	queues map[queueKey]*queueRuntime
}

func (a *acd) runtime(tenant, name string) *queueRuntime {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := queueKey{tenant, name}
	q := a.queues[k]
	if q == nil {
		q = &queueRuntime{}
		a.queues[k] = q
	}
	return q
}

// wakeTenant wakes every waiting caller of a tenant's queues (an agent became Ready or registered).
func (a *acd) wakeTenant(tenant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, q := range a.queues {
		if k.tenant == tenant {
			q.broadcast()
		}
	}
}

// broadcast tells the caller first in line that an agent may have become free. Only the
// first may take one; it tells the next when it leaves the line. (Waking every waiting
// caller for every free agent made a queue of hundreds spend more than the calls.)
func (q *queueRuntime) broadcast() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) > 0 {
		q.waiting[0].nudge()
	}
}

// enqueue adds c behind every caller of its priority or higher (FIFO within a priority)
// and returns its 1-based position.
func (q *queueRuntime) enqueue(c *call) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := len(q.waiting)
	for i > 0 && q.waiting[i-1].priority < c.priority {
		i--
	}
	q.waiting = slices.Insert(q.waiting, i, c)
	return i + 1
}

// enqueueFront puts c back at the head of its priority's callers (its offer was not
// answered): behind callers of a higher priority only.
func (q *queueRuntime) enqueueFront(c *call) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := 0
	for i < len(q.waiting) && q.waiting[i].priority > c.priority {
		i++
	}
	q.waiting = slices.Insert(q.waiting, i, c)
}

func (q *queueRuntime) leave(c *call) {
	q.mu.Lock()
	for i, x := range q.waiting {
		if x == c {
			q.waiting = append(q.waiting[:i:i], q.waiting[i+1:]...)
			break
		}
	}
	q.mu.Unlock()
	q.broadcast() // the next caller may now be first
}

// first reports whether c may take a free agent: no caller waits, or c waits longest.
func (q *queueRuntime) first(c *call) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting) == 0 || q.waiting[0] == c
}

func (q *queueRuntime) waitingCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// retryTriedAfter is how long a waiting call skips the agents that already missed it.
const retryTriedAfter = 5 * time.Second

// candidates are the members a queue offers the call to now: Ready, registered and not yet
// tried, at the lowest level that has any. Ring all takes them all; the other strategies
// take the one that comes first (longest idle, or next after the last offered). One pass
// without sorting: a queue may have a thousand members and this runs for every call, so a
// member costs one atomic read of its agent's state, and its registration is read only when
// it would be taken (for longest idle, the few that were idle longer than the best so far).
func (s *Service) candidates(ctx context.Context, c *call, q *Queue, rt *queueRuntime, members []member, tried map[int64]bool) []member {
	rt.mu.Lock()
	start := rt.next
	rt.mu.Unlock()
	n := len(members)
	now := time.Now().UnixNano()
	var all []member
	best, bestLevel := -1, 0
	var bestIdle int64
	bestRank := n
	for i := range members {
		m := &members[i]
		if m.Extension == "" || (best >= 0 && m.Level > bestLevel) {
			continue
		}
		ag := m.agent
		if ag == nil {
			ag = s.agents.get(c.tenant, m.AgentID)
		}
		ok, since, err := s.agents.idleOf(ctx, c.tenant, ag)
		if err != nil {
			s.log.Error("agent state", "agent", m.AgentID, "error", err)
			continue
		}
		if !ok {
			continue
		}
		rank := (i - start + n) % n
		better := best < 0 || m.Level < bestLevel ||
			(q.Strategy == RoundRobin && rank < bestRank) ||
			(q.Strategy != RoundRobin && since < bestIdle)
		if !better && q.Strategy != RingAll {
			continue
		}
		if tried[m.AgentID] {
			continue
		}
		reg := m.reg
		if reg == nil {
			reg = s.reg.ext(c.tenant, m.Extension)
		}
		if !reg.registeredAt(now) {
			continue
		}
		if best >= 0 && m.Level < bestLevel {
			all = all[:0]
		}
		if q.Strategy == RingAll {
			all = append(all, *m)
		}
		if better {
			best, bestLevel, bestIdle, bestRank = i, m.Level, since, rank
		}
	}
	if best < 0 {
		return nil
	}
	if q.Strategy == RoundRobin {
		rt.mu.Lock()
		rt.next = (best + 1) % n
		rt.mu.Unlock()
	}
	if q.Strategy == RingAll {
		return all
	}
	return []member{members[best]}
}

// serveQueue runs the ACD for a call until an agent answers, the caller gives up, or max
// wait sends it elsewhere. It writes the outcome (relays the answer, or a final failure).
func (s *Service) serveQueue(c *call, req *sip.Request, tx sip.ServerTransaction, queueName string, start time.Time) {
	for hops := 0; ; hops++ {
		next, done := s.queueRound(c, req, tx, queueName, start)
		if done {
			return
		}
		if hops >= 5 || next == "" {
			s.respond(tx, req, 480, "Temporarily Unavailable")
			s.endCall(c, Timeout, HangupSystem, 480)
			return
		}
		if ext, ok := strings.CutPrefix(next, "ext:"); ok {
			s.serveExtension(c, req, tx, ext, start)
			return
		}
		queueName = strings.TrimPrefix(next, "queue:")
	}
}

// queueRound serves c in one queue; it returns the overflow target when max wait passed,
// or done when the call was settled here.
func (s *Service) queueRound(c *call, req *sip.Request, tx sip.ServerTransaction, queueName string, start time.Time) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	q, _, err := s.loadQueue(ctx, c.tenant, queueName)
	cancel()
	if err != nil {
		s.respondErr(tx, req, err)
		s.endCall(c, Failed, HangupSystem, 404)
		return "", true
	}
	c.mu.Lock()
	c.queue = q
	c.cdr.Queue = q.Name
	c.priority = max(c.didPriority, q.callerPriority(c.cdr.CallerE164, c.cdr.CallerRaw))
	c.mu.Unlock()
	rt := s.acd.runtime(c.tenant, q.Name)
	// The timers of waiting (max wait, retrying the agents tried) start when the call first
	// waits: most calls find an agent at once and need neither.
	roundStart := time.Now()
	var maxWait, retry *time.Timer
	defer func() {
		if maxWait != nil {
			maxWait.Stop()
			retry.Stop()
		}
	}()
	queued := false
	defer func() {
		if queued {
			rt.leave(c)
			s.m.waiting.WithLabelValues(c.tenant, q.Name).Set(float64(rt.waitingCount()))
		}
	}()
	// Agents who did not answer this call are not offered it again until retry fires.
	var tried map[int64]bool
	for {
		select {
		case <-c.done:
			s.abandon(c)
			return "", true
		default:
		}
		if rt.first(c) {
			ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
			// Members are read each round: changes by admins take effect on waiting calls too.
			cfg, members, err := s.loadQueue(ctx, c.tenant, q.Name)
			cancel()
			if err == nil {
				q = cfg
				c.mu.Lock()
				c.queue = q
				c.mu.Unlock()
			}
			cands := s.candidates(context.Background(), c, q, rt, members, tried)
			if len(cands) > 0 {
				if q.Strategy != RingAll {
					cands = cands[:1]
				}
				// While its agent rings, the call leaves the line so the next caller can take
				// another free agent; it comes back first in line if nobody answers.
				if queued {
					rt.leave(c)
				}
				answered := s.offer(c, req, tx, q, cands, start)
				if queued && !answered {
					rt.enqueueFront(c)
				}
				if answered {
					queued = false
					return "", true
				}
				if tried == nil {
					tried = map[int64]bool{}
				}
				for _, m := range cands {
					tried[m.AgentID] = true
				}
				continue
			}
		}
		if !queued {
			queued = true
			if lp := s.levelPriority(c, q); lp > 0 {
				c.mu.Lock()
				c.priority = max(c.priority, lp)
				c.mu.Unlock()
			}
			pos := rt.enqueue(c)
			s.m.waiting.WithLabelValues(c.tenant, q.Name).Set(float64(rt.waitingCount()))
			c.mu.Lock()
			if c.cdr.QueuedAt.IsZero() {
				c.cdr.QueuedAt = time.Now()
			}
			c.mu.Unlock()
			s.respond(tx, req, 182, "Queued")
			data := map[string]string{"position": strconv.Itoa(pos)}
			if c.priority > 0 {
				data["priority"] = strconv.Itoa(c.priority)
			}
			s.event(c, CallQueued, 0, data)
			continue // now in line: maybe first already
		}
		if maxWait == nil {
			maxWait = time.NewTimer(q.MaxWait - time.Since(roundStart))
			retry = time.NewTimer(retryTriedAfter - time.Since(roundStart))
		}
		select {
		case <-c.wake:
		case <-c.done:
			s.abandon(c)
			return "", true
		case <-retry.C:
			tried = nil
			retry.Reset(retryTriedAfter)
		case <-maxWait.C:
			target := q.Overflow
			s.event(c, CallOverflowed, 0, map[string]string{"target": orDefault(target, "480")})
			return target, false
		}
	}
}

// abandon ends a call whose caller hung up before an answer.
func (s *Service) abandon(c *call) {
	s.event(c, CallAbandoned, 0, map[string]string{"waited": strconv.FormatFloat(time.Since(c.started).Seconds(), 'f', 1, 64)})
	s.endCall(c, Abandoned, HangupCaller, 487)
}

// offer rings the given members; it reports true when one answered (the call is then up)
// or the call is over. Members that were not reserved (no longer Ready) are skipped.
func (s *Service) offer(c *call, req *sip.Request, tx sip.ServerTransaction, q *Queue, members []member, start time.Time) bool {
	ctx := context.Background() // agent transitions bound their own rare database reads
	var legs []*leg
	for _, m := range members {
		contacts := s.reg.contacts(c.tenant, m.Extension)
		if len(contacts) == 0 {
			continue
		}
		if !s.setAgent(ctx, c.tenant, m.AgentID, Change{To: Reserved, Who: BySystem, CallID: c.id, From: Ready}) {
			continue
		}
		b := contacts[len(contacts)-1]
		l := &leg{agentID: m.AgentID, extension: m.Extension, contact: b.Contact, source: b.Source}
		if err := s.startLeg(c, req, l); err != nil {
			s.log.Warn("ring agent", "agent", m.AgentID, "error", err)
			s.setAgent(ctx, c.tenant, m.AgentID, Change{To: Ready, Who: BySystem, CallID: c.id, From: Reserved})
			continue
		}
		legs = append(legs, l)
	}
	if len(legs) == 0 {
		return false
	}
	return s.ringLegs(c, req, tx, q, legs, start)
}

// ringLegs waits for the legs' outcomes: the first answer takes the call, the others are
// cancelled; every agent that did not answer is freed (or made Not ready by the missed rule).
func (s *Service) ringLegs(c *call, req *sip.Request, tx sip.ServerTransaction, q *Queue, legs []*leg, start time.Time) bool {
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopAll := func() { stopOnce.Do(func() { close(stop) }) }
	out := make(chan legOutcome, len(legs))
	for _, l := range legs {
		go s.runLeg(c, req, tx, l, q.RingTimeout, stop, start, out)
	}
	answered := false
	for range legs {
		o := <-out
		if o.answered {
			answered = true
			stopAll()
			continue
		}
		s.missed(c, q, o)
	}
	stopAll()
	if answered {
		return true
	}
	select {
	case <-c.done:
		s.abandon(c)
		return true
	default:
	}
	return false
}

// answered records that an agent (or, on an outbound call, the far end) took the call: the
// agent goes On call, so the ACD offers them nothing until the call ends.
func (s *Service) answered(c *call, l *leg) {
	ctx := context.Background() // agent transitions bound their own rare database reads
	c.mu.Lock()
	c.cdr.AnsweredAt = time.Now()
	if l.agentID != 0 {
		c.cdr.AgentID, c.cdr.AgentExtension = l.agentID, l.extension
	}
	agentID, ext, outbound := c.cdr.AgentID, c.cdr.AgentExtension, c.cdr.Direction == Outbound
	c.mu.Unlock()
	from := Ringing
	if outbound {
		from = Ready // an agent who is Not ready may call out and stays Not ready
	}
	if agentID != 0 && s.setAgent(ctx, c.tenant, agentID, Change{To: OnCall, Who: BySystem, CallID: c.id, From: from}) {
		c.mu.Lock()
		c.onCall = agentID
		c.mu.Unlock()
	}
	s.event(c, CallAnswered, agentID, map[string]string{"extension": ext})
}

// missed frees an agent whose leg ended without an answer. A caller's hang-up is no fault
// of the agent's: only timeouts, busy and declines count for the missed-call rule.
func (s *Service) missed(c *call, q *Queue, o legOutcome) {
	ctx := context.Background() // agent transitions bound their own rare database reads
	l := o.leg
	if l.agentID == 0 {
		return // a trunk leg: no agent to free
	}
	c.mu.Lock()
	if c.cdr.AgentID == 0 || c.answered == nil {
		c.cdr.AgentID, c.cdr.AgentExtension = l.agentID, l.extension
	}
	c.mu.Unlock()
	from := Ringing
	st, err := s.agents.Status(ctx, c.tenant, l.agentID)
	if err == nil && st.State == Reserved {
		from = Reserved
	}
	if o.why == "cancelled" {
		s.setAgent(ctx, c.tenant, l.agentID, Change{To: Ready, Who: BySystem, CallID: c.id, From: from})
		return
	}
	s.event(c, CallMissed, l.agentID, map[string]string{"extension": l.extension, "why": o.why, "sip_code": strconv.Itoa(o.code)})
	if q != nil && s.agents.missedOffer(c.tenant, l.agentID, q.MissedLimit) && from == Ringing {
		s.setAgent(ctx, c.tenant, l.agentID, Change{To: NotReady, Who: BySystem, Reason: "missed", CallID: c.id, From: from})
		return
	}
	s.setAgent(ctx, c.tenant, l.agentID, Change{To: Ready, Who: BySystem, CallID: c.id, From: from})
}

// serveExtension offers a call to one extension: its agent must be Ready and registered,
// else the caller hears busy.
func (s *Service) serveExtension(c *call, req *sip.Request, tx sip.ServerTransaction, ext string, start time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	t, err := s.reg.dir.tenantByCode(ctx, c.tenant)
	var u *sipUser
	if err == nil {
		u, err = s.reg.dir.cachedUser(ctx, t, ext)
	}
	cancel()
	if err != nil {
		s.respondErr(tx, req, err)
		s.endCall(c, Failed, HangupSystem, 404)
		return
	}
	q := &Queue{RingTimeout: 30 * time.Second}
	if s.offer(c, req, tx, q, []member{{AgentID: u.ID, Extension: ext, Level: 1}}, start) {
		return
	}
	select {
	case <-c.done:
		s.abandon(c)
		return
	default:
	}
	s.respond(tx, req, 486, "Busy Here")
	s.endCall(c, Busy, HangupSystem, 486)
}
