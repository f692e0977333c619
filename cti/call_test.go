package cti

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
)

const testDID = "+862155550000"

type callFixture struct {
	pool   *pgxpool.Pool
	s      *testService
	sub    *Subscription
	trunk  *party
	a, b   *party
	aID    int64
	bID    int64
	ctx    context.Context
	cancel context.CancelFunc
}

// newCallFixture: tenant acme (acme.test), a trunk on 127.0.0.1, queue "sales" (with q's
// settings) on the DID, agents 1001 (a) and 1002 (b) registered; a becomes Ready first.
func newCallFixture(t *testing.T, q Queue, readyB bool) *callFixture {
	t.Helper()
	pool := sipTenantFixture(t)
	ctx := ctxT(t)
	if err := SaveTrunk(ctx, pool, Trunk{Tenant: "acme", Name: "carrier", Source: netip.MustParsePrefix("127.0.0.1/32")}); err != nil {
		t.Fatal(err)
	}
	q.Name = "sales"
	if err := SaveQueue(ctx, pool, "acme", q); err != nil {
		t.Fatal(err)
	}
	if err := SaveDID(ctx, pool, "acme", DID{Number: testDID, Queue: "sales"}); err != nil {
		t.Fatal(err)
	}
	ua := mustAgent(t, pool, "acme", "alice", "1001", "alice-pass")
	ub := mustAgent(t, pool, "acme", "bob", "1002", "bob-pass1")
	for _, id := range []int64{ua.ID, ub.ID} {
		if err := SetQueueMember(ctx, pool, "acme", "sales", id, 1); err != nil {
			t.Fatal(err)
		}
	}
	s := startService(t, pool, Config{})
	f := &callFixture{pool: pool, s: s, sub: s.Events().Subscribe("acme", 1000), trunk: newParty(t, "trunk"),
		a: newParty(t, "1001"), b: newParty(t, "1002"), aID: ua.ID, bID: ub.ID, ctx: ctx}
	f.a.registerAt(s, "1001", "alice-pass")
	f.b.registerAt(s, "1002", "bob-pass1")
	f.setState(t, f.aID, Change{To: Ready, Who: ByAgent})
	if readyB {
		f.setState(t, f.bID, Change{To: Ready, Who: ByAgent})
	}
	return f
}

func (f *callFixture) setState(t *testing.T, id int64, c Change) {
	t.Helper()
	if _, err := f.s.Agents().Set(f.ctx, "acme", id, c); err != nil {
		t.Fatal(err)
	}
}

// waitEvent returns the first event (after those already read) that matches.
func (f *callFixture) waitEvent(t *testing.T, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-f.sub.C:
			if !ok {
				t.Fatal("event subscription dropped")
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("timed out waiting for event %s", what)
		}
	}
}

func typeIs(typ EventType) func(Event) bool { return func(ev Event) bool { return ev.Type == typ } }

func agentTo(id int64, st AgentState) func(Event) bool {
	return func(ev Event) bool { return ev.Type == AgentStateSet && ev.AgentID == id && ev.State.To == st }
}

// answerCall dials the DID and waits for the answer, recording provisional codes.
func (f *callFixture) answerCall(t *testing.T) (*sipgo.DialogClientSession, []int) {
	t.Helper()
	sess := f.trunk.dial(f.ctx, f.s, testDID)
	var codes []int
	err := sess.WaitAnswer(f.ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		codes = append(codes, res.StatusCode)
		return nil
	}})
	if err != nil {
		t.Fatalf("call not answered: %v (responses %v)", err, codes)
	}
	if err := sess.Ack(f.ctx); err != nil {
		t.Fatal(err)
	}
	return sess, codes
}

func (f *callFixture) cdr(t *testing.T) *CDR {
	t.Helper()
	ended := f.waitEvent(t, "call.ended", typeIs(CallEnded))
	c, err := CDRByCallID(f.ctx, f.pool, "acme", ended.CallID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnsweredCallReInviteAndCallerBye(t *testing.T) {
	f := newCallFixture(t, Queue{WrapUp: time.Second}, true)
	f.a.setAnswer(ringThenAnswer(200 * time.Millisecond))
	sess, codes := f.answerCall(t)
	if !hasCode(codes, 180) {
		t.Errorf("caller saw %v, want 180 relayed", codes)
	}
	// a was Ready longest: longest idle first offers it the call.
	d := recv(t, f.a.invites, "INVITE at agent a")
	if rr := d.InviteRequest.GetHeader("Record-Route"); rr == nil {
		t.Fatal("INVITE to the agent has no Record-Route: in-dialog requests would bypass ctid")
	}
	select {
	case <-f.b.invites:
		t.Fatal("agent b rang although a was idle longer")
	default:
	}
	// A re-INVITE (hold) passes through ctid to the agent.
	reinv := sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address)
	res, err := sess.Do(f.ctx, reinv)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE: %v %v", res, err)
	}
	got := recv(t, f.a.reinvites, "re-INVITE at agent")
	if got.Via() == nil || !strings.Contains(got.String(), "z9hG4bK-ctid-") {
		t.Errorf("re-INVITE did not pass through ctid:\n%s", got)
	}
	if err := sess.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
	recv(t, f.a.byes, "BYE at agent")
	c := f.cdr(t)
	if c.Result != Answered || c.HangupBy != HangupCaller || c.AgentID != f.aID || c.AgentExtension != "1001" ||
		c.Queue != "sales" || c.DID != testDID || c.AnsweredAt.IsZero() || c.RingingAt.IsZero() || c.SIPCause != 200 {
		t.Fatalf("CDR = %+v", c)
	}
	for _, m := range []struct {
		name string
		c    interface{ Write(*dto.Metric) error }
		want float64
	}{
		{"calls answered", f.s.m.calls.WithLabelValues("answered"), 1},
		{"INVITEs in", f.s.m.sipRequests.WithLabelValues("INVITE"), 2}, // the call and the re-INVITE
		{"active calls", f.s.m.activeCalls, 0},
	} {
		var d dto.Metric
		if err := m.c.Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetCounter().GetValue() + d.GetGauge().GetValue(); got != m.want {
			t.Errorf("metric %s = %v, want %v", m.name, got, m.want)
		}
	}
	var h dto.Metric
	if err := f.s.m.setupLatency.Write(&h); err != nil || h.GetHistogram().GetSampleCount() != 1 {
		t.Errorf("setup latency samples = %d, %v", h.GetHistogram().GetSampleCount(), err)
	}
	f.waitEvent(t, "a in wrap-up", agentTo(f.aID, WrapUp))
	f.waitEvent(t, "a ready after wrap-up", agentTo(f.aID, Ready))
	evs, err := f.s.Events().Since(f.ctx, "acme", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var callTypes []string
	for _, ev := range evs {
		if ev.CallID == c.CallID && ev.Type != AgentStateSet {
			callTypes = append(callTypes, string(ev.Type))
		}
	}
	if want := "call.offered call.ringing call.answered call.ended"; strings.Join(callTypes, " ") != want {
		t.Errorf("call events = %v, want %s", callTypes, want)
	}
}

func hasCode(codes []int, code int) bool {
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

func TestRingNoAnswerMovesToNextAgentAndMissedRule(t *testing.T) {
	f := newCallFixture(t, Queue{RingTimeout: time.Second, MissedLimit: 1}, true)
	f.a.setAnswer(ringForever)
	f.answerCall(t)
	recv(t, f.a.invites, "INVITE at a")
	d := recv(t, f.b.invites, "INVITE at b after a's ring timeout")
	missed := f.waitEvent(t, "call.missed", typeIs(CallMissed))
	if missed.AgentID != f.aID || missed.Data["why"] != "timeout" {
		t.Errorf("missed event = %+v", missed)
	}
	st, err := f.s.Agents().Status(f.ctx, "acme", f.aID)
	if err != nil || st.State != NotReady || st.Reason != "missed" {
		t.Errorf("a after the missed-call rule = %+v %v, want not_ready missed", st, err)
	}
	// The agent hangs up this time.
	if err := d.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
	recv(t, f.trunk.byes, "BYE at trunk")
	c := f.cdr(t)
	if c.Result != Answered || c.HangupBy != HangupAgent || c.AgentID != f.bID {
		t.Fatalf("CDR = %+v", c)
	}
}

func TestBusyAgentThenQueuedUntilOneFrees(t *testing.T) {
	f := newCallFixture(t, Queue{}, false)
	f.a.setAnswer(busy)
	sess := f.trunk.dial(f.ctx, f.s, testDID)
	codes := make(chan int, 10)
	answered := make(chan error, 1)
	go func() {
		answered <- sess.WaitAnswer(f.ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
			codes <- res.StatusCode
			return nil
		}})
	}()
	recv(t, f.a.invites, "INVITE at a")
	f.waitEvent(t, "a busy", func(ev Event) bool { return ev.Type == CallMissed && ev.Data["why"] == "busy" })
	f.waitEvent(t, "call queued", typeIs(CallQueued))
	for code := recv(t, codes, "182"); code != 182; code = recv(t, codes, "182") {
	}
	f.a.setAnswer(ringThenAnswer(0))
	f.setState(t, f.bID, Change{To: Ready, Who: ByAgent})
	recv(t, f.b.invites, "INVITE at b once Ready")
	if err := recv(t, answered, "answer"); err != nil {
		t.Fatal(err)
	}
	if err := sess.Ack(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := sess.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
	c := f.cdr(t)
	if c.Result != Answered || c.AgentID != f.bID || c.QueuedAt.IsZero() || c.WaitSeconds() <= 0 {
		t.Fatalf("CDR = %+v", c)
	}
}

func TestCallerCancelBeforeAnswer(t *testing.T) {
	f := newCallFixture(t, Queue{}, false)
	f.a.setAnswer(ringForever)
	ctx, cancel := context.WithCancel(f.ctx)
	sess := f.trunk.dial(ctx, f.s, testDID)
	ringing := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
			if res.StatusCode == 180 {
				ringing <- struct{}{}
			}
			return nil
		}})
	}()
	recv(t, ringing, "180 at caller")
	cancel()
	if err := recv(t, done, "cancel"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	f.waitEvent(t, "a ready again", agentTo(f.aID, Ready))
	c := f.cdr(t)
	if c.Result != Abandoned || c.HangupBy != HangupCaller || !c.AnsweredAt.IsZero() {
		t.Fatalf("CDR = %+v", c)
	}
}
