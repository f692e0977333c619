// Package cti is ctid's telephony heart: the SIP registrar, proxy and ACD queues, the agent
// state machine, the per-tenant event log and call detail records (CDRs).
//
// docs/events.md describes the events and tables other packages rely on.
package cti

import (
	"fmt"
	"regexp"
	"time"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// EventType names what happened. The set is closed: Append refuses others.
type EventType string

// The event types of the log (docs/events.md lists each one's fields).
const (
	CallOffered    EventType = "call.offered"    // a call reached ctid for a tenant's number
	CallQueued     EventType = "call.queued"     // no agent was free: the caller waits in a queue
	CallRinging    EventType = "call.ringing"    // an agent's phone rings (AgentID set)
	CallAnswered   EventType = "call.answered"   // an agent (or the far end of an outbound call) answered
	CallMissed     EventType = "call.missed"     // an offered agent did not answer (busy, declined, ring timeout)
	CallAbandoned  EventType = "call.abandoned"  // the caller hung up before an answer
	CallOverflowed EventType = "call.overflowed" // max wait passed: the call moved on (data "target")
	CallEnded      EventType = "call.ended"      // the call is over; carries its CDR
	AgentStateSet  EventType = "agent.state"     // an agent changed state; carries the transition
)

var eventTypes = map[EventType]bool{
	CallOffered: true, CallQueued: true, CallRinging: true, CallAnswered: true, CallMissed: true,
	CallAbandoned: true, CallOverflowed: true, CallEnded: true, AgentStateSet: true,
}

// Event is one entry of a tenant's event log.
type Event struct {
	Tenant  string    // tenant code
	Seq     int64     // the tenant's sequence number, set when the event is durable
	At      time.Time // when it happened; Append sets now when zero
	Type    EventType
	CallID  string // ctid's call id (or the external PBX's), "" for agent-only events
	AgentID int64  // platform user id of the agent involved, 0 for none
	Queue   string // queue name, "" for none
	// Data holds the type's details as strings (keys in docs/events.md), e.g. "caller", "did".
	Data map[string]string

	// State is the transition of an agent.state event; it is written to agent_states and
	// agent_state_log in the same transaction as the event.
	State *StateChange
	// CDR is the call detail record of a call.ended event, written with it.
	CDR *CDR
}

// StateChange is an agent's transition, as logged.
type StateChange struct {
	From, To AgentState
	Reason   string // not-ready reason code, or why the system moved the agent
	Actor    string // "system", "agent", or "user:<id>" of a supervisor who forced it
}

var (
	callIDRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$`)
	queueNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
)

// Limits on an event's free-form parts.
const (
	maxDataKeys     = 32
	maxDataValueLen = 512
)

// check says what is wrong with e, as an Invalid fault.
func (e *Event) check() error {
	if err := db.CheckTenantCode(e.Tenant); err != nil {
		return fault.Errorf(fault.Invalid, "event: %s", err)
	}
	if !eventTypes[e.Type] {
		return fault.Errorf(fault.Invalid, "event type %q is not known", e.Type)
	}
	if e.CallID != "" && !callIDRE.MatchString(e.CallID) {
		return fault.Errorf(fault.Invalid, "call id %q is not valid: 1–128 letters, digits and ._:@+-", e.CallID)
	}
	if e.Queue != "" && !queueNameRE.MatchString(e.Queue) {
		return fault.Errorf(fault.Invalid, "queue name %q is not valid", e.Queue)
	}
	if len(e.Data) > maxDataKeys {
		return fault.Errorf(fault.Invalid, "event has %d data fields, at most %d", len(e.Data), maxDataKeys)
	}
	for k, v := range e.Data {
		if len(v) > maxDataValueLen {
			return fault.Errorf(fault.Invalid, "event field %q is longer than %d bytes", k, maxDataValueLen)
		}
	}
	if (e.Type == AgentStateSet) != (e.State != nil) {
		return fault.Errorf(fault.Invalid, "an %s event carries a state change, and only it", AgentStateSet)
	}
	if e.Type == AgentStateSet && e.AgentID == 0 {
		return fault.Errorf(fault.Invalid, "an %s event needs the agent", AgentStateSet)
	}
	if e.CDR != nil {
		if e.Type != CallEnded {
			return fault.Errorf(fault.Invalid, "only %s events carry a CDR", CallEnded)
		}
		if e.CDR.CallID != e.CallID {
			return fault.Errorf(fault.Invalid, "CDR call id %q differs from its event's %q", e.CDR.CallID, e.CallID)
		}
		if err := e.CDR.check(); err != nil {
			return err
		}
	}
	return nil
}

func (e *Event) String() string {
	return fmt.Sprintf("%s#%d %s call=%s agent=%d", e.Tenant, e.Seq, e.Type, e.CallID, e.AgentID)
}
