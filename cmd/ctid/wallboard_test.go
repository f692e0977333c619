package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/demo"
	"github.com/ctid/ctid/screenpop"
	"github.com/ctid/ctid/wallboard"
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
	// matches waits until the text of sel matches re (read in one evaluation: the board
	// replaces its rows as frames arrive).
	matches := func(what, sel string, re *regexp.Regexp) {
		t.Helper()
		wctx, cancel := context.WithTimeout(b, 30*time.Second)
		defer cancel()
		for {
			got, err := chromedp.Run(wctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ""`, sel)))
			if err == nil && re.MatchString(got) {
				return
			}
			select {
			case <-wctx.Done():
				t.Fatalf("%s shows %q (%v), want %s", what, got, err, re)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	shows := func(what, sel, want string) {
		t.Helper()
		matches(what, sel, regexp.MustCompile("^"+regexp.QuoteMeta(want)+"$"))
	}
	waiting := func(want string) { t.Helper(); shows("sales waiting", "#queue-sales .waiting", want) }
	// click clicks sel in one evaluation (a query, then a click, could meet a replaced row).
	click := func(sel string) {
		t.Helper()
		ok, err := chromedp.Run(b, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, sel)))
		if err != nil || !ok {
			t.Fatalf("click %s: %v (found %v)", sel, err, ok)
		}
	}
	// The page's sockets are kept so the test can drop them (a lost network), and new ones
	// fail while window.offline is set.
	_, err = chromedp.Run(b, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.sockets = [];
			const Real = window.WebSocket;
			window.WebSocket = function (url) {
				const ws = new Real(window.offline ? "ws://127.0.0.1:1/" : url);
				window.sockets.push(ws);
				return ws;
			};`})
		return chromedp.Void{}, err
	})
	if err != nil {
		t.Fatal(err)
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
	// The connection drops: the board says so and how old its data is, then reconnects to
	// /ws, gets a new snapshot and is live again.
	if _, err := chromedp.Run(b, chromedp.Evaluate[bool](`window.offline = true; window.sockets.forEach((ws) => ws.close()); true`)); err != nil {
		t.Fatal(err)
	}
	wait("reconnecting", `#conn[data-live="0"]`)
	matches("age of the data", "#conn", regexp.MustCompile(`^Reconnecting… · data is 00:\d\d old$`))
	if _, err := chromedp.Run(b, chromedp.Evaluate[bool](`window.offline = false; true`)); err != nil {
		t.Fatal(err)
	}
	wait("live again", `#conn[data-live="1"]`)

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
	shows("the agent's caller", row+" .caller", "+8613900000002")
	// The supervisor opens the agent's pop, read-only.
	click(row + " .caller button")
	wait("the agent's pop", "#pop-view dl")
	if pop, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("#pop-view"))); !strings.Contains(pop, "+8613900000002") || !strings.Contains(pop, "New customer") {
		t.Errorf("the pop view shows %q, want the caller as a new customer", pop)
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
	shows("sales answered", "#queue-sales .answered", "2")
	// The supervisor forces the agent Not ready from the board, with the chosen reason; the
	// state log names the supervisor.
	wait("agent in Wrap-up after the second call", row+` .state[data-state="wrap_up"]`)
	if err := chromedp.Do(b, chromedp.SetValue(chromedp.CSS("#reason"), "meeting")); err != nil {
		t.Fatal(err)
	}
	click(row + ` button[data-act="not_ready"]`)
	wait("agent forced Not ready", row+` .state[data-state="not_ready"]`)
	sup, err := app.Accounts.Login(ctx, demo.Tenant, "supervisor", demoPassword, "test")
	if err != nil {
		t.Fatal(err)
	}
	log, err := cti.StateLog(ctx, app.Pool, demo.Tenant, agent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := log[len(log)-1]; last.To != cti.NotReady || last.Reason != "meeting" || last.Actor != fmt.Sprintf("user:%d", sup.ID) {
		t.Errorf("last transition %+v, want Not ready (meeting) by user:%d", last, sup.ID)
	}
	saveScreenshotAs(t, b, "wallboard-1366x768.png")
	cancel()
	if err := <-registered; err != nil {
		t.Fatalf("demo phone: %v", err)
	}
}

func saveScreenshotAs(t *testing.T, b context.Context, name string) {
	shot, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, shot, 0o644); err == nil {
		t.Logf("screenshot of the wallboard: %s", p)
	}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// TestTVLink: a tenant admin creates a TV link; the wall display opens it without signing in
// and gets queue figures only (no agents) over its WebSocket; once revoked, the link and its
// socket are refused.
func TestTVLink(t *testing.T) {
	app := startTestApp(t)
	base := "http://" + app.HTTPAddr()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	csrf := func(page string) string {
		t.Helper()
		m := csrfField.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no CSRF token on the page:\n%s", page)
		}
		return m[1]
	}
	_, login := get("/login")
	if code, _ := post("/login", url.Values{"csrf_token": {csrf(login)}, "tenant": {demo.Tenant}, "username": {"admin"}, "password": {demoPassword}}); code != http.StatusOK {
		t.Fatalf("admin login: %d", code)
	}
	code, page := get("/admin/tv")
	if code != http.StatusOK {
		t.Fatalf("/admin/tv: %d", code)
	}
	if code, _ := post("/admin/tv", url.Values{"csrf_token": {csrf(page)}, "name": {""}}); code != http.StatusBadRequest {
		t.Errorf("a TV link without a name: %d, want 400", code)
	}
	code, page = post("/admin/tv", url.Values{"csrf_token": {csrf(page)}, "name": {"Lobby screen"}})
	m := regexp.MustCompile(`id="tv-url" href="(/tv/demo/tv_[A-Za-z0-9_-]+)"`).FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("create TV link: %d\n%s", code, page)
	}
	link := m[1]

	tv := &http.Client{} // the wall display: no session
	resp, err := tv.Get(base + link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `class="board tv"`) || strings.Contains(string(body), `id="agents"`) {
		t.Fatalf("TV page: %d, want the board in TV mode without agents", resp.StatusCode)
	}
	// The TV's socket is /ws with the link's token: hello, then the board feed only.
	tvWS := "ws://" + app.HTTPAddr() + "/ws?" + url.Values{"tenant": {demo.Tenant}, "tv": {strings.TrimPrefix(link, "/tv/"+demo.Tenant+"/")}}.Encode()
	ws, _, err := websocket.DefaultDialer.Dial(tvWS, nil)
	if err != nil {
		t.Fatalf("TV socket: %v", err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hello screenpop.Message
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != screenpop.TypeHello {
		t.Fatalf("TV hello: %+v %v", hello, err)
	}
	if err := ws.WriteJSON(screenpop.ClientMessage{Type: screenpop.ClientSubscribe, Feed: wallboard.FeedName}); err != nil {
		t.Fatal(err)
	}
	var fr wallboard.Frame
	if err := ws.ReadJSON(&fr); err != nil {
		t.Fatal(err)
	}
	if fr.Type != wallboard.TypeSnapshot || len(fr.Data.Agents) != 0 || len(fr.Data.Queues) != 1 || fr.Data.Queues[0].Name != demo.Queue {
		t.Errorf("TV snapshot: %s with %d agents and queues %+v, want the sales queue and no agents", fr.Type, len(fr.Data.Agents), fr.Data.Queues)
	}

	// The wall display itself: a 1920×1080 browser without a session, in Chinese.
	b := browsertest.New(t)
	err = chromedp.Do(b,
		chromedp.EmulateViewport(1920, 1080),
		chromedp.Navigate(base+link+"?lang=zh-CN"),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-live="1"]`)),
		chromedp.WaitVisible(chromedp.CSS("#queue-sales .waiting")),
	)
	if err != nil {
		t.Fatalf("TV page in a browser: %v", err)
	}
	if h, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("#queues th"))); h != "队列" {
		t.Errorf("TV page header %q, want Chinese", h)
	}
	saveScreenshotAs(t, b, "wallboard-tv-1920x1080.png")

	_, page = get("/admin/tv")
	id := regexp.MustCompile(`action="/admin/tv/(\d+)/revoke"`).FindStringSubmatch(page)
	if id == nil {
		t.Fatalf("no revoke button:\n%s", page)
	}
	if code, _ := post("/admin/tv/"+id[1]+"/revoke", url.Values{"csrf_token": {csrf(page)}}); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	if resp, err := tv.Get(base + link); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked TV page: %v %v, want 401", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	if _, resp, err := websocket.DefaultDialer.Dial(tvWS, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked TV socket opened (err %v)", err)
	}
}
