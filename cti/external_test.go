package cti

import (
	"testing"
	"time"

	"github.com/ctid/ctid/fault"
)

func TestExternalPBXCallEvents(t *testing.T) {
	pool := sipTenantFixture(t)
	alice := mustAgent(t, pool, "acme", "alice", "1001", "alice-pass")
	s := startService(t, pool, Config{})
	ctx := ctxT(t)
	sub := s.Events().Subscribe("acme", 100)
	if _, err := s.Agents().Set(ctx, "acme", alice.ID, Change{To: Ready, Who: ByAgent}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	steps := []struct {
		e       ExternalEvent
		dup     bool
		errCode fault.Code
	}{
		{e: ExternalEvent{Event: "answer", CallID: "1700000000.42", Agent: "1001"}, errCode: fault.NotFound}, // no newCall yet
		{e: ExternalEvent{Event: "newCall", CallID: "1700000000.42", From: "13800138000", To: "02155550000", Queue: "sales", At: at}},
		{e: ExternalEvent{Event: "newCall", CallID: "1700000000.42", From: "13800138000", To: "02155550000"}, dup: true},
		{e: ExternalEvent{Event: "answer", CallID: "1700000000.42", Agent: "alice", At: at.Add(10 * time.Second)}},
		{e: ExternalEvent{Event: "answer", CallID: "1700000000.42", Agent: "alice"}, dup: true},
		{e: ExternalEvent{Event: "hangup", CallID: "1700000000.42", Cause: "agent", RecordingURL: "javascript:alert(1)"}, errCode: fault.Invalid},
		{e: ExternalEvent{Event: "answer", CallID: "1700000000.42", Agent: "alice", RecordingURL: "https://pbx.example/r/42.wav"}, errCode: fault.Invalid},
		{e: ExternalEvent{Event: "hangup", CallID: "1700000000.42", Cause: "agent", At: at.Add(40 * time.Second), RecordingURL: "https://pbx.example/r/42.wav"}},
		{e: ExternalEvent{Event: "hangup", CallID: "1700000000.42", Cause: "agent"}, dup: true},
		{e: ExternalEvent{Event: "ring", CallID: "x"}, errCode: fault.Invalid},
		{e: ExternalEvent{Event: "newCall", CallID: "c2", Agent: "mallory"}, errCode: fault.Invalid}, // unknown agent
	}
	for i, st := range steps {
		res, err := s.ReportCallEvent(ctx, "acme", st.e)
		if st.errCode != "" {
			if fault.CodeOf(err) != st.errCode {
				t.Fatalf("step %d %s: %v, want %s", i, st.e.Event, err, st.errCode)
			}
			continue
		}
		if err != nil || res.Duplicate != st.dup {
			t.Fatalf("step %d %s: %+v %v, want duplicate=%v", i, st.e.Event, res, err, st.dup)
		}
	}
	var types []EventType
	for len(types) < 3 {
		ev := recv(t, sub.C, "events")
		if ev.CallID == "1700000000.42" && ev.Type != AgentStateSet {
			types = append(types, ev.Type)
		}
	}
	if types[0] != CallOffered || types[1] != CallAnswered || types[2] != CallEnded {
		t.Fatalf("events = %v", types)
	}
	c, err := CDRByCallID(ctx, pool, "acme", "1700000000.42")
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "api" || c.Result != Answered || c.HangupBy != HangupAgent || c.AgentID != alice.ID ||
		c.CallerE164 != "+8613800138000" || c.WaitSeconds() != 10 || c.TalkSeconds() != 30 || c.Queue != "sales" ||
		c.RecordingURL != "https://pbx.example/r/42.wav" {
		t.Fatalf("CDR = %+v (wait %v talk %v)", c, c.WaitSeconds(), c.TalkSeconds())
	}
	if st, _ := s.Agents().Status(ctx, "acme", alice.ID); st.State != Ready {
		t.Errorf("agent after the reported call = %s, want ready", st.State)
	}
}
