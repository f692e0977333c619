package cti

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// call is one call through ctid, from offer to end.
type call struct {
	id        string
	tenant    string
	sipCallID string // the Call-ID of every leg: ctid proxies and keeps it
	callerTag string // the caller's From tag: tells which side sent an in-dialog request
	started   time.Time

	// done is closed when the caller cancels or the call ends: pending offers stop.
	done     chan struct{}
	doneOnce sync.Once
	// wake (buffered, one) tells a call waiting in a queue that it is first and an agent may
	// be free; a nudge while the call is busy is kept for its next wait.
	wake chan struct{}

	mu        sync.Mutex
	cdr       CDR
	cancelled bool // the caller sent CANCEL before an answer
	answered  *leg // the leg that took the call
	ended     bool
	queue     *Queue // the queue that handles it (wrap-up, missed rule), nil for none
	onCall    int64  // the agent put On call by this call, freed when it ends

	// didPriority is the priority of the number called; priority is the call's place class
	// in a queue's line (higher first), set by the call's own goroutine while it is in no
	// line and read by the others under the line's lock.
	didPriority int
	priority    int

	agentSource string // outbound: "network:addr" the agent's INVITE came from
}

func newCallID() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func (c *call) stop() { c.doneOnce.Do(func() { close(c.done) }) }

func (c *call) nudge() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// claim makes l the answering leg unless the caller cancelled or another leg won: the loser
// of that race must hang its agent up (ACK and BYE).
func (c *call) claim(l *leg) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelled || c.answered != nil || c.ended {
		return false
	}
	c.answered = l
	return true
}

// cancel marks a caller's CANCEL; it is too late once a leg answered.
func (c *call) cancel() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.answered != nil || c.ended {
		return false
	}
	c.cancelled = true
	return true
}

// calls indexes active calls by SIP Call-ID for in-dialog requests.
type calls struct {
	mu sync.Mutex
	m  map[string]*call
}

func (cs *calls) add(c *call) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.m[c.sipCallID] = c
}

func (cs *calls) get(sipCallID string) *call {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.m[sipCallID]
}

func (cs *calls) remove(c *call) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.m[c.sipCallID] == c {
		delete(cs.m, c.sipCallID)
	}
}

func (cs *calls) all() []*call {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]*call, 0, len(cs.m))
	for _, c := range cs.m {
		out = append(out, c)
	}
	return out
}

// event posts a call event without waiting for it to be durable: the caller must not wait
// for the log (nor hear silence because it is slow). The log keeps the order, and endCall
// waits for the call.ended event with the CDR, which is what must not be lost; failures are
// logged.
func (s *Service) event(c *call, typ EventType, agentID int64, data map[string]string) {
	c.mu.Lock()
	queue := c.cdr.Queue
	c.mu.Unlock()
	if err := s.events.Post(Event{Tenant: c.tenant, Type: typ, CallID: c.id, AgentID: agentID, Queue: queue, Data: data}); err != nil {
		s.log.Error("post call event", "type", typ, "call", c.id, "error", err)
	}
}

// endCall writes the call's CDR with its call.ended event (once), frees the agent, and
// forgets the call.
func (s *Service) endCall(c *call, result Result, hangupBy string, sipCause int) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	cdr := c.cdr
	cdr.EndedAt = time.Now()
	cdr.Result, cdr.HangupBy, cdr.SIPCause = result, hangupBy, sipCause
	agent := c.onCall
	q := c.queue
	c.mu.Unlock()
	c.stop()
	s.calls.remove(c)
	s.m.activeCalls.Dec()
	s.m.calls.WithLabelValues(string(result)).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	data := map[string]string{"result": string(result), "hangup_by": hangupBy}
	if _, err := s.events.appendGrouped(ctx, Event{Tenant: c.tenant, Type: CallEnded, CallID: c.id, AgentID: cdr.AgentID,
		Queue: cdr.Queue, Data: data, CDR: &cdr}); err != nil {
		s.log.Error("write CDR", "call", c.id, "error", err)
	}
	if agent != 0 {
		s.afterCall(c.tenant, agent, c.id, q)
	}
}

// afterCall moves an agent from On call to Wrap-up for the queue's wrap-up time, then Ready.
func (s *Service) afterCall(tenant string, agentID int64, callID string, q *Queue) {
	ctx := context.Background() // agent transitions bound their own rare database reads
	if q == nil || q.WrapUp <= 0 {
		s.setAgent(ctx, tenant, agentID, Change{To: Ready, Who: BySystem, CallID: callID, From: OnCall})
		return
	}
	s.setAgent(ctx, tenant, agentID, Change{To: WrapUp, Who: BySystem, CallID: callID, From: OnCall})
	time.AfterFunc(q.WrapUp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		defer cancel()
		// The agent may have left wrap-up already (from the console): then this does nothing.
		if _, err := s.agents.move(ctx, tenant, agentID, Change{To: Ready, Who: BySystem, Reason: "wrap_up_over", From: WrapUp}); err != nil && !isConflict(err) {
			s.log.Error("end wrap-up", "agent", agentID, "error", err)
		}
	})
}

// setAgent makes a system transition of the call path (posted to the event log, not waited
// for), logging failures (the call goes on).
func (s *Service) setAgent(ctx context.Context, tenant string, agentID int64, c Change) bool {
	if _, err := s.agents.move(ctx, tenant, agentID, c); err != nil {
		if !isConflict(err) {
			s.log.Error("agent state", "agent", agentID, "to", c.To, "error", err)
		}
		return false
	}
	return true
}

// leg is the INVITE ctid sent to one agent's phone for a call.
type leg struct {
	agentID   int64
	extension string
	contact   sip.Uri
	source    string // the binding's "network:addr" of the phone's REGISTER, "" for a trunk
	req       *sip.Request
	tx        sip.ClientTransaction
}
