package cti

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/ctid/ctid/fault"
)

const (
	agentSDP = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n"
	farSDP   = "v=0\r\no=carrier 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 50000 RTP/AVP 8\r\n"
	dialled  = "013800138000"
)

// newDialFixture is the call fixture with the trunk taking outbound calls.
func newDialFixture(t *testing.T) *callFixture {
	t.Helper()
	f := newCallFixture(t, Queue{}, false)
	if err := f.s.SaveTrunk(f.ctx, Trunk{Tenant: "acme", Name: "carrier", Source: netip.MustParsePrefix("127.0.0.1/32"),
		OutboundURI: "sip:" + f.trunk.addr, CallerID: "862155550000"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// answerWith rings, then answers with sdp.
func answerWith(sdp string) func(*sipgo.DialogServerSession, sip.ServerTransaction) {
	return func(d *sipgo.DialogServerSession, tx sip.ServerTransaction) {
		d.Respond(180, "Ringing", nil)
		d.Respond(200, "OK", []byte(sdp), sip.NewHeader("Content-Type", "application/sdp"))
		<-tx.Done()
	}
}

func (f *callFixture) dialCDRCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM t_acme.cdrs WHERE direction = 'outbound'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestClickToDialRingsAgentThenNumber(t *testing.T) {
	f := newDialFixture(t)
	f.a.setAnswer(answerWith(agentSDP))
	f.trunk.setAnswer(answerWith(farSDP))

	st, err := f.s.Originate(f.ctx, "acme", f.aID, "0138-0013 8000")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != DialRingingAgent || st.Number != dialled {
		t.Fatalf("status = %+v", st)
	}
	// The agent's phone rings first, without SDP, showing the number.
	ad := recv(t, f.a.invites, "INVITE at the agent's phone")
	if inv := ad.InviteRequest; len(inv.Body()) != 0 || inv.From().DisplayName != dialled || inv.From().Address.User != dialled {
		t.Fatalf("agent INVITE: From %v, body %q", inv.From(), inv.Body())
	}
	// Then the trunk gets the number, with the agent's SDP and the tenant's caller id.
	td := recv(t, f.trunk.invites, "INVITE at the trunk")
	if inv := td.InviteRequest; string(inv.Body()) != agentSDP || inv.Recipient.User != dialled {
		t.Fatalf("trunk INVITE to %v with body %q", inv.Recipient, inv.Body())
	}
	if pai := td.InviteRequest.GetHeader("P-Asserted-Identity"); pai == nil {
		t.Error("trunk INVITE without the caller id")
	}
	// The agent's phone is ACKed with the trunk's answer.
	ack := recv(t, f.a.acks, "ACK at the agent's phone")
	if string(ack.Body()) != farSDP {
		t.Fatalf("agent ACK body %q, want the trunk's SDP", ack.Body())
	}
	recv(t, f.trunk.acks, "ACK at the trunk")
	f.waitEvent(t, "agent on call", agentTo(f.aID, OnCall))
	if got, err := f.s.Dial(f.ctx, "acme", f.aID, st.CallID); err != nil || got.State != DialConnected {
		t.Fatalf("status while talking = %+v, %v", got, err)
	}
	// Another dial while on the call is refused.
	if _, err := f.s.Originate(f.ctx, "acme", f.aID, "02155556666"); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("second dial: %v", err)
	}

	// The number hangs up: the agent's phone gets a BYE.
	if err := td.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
	recv(t, f.a.byes, "BYE at the agent's phone")
	c := f.cdr(t)
	if c.CallID != st.CallID || c.Direction != Outbound || c.Result != Answered || c.HangupBy != HangupCaller ||
		c.AgentID != f.aID || c.CalleeRaw != dialled || c.CalleeE164 != "+8613800138000" || c.AnsweredAt.IsZero() ||
		len(c.SIPCallIDs) != 2 {
		t.Fatalf("CDR = %+v", c)
	}
	f.waitEvent(t, "agent ready after the call", agentTo(f.aID, Ready))
	if n := f.dialCDRCount(t); n != 1 {
		t.Fatalf("%d outbound CDRs, want 1", n)
	}
	if got, err := f.s.Dial(f.ctx, "acme", f.aID, st.CallID); err != nil || got.State != DialEnded || got.Result != Answered {
		t.Fatalf("status after the call = %+v, %v", got, err)
	}
	if _, err := f.s.Dial(f.ctx, "acme", f.bID, st.CallID); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("another agent reads the dial: %v", err)
	}
}

func TestClickToDialAgentHangsUpEndsNumber(t *testing.T) {
	f := newDialFixture(t)
	f.a.setAnswer(answerWith(agentSDP))
	f.trunk.setAnswer(answerWith(farSDP))
	st, err := f.s.Originate(f.ctx, "acme", f.aID, dialled)
	if err != nil {
		t.Fatal(err)
	}
	ad := recv(t, f.a.invites, "INVITE at the agent's phone")
	recv(t, f.trunk.invites, "INVITE at the trunk")
	recv(t, f.a.acks, "ACK at the agent's phone")
	f.waitEvent(t, "agent on call", agentTo(f.aID, OnCall))
	if err := ad.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
	recv(t, f.trunk.byes, "BYE at the trunk")
	if c := f.cdr(t); c.CallID != st.CallID || c.Result != Answered || c.HangupBy != HangupAgent {
		t.Fatalf("CDR = %+v", c)
	}
}

func TestClickToDialFailures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		agent, far func(*sipgo.DialogServerSession, sip.ServerTransaction)
		trunkRings bool
		result     Result
		reason     string
	}{
		{"agent declines: the number is never called", busy, answerWith(farSDP), false, Rejected, DialAgentDeclined},
		{"number busy: the agent's phone is hung up", answerWith(agentSDP), busy, true, Busy, DialBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDialFixture(t)
			f.a.setAnswer(tc.agent)
			f.trunk.setAnswer(tc.far)
			st, err := f.s.Originate(f.ctx, "acme", f.aID, dialled)
			if err != nil {
				t.Fatal(err)
			}
			recv(t, f.a.invites, "INVITE at the agent's phone")
			if tc.trunkRings {
				recv(t, f.trunk.invites, "INVITE at the trunk")
				recv(t, f.a.acks, "ACK at the agent's phone")
				recv(t, f.a.byes, "BYE at the agent's phone")
			}
			c := f.cdr(t)
			if c.CallID != st.CallID || c.Result != tc.result || c.Direction != Outbound || c.AgentID != f.aID {
				t.Fatalf("CDR = %+v", c)
			}
			got, err := f.s.Dial(f.ctx, "acme", f.aID, st.CallID)
			if err != nil || got.State != DialEnded || got.Reason != tc.reason {
				t.Fatalf("status = %+v, %v", got, err)
			}
			if !tc.trunkRings {
				select {
				case <-f.trunk.invites:
					t.Fatal("the trunk was called although the agent declined")
				default:
				}
			}
			st2, err := f.s.Agents().Status(f.ctx, "acme", f.aID)
			if err != nil || st2.State != Ready {
				t.Fatalf("agent after a failed dial: %+v, %v", st2, err)
			}
			// The agent may dial again.
			f.a.setAnswer(busy)
			again, err := f.s.Originate(f.ctx, "acme", f.aID, dialled)
			if err != nil {
				t.Fatalf("dial again: %v", err)
			}
			if c := f.cdr(t); c.CallID != again.CallID {
				t.Fatalf("second dial's CDR = %+v", c)
			}
		})
	}
}

func TestClickToDialRefusals(t *testing.T) {
	f := newDialFixture(t)
	carol := mustAgent(t, f.pool, "acme", "carol", "1003", "carol-pass")
	_, err := f.s.Originate(f.ctx, "acme", carol.ID, dialled)
	var np *NoPhoneError
	if !errors.As(err, &np) || fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("unregistered agent: %v", err)
	}
	for _, n := range []string{"", "12345678901234567890123", "call me", "1;user=phone", "+"} {
		if _, err := f.s.Originate(f.ctx, "acme", f.aID, n); fault.CodeOf(err) != fault.Invalid {
			t.Errorf("number %q: %v", n, err)
		}
	}
	if _, err := f.s.Originate(f.ctx, "acme", 999999, dialled); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("unknown agent: %v", err)
	}
	select {
	case <-f.a.invites:
		t.Fatal("a refused dial rang a phone")
	default: // Originate refuses before it sends anything
	}
	if n := f.dialCDRCount(t); n != 0 {
		t.Fatalf("refused dials wrote %d CDRs", n)
	}
}

func TestClickToDialCancelWhileAgentPhoneRings(t *testing.T) {
	f := newDialFixture(t)
	f.a.setAnswer(ringForever)
	st, err := f.s.Originate(f.ctx, "acme", f.aID, dialled)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, f.a.invites, "INVITE at the agent's phone")
	f.waitEvent(t, "agent ringing", agentTo(f.aID, Ringing))
	if _, err := f.s.HangUpDial(f.ctx, "acme", f.bID, st.CallID); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("another agent hangs up the dial: %v", err)
	}
	if _, err := f.s.HangUpDial(f.ctx, "acme", f.aID, st.CallID); err != nil {
		t.Fatal(err)
	}
	if c := f.cdr(t); c.CallID != st.CallID || c.Result != Abandoned || c.HangupBy != HangupAgent {
		t.Fatalf("CDR = %+v", c)
	}
	if got, err := f.s.Dial(f.ctx, "acme", f.aID, st.CallID); err != nil || got.Reason != DialCancelled {
		t.Fatalf("status = %+v, %v", got, err)
	}
	// The agent is freed before the CDR is written.
	if st, err := f.s.Agents().Status(f.ctx, "acme", f.aID); err != nil || st.State != Ready {
		t.Fatalf("agent after the cancel: %+v, %v", st, err)
	}
	select {
	case <-f.trunk.invites:
		t.Fatal("the trunk was called for a cancelled dial")
	default:
	}
}
