package cti

import (
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A call up when ctid stops (here: Run ends with the call answered; nothing ends calls on the
// way out, exactly as after a kill) is closed at the next start: one CDR "interrupted" with
// what the events knew (queue, agent, answer time), a call.ended event, the agent freed.
// A second start adds nothing.
func TestCallsInterruptedByAStopAreClosedAtStart(t *testing.T) {
	f := newCallFixture(t, Queue{}, false)
	f.answerCall(t)
	f.waitEvent(t, "agent a on call", agentTo(f.aID, OnCall))
	answered := f.waitEvent(t, "call.answered", typeIs(CallAnswered))
	f.s.stop(t)

	var open int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM t_acme.cdrs`).Scan(&open); err != nil || open != 0 {
		t.Fatalf("CDRs before the restart = %d, %v; want none (the call was up)", open, err)
	}
	for restart := range 2 {
		s := startService(t, f.pool, Config{})
		var n int
		if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM t_acme.cdrs`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("restart %d: %d CDRs, %v; want 1", restart, n, err)
		}
		var ended int
		if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM t_acme.events WHERE type = 'call.ended' AND call_id = $1`,
			answered.CallID).Scan(&ended); err != nil || ended != 1 {
			t.Fatalf("restart %d: %d call.ended events, %v; want 1", restart, ended, err)
		}
		st, err := s.Agents().Status(f.ctx, "acme", f.aID)
		if err != nil || st.State != Ready {
			t.Fatalf("restart %d: agent a = %+v, %v; want ready", restart, st, err)
		}
		s.stop(t)
	}
	c, err := CDRByCallID(f.ctx, f.pool, "acme", answered.CallID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Result != Interrupted || c.HangupBy != HangupSystem || c.Queue != "sales" || c.AgentID != f.aID ||
		c.AgentExtension != "1001" || c.AnsweredAt.IsZero() || c.RingingAt.IsZero() || c.DID != testDID ||
		c.Direction != Inbound || c.CallerRaw == "" || c.EndedAt.Before(c.AnsweredAt) || c.EndedAt.After(time.Now()) {
		t.Fatalf("interrupted CDR = %+v", c)
	}
}

// The CDR of an interrupted call is what its events say, for each kind of call.
func TestInterruptedCDRFromEvents(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name string
		evs  []Event
		want CDR
	}{
		{"queued, rang, missed, never answered", []Event{
			{Type: CallOffered, At: at(0), Data: map[string]string{"caller": "13800138000", "caller_e164": "+8613800138000", "callee": "555", "did": "+86555", "direction": "inbound"}},
			{Type: CallQueued, At: at(1), Queue: "sales"},
			{Type: CallRinging, At: at(3), Queue: "sales", AgentID: 7, Data: map[string]string{"extension": "1007"}},
			{Type: CallMissed, At: at(18), Queue: "sales", AgentID: 7, Data: map[string]string{"extension": "1007"}},
		}, CDR{OfferedAt: at(0), QueuedAt: at(1), RingingAt: at(3), EndedAt: at(18), Queue: "sales", AgentID: 7, AgentExtension: "1007",
			CallerRaw: "13800138000", CallerE164: "+8613800138000", CalleeRaw: "555", DID: "+86555", Direction: Inbound}},
		{"answered by the second agent", []Event{
			{Type: CallOffered, At: at(0), Data: map[string]string{"caller": "1", "direction": "inbound"}},
			{Type: CallRinging, At: at(1), AgentID: 7, Data: map[string]string{"extension": "1007"}},
			{Type: CallMissed, At: at(2), AgentID: 7, Data: map[string]string{"extension": "1007"}},
			{Type: CallRinging, At: at(3), AgentID: 8, Data: map[string]string{"extension": "1008"}},
			{Type: CallAnswered, At: at(5), AgentID: 8, Data: map[string]string{"extension": "1008"}},
		}, CDR{OfferedAt: at(0), RingingAt: at(1), AnsweredAt: at(5), EndedAt: at(5), AgentID: 8, AgentExtension: "1008",
			CallerRaw: "1", Direction: Inbound}},
		{"an agent's outbound call", []Event{
			{Type: CallOffered, At: at(0), AgentID: 9, Data: map[string]string{"caller": "1009", "callee": "13800138000", "callee_e164": "+8613800138000", "direction": "outbound"}},
			{Type: CallAnswered, At: at(4), AgentID: 9, Data: map[string]string{"extension": "1009"}},
		}, CDR{OfferedAt: at(0), AnsweredAt: at(4), EndedAt: at(4), AgentID: 9, AgentExtension: "1009", CallerRaw: "1009",
			CalleeRaw: "13800138000", CalleeE164: "+8613800138000", Direction: Outbound}},
	} {
		got := interruptedCDR("c1", tc.evs)
		want := tc.want
		want.CallID, want.Source, want.Result, want.HangupBy = "c1", "sip", Interrupted, HangupSystem
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, *got, want)
		}
		if err := got.check(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// Two ctid processes on one database: starting the second leaves the first's live call
// alone (call, CDR and agent); once the first is gone (its Run ended without ending the
// call, as after a kill), the second's sweeps close the call as interrupted, after seeing
// the owner dead twice in a row, and free its agent.
func TestSecondProcessClosesOnlyCallsOfDeadProcesses(t *testing.T) {
	f := newCallFixture(t, Queue{}, false)
	f.answerCall(t)
	f.waitEvent(t, "agent a on call", agentTo(f.aID, OnCall))
	answered := f.waitEvent(t, "call.answered", typeIs(CallAnswered))
	offered, err := f.pool.Query(f.ctx, `SELECT data->>'instance' FROM t_acme.events WHERE type = 'call.offered' AND call_id = $1`, answered.CallID)
	if err != nil {
		t.Fatal(err)
	}
	owners, err := pgx.CollectRows(offered, pgx.RowTo[string])
	if err != nil || len(owners) != 1 || owners[0] != f.s.instance {
		t.Fatalf("owner of the call = %v, %v; want instance %s", owners, err, f.s.instance)
	}
	counts := func() (cdrs, ended int, agent string) {
		t.Helper()
		err := f.pool.QueryRow(f.ctx, `SELECT (SELECT count(*) FROM t_acme.cdrs),
				(SELECT count(*) FROM t_acme.events WHERE type = 'call.ended' AND call_id = $1),
				(SELECT state FROM t_acme.agent_states WHERE agent_id = $2)`, answered.CallID, f.aID).Scan(&cdrs, &ended, &agent)
		if err != nil {
			t.Fatal(err)
		}
		return
	}

	s2 := startService(t, f.pool, Config{})
	if s2.instance == f.s.instance {
		t.Fatalf("both processes are instance %s", s2.instance)
	}
	if cdrs, ended, agent := counts(); cdrs != 0 || ended != 0 || agent != string(OnCall) {
		t.Fatalf("after the second start: %d CDRs, %d call.ended, agent %s; want the first's call untouched", cdrs, ended, agent)
	}
	for range 2 { // sweeps while the first lives change nothing either
		if err := s2.sweepOrphanedCalls(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if cdrs, ended, agent := counts(); cdrs != 0 || ended != 0 || agent != string(OnCall) {
		t.Fatalf("after sweeps: %d CDRs, %d call.ended, agent %s; want the live call untouched", cdrs, ended, agent)
	}

	f.s.stop(t) // the first process dies with its call up
	deadline := time.Now().Add(10 * time.Second)
	for {
		dead, err := s2.deadInstances(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := dead[s2.instance]; ok {
			t.Fatalf("the running second process %s counts as dead", s2.instance)
		}
		if _, ok := dead[f.s.instance]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s still holds its lock after its Run ended", f.s.instance)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s2.sweepOrphanedCalls(f.ctx); err != nil {
		t.Fatal(err)
	}
	if cdrs, ended, _ := counts(); cdrs != 0 || ended != 0 {
		t.Fatalf("first sweep after the death: %d CDRs, %d call.ended; want none until a second sweep confirms it", cdrs, ended)
	}
	if err := s2.sweepOrphanedCalls(f.ctx); err != nil {
		t.Fatal(err)
	}
	if cdrs, ended, agent := counts(); cdrs != 1 || ended != 1 || agent != string(Ready) {
		t.Fatalf("second sweep: %d CDRs, %d call.ended, agent %s; want the call closed and the agent ready", cdrs, ended, agent)
	}
	c, err := CDRByCallID(f.ctx, f.pool, "acme", answered.CallID)
	if err != nil || c.Result != Interrupted || c.AgentID != f.aID {
		t.Fatalf("CDR = %+v, %v; want interrupted with agent a", c, err)
	}
	if err := s2.sweepOrphanedCalls(f.ctx); err != nil { // nothing twice
		t.Fatal(err)
	}
	if cdrs, ended, _ := counts(); cdrs != 1 || ended != 1 {
		t.Fatalf("third sweep: %d CDRs, %d call.ended; want one each", cdrs, ended)
	}
	var rows int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM platform.ctid_instances WHERE id = $1::int`, f.s.instance).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the dead instance is still registered (%d rows, %v)", rows, err)
	}
}
