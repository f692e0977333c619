package main

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/demo"
	"github.com/ctid/ctid/web/browsertest"
	"github.com/ctid/ctid/workorder"
)

// carrier is the tenant's outbound trunk in a test: a SIP UA on loopback that answers every
// INVITE with SDP and reports the numbers it was asked to call.
type carrier struct {
	addr    string
	invites chan *sip.Request
}

func newCarrier(t *testing.T) *carrier {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-carrier"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	c := &carrier{addr: conn.LocalAddr().String(), invites: make(chan *sip.Request, 4)}
	contact := sip.ContactHeader{Address: sip.Uri{User: "carrier", Host: "127.0.0.1", Port: conn.LocalAddr().(*net.UDPAddr).Port}}
	dsc := sipgo.NewDialogServerCache(client, contact)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		d, err := dsc.ReadInvite(req, tx)
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 400, err.Error(), nil))
			return
		}
		c.invites <- req
		_ = d.Respond(180, "Ringing", nil)
		_ = d.Respond(200, "OK", []byte("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0\r\n"),
			sip.NewHeader("Content-Type", "application/sdp"))
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = dsc.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { _ = dsc.ReadBye(req, tx) })
	go srv.ServeUDP(conn)
	t.Cleanup(func() { ua.Close(); conn.Close() })
	return c
}

// TestConsoleClickToDial: the demo agent clicks the number of a due callback in the console;
// ctid rings the agent's phone (a simulated phone that answers), then calls the number through
// the outbound trunk; the console shows the progress, and the call leaves an outbound CDR.
func TestConsoleClickToDial(t *testing.T) {
	app := startTestApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	car := newCarrier(t)
	if err := app.CTI.SaveTrunk(ctx, cti.Trunk{Tenant: "demo", Name: "carrier", Source: netip.MustParsePrefix("192.0.2.1/32"),
		OutboundURI: "sip:" + car.addr, CallerID: "862155550000"}); err != nil {
		t.Fatal(err)
	}
	agent, err := app.Accounts.Login(ctx, "demo", "agent1", demoPassword, "test")
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := app.Accounts.TenantByCode(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	const number = "+8613800138000"
	if _, err := app.WorkOrders.Save(ctx, tenant, agent, workorder.Input{Values: map[string]any{"subject": "Call back about the bill",
		"callback_at": time.Now().Add(-time.Minute).Format(time.RFC3339), "caller_number": number}}); err != nil {
		t.Fatal(err)
	}
	answered := make(chan string, 1)
	phone, err := demo.NewPhone(demo.PhoneOptions{Server: app.CTI.Addr("udp"), Domain: demo.Domain, Extension: "1001",
		Password: demo.Password, AnswerMin: 300 * time.Millisecond, AnswerMax: 300 * time.Millisecond,
		TalkMin: 3 * time.Second, TalkMax: 3 * time.Second, // long enough for a status poll to see it connected
		OnAnswered: func(callID string) { answered <- callID }})
	if err != nil {
		t.Fatal(err)
	}
	phoneDone := make(chan error, 1)
	go func() { phoneDone <- phone.Run(ctx) }()

	b := browsertest.New(t)
	err = chromedp.Do(b,
		chromedp.Navigate("http://"+app.HTTPAddr()+"/login?next=/console"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#tenant"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#username"), "agent1"),
		chromedp.SendKeys(chromedp.CSS("#password"), demoPassword),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-live="1"]`)),
		chromedp.Click(chromedp.CSS("#btn-ready")),
		chromedp.WaitVisible(chromedp.CSS(`#state[data-state="ready"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#callbacks a.dial[data-number="`+number+`"]`)),
	)
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	// The phone registers in the background: a dial before that would fall back to tel:.
	for deadline := time.Now().Add(10 * time.Second); !app.CTI.PhoneRegistered("demo", "1001"); {
		if time.Now().After(deadline) {
			t.Fatal("the agent's phone did not register")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`#callbacks a.dial[data-number="`+number+`"]`))); err != nil {
		t.Fatalf("click the number: %v", err)
	}
	// The agent's phone rings (and answers), then the carrier gets the number.
	callID := recvT(t, answered, "the agent's phone to ring and answer")
	inv := recvT(t, car.invites, "the INVITE at the trunk")
	if inv.Recipient.User != number || len(inv.Body()) == 0 {
		t.Fatalf("trunk INVITE to %v with body %q", inv.Recipient, inv.Body())
	}
	waitCtx, cancelWait := context.WithTimeout(b, 20*time.Second)
	err = chromedp.Do(waitCtx, chromedp.WaitVisible(chromedp.CSS(`#dial-status[data-state="connected"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#dial-status[data-state="ended"]`)))
	cancelWait()
	if err != nil {
		t.Fatalf("the console did not show the call connect and end: %v", err)
	}
	attr, err := chromedp.Run(b, chromedp.AttributeValue(chromedp.CSS("#dial-status"), "data-call"))
	if err != nil {
		t.Fatal(err)
	}
	dialCall := attr.Value
	cdr, err := cti.CDRByCallID(ctx, app.Pool, "demo", dialCall)
	if err != nil {
		t.Fatal(err)
	}
	if cdr.Direction != cti.Outbound || cdr.Result != cti.Answered || cdr.AgentID != agent.ID || cdr.CalleeRaw != number ||
		cdr.SIPCallIDs[0] != callID {
		t.Fatalf("CDR = %+v (phone's call %s)", cdr, callID)
	}
	cancel()
	if err := <-phoneDone; err != nil {
		t.Fatalf("phone: %v", err)
	}
}

func recvT[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
