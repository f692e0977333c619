package wallboard

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ctid/ctid/cti"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func state(seq int64, s int, agent int64, from, to cti.AgentState, reason, call string) cti.Event {
	return cti.Event{Seq: seq, At: at(s), Type: cti.AgentStateSet, AgentID: agent, CallID: call,
		State: &cti.StateChange{From: from, To: to, Reason: reason}}
}

func call(seq int64, s int, typ cti.EventType, id, queue string, agent int64) cti.Event {
	ev := cti.Event{Seq: seq, At: at(s), Type: typ, CallID: id, Queue: queue, AgentID: agent}
	if typ == cti.CallOffered {
		ev.Data = map[string]string{"caller": "+8613900000" + id}
	}
	return ev
}

// ended carries the CDR of a call offered at second off, answered after wait seconds (or
// abandoned when talk < 0), ended at second end.
func ended(seq int64, id, queue string, agent int64, off, wait, talk int) cti.Event {
	c := &cti.CDR{CallID: id, OfferedAt: at(off), Direction: cti.Inbound, Queue: queue, AgentID: agent, QueuedAt: at(off)}
	if talk >= 0 {
		c.Result, c.AnsweredAt, c.RingingAt, c.EndedAt = cti.Answered, at(off+wait), at(off+wait-1), at(off+wait+talk)
	} else {
		c.Result, c.EndedAt = cti.Abandoned, at(off+wait)
	}
	return cti.Event{Seq: seq, At: c.EndedAt, Type: cti.CallEnded, CallID: id, Queue: queue, AgentID: agent, CDR: c}
}

func f(v float64) *float64 { return &v }

func TestBoardFromEvents(t *testing.T) {
	queues := []QueueConfig{{Name: "sales", ServiceLevel: 20 * time.Second, Members: []int64{1, 2}},
		{Name: "support", ServiceLevel: 10 * time.Second, Members: []int64{2, 3}}}
	tests := []struct {
		name   string
		events []cti.Event
		agents []AgentView
		queues []QueueView
	}{
		{
			name:   "nothing happened",
			agents: []AgentView{},
			queues: []QueueView{{Name: "sales", SLSeconds: 20}, {Name: "support", SLSeconds: 10}},
		},
		{
			name: "agents log in: ready and not ready count per queue",
			events: []cti.Event{
				state(1, 0, 1, cti.LoggedOut, cti.Ready, "", ""),
				state(2, 1, 2, cti.LoggedOut, cti.NotReady, "break", ""),
			},
			agents: []AgentView{{ID: 1, State: "ready", Since: at(0)}, {ID: 2, State: "not_ready", Reason: "break", Since: at(1)}},
			queues: []QueueView{{Name: "sales", SLSeconds: 20, Ready: 1, NotReady: 1}, {Name: "support", SLSeconds: 10, NotReady: 1}},
		},
		{
			name: "two callers wait; the longest wait is the first's",
			events: []cti.Event{
				call(1, 10, cti.CallOffered, "a", "sales", 0), call(2, 10, cti.CallQueued, "a", "sales", 0),
				call(3, 15, cti.CallOffered, "b", "sales", 0), call(4, 15, cti.CallQueued, "b", "sales", 0),
			},
			agents: []AgentView{},
			queues: []QueueView{{Name: "sales", SLSeconds: 20, Waiting: 2, OldestSince: at(10)}, {Name: "support", SLSeconds: 10}},
		},
		{
			name: "a queued call is answered: waiting falls, the agent is on call with the caller",
			events: []cti.Event{
				state(1, 0, 1, cti.LoggedOut, cti.Ready, "", ""),
				call(2, 10, cti.CallOffered, "a", "sales", 0), call(3, 10, cti.CallQueued, "a", "sales", 0),
				state(4, 12, 1, cti.Ready, cti.Reserved, "", "a"),
				call(5, 12, cti.CallRinging, "a", "sales", 1), state(6, 12, 1, cti.Reserved, cti.Ringing, "", "a"),
				call(7, 14, cti.CallAnswered, "a", "sales", 1), state(8, 14, 1, cti.Ringing, cti.OnCall, "", "a"),
			},
			agents: []AgentView{{ID: 1, State: "on_call", Since: at(14), CallID: "a", Caller: "+8613900000a", TalkSince: at(14)}},
			queues: []QueueView{{Name: "sales", SLSeconds: 20, OnCall: 1}, {Name: "support", SLSeconds: 10}},
		},
		{
			name: "today's figures: answered in and out of the service level, abandoned",
			events: []cti.Event{
				ended(1, "a", "sales", 1, 0, 5, 60),     // within 20 s
				ended(2, "b", "sales", 1, 10, 25, 30),   // after 20 s
				ended(3, "c", "sales", 0, 20, 8, -1),    // abandoned
				ended(4, "d", "support", 2, 30, 12, 10), // support's threshold is 10 s: outside
			},
			agents: []AgentView{{ID: 1, State: "logged_out", Handled: 2, TalkAvg: f(45), HandleAvg: f(45)}, {ID: 2, State: "logged_out", Handled: 1, TalkAvg: f(10), HandleAvg: f(10)}},
			queues: []QueueView{
				{Name: "sales", SLSeconds: 20, Offered: 3, Answered: 2, Abandoned: 1, AnsweredInSL: 1,
					ServiceLevel: f(1.0 / 3), WaitAvg: f(38.0 / 3), HandleAvg: f(45)},
				{Name: "support", SLSeconds: 10, Offered: 1, Answered: 1, ServiceLevel: f(0), WaitAvg: f(12), HandleAvg: f(10)},
			},
		},
		{
			name: "outbound calls are not offered to a queue",
			events: []cti.Event{{Seq: 1, At: at(5), Type: cti.CallEnded, CallID: "o", AgentID: 1, Queue: "sales",
				CDR: &cti.CDR{CallID: "o", OfferedAt: at(0), Direction: cti.Outbound, Queue: "sales", AgentID: 1, Result: cti.Answered, AnsweredAt: at(2), EndedAt: at(5)}}},
			agents: []AgentView{{ID: 1, State: "logged_out", TalkAvg: f(3), HandleAvg: f(3)}},
			queues: []QueueView{{Name: "sales", SLSeconds: 20}, {Name: "support", SLSeconds: 10}},
		},
		{
			name: "a call offered yesterday is not today's",
			events: []cti.Event{
				ended(1, "a", "sales", 1, 0, 5, 60),
				ended(2, "y", "sales", 1, -86400, 5, 60),
			},
			agents: []AgentView{{ID: 1, State: "logged_out", Handled: 1, TalkAvg: f(60), HandleAvg: f(60)}},
			queues: []QueueView{{Name: "sales", SLSeconds: 20, Offered: 1, Answered: 1, AnsweredInSL: 1, ServiceLevel: f(1), WaitAvg: f(5), HandleAvg: f(60)}, {Name: "support", SLSeconds: 10}},
		},
		{
			name: "handle time = (talk + wrap-up) ÷ answered; a wrap-up counts once the agent leaves it",
			events: []cti.Event{
				state(1, 5, 1, cti.Ringing, cti.OnCall, "", "a"),
				ended(2, "a", "sales", 1, 0, 5, 60),
				state(3, 65, 1, cti.OnCall, cti.WrapUp, "", "a"),
				state(4, 80, 1, cti.WrapUp, cti.Ready, "wrap_up_over", ""), // 15 s of wrap-up
				state(5, 90, 2, cti.Ringing, cti.OnCall, "", "b"),
				ended(6, "b", "sales", 2, 85, 5, 30),
				state(7, 120, 2, cti.OnCall, cti.WrapUp, "", "b"), // still in wrap-up: its time not counted yet
			},
			agents: []AgentView{{ID: 1, State: "ready", Reason: "wrap_up_over", Since: at(80), Handled: 1, TalkAvg: f(60), HandleAvg: f(75)},
				{ID: 2, State: "wrap_up", Since: at(120), CallID: "b", Handled: 1, TalkAvg: f(30), HandleAvg: f(30)}},
			queues: []QueueView{{Name: "sales", SLSeconds: 20, Ready: 1, OnCall: 1, Offered: 2, Answered: 2, AnsweredInSL: 2, ServiceLevel: f(1), WaitAvg: f(5), HandleAvg: f(52.5)},
				{Name: "support", SLSeconds: 10, OnCall: 1}},
		},
		{
			name: "a call without wrap-up: handle time = talk; leaving wrap-up for Not ready ends it too",
			events: []cti.Event{
				state(1, 5, 1, cti.Ringing, cti.OnCall, "", "a"),
				ended(2, "a", "sales", 1, 0, 5, 60),
				state(3, 65, 1, cti.OnCall, cti.Ready, "", "a"),
				state(4, 70, 1, cti.Ringing, cti.OnCall, "", "c"),
				ended(5, "c", "sales", 1, 65, 5, 20),
				state(6, 90, 1, cti.OnCall, cti.WrapUp, "", "c"),
				state(7, 94, 1, cti.WrapUp, cti.NotReady, "break", ""), // 4 s of wrap-up
			},
			agents: []AgentView{{ID: 1, State: "not_ready", Reason: "break", Since: at(94), Handled: 2, TalkAvg: f(40), HandleAvg: f(42)}},
			queues: []QueueView{{Name: "sales", SLSeconds: 20, NotReady: 1, Offered: 2, Answered: 2, AnsweredInSL: 2, ServiceLevel: f(1), WaitAvg: f(5), HandleAvg: f(42)},
				{Name: "support", SLSeconds: 10}},
		},
		{
			name: "abandoned and overflowed callers stop waiting; a repeated event changes nothing",
			events: []cti.Event{
				call(1, 10, cti.CallOffered, "a", "sales", 0), call(2, 10, cti.CallQueued, "a", "sales", 0),
				call(3, 11, cti.CallOffered, "b", "sales", 0), call(4, 11, cti.CallQueued, "b", "sales", 0),
				call(5, 30, cti.CallAbandoned, "a", "sales", 0),
				call(6, 40, cti.CallOverflowed, "b", "sales", 0), call(7, 40, cti.CallQueued, "b", "support", 0),
				call(4, 11, cti.CallQueued, "b", "sales", 0),
			},
			agents: []AgentView{},
			queues: []QueueView{{Name: "sales", SLSeconds: 20}, {Name: "support", SLSeconds: 10, Waiting: 1, OldestSince: at(40)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBoard(time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			b.SetQueues(queues)
			b.Tick(t0)
			for _, ev := range tt.events {
				b.Apply(ev)
			}
			got := b.Snapshot(nil)
			assertJSON(t, "agents", got.Agents, tt.agents)
			assertJSON(t, "queues", got.Queues, tt.queues)
		})
	}
}

func assertJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}
