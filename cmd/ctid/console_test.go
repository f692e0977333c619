package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/demo"
	"github.com/ctid/ctid/web/browsertest"
)

// startTestApp boots ctid on a fresh test database with the demo tenant, on port 0.
func startTestApp(t *testing.T, options ...func(*Config)) *App {
	t.Helper()
	_, url := dbtest.NewDatabase(t)
	cfg := defaultConfig()
	cfg.HTTP.Addr, cfg.SIP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Database.URL = url
	cfg.Demo.Enabled = true
	for _, o := range options {
		o(cfg)
	}
	app, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(app.Close)
	return app
}

// TestConsoleShowsPop signs the demo agent in with a real browser, sets Ready from the
// console, and places real SIP calls (a sipgo caller on the demo trunk) that ring the agent's
// simulated phone: the pop shows the customer of a known number, a picker for a number two
// customers share, and a new-customer form for an unknown number; a reload keeps the pop.
func TestConsoleShowsPop(t *testing.T) {
	app := startTestApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent, err := app.Accounts.Login(ctx, "demo", "agent1", demoPassword, "test")
	if err != nil {
		t.Fatal(err)
	}
	sipAddr := app.CTI.Addr("udp")
	phone, err := demo.NewPhone(demo.PhoneOptions{Server: sipAddr, Domain: demo.Domain, Extension: "1001", Password: demo.Password,
		AnswerMin: 1500 * time.Millisecond, AnswerMax: 1500 * time.Millisecond, TalkMin: time.Second, TalkMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	registered := make(chan error, 1)
	go func() { registered <- phone.Run(ctx) }()
	caller, err := demo.NewCaller(demo.CallerOptions{Server: sipAddr, DID: demo.DID})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()

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
	)
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	known, shared := demo.Numbers()
	customers := demo.Customers()
	cases := []struct {
		name, number, rule, sel string
	}{
		{"known customer", known[0], "one", "#customer-name"},
		{"number shared by two customers", shared[0], "picker", "#picker"},
		{"unknown number", "+8613912340000", "new", "#new-customer"},
	}
	for i, tc := range cases {
		// Ready from the console (after the previous call, from wrap-up).
		err = chromedp.Do(b, chromedp.Click(chromedp.CSS("#btn-ready")), chromedp.WaitVisible(chromedp.CSS(`#state[data-state="ready"]`)))
		if err != nil {
			t.Fatalf("%s: Ready: %v", tc.name, err)
		}
		if st, err := app.CTI.Agents().Status(ctx, "demo", agent.ID); err != nil || st.State != cti.Ready {
			t.Fatalf("%s: agent state after clicking Ready: %v %v", tc.name, st.State, err)
		}
		callDone := make(chan error, 1)
		go func() { callDone <- caller.Call(ctx, tc.number) }()
		waitCtx, cancelWait := context.WithTimeout(b, 20*time.Second)
		err = chromedp.Do(waitCtx, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#pop[data-rule="%s"] %s`, tc.rule, tc.sel))))
		cancelWait()
		if err != nil {
			t.Fatalf("%s: the pop did not show %s: %v", tc.name, tc.sel, err)
		}
		if tc.rule == "new" {
			// The agent creates the caller's customer from the pop's form.
			err := chromedp.Do(b, chromedp.SendKeys(chromedp.CSS("#nc-name"), "Zhao Lei"), chromedp.Click(chromedp.CSS("#nc-save")),
				chromedp.WaitVisible(chromedp.CSS("#customer-name")))
			if err != nil {
				t.Fatalf("new customer from the pop: %v", err)
			}
			var n int
			if err := app.Pool.QueryRow(ctx, `SELECT count(*) FROM t_demo.obj_customer WHERE name = 'Zhao Lei' AND phones @> ARRAY['+8613912340000']`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("new customer not saved with the caller's number: %d %v", n, err)
			}
		}
		if i == 0 {
			name, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("#customer-name")))
			if name != customers[0].Name {
				t.Fatalf("pop shows %q, want %q", name, customers[0].Name)
			}
			saveScreenshot(t, b)
			// A page reload mid-call shows the same pop again.
			if err := chromedp.Do(b, chromedp.Navigate(url+"/console"), chromedp.WaitVisible(chromedp.CSS("#customer-name"))); err != nil {
				t.Fatalf("pop lost on reload: %v", err)
			}
		}
		select {
		case err := <-callDone:
			if err != nil {
				t.Fatalf("%s: call: %v", tc.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: call did not end", tc.name)
		}
		if err := chromedp.Do(b, chromedp.WaitVisible(chromedp.CSS(`#state[data-state="wrap_up"]`))); err != nil {
			t.Fatalf("%s: no wrap-up after the call: %v", tc.name, err)
		}
	}
	cancel()
	if err := <-registered; err != nil {
		t.Fatalf("demo phone: %v", err)
	}
}

func saveScreenshot(t *testing.T, b context.Context) {
	shot, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	dir := os.Getenv("ARTIFACTS_DIR") // keep it beyond the test when set
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, "console-pop.png")
	if err := os.WriteFile(p, shot, 0o644); err == nil {
		t.Logf("screenshot of the pop: %s", p)
	}
}
