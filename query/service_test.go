package query_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// fixture is a database with two tenants (acme, beta), each with a "tickets" table (a
// data-object-like table) on the allow-list, and users of every row scope in acme.
type fixture struct {
	pool                *pgxpool.Pool
	svc                 *query.Service
	acme, beta          *account.Tenant
	admin, lead, a1, a2 *account.User
	other               *account.User // an agent of another team
	people              []query.Person
	now                 time.Time
}

const ticketsDDL = `CREATE TABLE tickets (
	id bigint PRIMARY KEY,
	created_at timestamptz NOT NULL,
	subject text NOT NULL,
	status text NOT NULL,
	talk_seconds numeric(10,3) NOT NULL DEFAULT 0,
	agent_id bigint
)`

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	pool, url := dbtest.NewDatabase(t)
	readers, err := db.NewReaders(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(readers.Close)
	accounts := account.NewStore(pool, account.LoginLimits{}, 0)
	f := &fixture{pool: pool, svc: query.New(pool, readers, nil, prometheus.NewRegistry())}
	for _, code := range []string{"acme", "beta"} {
		tn, err := accounts.CreateTenant(ctx, account.NewTenant{Code: code, Name: code, TimeZone: "Asia/Shanghai"}, account.CLI)
		if err != nil {
			t.Fatal(err)
		}
		if code == "acme" {
			f.acme = tn
		} else {
			f.beta = tn
		}
		if err := db.InTenant(ctx, pool, tn.Scope(), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, ticketsDDL)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.AllowTable(ctx, tn, "tickets", query.Label{En: "Tickets"}, true, "test"); err != nil {
			t.Fatal(err)
		}
	}
	add := func(name, role, team string) *account.User {
		u, err := accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: name, Password: "correct horse 1",
			Roles: []string{role}, Team: team}, account.CLI)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	f.admin = add("admin", "admin", "")
	f.lead = add("lead", "team_lead", "north")
	f.a1 = add("a1", "agent", "north")
	f.a2 = add("a2", "agent", "north")
	f.other = add("other", "agent", "south")
	users, err := accounts.ListUsers(ctx, f.acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.people = query.PeopleOf(users)
	f.now = time.Date(2024, 3, 1, 10, 0, 0, 0, f.acme.Location())
	return f
}

// seed inserts n tickets into tenant t's table: one every hour back from now, owners in turn.
func (f *fixture) seed(t *testing.T, tn *account.Tenant, n int, subject string) {
	t.Helper()
	owners := []int64{f.a1.ID, f.a2.ID, f.other.ID, f.lead.ID}
	err := db.InTenant(context.Background(), f.pool, tn.Scope(), func(tx pgx.Tx) error {
		for i := range n {
			status := "open"
			if i%3 == 0 {
				status = "closed"
			}
			_, err := tx.Exec(context.Background(), `INSERT INTO tickets (id, created_at, subject, status, talk_seconds, agent_id)
				VALUES ($1, $2, $3, $4, $5, $6)`, i+1, f.now.Add(-time.Duration(i)*time.Hour),
				fmt.Sprintf("%s %03d", subject, i), status, float64(i)+0.5, owners[i%len(owners)])
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) env(u *account.User) *query.Env {
	return &query.Env{Now: f.now, Loc: f.acme.Location(), Viewer: query.ViewerOf(u), People: f.people}
}

func ticketsDef() *query.Definition {
	return &query.Definition{
		Key: "tickets", Title: query.Label{En: "Tickets"}, Source: query.Source{Table: "tickets"}, OwnerField: "agent_id",
		Columns: []query.Column{
			{Key: "id", Label: query.Label{En: "ID"}, Field: "id"},
			{Key: "created", Label: query.Label{En: "Created"}, Field: "created_at", Sortable: true},
			{Key: "subject", Label: query.Label{En: "Subject"}, Field: "subject", Sortable: true},
			{Key: "talk", Label: query.Label{En: "Talk"}, Field: "talk_seconds", Format: query.FormatDuration, Total: true, Sortable: true},
			{Key: "agent", Label: query.Label{En: "Agent"}, Field: "agent_id", Format: query.FormatUser},
		},
		Conditions: []query.Condition{
			{Key: "period", Label: query.Label{En: "Period"}, Field: "created_at", Type: query.CondDateRange, Default: "today"},
			{Key: "subject", Label: query.Label{En: "Subject"}, Field: "subject", Type: query.CondText, Match: query.MatchContains},
			{Key: "status", Label: query.Label{En: "Status"}, Field: "status", Type: query.CondChoice, Multi: true,
				Options: []query.Option{{Value: "open"}, {Value: "closed"}}},
			{Key: "talk", Label: query.Label{En: "Talk"}, Field: "talk_seconds", Type: query.CondNumberRange},
		},
		OrderBy:  []query.Order{{Column: "created", Desc: true}},
		PageSize: 7,
	}
}

func ids(res *query.Result) []int64 {
	var out []int64
	for _, r := range res.Rows {
		out = append(out, r[0].(int64))
	}
	return out
}

func TestRunConditionsTotalsAndPaging(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 60, "acme")
	f.seed(t, f.beta, 60, "beta")
	ctx := context.Background()
	d := ticketsDef()

	// Default "today" in Shanghai: 00:00–10:00 on 1 March holds tickets 1..11 (ids 1–11).
	res, err := f.svc.Run(ctx, f.acme, f.env(f.admin), d, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 11 || len(res.Rows) != 7 || res.Next == "" || !res.Keyset {
		t.Fatalf("today: total %d rows %d next %q keyset %v", res.Total, len(res.Rows), res.Next, res.Keyset)
	}
	var talk float64
	for i := range 11 {
		talk += float64(i) + 0.5
	}
	if got := res.Totals["talk"]; got != talk {
		t.Errorf("talk total = %v, want %v", got, talk)
	}
	if res.Applied.Get("period") != "today" {
		t.Errorf("applied = %v", res.Applied)
	}
	if s := query.Format(res.Columns[4], res.Rows[0][4], f.env(f.admin)); s != "a1" {
		t.Errorf("agent shown as %q, want a1", s)
	}

	// Walk every page of a sort with keyset paging, and one with offset paging: each row
	// exactly once, in order.
	for _, sort := range []string{"", "subject", "-talk"} {
		var all []int64
		req := query.Request{Values: url.Values{"period": {"last_7_days"}}, Sort: sort}
		for page := 0; ; page++ {
			res, err := f.svc.Run(ctx, f.acme, f.env(f.admin), d, req)
			if err != nil {
				t.Fatalf("sort %q page %d: %v", sort, page, err)
			}
			if res.Total != 60 {
				t.Fatalf("total = %d", res.Total)
			}
			all = append(all, ids(res)...)
			if res.Next == "" {
				break
			}
			req.Page = res.Next
		}
		if len(all) != 60 {
			t.Fatalf("sort %q: %d rows over all pages, want 60", sort, len(all))
		}
		seen := map[int64]bool{}
		for i, id := range all {
			if seen[id] {
				t.Fatalf("sort %q: row %d twice", sort, id)
			}
			seen[id] = true
			want := int64(i + 1) // newest first = id order; subject order = id order
			if sort == "-talk" {
				want = int64(60 - i)
			}
			if id != want {
				t.Fatalf("sort %q: position %d has %d, want %d", sort, i, id, want)
			}
		}
	}

	// Conditions together.
	res, err = f.svc.Run(ctx, f.acme, f.env(f.admin), d, query.Request{Values: url.Values{
		"period": {"custom"}, "period_from": {"2024-02-29"}, "period_to": {"2024-02-29"},
		"subject": {"acme 02"}, "status": {"closed"}, "talk_min": {"20"}, "talk_max": {"29"}}})
	if err != nil {
		t.Fatal(err)
	}
	// 29 Feb holds ids 12–35; subject "acme 02x" is ids 21–30; closed: i%3==0 → ids 22, 25, 28;
	// talk 20–29: talk = i+0.5 with i = id-1 → ids 22 (21.5), 25 (24.5), 28 (27.5).
	if got := ids(res); fmt.Sprint(got) != "[22 25 28]" || res.Total != 3 {
		t.Errorf("conditions: ids %v total %d, want [22 25 28]", got, res.Total)
	}
}

func TestRunRoleScope(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 40, "acme")
	ctx := context.Background()
	d := ticketsDef()
	req := query.Request{Values: url.Values{"period": {""}}, PageSize: 100}
	count := func(u *account.User) map[int64]int {
		res, err := f.svc.Run(ctx, f.acme, f.env(u), d, req)
		if err != nil {
			t.Fatalf("%s: %v", u.Username, err)
		}
		byOwner := map[int64]int{}
		for _, r := range res.Rows {
			byOwner[r[4].(int64)]++
		}
		if int(res.Total) != len(res.Rows) {
			t.Errorf("%s: total %d, rows %d", u.Username, res.Total, len(res.Rows))
		}
		return byOwner
	}
	if got := count(f.a1); len(got) != 1 || got[f.a1.ID] != 10 {
		t.Errorf("agent sees %v, want only their own 10", got)
	}
	if got := count(f.lead); len(got) != 3 || got[f.other.ID] != 0 || got[f.a1.ID] != 10 || got[f.lead.ID] != 10 {
		t.Errorf("team lead sees %v, want north's three members", got)
	}
	if got := count(f.admin); len(got) != 4 {
		t.Errorf("admin sees %v, want all four owners", got)
	}
	// An agent cannot pick another agent, nor widen the scope through a condition.
	d.Conditions = append(d.Conditions, query.Condition{Key: "agent", Label: query.Label{En: "Agent"}, Field: "agent_id", Type: query.CondAgent})
	_, err := f.svc.Run(ctx, f.acme, f.env(f.a1), d, query.Request{Values: url.Values{"agent": {fmt.Sprint(f.a2.ID)}}})
	if fault.CodeOf(err) != fault.Forbidden {
		t.Errorf("agent picking another agent: %v, want Forbidden", err)
	}
	// Without an owner field only viewers of all rows may run the query.
	d.OwnerField = ""
	if _, err := f.svc.Run(ctx, f.acme, f.env(f.a1), d, req); fault.CodeOf(err) != fault.Forbidden {
		t.Errorf("agent running an unscoped query: %v, want Forbidden", err)
	}
}

func TestRunInjectionThroughValuesIsHarmless(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 5, "acme")
	ctx := context.Background()
	d := ticketsDef()
	evil := []string{`x'); DROP TABLE tickets; --`, `%' OR '1'='1`, `\`, `_`, `'`, `"`, `$1`, `:subject`}
	for _, v := range evil {
		res, err := f.svc.Run(ctx, f.acme, f.env(f.admin), d, query.Request{Values: url.Values{"period": {""}, "subject": {v}}})
		if err != nil {
			t.Fatalf("subject %q: %v", v, err)
		}
		if res.Total != 0 {
			t.Errorf("subject %q matched %d rows", v, res.Total)
		}
	}
	res, err := f.svc.Run(ctx, f.acme, f.env(f.admin), d, query.Request{Values: url.Values{"period": {""}}})
	if err != nil || res.Total != 5 {
		t.Fatalf("after the attempts: %v, total %d (want the table intact with 5 rows)", err, res.Total)
	}
}

func TestSQLTextParametersAndIsolation(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 30, "acme")
	f.seed(t, f.beta, 30, "beta")
	ctx := context.Background()
	sqlDef := func(sql string) *query.Definition {
		return &query.Definition{Key: "raw", Title: query.Label{En: "Raw"}, Source: query.Source{SQL: sql},
			OwnerField: "agent_id",
			Conditions: []query.Condition{
				{Key: "period", Label: query.Label{En: "Period"}, Type: query.CondDateRange, Default: "today"},
				{Key: "agent", Label: query.Label{En: "Agent"}, Type: query.CondAgent},
			}}
	}
	d := sqlDef(`SELECT id, subject, agent_id FROM tickets
		WHERE created_at >= :period_from AND created_at < :period_to
		  AND (:agent::bigint[] IS NULL OR agent_id = ANY(:agent)) -- :ignored
		ORDER BY id;`)
	res, err := f.svc.Run(ctx, f.acme, f.env(f.admin), d, query.Request{Values: url.Values{"agent": {fmt.Sprint(f.a1.ID)}}})
	if err != nil {
		t.Fatal(err)
	}
	// Today 00:00–10:00 holds ids 1–11; a1 owns ids 1, 5, 9.
	if got := ids(res); fmt.Sprint(got) != "[1 5 9]" {
		t.Errorf("ids = %v, want [1 5 9]", got)
	}
	// The server scopes SQL text too: an agent sees only their own rows.
	res, err = f.svc.Run(ctx, f.acme, f.env(f.a2), d, query.Request{Values: url.Values{"period": {"last_7_days"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Rows {
		if r[2].(int64) != f.a2.ID {
			t.Fatalf("agent a2 saw a row of %v", r[2])
		}
	}
	if res.Total != 8 { // ids 2, 6, ..., 30
		t.Errorf("a2 total = %d, want 8", res.Total)
	}

	// What a SQL text must not reach: another tenant, the platform, the server, writes.
	refused := []struct {
		sql  string
		code fault.Code
	}{
		{`SELECT id, agent_id FROM t_beta.tickets`, fault.Forbidden},
		{`SELECT id AS agent_id FROM platform.users`, fault.Forbidden},
		{`SELECT username, id AS agent_id FROM platform.users`, fault.Forbidden},
		{`SELECT pg_read_file('/etc/passwd') AS f, 1::bigint AS agent_id`, fault.Forbidden},
		{`WITH d AS (DELETE FROM tickets RETURNING id) SELECT id, id AS agent_id FROM d`, fault.Invalid},
		{`SELECT 1 AS agent_id; DELETE FROM tickets`, fault.Invalid},
		{`SELECT id, agent_id FROM tickets WHERE id = $1`, fault.Invalid},
		{`SELECT id, agent_id FROM tickets WHERE subject = :nosuch`, fault.Invalid},
	}
	for _, tc := range refused {
		_, err := f.svc.Run(ctx, f.acme, f.env(f.admin), sqlDef(tc.sql), query.Request{})
		if fault.CodeOf(err) != tc.code {
			t.Errorf("%s: err = %v, want %s", tc.sql, err, tc.code)
		}
	}
	// A search_path change inside the SQL text cannot reach another tenant's table.
	_, err = f.svc.Run(ctx, f.acme, f.env(f.admin), sqlDef(
		`SELECT s.x AS agent_id FROM (SELECT set_config('search_path', 't_beta', true) AS x) s, LATERAL (SELECT count(*) FROM t_beta.tickets) c`), query.Request{})
	if fault.CodeOf(err) != fault.Forbidden {
		t.Errorf("reading t_beta after set_config: %v, want Forbidden", err)
	}
	// acme's rows are intact after the DELETE attempts.
	res, err = f.svc.Run(ctx, f.acme, f.env(f.admin), sqlDef(`SELECT count(*) AS n, 0::bigint AS agent_id FROM tickets`), query.Request{})
	if err != nil || res.Rows[0][0].(int64) != 30 {
		t.Fatalf("acme tickets after attempts: %v %v", err, res)
	}
	// Sorting and paging around SQL text; a sort naming no output column is refused.
	res, err = f.svc.Run(ctx, f.acme, f.env(f.admin), sqlDef(`SELECT id, agent_id FROM tickets`), query.Request{Sort: "-id", PageSize: 4})
	if err != nil || fmt.Sprint(ids(res)) != "[30 29 28 27]" || res.Next == "" || res.Total != 30 {
		t.Fatalf("sorted SQL text: %v %v", err, res)
	}
	if _, err := f.svc.Run(ctx, f.acme, f.env(f.admin), sqlDef(`SELECT id, agent_id FROM tickets`), query.Request{Sort: `id" DESC; --`}); fault.CodeOf(err) != fault.Invalid {
		t.Errorf("bad sort on SQL text: %v", err)
	}
}

func TestStoreAndCatalogue(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := ticketsDef()
	if err := f.svc.Save(ctx, f.acme, d, "admin"); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Get(ctx, f.acme, "tickets")
	if err != nil || got.Title.En != "Tickets" || len(got.Columns) != 5 {
		t.Fatalf("get: %v %+v", err, got)
	}
	if _, err := f.svc.Get(ctx, f.beta, "tickets"); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("beta sees acme's query: %v", err)
	}
	list, err := f.svc.List(ctx, f.acme)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, q := range list {
		keys = append(keys, q.Key)
	}
	if strings.Join(keys, ",") != "agent_statistics,call_history,qa_summary,queue_statistics,work_orders,tickets" {
		t.Errorf("list = %v", keys)
	}
	// A definition that does not compile is refused and not stored.
	bad := ticketsDef()
	bad.Key = "bad"
	bad.Columns[1].Field = "no_such_field"
	if err := f.svc.Save(ctx, f.acme, bad, "admin"); fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), "no_such_field") {
		t.Errorf("save bad: %v", err)
	}
	if _, err := f.svc.Get(ctx, f.acme, "bad"); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("bad definition was stored: %v", err)
	}
	badSQL := &query.Definition{Key: "bad_sql", Title: query.Label{En: "x"}, Source: query.Source{SQL: "SELECT nope FROM tickets"}}
	if err := f.svc.Save(ctx, f.acme, badSQL, "admin"); fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), "nope") {
		t.Errorf("save bad SQL: %v", err)
	}
	if err := f.svc.Save(ctx, f.acme, query.Template("call_history"), "admin"); fault.CodeOf(err) != fault.Conflict {
		t.Errorf("overwriting a template: %v", err)
	}
	if err := f.svc.Delete(ctx, f.acme, "tickets"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(ctx, f.acme, "tickets"); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("second delete: %v", err)
	}

	// The catalogue: allow-listed real tables only; ctid's own tables never.
	cat, err := f.svc.Catalogue(ctx, f.acme)
	if err != nil {
		t.Fatal(err)
	}
	tb, ok := cat.Table("tickets")
	if !ok || len(tb.Fields) != 6 || strings.Join(tb.Key, ",") != "id" {
		t.Fatalf("tickets in catalogue: %v %+v", ok, tb)
	}
	if fld, _ := tb.Field("talk_seconds"); fld.Kind != query.KindNumber || !fld.NotNull {
		t.Errorf("talk_seconds = %+v", fld)
	}
	if _, ok := cat.Table("queries"); ok {
		t.Errorf("queries table is in the catalogue")
	}
	if err := f.svc.AllowTable(ctx, f.acme, "query_tables", query.Label{}, true, "x"); fault.CodeOf(err) != fault.Forbidden {
		t.Errorf("allowing an internal table: %v", err)
	}
	if err := f.svc.AllowTable(ctx, f.acme, "nope", query.Label{}, true, "x"); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("allowing a missing table: %v", err)
	}
	if err := f.svc.AllowTable(ctx, f.acme, "tickets", query.Label{}, false, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Run(ctx, f.acme, f.env(f.admin), ticketsDef(), query.Request{}); fault.CodeOf(err) != fault.Invalid ||
		!strings.Contains(err.Error(), "not queryable") {
		t.Errorf("run on a table taken off the allow-list: %v", err)
	}
	plan, err := f.svc.Explain(ctx, f.beta, f.env(f.admin), ticketsDef(), query.Request{})
	if err != nil || !strings.Contains(plan, "tickets") {
		t.Errorf("explain: %v %s", err, plan)
	}
}
