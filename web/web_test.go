package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/screenpop"
	"github.com/ctid/ctid/web"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type fixture struct {
	srv      *httptest.Server
	pool     *pgxpool.Pool // set by fixtures whose tests read the database directly
	accounts *account.Store
	events   *cti.EventLog
	now      time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool, _ := dbtest.NewDatabase(t)
	f := &fixture{accounts: account.NewStore(pool, account.DefaultLoginLimits, time.Hour), now: time.Now()}
	f.accounts.SetClock(func() time.Time { return f.now })
	reg := prometheus.NewRegistry()
	svc, err := cti.New(cti.Config{}, pool, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	f.events = svc.Events()
	runCtx, stop := context.WithCancel(context.Background())
	go f.events.Run(runCtx)
	hub := screenpop.NewHub(screenpop.Options{Events: f.events, Accounts: f.accounts, Pool: pool, Registerer: reg,
		Objects: dataobject.New(pool, nil, reg, dataobject.Options{})})
	hubDone := make(chan struct{})
	go func() { hub.Run(runCtx); close(hubDone) }()
	s, err := web.New(web.Options{Accounts: f.accounts, Pool: pool, Registerer: reg, Gatherer: reg, Pops: hub})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(s)
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
		stop()
		<-hubDone
		f.events.Wait()
	})
	ctx := context.Background()
	for _, code := range []string{"acme", "beta"} {
		if _, err := f.accounts.CreateTenant(ctx, account.NewTenant{Code: code, Name: code}, account.CLI); err != nil {
			t.Fatal(err)
		}
		for _, u := range []account.NewUser{
			{TenantCode: code, Username: "admin", Password: "password-admin", Roles: []string{"admin"}},
			{TenantCode: code, Username: "a1", Password: "password-a1", Roles: []string{"agent"}, Extension: "1001"},
		} {
			if _, err := f.accounts.AddUser(ctx, u, account.CLI); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := f.accounts.AddUser(ctx, account.NewUser{Username: "op", Password: "password-op", Roles: []string{"operator"}}, account.CLI); err != nil {
		t.Fatal(err)
	}
	return f
}

// browser is a cookie-keeping client that does not follow redirects, so tests see them.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
	lang string
}

func (f *fixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: f.srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values, header map[string]string) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(out)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf token on page:\n%s", page)
	}
	return m[1]
}

// login signs in through the login form and returns the status and page body of the answer.
func (b *browser) login(tenant, user, password string) (int, string, string) {
	b.t.Helper()
	_, _, page := b.do("GET", "/login", nil, nil)
	code, h, body := b.do("POST", "/login", url.Values{"csrf_token": {csrfOf(b.t, page)}, "tenant": {tenant},
		"username": {user}, "password": {password}}, nil)
	return code, h.Get("Location"), body
}

func (b *browser) mustLogin(tenant, user, password string) string {
	b.t.Helper()
	code, loc, body := b.login(tenant, user, password)
	if code != http.StatusSeeOther || loc != "/home" {
		b.t.Fatalf("login %s/%s: %d %q\n%s", tenant, user, code, loc, body)
	}
	_, _, home := b.do("GET", "/home", nil, nil)
	return home
}

func TestLoginAndLanding(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	if code, h, _ := b.do("GET", "/home", nil, nil); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
		t.Fatalf("anonymous /home: %d %s", code, h.Get("Location"))
	}
	home := b.mustLogin("acme", "a1", "password-a1")
	for _, want := range []string{`id="roles">Agent<`, `id="extension">1001<`, `data-role="agent"`} {
		if !strings.Contains(home, want) {
			t.Errorf("agent landing lacks %s", want)
		}
	}
	if strings.Contains(home, `href="/admin/users"`) {
		t.Error("agent sees the users page in the navigation")
	}
	if code, _, _ := b.do("GET", "/admin/users", nil, nil); code != http.StatusForbidden {
		t.Errorf("agent on /admin/users: %d, want 403", code)
	}

	admin := f.browser(t)
	home = admin.mustLogin("acme", "admin", "password-admin")
	if !strings.Contains(home, `href="/admin/users"`) {
		t.Error("admin lacks the users link")
	}
	op := f.browser(t)
	home = op.mustLogin("", "op", "password-op")
	if !strings.Contains(home, `href="/platform/tenants"`) {
		t.Error("operator lacks the tenants link")
	}
}

func TestLoginFailures(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		tenant, user, password string
		status                 int
		message                string
	}{
		{"acme", "a1", "wrong-password", http.StatusUnauthorized, "wrong username or password"},
		{"nosuch", "a1", "password-a1", http.StatusUnauthorized, `tenant &#34;nosuch&#34; does not exist`},
		{"beta", "nobody", "password-a1", http.StatusUnauthorized, "wrong username or password"},
	}
	for _, tc := range cases {
		b := f.browser(t)
		code, _, body := b.login(tc.tenant, tc.user, tc.password)
		if code != tc.status || !strings.Contains(body, tc.message) {
			t.Errorf("%s/%s: %d, want %d with %q", tc.tenant, tc.user, code, tc.status, tc.message)
		}
		if c, _, _ := b.do("GET", "/home", nil, nil); c != http.StatusSeeOther {
			t.Errorf("failed login gave a session")
		}
	}

	t.Run("lockout", func(t *testing.T) {
		b := f.browser(t)
		for i := 0; i < account.DefaultLoginLimits.MaxFailures; i++ {
			b.login("beta", "a1", "nope-nope")
		}
		code, _, body := b.login("beta", "a1", "password-a1")
		if code != http.StatusTooManyRequests || !strings.Contains(body, "too many failed logins") {
			t.Fatalf("locked user: %d\n%s", code, body)
		}
	})

	t.Run("login without CSRF token", func(t *testing.T) {
		b := f.browser(t)
		b.do("GET", "/login", nil, nil)
		code, _, body := b.do("POST", "/login", url.Values{"tenant": {"acme"}, "username": {"a1"}, "password": {"password-a1"}}, nil)
		if code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Fatalf("%d %s", code, body)
		}
	})
}

func TestCSRFAndCrossSite(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	home := b.mustLogin("acme", "a1", "password-a1")
	csrf := csrfOf(t, home)
	if code, _, body := b.do("POST", "/account/tokens", url.Values{"name": {"x"}}, nil); code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Fatalf("post without token: %d", code)
	}
	if code, _, _ := b.do("POST", "/account/tokens", url.Values{"name": {"x"}, "csrf_token": {"forged"}}, nil); code != http.StatusForbidden {
		t.Fatalf("post with a forged token: %d", code)
	}
	if code, _, _ := b.do("POST", "/account/tokens", url.Values{"name": {"x"}, "csrf_token": {csrf}},
		map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Fatalf("cross-site post: %d", code)
	}
	code, _, body := b.do("POST", "/account/tokens", url.Values{"name": {"crm"}, "csrf_token": {csrf}}, nil)
	if code != http.StatusOK || !strings.Contains(body, `id="new-token">ctid_`) {
		t.Fatalf("post with token: %d", code)
	}
	// Only the last post made a token.
	if !strings.Contains(body, ">crm<") || strings.Contains(body, ">x<") {
		t.Fatalf("refused posts changed something:\n%s", body)
	}
}

func TestExpiredSessionGoesToLogin(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.mustLogin("acme", "a1", "password-a1")
	f.now = f.now.Add(2 * time.Hour) // the fixture's sessions last one hour
	code, h, _ := b.do("GET", "/home", nil, nil)
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "expired=1") {
		t.Fatalf("expired session: %d %s", code, h.Get("Location"))
	}
	_, _, page := b.do("GET", h.Get("Location"), nil, nil)
	if !strings.Contains(page, "session expired") {
		t.Fatal("login page does not say the session expired")
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	home := b.mustLogin("acme", "a1", "password-a1")
	if code, h, _ := b.do("POST", "/logout", url.Values{"csrf_token": {csrfOf(t, home)}}, nil); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := b.do("GET", "/home", nil, nil); code != http.StatusSeeOther {
		t.Fatal("still signed in after logout")
	}
}

func apiCall(t *testing.T, f *fixture, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAPITokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acmeAdmin, err := f.accounts.Login(ctx, "acme", "admin", "password-admin", "t")
	if err != nil {
		t.Fatal(err)
	}
	betaAdmin, _ := f.accounts.Login(ctx, "beta", "admin", "password-admin", "t")
	acmeTok, _, _ := f.accounts.CreateToken(ctx, acmeAdmin.ID, "t", 0)
	betaTok, _, _ := f.accounts.CreateToken(ctx, betaAdmin.ID, "t", 0)

	code, me := apiCall(t, f, "GET", "/api/v1/me", acmeTok, "")
	if code != 200 || me["username"] != "admin" || me["tenant"] != "acme" {
		t.Fatalf("me: %d %v", code, me)
	}
	if code, _ := apiCall(t, f, "GET", "/api/v1/tenants/acme/users", acmeTok, ""); code != 200 {
		t.Fatalf("own tenant users: %d", code)
	}
	code, body := apiCall(t, f, "GET", "/api/v1/tenants/acme/users", betaTok, "")
	if code != http.StatusForbidden {
		t.Fatalf("beta's token on acme: %d %v", code, body)
	}
	if code, _ := apiCall(t, f, "POST", "/api/v1/tenants/acme/users", betaTok,
		`{"username":"intruder","password":"password1","roles":["admin"]}`); code != http.StatusForbidden {
		t.Fatalf("beta's token adding an acme user: %d", code)
	}
	if us, _ := f.accounts.ListUsers(ctx, acmeAdmin.Tenant.ID); len(us) != 2 {
		t.Fatalf("acme has %d users after the refused add", len(us))
	}
	for _, bad := range []string{"", "ctid_forged", "not-a-token"} {
		if code, _ := apiCall(t, f, "GET", "/api/v1/me", bad, ""); code != http.StatusUnauthorized {
			t.Errorf("token %q: %d, want 401", bad, code)
		}
	}
	code, body = apiCall(t, f, "POST", "/api/v1/tenants/acme/users", acmeTok, `{"username":"a2","password":"short","roles":["agent"]}`)
	if code != http.StatusBadRequest || !strings.Contains(body["error"].(map[string]any)["message"].(string), "too short") {
		t.Fatalf("bad user: %d %v", code, body)
	}
	if code, _ := apiCall(t, f, "POST", "/api/v1/tenants/acme/users", acmeTok, `{"username":"a2","bogus":1}`); code != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", code)
	}
	if code, _ := apiCall(t, f, "POST", "/api/v1/tenants", acmeTok, `{"code":"x1","name":"X"}`); code != http.StatusForbidden {
		t.Fatalf("tenant admin creating a tenant: %d", code)
	}
}

func TestOperatorCreatesTenantInPage(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.mustLogin("", "op", "password-op")
	_, _, page := b.do("GET", "/platform/tenants", nil, nil)
	csrf := csrfOf(t, page)
	code, _, body := b.do("POST", "/platform/tenants", url.Values{"csrf_token": {csrf}, "code": {"a;drop"}, "name": {"Bad"}}, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "is not valid") {
		t.Fatalf("bad code: %d", code)
	}
	ts, _ := f.accounts.ListTenants(context.Background())
	if len(ts) != 2 {
		t.Fatalf("a refused tenant was created: %d tenants", len(ts))
	}
	code, h, _ := b.do("POST", "/platform/tenants", url.Values{"csrf_token": {csrf}, "code": {"gamma"}, "name": {"Gamma"}, "region": {"GB"}, "tz": {"Europe/London"}}, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("create: %d", code)
	}
	_, _, page = b.do("GET", h.Get("Location"), nil, nil)
	if !strings.Contains(page, "<td>gamma</td>") || !strings.Contains(page, "Europe/London") {
		t.Fatal("new tenant not listed")
	}
}

func TestLanguage(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.lang = "zh-CN,zh;q=0.9,en;q=0.8"
	_, _, page := b.do("GET", "/login", nil, nil)
	if !strings.Contains(page, "企业代码") || !strings.Contains(page, `lang="zh-CN"`) {
		t.Fatal("Chinese browser did not get a Chinese login page")
	}
	b.lang = "en-US"
	home := b.mustLogin("acme", "a1", "password-a1")
	if !strings.Contains(home, "Welcome") {
		t.Fatal("English landing expected")
	}
	// Switching is remembered for the user, even in another browser.
	code, _, _ := b.do("POST", "/lang", url.Values{"lang": {"zh-CN"}, "csrf_token": {csrfOf(t, home)}, "back": {"/home"}}, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("switch: %d", code)
	}
	other := f.browser(t)
	other.lang = "en"
	if home := other.mustLogin("acme", "a1", "password-a1"); !strings.Contains(home, "欢迎") {
		t.Fatal("language choice not remembered for the user")
	}
	if code, _, _ := b.do("POST", "/lang", url.Values{"lang": {"xx"}, "csrf_token": {csrfOf(t, home)}}, nil); code != http.StatusBadRequest {
		t.Fatalf("unknown language: %d", code)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	if code, _, body := b.do("GET", "/healthz", nil, nil); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, _, body := b.do("GET", "/readyz", nil, nil); code != 200 {
		t.Fatalf("readyz: %d %q", code, body)
	}
	b.do("GET", "/login", nil, nil)
	_, _, m := b.do("GET", "/metrics", nil, nil)
	if !strings.Contains(m, `ctid_http_requests_total{code="200",method="GET",route="GET /login"}`) {
		t.Fatalf("metrics lack the login route:\n%s", m)
	}
	if code, _, _ := b.do("GET", "/no/such/page", nil, nil); code != 404 {
		t.Fatalf("unknown page: %d", code)
	}
	code, body := apiCall(t, f, "GET", "/api/v1/nothing", "", "")
	if code != 404 || body["error"] == nil {
		t.Fatalf("unknown API: %d %v", code, body)
	}
}
