package query_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"testing"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

// A second database of the test cluster acts as an external source: registered with pool
// settings, its URL never shown back in full, its tables a catalogue, queried read-only
// with the same compiler and role scoping.
func TestExternalSource(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	shop, shopURL := dbtest.NewDatabase(t)
	if _, err := shop.Exec(ctx, `CREATE TABLE orders (id bigint PRIMARY KEY, agent_id bigint, amount numeric(10,2), note text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := shop.Exec(ctx, `CREATE SEQUENCE order_no`); err != nil {
		t.Fatal(err)
	}
	if _, err := shop.Exec(ctx, `INSERT INTO orders VALUES (1, $1, 10.5, 'a1 first'), (2, $1, 20, 'a1 second'), (3, $2, 99, 'other''s')`, f.a1.ID, f.other.ID); err != nil {
		t.Fatal(err)
	}
	// A URL with a password, to see it masked (the cluster's logins need none).
	pc, err := pgconn.ParseConfig(shopURL)
	if err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "postgres", User: url.UserPassword(pc.User, "s3cret-pw"), Path: "/" + pc.Database,
		RawQuery: url.Values{"host": {pc.Host}, "port": {strconv.Itoa(int(pc.Port))}, "sslmode": {"disable"}}.Encode()}
	for _, c := range []struct {
		in   query.SourceInput
		want string
	}{
		{query.SourceInput{Key: "shop", Name: "Shop", URL: "not a url"}, "is not valid"},
		{query.SourceInput{Key: "shop", Name: "Shop", URL: "mysql://h/db"}, "is not valid"},
		{query.SourceInput{Key: "shop", Name: "Shop", URL: "postgres://127.0.0.1:1/nowhere?connect_timeout=2"}, "cannot connect to 127.0.0.1:1"},
		{query.SourceInput{Key: "shop", Name: "Shop", URL: u.String(), Schema: "nosuch"}, `no schema "nosuch"`},
		{query.SourceInput{Key: "shop", Name: "Shop", URL: u.String(), MaxConns: 50}, "max connections 50"},
		{query.SourceInput{Key: "Bad Key", Name: "Shop", URL: u.String()}, "not valid"},
	} {
		_, err := f.svc.PutSource(ctx, f.acme, c.in, account.Actor{Name: "admin"})
		if fault.CodeOf(err) != fault.Invalid || !strings.Contains(fault.MessageOf(err), c.want) || strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("put %q: %v, want Invalid with %q and no password", c.in.URL, err, c.want)
		}
	}
	src, err := f.svc.PutSource(ctx, f.acme, query.SourceInput{Key: "shop", Name: "Shop", URL: u.String(), MaxConns: 3, StatementTimeoutMS: 2000}, account.Actor{Name: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(src.URL, "s3cret-pw") || !strings.Contains(src.URL, "xxxxx") || src.MaxConns != 3 || src.StatementTimeoutMS != 2000 {
		t.Fatalf("source as shown = %+v", src)
	}
	// The password is write-only: changing the source without it keeps it when asked to;
	// a separate password field replaces the URL's.
	noPW := *u
	noPW.User = url.User(pc.User)
	for _, c := range []struct {
		in     query.SourceInput
		masked bool
	}{
		{query.SourceInput{URL: noPW.String(), KeepPassword: true}, true},
		{query.SourceInput{URL: noPW.String()}, false},
		{query.SourceInput{URL: noPW.String(), KeepPassword: true}, false}, // nothing left to keep
		{query.SourceInput{URL: noPW.String(), Password: "n3w-pw"}, true},
	} {
		c.in.Key, c.in.Name, c.in.MaxConns, c.in.StatementTimeoutMS = "shop", "Shop", 3, 2000
		src, err := f.svc.PutSource(ctx, f.acme, c.in, account.Actor{Name: "admin"})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(src.URL, "xxxxx") != c.masked || strings.Contains(src.URL, "pw") {
			t.Errorf("put %+v: shown as %q, want a password %v", c.in, src.URL, c.masked)
		}
	}
	if n, err := f.svc.CheckSource(ctx, f.acme, "shop"); err != nil || n != 1 {
		t.Fatalf("check: %d tables, %v", n, err)
	}
	// The sealed URL in the tenant's table does not hold the password in clear.
	var sealed []byte
	if err := f.pool.QueryRow(ctx, `SELECT url_sealed FROM t_acme.query_sources WHERE key = 'shop'`).Scan(&sealed); err != nil || strings.Contains(string(sealed), "s3cret-pw") {
		t.Fatalf("stored URL: %v %q", err, sealed)
	}
	cat, err := f.svc.SourceCatalogue(ctx, f.acme, "shop")
	if err != nil {
		t.Fatal(err)
	}
	orders, ok := cat.Table("orders")
	if !ok || len(orders.Fields) != 4 {
		t.Fatalf("catalogue = %+v", cat.Tables())
	}
	def := &query.Definition{Key: "shop_orders", Title: query.Label{En: "Orders"}, Source: query.Source{External: "shop", Table: "orders"},
		OwnerField: "agent_id", Columns: []query.Column{
			{Key: "id", Label: query.Label{En: "No."}, Field: "id", Sortable: true},
			{Key: "amount", Label: query.Label{En: "Amount"}, Field: "amount", Total: true},
		},
		Conditions: []query.Condition{{Key: "note", Label: query.Label{En: "Note"}, Field: "note", Type: query.CondText, Match: query.MatchContains}},
		OrderBy:    []query.Order{{Column: "id"}}}
	if err := f.svc.Save(ctx, f.acme, def, "admin"); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Run(ctx, f.acme, f.env(f.admin), def, query.Request{Values: url.Values{"note": {"a1"}}})
	if err != nil || res.Total != 2 || res.Totals["amount"] != 30.5 {
		t.Fatalf("admin's run: %+v %v", res, err)
	}
	// Role scoping applies to external rows too; values stay parameters.
	res, err = f.svc.Run(ctx, f.acme, f.env(f.other), def, query.Request{Values: url.Values{"note": {"' OR 1=1 --"}}})
	if err != nil || res.Total != 0 {
		t.Fatalf("other's run with an injection attempt: %+v %v", res, err)
	}
	if res, err = f.svc.Run(ctx, f.acme, f.env(f.other), def, query.Request{}); err != nil || res.Total != 1 {
		t.Fatalf("other's run: %+v %v", res, err)
	}
	// Names outside the source's catalogue are refused; the tenant's own tables are not there.
	bad := *def
	bad.Source.Table = "tickets"
	if _, err := f.svc.Run(ctx, f.acme, f.env(f.admin), &bad, query.Request{}); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("a tenant table through the source: %v", err)
	}
	// Writes through the source fail: every run is a READ ONLY transaction.
	write := &query.Definition{Key: "shop_write", Title: query.Label{En: "Write"},
		Source: query.Source{External: "shop", SQL: `WITH x AS (DELETE FROM orders RETURNING id) SELECT id FROM x`}}
	if _, err := f.svc.Run(ctx, f.acme, f.env(f.admin), write, query.Request{}); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("a deleting SQL text through the source: %v", err)
	}
	write.Source.SQL = `SELECT nextval('order_no') AS n`
	if _, err := f.svc.Run(ctx, f.acme, f.env(f.admin), write, query.Request{}); fault.CodeOf(err) != fault.Forbidden || !strings.Contains(fault.MessageOf(err), "only read") {
		t.Fatalf("a write through the source: %v", err)
	}
	var n int
	if err := shop.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("orders after the refused write: %d %v", n, err)
	}
	// Another tenant does not have the source.
	if _, err := f.svc.Run(ctx, f.beta, f.env(f.admin), def, query.Request{}); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("beta runs acme's source: %v", err)
	}
	if err := f.svc.DeleteSource(ctx, f.acme, "shop", account.Actor{Name: "admin"}); err != nil {
		t.Fatal(err)
	}
	if list, err := f.svc.Sources(ctx, f.acme); err != nil || len(list) != 0 {
		t.Fatalf("sources after delete: %v %v", list, err)
	}
	if _, err := f.svc.CheckSource(ctx, f.acme, "shop"); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("check a removed source: %v", err)
	}
	// Every change is in the audit log, without the password.
	log, err := account.NewStore(f.pool, account.LoginLimits{}, 0).AuditLog(ctx, f.acme.ID, 20)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range log {
		if strings.HasPrefix(e.Action, "query.source.") {
			acts = append(acts, e.Action+" "+e.Target)
			if b, _ := json.Marshal(e.Detail); strings.Contains(string(b), "pw") {
				t.Errorf("audit detail shows a password: %s", b)
			}
		}
	}
	if len(acts) != 6 || acts[0] != query.AuditSourceDelete+" query_source:shop" || acts[1] != query.AuditSourcePut+" query_source:shop" {
		t.Errorf("audit entries = %v, want a delete after 5 puts", acts)
	}
}
