package cti

import (
	"context"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/ctid/ctid/fault"
)

func TestCallerPriorityRules(t *testing.T) {
	q := Queue{CallerPriorities: []CallerPriority{{Caller: "+8613800138000", Priority: 5}, {Caller: "+86139*", Priority: 2},
		{Caller: "+861390000*", Priority: 7}, {Caller: "8001", Priority: 3}}}
	for _, tc := range []struct {
		e164, raw string
		want      int
	}{
		{"+8613800138000", "13800138000", 5},
		{"+8613800138001", "13800138001", 0},
		{"+8613912345678", "13912345678", 2},
		{"+8613900001234", "13900001234", 7}, // the higher of two matching prefixes
		{"", "8001", 3},                      // not a phone number: the number as signalled
		{"", "", 0},                          // withheld
	} {
		if got := q.callerPriority(tc.e164, tc.raw); got != tc.want {
			t.Errorf("priority of %q/%q = %d, want %d", tc.e164, tc.raw, got, tc.want)
		}
	}
}

func TestQueueLineOrdersByPriorityThenArrival(t *testing.T) {
	rt := &queueRuntime{}
	mk := func(id string, prio int) *call { return &call{id: id, priority: prio} }
	a, b, c, d, e := mk("a", 0), mk("b", 5), mk("c", 0), mk("d", 5), mk("e", 9)
	for _, tc := range []struct {
		c   *call
		pos int
	}{{a, 1}, {b, 1}, {c, 3}, {d, 2}, {e, 1}} {
		if pos := rt.enqueue(tc.c); pos != tc.pos {
			t.Fatalf("enqueue %s at %d, want %d", tc.c.id, pos, tc.pos)
		}
	}
	// b's offer went unanswered: it comes back ahead of d (same priority), behind e.
	rt.leave(b)
	rt.enqueueFront(b)
	var got string
	for _, x := range rt.waiting {
		got += x.id
	}
	if got != "ebdac" {
		t.Fatalf("line = %s, want ebdac", got)
	}
}

func TestSaveQueueCallerPrioritiesAndDIDPriority(t *testing.T) {
	pool := sipTenantFixture(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		rules []CallerPriority
		want  fault.Code
	}{
		{[]CallerPriority{{Caller: "+8613800138000", Priority: 5}, {Caller: "+86139*", Priority: 2}}, ""},
		{[]CallerPriority{{Caller: "138 0013", Priority: 5}}, fault.Invalid},
		{[]CallerPriority{{Caller: "*", Priority: 5}}, fault.Invalid},
		{[]CallerPriority{{Caller: "+86138", Priority: 0}}, fault.Invalid},
		{[]CallerPriority{{Caller: "+86138", Priority: 10}}, fault.Invalid},
		{[]CallerPriority{{Caller: "+86138", Priority: 1}, {Caller: "+86138", Priority: 2}}, fault.Invalid},
	} {
		err := SaveQueue(ctx, pool, "acme", Queue{Name: "vip", CallerPriorities: tc.rules})
		if (tc.want == "" && err != nil) || (tc.want != "" && fault.CodeOf(err) != tc.want) {
			t.Errorf("rules %v: %v, want %q", tc.rules, err, tc.want)
		}
	}
	q, _, err := loadQueue(ctx, pool, "acme", "vip")
	if err != nil || len(q.CallerPriorities) != 2 || q.CallerPriorities[0] != (CallerPriority{"+8613800138000", 5}) {
		t.Fatalf("loaded rules = %+v, %v (refused saves must change nothing)", q, err)
	}
	if err := SaveDID(ctx, pool, "acme", DID{Number: "+862155550009", Queue: "vip", Priority: 10}); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("DID priority 10: %v, want invalid", err)
	}
	if err := SaveDID(ctx, pool, "acme", DID{Number: "+862155550009", Queue: "vip", Priority: 4}); err != nil {
		t.Fatal(err)
	}
	if d, err := didByNumber(ctx, pool, "acme", "862155550009"); err != nil || d.Priority != 4 || d.Queue != "vip" {
		t.Fatalf("DID = %+v, %v", d, err)
	}
}

// Two callers wait while no agent is free; the priority caller, queued later, is answered first.
func TestPriorityCallerQueuedLaterIsAnsweredFirst(t *testing.T) {
	f := newCallFixture(t, Queue{CallerPriorities: []CallerPriority{{Caller: "+8613800138000", Priority: 5}}}, false)
	f.setState(t, f.aID, Change{To: NotReady, Who: ByAgent, Reason: "break"})
	dial := func(caller string) *sipgo.DialogClientSession {
		from := &sip.FromHeader{Address: sip.Uri{User: caller, Host: "127.0.0.1"}, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(8))
		host, port := f.s.hostPort("udp")
		sess, err := f.trunk.dcc.Invite(f.ctx, sip.Uri{User: testDID, Host: host, Port: port}, []byte("v=0\r\n"),
			sip.NewHeader("Content-Type", "application/sdp"), from)
		if err != nil {
			t.Fatal(err)
		}
		// The callers hang up (CANCEL) when the test ends.
		ctx, cancel := context.WithCancel(f.ctx)
		answered := make(chan error, 1)
		go func() { answered <- sess.WaitAnswer(ctx, sipgo.AnswerOptions{}) }()
		t.Cleanup(func() { cancel(); <-answered })
		return sess
	}
	dial("13900139000") // an ordinary caller first
	first := f.waitEvent(t, "first caller queued", typeIs(CallQueued))
	dial("13800138000") // the priority caller
	second := f.waitEvent(t, "priority caller queued", typeIs(CallQueued))
	if first.Data["priority"] != "" || second.Data["priority"] != "5" || second.Data["position"] != "1" {
		t.Fatalf("queued events: %v then %v; want the priority caller at position 1 with priority 5", first.Data, second.Data)
	}
	f.a.setAnswer(ringForever)
	f.setState(t, f.aID, Change{To: Ready, Who: ByAgent})
	d := recv(t, f.a.invites, "INVITE at a once Ready")
	if got := d.InviteRequest.From().Address.User; got != "13800138000" {
		t.Fatalf("agent a was offered the call of %s first, want the priority caller 13800138000", got)
	}
	if ev := f.waitEvent(t, "ringing", typeIs(CallRinging)); ev.CallID != second.CallID {
		t.Fatalf("ringing call %s, want the priority caller's %s", ev.CallID, second.CallID)
	}
}
