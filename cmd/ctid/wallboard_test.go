package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/demo"
	"github.com/ctid/ctid/web/browsertest"
)

// TestWallboardFollowsRealCalls signs the demo supervisor in with a real browser and watches
// the board while real SIP calls (sipgo callers on the demo trunk) ring the demo agent's
// simulated phone: the agent goes Ready → On call → Wrap-up, and a second caller, arriving
// while the agent talks, raises the sales queue's waiting count, which falls again when the
// agent takes that call.
func TestWallboardFollowsRealCalls(t *testing.T) {
	app := startTestApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent, err := app.Accounts.Login(ctx, demo.Tenant, "agent1", demoPassword, "test")
	if err != nil {
		t.Fatal(err)
	}
	sipAddr := app.CTI.Addr("udp")
	phone, err := demo.NewPhone(demo.PhoneOptions{Server: sipAddr, Domain: demo.Domain, Extension: "1001", Password: demo.Password,
		AnswerMin: time.Second, AnswerMax: time.Second, TalkMin: 3 * time.Second, TalkMax: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	registered := make(chan error, 1)
	go func() { registered <- phone.Run(ctx) }()
	var callers [2]*demo.Caller
	for i := range callers {
		if callers[i], err = demo.NewCaller(demo.CallerOptions{Server: sipAddr, DID: demo.DID}); err != nil {
			t.Fatal(err)
		}
		defer callers[i].Close()
	}
	if _, err := app.CTI.Agents().Set(ctx, demo.Tenant, agent.ID, cti.Change{To: cti.Ready, Who: cti.ByAgent}); err != nil {
		t.Fatal(err)
	}

	b := browsertest.New(t)
	wait := func(what, sel string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(b, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("%s (%s): %v", what, sel, err)
		}
	}
	waiting := func(want string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(b, 30*time.Second)
		defer cancel()
		for {
			got, err := chromedp.Run(wctx, chromedp.Text(chromedp.CSS("#queue-sales .waiting")))
			if err != nil {
				t.Fatalf("sales waiting never showed %s: %v", want, err)
			}
			if got == want {
				return
			}
			select {
			case <-wctx.Done():
				t.Fatalf("sales waiting shows %s, want %s", got, want)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	url := "http://" + app.HTTPAddr()
	err = chromedp.Do(b,
		chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(url+"/login?next=/wallboard"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#tenant"), demo.Tenant),
		chromedp.SendKeys(chromedp.CSS("#username"), "supervisor"),
		chromedp.SendKeys(chromedp.CSS("#password"), demoPassword),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-live="1"]`)),
	)
	if err != nil {
		t.Fatalf("wallboard: %v", err)
	}
	row := fmt.Sprintf("#agent-%d", agent.ID)
	wait("agent Ready", row+` .state[data-state="ready"]`)
	waiting("0")

	calls := make(chan error, 2)
	go func() { calls <- callers[0].Call(ctx, "+8613900000001") }()
	wait("agent On call", row+` .state[data-state="on_call"]`)
	go func() { calls <- callers[1].Call(ctx, "+8613900000002") }()
	waiting("1") // the second caller queues while the agent talks
	wait("agent in Wrap-up after the first call", row+` .state[data-state="wrap_up"]`)
	// The agent ends wrap-up: the queued caller is offered and answered, the queue empties.
	if _, err := app.CTI.Agents().Set(ctx, demo.Tenant, agent.ID, cti.Change{To: cti.Ready, Who: cti.ByAgent}); err != nil {
		t.Fatal(err)
	}
	wait("agent On call with the second caller", row+` .state[data-state="on_call"]`)
	waiting("0")
	caller, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS(row+" .caller")))
	if caller != "+8613900000002" {
		t.Errorf("the board shows the agent talking to %q, want +8613900000002", caller)
	}
	for range 2 {
		select {
		case err := <-calls:
			if err != nil {
				t.Fatalf("call: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a call did not end")
		}
	}
	// Today's figures count both calls once they are over.
	wctx, cancelWait := context.WithTimeout(b, 20*time.Second)
	defer cancelWait()
	for {
		got, _ := chromedp.Run(wctx, chromedp.Text(chromedp.CSS("#queue-sales .answered")))
		if got == "2" {
			break
		}
		select {
		case <-wctx.Done():
			t.Fatalf("sales answered shows %q, want 2", got)
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if err := <-registered; err != nil {
		t.Fatalf("demo phone: %v", err)
	}
}
