package cti

import (
	"testing"

	"github.com/emiago/sipgo"
)

// A restart of ctid rebuilds what the ACD needs from PostgreSQL: agent states (kept with the
// agent-state log) and registrations. The first call after it rings the agent that was
// Ready, without any phone registering again or agent setting a state again.
func TestRestartKeepsAgentStatesAndRegistrations(t *testing.T) {
	f := newCallFixture(t, Queue{}, true)
	f.setState(t, f.bID, Change{To: NotReady, Who: BySupervisor, Reason: "meeting", Actor: "user:1"})
	f.s.stop(t)

	s := startService(t, f.pool, Config{})
	sub := s.Events().Subscribe("acme", 100)
	defer sub.Close()
	for _, tc := range []struct {
		id     int64
		state  AgentState
		reason string
	}{{f.aID, Ready, ""}, {f.bID, NotReady, "meeting"}} {
		st, err := s.Agents().Status(f.ctx, "acme", tc.id)
		if err != nil || st.State != tc.state || st.Reason != tc.reason {
			t.Fatalf("agent %d after restart = %+v, %v; want %s %q", tc.id, st, err, tc.state, tc.reason)
		}
		log, err := StateLog(f.ctx, f.pool, "acme", tc.id)
		if err != nil || len(log) == 0 || log[len(log)-1].To != st.State || log[len(log)-1].Reason != st.Reason {
			t.Fatalf("agent %d: state %+v is not the last of its log %+v (%v)", tc.id, st, log, err)
		}
	}
	if n := len(s.reg.contacts("acme", "1001")) + len(s.reg.contacts("acme", "1002")); n != 2 {
		t.Fatalf("registrations after restart: %d, want 2", n)
	}
	sess := f.trunk.dial(f.ctx, s, testDID)
	if err := sess.WaitAnswer(f.ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("first call after the restart: %v", err)
	}
	if err := sess.Ack(f.ctx); err != nil {
		t.Fatal(err)
	}
	recv(t, f.a.invites, "INVITE at the Ready agent a")
	select {
	case <-f.b.invites:
		t.Fatal("agent b rang although Not ready before the restart")
	default:
	}
	if err := sess.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
}
