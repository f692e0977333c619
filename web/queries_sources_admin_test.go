package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/query"
	"github.com/ctid/ctid/web/browsertest"
)

// stepTimeout bounds one step of a browser test, so a step that cannot succeed fails by name.
const stepTimeout = 20 * time.Second

// shopDatabase makes a second database on the test cluster to act as an external source:
// orders of agents a1 and s1. It returns its URL without a password, and the URL's parts.
func shopDatabase(t *testing.T, bf *batchFixture) string {
	t.Helper()
	ctx := context.Background()
	shop, shopURL := dbtest.NewDatabase(t)
	if _, err := shop.Exec(ctx, `CREATE TABLE orders (id bigint PRIMARY KEY, agent_id bigint, amount numeric(10,2), note text);
		CREATE TABLE stock (sku text PRIMARY KEY, qty int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := shop.Exec(ctx, `INSERT INTO orders VALUES (1, $1, 10.5, 'first order'), (2, $1, 20, 'second order'), (3, $2, 99, 'south return')`,
		bf.users["a1"].ID, bf.users["s1"].ID); err != nil {
		t.Fatal(err)
	}
	pc, err := pgconn.ParseConfig(shopURL)
	if err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "postgres", User: url.User(pc.User), Path: "/" + pc.Database,
		RawQuery: url.Values{"host": {pc.Host}, "port": {strconv.Itoa(int(pc.Port))}, "sslmode": {"disable"}}.Encode()}
	return u.String()
}

// The sources page is for config admins, as the API: others (the user admin too) are refused, and a bad URL is
// refused with the reason and without echoing a password.
func TestQuerySourcesPageRolesAndErrors(t *testing.T) {
	bf := newBatchFixture(t)
	shop := shopDatabase(t, bf)
	for _, user := range []string{"a1", "lead", "qa", "admin"} {
		b := bf.browser(t)
		b.mustLogin("acme", user, "password-"+user)
		if code, _, _ := b.do("GET", "/admin/query-sources", nil, nil); code != http.StatusForbidden {
			t.Errorf("%s opens the sources page: %d", user, code)
		}
		_, _, home := b.do("GET", "/home", nil, nil)
		form := url.Values{"csrf_token": {csrfOf(t, home)}, "key": {"shop"}, "name": {"Shop"}, "url": {shop}}
		if code, _, _ := b.do("POST", "/admin/query-sources", form, nil); code != http.StatusForbidden {
			t.Errorf("%s adds a source: %d", user, code)
		}
	}
	b := bf.browser(t)
	b.mustLogin("acme", "cfg", "password-cfg")
	_, _, page := b.do("GET", "/admin/query-sources", nil, nil)
	form := url.Values{"csrf_token": {csrfOf(t, page)}, "key": {"shop"}, "name": {"Shop"},
		"url": {"postgres://shop:pw-in-url@127.0.0.1:1/shop?connect_timeout=2"}, "password": {"typed-pw"}}
	code, _, body := b.do("POST", "/admin/query-sources", form, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "cannot connect to 127.0.0.1:1") ||
		strings.Contains(body, "pw-in-url") || strings.Contains(body, "typed-pw") {
		t.Fatalf("unreachable source: %d\n%s", code, body)
	}
	form.Set("url", shop)
	form.Set("max_conns", "many")
	if code, _, body = b.do("POST", "/admin/query-sources", form, nil); code != http.StatusBadRequest || !strings.Contains(body, `max_conns &#34;many&#34; is not a whole number`) {
		t.Fatalf("bad max connections: %d\n%s", code, body)
	}
	form.Set("max_conns", "3")
	if code, loc, _ := b.do("POST", "/admin/query-sources", form, nil); code != http.StatusSeeOther || loc.Get("Location") != "/admin/query-sources?saved=shop" {
		t.Fatalf("save: %d %v", code, loc)
	}
	src, err := bf.svc.Source(context.Background(), bf.tenant, "shop")
	if err != nil || src.MaxConns != 3 || !strings.Contains(src.URL, ":xxxxx@") || src.UpdatedBy != "cfg" {
		t.Fatalf("saved source: %+v %v", src, err)
	}
	_, _, page = b.do("GET", "/admin/query-sources?saved=shop", nil, nil)
	if strings.Contains(page, "typed-pw") || !strings.Contains(page, "Source shop connected and saved.") {
		t.Fatalf("the list shows the password, or no notice:\n%s", page)
	}
	// The API checks a connection as the page's button does.
	code, out := apiCall(t, bf.fixture, "POST", "/api/v1/query-sources/shop/check", bf.token(t, "cfg"), "")
	if code != http.StatusOK || out["tables"] != float64(2) {
		t.Fatalf("check: %d %v", code, out)
	}
	if code, _ := apiCall(t, bf.fixture, "POST", "/api/v1/query-sources/shop/check", bf.token(t, "a1"), ""); code != http.StatusForbidden {
		t.Errorf("an agent checks a source: %d", code)
	}
	// The builder refuses batch delete on a source's rows.
	form = url.Values{"csrf_token": {csrfOf(t, page)}, "source": {"shop"}, "table": {"orders"}, "key": {"shop_del"}, "title_en": {"D"},
		"column": {"id"}, "batch_delete": {"1"}}
	if code, _, body := b.do("POST", "/admin/queries", form, nil); code != http.StatusBadRequest || !strings.Contains(body, "not rows of data source") {
		t.Errorf("batch delete on a source: %d", code)
	}
}

// A config admin registers a second database of the test cluster on the page, tests it,
// builds a query on one of its tables with the builder's source picker and runs it; then
// removes the source. Each change is in the audit log.
func TestQuerySourcesInBrowser(t *testing.T) {
	bf := newBatchFixture(t)
	shop := shopDatabase(t, bf)
	ctx := browsertest.New(t)
	text := func(sel string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(bf.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#tenant"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#username"), "cfg"),
		chromedp.SendKeys(chromedp.CSS("#password"), "password-cfg"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#welcome")),
		chromedp.Navigate(bf.srv.URL+"/admin/query-sources"),
		chromedp.WaitVisible(chromedp.CSS("#source-add")),
		chromedp.SendKeys(chromedp.CSS(`#source-add input[name="key"]`), "shop"),
		chromedp.SendKeys(chromedp.CSS(`#source-add input[name="name"]`), "Shop"),
		chromedp.SendKeys(chromedp.CSS(`#source-add input[name="url"]`), shop),
		chromedp.SendKeys(chromedp.CSS(`#source-add input[name="password"]`), "s3cret-pw"),
		chromedp.Click(chromedp.CSS("#source-save")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := text("#notice"); got != "Source shop connected and saved." {
		t.Fatalf("notice after save: %q", got)
	}
	if got := text(`#sources tr[data-key="shop"] code.url`); !strings.Contains(got, ":xxxxx@") || strings.Contains(got, "s3cret") {
		t.Fatalf("the URL as listed: %q", got)
	}
	// Clicks that load a page wait for it (RunResponse): the old page has a notice too.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#sources tr[data-key="shop"] button.test`))); err != nil {
		t.Fatal(err)
	}
	if got := text("#notice"); got != "Source shop answers: 2 tables readable." {
		t.Fatalf("test connection: %q", got)
	}
	// The builder: pick the source, then its table; the fields are the source's columns.
	// Boxes are ticked by the element's click(), not at screen coordinates, which a scroll
	// can move onto another control.
	tick := func(sel string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[bool](`(() => { const e = document.querySelector(`+strconv.Quote(sel)+`); e.click(); return e.checked })()`)(ctx, tg)
			return chromedp.Void{}, err
		}
	}
	steps := []struct {
		name string
		do   chromedp.Action[chromedp.Void]
	}{
		{"open the builder", chromedp.Navigate(bf.srv.URL + "/admin/queries")},
		{"source picker", chromedp.WaitVisible(chromedp.CSS("#pick-source"))},
		{"pick the source", chromedp.SetValue(chromedp.CSS(`#pick-source select[name="source"]`), "shop")},
		{"use it", chromedp.Click(chromedp.CSS("#choose-source"))},
		{"its tables", chromedp.WaitReady(chromedp.CSS(`#pick-table option[value="stock"]`))},
		{"pick a table", chromedp.SetValue(chromedp.CSS(`#pick-table select[name="table"]`), "orders")},
		{"choose it", chromedp.Click(chromedp.CSS("#choose-table"))},
		{"the builder form", chromedp.WaitVisible(chromedp.CSS("#builder"))},
		{"key", chromedp.SendKeys(chromedp.CSS(`#builder input[name="key"]`), "shop_orders")},
		{"title", chromedp.SendKeys(chromedp.CSS(`#builder input[name="title_en"]`), "Shop orders")},
		{"owner field", chromedp.SetValue(chromedp.CSS(`#builder select[name="owner_field"]`), "agent_id")},
		{"show id", tick(`#builder input[name="column"][value="id"]`)},
		{"show note", tick(`#builder input[name="column"][value="note"]`)},
		{"show amount", tick(`#builder input[name="column"][value="amount"]`)},
		{"total amount", tick(`#builder input[name="total_amount"]`)},
		{"search by note", tick(`#builder input[name="condition"][value="note"]`)},
		{"save", chromedp.Click(chromedp.CSS("#save-query"))},
		{"saved", chromedp.WaitVisible(chromedp.CSS("#notice"))},
	}
	for _, st := range steps {
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		err := chromedp.Do(sctx, st.do)
		cancel()
		if err != nil {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
			t.Fatalf("builder step %q: %v\n%s", st.name, err, html)
		}
	}
	d, err := bf.svc.Get(context.Background(), bf.tenant, "shop_orders")
	if err != nil || d.Source.External != "shop" || d.Source.Table != "orders" || len(d.Columns) != 3 {
		t.Fatalf("built definition: %+v %v", d, err)
	}
	// Run it: the search form's text condition, rows read from the source.
	err = chromedp.Do(ctx,
		chromedp.Navigate(bf.srv.URL+"/queries/shop_orders"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="note"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="note"]`), "order"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Submit(chromedp.CSS(`input[name="note"]`))); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#results tbody tr")].map(r => r.innerText.replace(/\s+/g, " ").trim())`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows, "|") != "1 10.50 first order|2 20.00 second order" {
		t.Fatalf("result rows: %q", rows)
	}
	if got := text("#totals"); !strings.Contains(got, "30.50") {
		t.Fatalf("totals row: %q", got)
	}
	// Remove the source on its page.
	if err := chromedp.Do(ctx, chromedp.Navigate(bf.srv.URL+"/admin/query-sources")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#sources tr[data-key="shop"] button.remove`))); err != nil {
		t.Fatal(err)
	}
	if got := text("#notice"); got != "Source shop removed." {
		t.Fatalf("notice after remove: %q", got)
	}
	if list, err := bf.svc.Sources(context.Background(), bf.tenant); err != nil || len(list) != 0 {
		t.Fatalf("sources after remove: %v %v", list, err)
	}
	log, err := bf.accounts.AuditLog(context.Background(), bf.tenant.ID, 20)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range log {
		if strings.HasPrefix(e.Action, "query.source.") {
			acts = append(acts, e.Actor+" "+e.Action+" "+e.Target)
		}
	}
	if strings.Join(acts, ", ") != "cfg "+query.AuditSourceDelete+" query_source:shop, cfg "+query.AuditSourcePut+" query_source:shop" {
		t.Errorf("audit entries: %v", acts)
	}
}
