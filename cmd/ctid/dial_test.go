package main

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/demo"
	"github.com/ctid/ctid/web/browsertest"
	"github.com/ctid/ctid/workorder"
)

// TestConsoleClickToDial: the demo agent clicks the number of a due callback in the console;
// ctid rings the agent's phone (a simulated phone that answers), then calls the number through
// the outbound trunk (the demo caller answers it); the console shows the progress, and the call
// leaves an outbound CDR.
func TestConsoleClickToDial(t *testing.T) {
	app := startTestApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The demo caller answers the calls agents make, as with --demo-traffic.
	customers, err := demo.NewCaller(demo.CallerOptions{Server: app.CTI.Addr("udp"), DID: demo.DID})
	if err != nil {
		t.Fatal(err)
	}
	customers.Serve()
	defer customers.Close()
	if err := app.CTI.SaveTrunk(ctx, cti.Trunk{Tenant: "demo", Name: "demo-caller", Source: netip.MustParsePrefix("127.0.0.1/32"),
		OutboundURI: "sip:" + customers.Addr(), CallerID: demo.DID}); err != nil {
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
	// The agent's phone rings and answers; then the number is called, answers, and the agent
	// hangs up after the talk.
	callID := recvT(t, answered, "the agent's phone to ring and answer")
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
