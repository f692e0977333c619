package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/web/browsertest"
)

// startTestApp boots ctid on a fresh test database with the demo tenant, on port 0.
func startTestApp(t *testing.T) *App {
	t.Helper()
	_, url := dbtest.NewDatabase(t)
	cfg := defaultConfig()
	cfg.HTTP.Addr, cfg.SIP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Database.URL = url
	cfg.Demo.Enabled = true
	app, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(app.Close)
	return app
}

// TestConsoleShowsPop signs the demo agent in with a real browser, sets Ready from the
// console, and watches a call's pop arrive with the matched customer. The call's events are
// appended to the event log as the SIP side appends them.
func TestConsoleShowsPop(t *testing.T) {
	app := startTestApp(t)
	ctx := context.Background()
	demo, err := app.Accounts.TenantByCode(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	agent, err := app.Accounts.Login(ctx, "demo", "agent1", demoPassword, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Objects.Create(ctx, demo, "customer", map[string]any{"name": "Li Lei", "phones": []any{"13812345678"}}, account.CLI); err != nil {
		t.Fatal(err)
	}
	url := "http://" + app.HTTPAddr()
	b := browsertest.New(t)
	err = chromedp.Do(b,
		chromedp.Navigate(url+"/login?next=/console"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#tenant"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#username"), "agent1"),
		chromedp.SendKeys(chromedp.CSS("#password"), demoPassword),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-live="1"]`)),
		chromedp.Click(chromedp.CSS("#btn-ready")),
		chromedp.WaitVisible(chromedp.CSS(`#state[data-state="ready"]`)),
	)
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	st, err := app.CTI.Agents().Status(ctx, "demo", agent.ID)
	if err != nil || st.State != cti.Ready {
		t.Fatalf("agent state after clicking Ready: %v %v", st.State, err)
	}

	events := app.CTI.Events()
	for _, ev := range []cti.Event{
		{Tenant: "demo", Type: cti.CallOffered, CallID: "browser-1", Queue: "sales", Data: map[string]string{"caller": "+8613812345678", "did": "4001", "direction": "inbound", "source": "sip"}},
		{Tenant: "demo", Type: cti.CallRinging, CallID: "browser-1", AgentID: agent.ID, Queue: "sales", Data: map[string]string{"extension": "1001"}},
	} {
		if _, err := events.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	waitCtx, cancel := context.WithTimeout(b, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(waitCtx, chromedp.WaitVisible(chromedp.CSS("#customer-name"))); err != nil {
		t.Fatalf("pop did not show: %v", err)
	}
	name, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("#customer-name")))
	if err != nil || name != "Li Lei" {
		t.Fatalf("pop shows %q (%v), want Li Lei", name, err)
	}
	shot, err := chromedp.Run(b, chromedp.FullScreenshot(90))
	if err == nil {
		dir := os.Getenv("ARTIFACTS_DIR") // keep it beyond the test when set
		if dir == "" {
			dir = t.TempDir()
		}
		p := filepath.Join(dir, "console-pop.png")
		if os.WriteFile(p, shot, 0o644) == nil {
			t.Logf("screenshot of the pop: %s", p)
		}
	}
	// A page reload mid-call shows the same pop again (resume from the stored seq).
	err = chromedp.Do(waitCtx, chromedp.Navigate(url+"/console"), chromedp.WaitVisible(chromedp.CSS("#customer-name")))
	if err != nil {
		t.Fatalf("pop lost on reload: %v", err)
	}
}
