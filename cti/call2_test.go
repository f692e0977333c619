package cti

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func TestMaxWaitOverflowsThenTimesOut(t *testing.T) {
	f := newCallFixture(t, Queue{MaxWait: time.Second, Overflow: "queue:support"}, false)
	f.setState(t, f.aID, Change{To: NotReady, Who: ByAgent, Reason: "break"})
	if err := f.s.SaveQueue(f.ctx, "acme", Queue{Name: "support"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetQueueMember(f.ctx, "acme", "support", f.bID, 1); err != nil {
		t.Fatal(err)
	}
	sess := f.trunk.dial(f.ctx, f.s, testDID)
	answered := make(chan error, 1)
	go func() { answered <- sess.WaitAnswer(f.ctx, sipgo.AnswerOptions{}) }()
	ov := f.waitEvent(t, "call.overflowed", typeIs(CallOverflowed))
	if ov.Data["target"] != "queue:support" || ov.Queue != "sales" {
		t.Fatalf("overflow event = %+v", ov)
	}
	f.setState(t, f.bID, Change{To: Ready, Who: ByAgent})
	recv(t, f.b.invites, "INVITE at b in the overflow queue")
	if err := recv(t, answered, "answer"); err != nil {
		t.Fatal(err)
	}
	sess.Ack(f.ctx)
	if err := sess.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.cdr(t); c.Queue != "support" || c.AgentID != f.bID || c.Result != Answered {
		t.Fatalf("CDR after overflow = %+v", c)
	}

	// Without an overflow target the caller gets 480 after max wait.
	if err := f.s.SaveQueue(f.ctx, "acme", Queue{Name: "sales", MaxWait: time.Second}); err != nil {
		t.Fatal(err)
	}
	f.setState(t, f.bID, Change{To: NotReady, Who: ByAgent, Reason: "lunch"})
	sess = f.trunk.dial(f.ctx, f.s, testDID)
	err := sess.WaitAnswer(f.ctx, sipgo.AnswerOptions{})
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 480 {
		t.Fatalf("call past max wait: %v, want 480", err)
	}
	if c := f.cdr(t); c.Result != Timeout || c.SIPCause != 480 || c.QueuedAt.IsZero() {
		t.Fatalf("CDR of timed-out call = %+v", c)
	}
}

func TestUnknownSourceAndNumber(t *testing.T) {
	pool := sipTenantFixture(t)
	s := startService(t, pool, Config{})
	trunk := newParty(t, "trunk")
	ctx := ctxT(t)
	want := func(number string, code int) {
		t.Helper()
		err := trunk.dial(ctx, s, number).WaitAnswer(ctx, sipgo.AnswerOptions{})
		var de *sipgo.ErrDialogResponse
		if !errors.As(err, &de) || de.Res.StatusCode != code {
			t.Fatalf("call to %s: %v, want %d", number, err, code)
		}
	}
	want(testDID, 403) // no trunk has this source
	if err := s.SaveTrunk(ctx, Trunk{Tenant: "acme", Name: "carrier", Source: netip.MustParsePrefix("127.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	want("+8699999999", 404)
}

// rawPhone is an agent phone on a bare socket, for the 200 that crosses a CANCEL.
type rawPhone struct {
	t    *testing.T
	conn *net.UDPConn
	p    *sip.Parser
}

func (r *rawPhone) read(what string) (*sip.Request, *net.UDPAddr) {
	r.t.Helper()
	buf := make([]byte, 65535)
	deadline := time.Now().Add(15 * time.Second)
	for {
		r.conn.SetReadDeadline(deadline)
		n, from, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			r.t.Fatalf("waiting for %s: %v", what, err)
		}
		msg, err := r.p.ParseSIP(buf[:n])
		if err != nil {
			continue
		}
		if req, ok := msg.(*sip.Request); ok && (what == "" || string(req.Method) == what) {
			return req, from
		}
	}
}

func (r *rawPhone) reply(req *sip.Request, to *net.UDPAddr, code int, reason, tag string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if tag != "" {
		res.To().Params.Add("tag", tag)
		res.AppendHeader(sip.NewHeader("Contact", "<sip:1001@"+r.conn.LocalAddr().String()+">"))
	}
	if _, err := r.conn.WriteToUDP([]byte(res.String()), to); err != nil {
		r.t.Fatal(err)
	}
}

func TestCancelCrossesAgentAnswer(t *testing.T) {
	f := newCallFixture(t, Queue{}, false)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	phone := &rawPhone{t: t, conn: conn, p: sip.NewParser()}
	// Agent a's phone is now the raw socket (its newer contact is offered).
	req := registerReq(t, f.s, "1001", "", "<sip:1001@"+conn.LocalAddr().String()+">")
	if res := register(t, f.a.client, req, "1001", "alice-pass"); res.StatusCode != 200 {
		t.Fatalf("register raw phone: %d", res.StatusCode)
	}
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
	inv, ctid := phone.read("INVITE")
	phone.reply(inv, ctid, 180, "Ringing", "raw1")
	recv(t, ringing, "180 at caller")
	cancel() // the caller hangs up...
	cancelReq, _ := phone.read("CANCEL")
	// ...while the phone's 200 is already on its way: it arrives after ctid sent CANCEL.
	phone.reply(inv, ctid, 200, "OK", "raw1")
	phone.reply(cancelReq, ctid, 200, "OK", "")
	ack, _ := phone.read("ACK")
	if tag, _ := ack.To().Params.Get("tag"); tag != "raw1" {
		t.Errorf("ACK to-tag %q, want the phone's", tag)
	}
	bye, _ := phone.read("BYE")
	phone.reply(bye, ctid, 200, "OK", "")
	if !strings.Contains(bye.CallID().Value(), inv.CallID().Value()) {
		t.Errorf("BYE for another call: %s", bye.CallID().Value())
	}
	if err := recv(t, done, "cancel at caller"); !errors.Is(err, context.Canceled) {
		t.Fatalf("caller: %v", err)
	}
	f.waitEvent(t, "a ready again", agentTo(f.aID, Ready))
	if c := f.cdr(t); c.Result != Abandoned || !c.AnsweredAt.IsZero() {
		t.Fatalf("CDR = %+v", c)
	}
}

func TestOutboundCallThroughTrunk(t *testing.T) {
	f := newCallFixture(t, Queue{}, false)
	// The trunk party takes outbound calls.
	if err := f.s.SaveTrunk(f.ctx, Trunk{Tenant: "acme", Name: "carrier", Source: netip.MustParsePrefix("127.0.0.1/32"),
		OutboundURI: "sip:" + f.trunk.addr, CallerID: "862155550000"}); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "013800138000", Host: testDomain})
	req.SetDestination(f.s.Addr("udp"))
	from := &sip.FromHeader{Address: sip.Uri{User: "1001", Host: testDomain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: "013800138000", Host: testDomain}, Params: sip.NewParams()})
	req.SetBody([]byte("v=0\r\n"))
	sess, err := f.a.dcc.WriteInvite(f.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(f.ctx, sipgo.AnswerOptions{Username: "1001", Password: "alice-pass"}); err != nil {
		t.Fatalf("outbound call: %v", err)
	}
	d := recv(t, f.trunk.invites, "INVITE at the trunk")
	if pai := d.InviteRequest.GetHeader("P-Asserted-Identity"); pai == nil || !strings.Contains(pai.Value(), "862155550000") {
		t.Errorf("trunk INVITE without the caller id: %v", pai)
	}
	if d.InviteRequest.GetHeader("Proxy-Authorization") != nil {
		t.Error("the agent's credentials were passed on to the trunk")
	}
	if err := sess.Ack(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.waitEvent(t, "a on call", agentTo(f.aID, OnCall))
	if err := sess.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
	recv(t, f.trunk.byes, "BYE at trunk")
	c := f.cdr(t)
	if c.Direction != Outbound || c.Result != Answered || c.HangupBy != HangupAgent || c.AgentID != f.aID ||
		c.CalleeE164 != "+8613800138000" || c.CallerRaw != "1001" {
		t.Fatalf("CDR = %+v", c)
	}
	f.waitEvent(t, "a ready after the call", agentTo(f.aID, Ready))
}

func TestRingAllFirstAnswerWinsOthersCancelled(t *testing.T) {
	f := newCallFixture(t, Queue{Strategy: RingAll}, true)
	f.b.setAnswer(ringForever)
	f.a.setAnswer(ringThenAnswer(300 * time.Millisecond))
	sess, _ := f.answerCall(t)
	recv(t, f.a.invites, "INVITE at a")
	recv(t, f.b.invites, "INVITE at b at the same time")
	f.waitEvent(t, "b freed after the CANCEL", agentTo(f.bID, Ready))
	if err := sess.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.cdr(t); c.AgentID != f.aID || c.Result != Answered {
		t.Fatalf("CDR = %+v", c)
	}
}

func TestRoundRobinTakesTurns(t *testing.T) {
	f := newCallFixture(t, Queue{Strategy: RoundRobin}, true)
	var got []int64
	for i := 0; i < 3; i++ {
		sess, _ := f.answerCall(t)
		select {
		case <-f.a.invites:
			got = append(got, f.aID)
		case <-f.b.invites:
			got = append(got, f.bID)
		case <-time.After(10 * time.Second):
			t.Fatal("no agent rang")
		}
		if err := sess.Bye(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.cdr(t)
		f.waitEvent(t, "agent ready again", func(ev Event) bool { return ev.Type == AgentStateSet && ev.State.To == Ready })
	}
	if got[0] == got[1] || got[1] == got[2] {
		t.Fatalf("round robin offered %v: want turns", got)
	}
}
