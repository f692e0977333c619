package screenpop

import (
	"github.com/ctid/ctid/cti"
)

// delivery is one message for one agent's consoles. pop marks a pop.offer whose payload
// comes from the builder (by call id) when the message is written.
type delivery struct {
	agentID int64
	msg     Message
	pop     bool
}

// router turns the event stream of one tenant into deliveries. It remembers which agent a
// call is ringing or connected to, so that the caller hanging up retracts that agent's pop.
// One router follows the live stream in the hub; each replay builds its own.
type router struct {
	callAgent map[string]int64
}

func newRouter() *router { return &router{callAgent: map[string]int64{}} }

// route returns what ev means for agents' consoles.
func (r *router) route(ev cti.Event) []delivery {
	msg := func(typ string, data map[string]any) Message {
		if data == nil {
			data = map[string]any{}
		}
		data["call_id"] = ev.CallID
		if ev.AgentID != 0 {
			data["agent_id"] = ev.AgentID
		}
		return Message{Seq: ev.Seq, Type: typ, Time: ev.At, Data: data}
	}
	offer := func() delivery {
		r.callAgent[ev.CallID] = ev.AgentID
		return delivery{agentID: ev.AgentID, msg: msg(TypePopOffer, map[string]any{"queue": ev.Queue}), pop: true}
	}
	switch ev.Type {
	case cti.CallOffered:
		// A call an external PBX reports (call-event API) names its agent at once: pop there.
		if ev.AgentID == 0 {
			return nil
		}
		return []delivery{offer()}
	case cti.CallRinging:
		if ev.AgentID == 0 || r.callAgent[ev.CallID] == ev.AgentID {
			return nil // no agent, or this agent has the pop already
		}
		return []delivery{offer()}
	case cti.CallAnswered:
		if ev.AgentID == 0 {
			return nil
		}
		var out []delivery
		if r.callAgent[ev.CallID] != ev.AgentID && ev.Data["source"] == "api" {
			out = append(out, offer()) // a PBX reports the answer of an agent it never named before
		}
		return append(out, delivery{agentID: ev.AgentID, msg: msg(TypePopUpdate, map[string]any{"status": "answered"})})
	case cti.CallMissed:
		if ev.AgentID == 0 {
			return nil
		}
		if r.callAgent[ev.CallID] == ev.AgentID {
			delete(r.callAgent, ev.CallID)
		}
		return []delivery{{agentID: ev.AgentID, msg: msg(TypePopRetract, map[string]any{"reason": "rang_out", "why": ev.Data["why"]})}}
	case cti.CallAbandoned:
		agent, ok := r.callAgent[ev.CallID]
		delete(r.callAgent, ev.CallID)
		if !ok {
			return nil
		}
		m := msg(TypePopRetract, map[string]any{"reason": "caller_hung_up"})
		m.Data.(map[string]any)["agent_id"] = agent
		return []delivery{{agentID: agent, msg: m}}
	case cti.CallEnded:
		agent := ev.AgentID
		if a, ok := r.callAgent[ev.CallID]; ok && agent == 0 {
			agent = a
		}
		delete(r.callAgent, ev.CallID)
		if agent == 0 {
			return nil
		}
		m := msg(TypePopUpdate, map[string]any{"status": "ended", "result": ev.Data["result"], "hangup_by": ev.Data["hangup_by"]})
		m.Data.(map[string]any)["agent_id"] = agent
		return []delivery{{agentID: agent, msg: m}}
	case cti.AgentStateSet:
		if ev.AgentID == 0 {
			return nil
		}
		data := map[string]any{}
		if ev.State != nil {
			data["from"], data["to"], data["reason"] = string(ev.State.From), string(ev.State.To), ev.State.Reason
		} else {
			data["from"], data["to"], data["reason"] = ev.Data["from"], ev.Data["to"], ev.Data["reason"]
		}
		m := msg(TypeAgentState, data)
		delete(m.Data.(map[string]any), "call_id")
		out := []delivery{{agentID: ev.AgentID, msg: m}}
		from, to := data["from"], data["to"]
		switch {
		case to == string(cti.Reserved) && ev.CallID != "" && r.callAgent[ev.CallID] != ev.AgentID:
			// The ACD chose this agent: pop now, before the phone rings.
			out = append([]delivery{offer()}, out...)
		case (from == string(cti.Reserved) || from == string(cti.Ringing)) && to != string(cti.OnCall) && to != string(cti.Ringing) &&
			ev.CallID != "" && r.callAgent[ev.CallID] == ev.AgentID:
			// The call went to someone else (ring all, or before this phone rang).
			delete(r.callAgent, ev.CallID)
			out = append(out, delivery{agentID: ev.AgentID, msg: msg(TypePopRetract, map[string]any{"reason": "rang_out"})})
		}
		return out
	}
	return nil
}
