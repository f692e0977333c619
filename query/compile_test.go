package query

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// ticketsTable is a data-object-like table used by the compiler tests.
func ticketsCatalogue() *Catalogue {
	return NewCatalogue(&Table{Name: "tickets", Key: []string{"id"}, Fields: []Field{
		{Name: "id", Type: "bigint", Kind: KindInt, NotNull: true},
		{Name: "created_at", Type: "timestamp with time zone", Kind: KindTime, NotNull: true},
		{Name: "subject", Type: "text", Kind: KindText, NotNull: true},
		{Name: "status", Type: "text", Kind: KindText, NotNull: true},
		{Name: "priority", Type: "integer", Kind: KindInt},
		{Name: "amount", Type: "numeric(12,2)", Kind: KindNumber},
		{Name: "agent_id", Type: "bigint", Kind: KindInt},
		{Name: "due", Type: "date", Kind: KindDate},
		{Name: "tags", Type: "text[]", Kind: KindOther},
	}})
}

func ticketsQuery() *Definition {
	return &Definition{
		Key: "tickets", Title: Label{En: "Tickets"}, Source: Source{Table: "tickets"}, OwnerField: "agent_id",
		Columns: []Column{
			{Key: "id", Label: Label{En: "ID"}, Field: "id"},
			{Key: "created", Label: Label{En: "Created"}, Field: "created_at", Sortable: true},
			{Key: "subject", Label: Label{En: "Subject"}, Field: "subject", Sortable: true},
			{Key: "amount", Label: Label{En: "Amount"}, Field: "amount", Total: true, Sortable: true},
			{Key: "agent", Label: Label{En: "Agent"}, Field: "agent_id", Format: FormatUser},
		},
		Conditions: []Condition{
			{Key: "subject", Label: Label{En: "Subject"}, Field: "subject", Type: CondText, Match: MatchContains},
			{Key: "code", Label: Label{En: "Subject code"}, Field: "subject", Type: CondText, Match: MatchPrefix},
			{Key: "exact", Label: Label{En: "Subject exactly"}, Field: "subject", Type: CondText},
			{Key: "status", Label: Label{En: "Status"}, Field: "status", Type: CondChoice, Multi: true,
				Options: []Option{{Value: "open"}, {Value: "closed"}, {Value: "it's"}}},
			{Key: "prio", Label: Label{En: "Priority"}, Field: "priority", Type: CondNumberRange},
			{Key: "amount", Label: Label{En: "Amount"}, Field: "amount", Type: CondNumberRange},
			{Key: "period", Label: Label{En: "Period"}, Field: "created_at", Type: CondDateRange, Default: "today"},
			{Key: "due", Label: Label{En: "Due"}, Field: "due", Type: CondDateRange},
			{Key: "agent", Label: Label{En: "Agent"}, Field: "agent_id", Type: CondAgent},
			{Key: "team", Label: Label{En: "Team"}, Field: "agent_id", Type: CondTeam},
		},
		OrderBy: []Order{{Column: "created", Desc: true}},
	}
}

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

func adminEnv() *Env {
	return &Env{Now: time.Date(2024, 3, 1, 10, 0, 0, 0, shanghai), Loc: shanghai,
		Viewer: Viewer{UserID: 1, Scope: account.ScopeAll},
		People: []Person{{ID: 1, Name: "Ada"}, {ID: 2, Name: "Bo", TeamID: 7, TeamName: "North"},
			{ID: 3, Name: "Cy", TeamID: 7, TeamName: "North"}, {ID: 4, Name: "Di", TeamID: 8, TeamName: "South"}}}
}

func sh(s string) time.Time {
	t, _ := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
	return t
}

func TestCompileConditions(t *testing.T) {
	today := []any{sh("2024-03-01 00:00"), sh("2024-03-02 00:00")}
	tests := []struct {
		name   string
		values url.Values
		where  string // the WHERE clause of the page query, "" for none
		args   []any  // its arguments
	}{
		{"default today", url.Values{}, `"created_at" >= $1 AND "created_at" < $2`, today},
		{"period cleared", url.Values{"period": {""}}, ``, nil},
		{"contains escapes wildcards", url.Values{"period": {""}, "subject": {"50%_off\\"}},
			`"subject" ILIKE $1 ESCAPE '\'`, []any{`%50\%\_off\\%`}},
		{"prefix", url.Values{"period": {""}, "code": {"AB"}}, `"subject" ILIKE $1 ESCAPE '\'`, []any{"AB%"}},
		{"exact", url.Values{"period": {""}, "exact": {" Hello "}}, `"subject" = $1`, []any{"Hello"}},
		{"multi choice", url.Values{"period": {""}, "status": {"open", "it's"}}, `"status" = ANY($1)`, []any{[]string{"open", "it's"}}},
		{"int range rounds inward", url.Values{"period": {""}, "prio_min": {"1.5"}, "prio_max": {"3.7"}},
			`"priority" >= $1 AND "priority" <= $2`, []any{int64(2), int64(3)}},
		{"number range min only", url.Values{"period": {""}, "amount_min": {"9.95"}}, `"amount" >= $1`, []any{9.95}},
		{"yesterday", url.Values{"period": {"yesterday"}}, `"created_at" >= $1 AND "created_at" < $2`,
			[]any{sh("2024-02-29 00:00"), sh("2024-03-01 00:00")}},
		{"custom dates, to inclusive", url.Values{"period_from": {"2024-02-01"}, "period_to": {"2024-02-29"}},
			`"created_at" >= $1 AND "created_at" < $2`, []any{sh("2024-02-01 00:00"), sh("2024-03-01 00:00")}},
		{"custom date-times", url.Values{"period": {"custom"}, "period_from": {"2024-02-01T08:30"}},
			`"created_at" >= $1`, []any{sh("2024-02-01 08:30")}},
		{"date field range binds dates", url.Values{"period": {""}, "due": {"this_month"}}, `"due" >= $1 AND "due" < $2`,
			[]any{pgtype.Date{Time: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), Valid: true},
				pgtype.Date{Time: time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC), Valid: true}}},
		{"agents", url.Values{"period": {""}, "agent": {"2", "3"}}, `"agent_id" = ANY($1)`, []any{[]int64{2, 3}}},
		{"team expands to members", url.Values{"period": {""}, "team": {"7"}}, `"agent_id" = ANY($1)`, []any{[]int64{2, 3}}},
		{"everything at once", url.Values{"period": {"today"}, "exact": {"x"}, "status": {"closed"}},
			`"subject" = $1 AND "status" = ANY($2) AND "created_at" >= $3 AND "created_at" < $4`,
			[]any{"x", []string{"closed"}, today[0], today[1]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(ticketsQuery(), ticketsCatalogue(), adminEnv(), Request{Values: tc.values})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			where := ""
			if _, after, ok := strings.Cut(p.SQL, " WHERE "); ok {
				where, _, _ = strings.Cut(after, " ORDER BY ")
			}
			if where != tc.where {
				t.Errorf("where = %s\nwant    %s\nsql: %s", where, tc.where, p.SQL)
			}
			got := p.Args[:len(p.Args)-1] // the last is the LIMIT
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tc.args) {
				t.Errorf("args = %#v\nwant   %#v", got, tc.args)
			}
		})
	}
}

func TestCompileShape(t *testing.T) {
	p, err := Compile(ticketsQuery(), ticketsCatalogue(), adminEnv(), Request{Values: url.Values{"period": {""}}, Sort: "-amount"})
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT "id" AS "c0", "created_at" AS "c1", "subject" AS "c2", "amount" AS "c3", "agent_id" AS "c4" FROM "tickets" ORDER BY "c3" DESC, "c1" DESC, "id" LIMIT $1`
	if p.SQL != want {
		t.Errorf("sql = %s\nwant  %s", p.SQL, want)
	}
	if p.keyset != nil {
		t.Errorf("amount is nullable: keyset paging must not apply")
	}
	if p.SummarySQL != `SELECT count(*), sum("amount") FROM "tickets"` {
		t.Errorf("summary = %s", p.SummarySQL)
	}
	// Sorting by a NOT NULL field ends in the primary key: keyset paging.
	p, err = Compile(ticketsQuery(), ticketsCatalogue(), adminEnv(), Request{Values: url.Values{"period": {""}}, Sort: "subject"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.keyset) != 3 || !strings.Contains(p.SQL, `"subject" AS "k0", "created_at" AS "k1", "id" AS "k2"`) {
		t.Errorf("want keyset on subject, created_at, id: %s", p.SQL)
	}
}

func TestCompileAggregates(t *testing.T) {
	d := &Definition{Key: "stats", Title: Label{En: "Stats"}, Source: Source{Table: "tickets"}, OwnerField: "agent_id",
		Columns: []Column{
			{Key: "day", Label: Label{En: "Day"}, Field: "created_at", Bucket: "day"},
			{Key: "agent", Label: Label{En: "Agent"}, Field: "agent_id"},
			{Key: "n", Label: Label{En: "Tickets"}, Agg: AggCount, Total: true},
			{Key: "closed", Label: Label{En: "Closed"}, Agg: AggCount, Where: &Filter{Field: "status", Op: OpEq, Values: []string{"closed"}}, Total: true},
			{Key: "rate", Label: Label{En: "Closed rate"}, Agg: AggRatio, Of: []string{"closed", "n"}, Format: FormatPercent, Total: true},
			{Key: "avg", Label: Label{En: "Average"}, Agg: AggAvg, Field: "amount", Sortable: true},
			{Key: "max", Label: Label{En: "Latest"}, Agg: AggMax, Field: "created_at"},
		},
		OrderBy: []Order{{Column: "day"}},
	}
	env := adminEnv()
	env.Viewer = Viewer{UserID: 2, TeamID: 7, Scope: account.ScopeTeam}
	p, err := Compile(d, ticketsCatalogue(), env, Request{Sort: "-avg"})
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT date_trunc('day', "created_at", $1) AS "c0", "agent_id" AS "c1", count(*) AS "c2", ` +
		`count(*) FILTER (WHERE ("status" = $2)) AS "c3", ((count(*) FILTER (WHERE ("status" = $2)))::numeric / NULLIF((count(*))::numeric, 0)) AS "c4", ` +
		`avg("amount") AS "c5", max("created_at") AS "c6" FROM "tickets" WHERE "agent_id" = ANY($3) GROUP BY 1, 2 ORDER BY "c5" DESC, "c0", 1, 2 LIMIT $4`
	if p.SQL != want {
		t.Errorf("sql = %s\nwant  %s", p.SQL, want)
	}
	if !reflect.DeepEqual(p.Args, []any{"Asia/Shanghai", "closed", []int64{2, 3}, 51}) {
		t.Errorf("args = %#v", p.Args)
	}
	// The summary's parameters are numbered as it uses them.
	if !strings.HasPrefix(p.SummarySQL, `SELECT (SELECT count(*) FROM (SELECT date_trunc('day', "created_at", $1), "agent_id" FROM "tickets" WHERE "agent_id" = ANY($2) GROUP BY 1, 2) AS g), count(*), count(*) FILTER (WHERE ("status" = $3))`) {
		t.Errorf("summary = %s", p.SummarySQL)
	}
	if !reflect.DeepEqual(p.SummaryArgs, []any{"Asia/Shanghai", []int64{2, 3}, "closed"}) {
		t.Errorf("summary args = %#v", p.SummaryArgs)
	}
}

func TestCompileRoleScope(t *testing.T) {
	tests := []struct {
		name   string
		viewer Viewer
		owner  string
		pred   string
		arg    any
		code   fault.Code
	}{
		{"agent sees own rows", Viewer{UserID: 3, TeamID: 7, Scope: account.ScopeOwn}, "agent_id", `"agent_id" = $1`, int64(3), ""},
		{"team lead sees team", Viewer{UserID: 2, TeamID: 7, Scope: account.ScopeTeam}, "agent_id", `"agent_id" = ANY($1)`, []int64{2, 3}, ""},
		{"team lead without team sees own", Viewer{UserID: 5, Scope: account.ScopeTeam}, "agent_id", `"agent_id" = $1`, int64(5), ""},
		{"admin sees all", Viewer{UserID: 1, Scope: account.ScopeAll}, "agent_id", ``, nil, ""},
		{"no owner field: agents refused", Viewer{UserID: 3, Scope: account.ScopeOwn}, "", ``, nil, fault.Forbidden},
		{"no owner field: admins run it", Viewer{UserID: 1, Scope: account.ScopeAll}, "", ``, nil, ""},
		{"no role scope refused", Viewer{UserID: 9, Scope: account.ScopeNone}, "agent_id", ``, nil, fault.Forbidden},
		{"owner field must hold ids", Viewer{UserID: 3, Scope: account.ScopeOwn}, "subject", ``, nil, fault.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ticketsQuery()
			d.OwnerField = tc.owner
			env := adminEnv()
			env.Viewer = tc.viewer
			// The request tries to widen the scope: it must not matter.
			p, err := Compile(d, ticketsCatalogue(), env, Request{Values: url.Values{"period": {""}}})
			if tc.code != "" {
				if fault.CodeOf(err) != tc.code {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.pred == "" {
				if strings.Contains(p.SQL, "WHERE") {
					t.Errorf("unexpected WHERE: %s", p.SQL)
				}
				return
			}
			if !strings.Contains(p.SQL, " WHERE "+tc.pred+" ORDER BY") || !strings.Contains(p.SummarySQL, " WHERE "+tc.pred) {
				t.Errorf("scope %s missing: %s | %s", tc.pred, p.SQL, p.SummarySQL)
			}
			if !reflect.DeepEqual(p.Args[0], tc.arg) {
				t.Errorf("scope arg = %#v, want %#v", p.Args[0], tc.arg)
			}
		})
	}
}

func TestCompileRefusesBadDefinitions(t *testing.T) {
	tests := []struct {
		name   string
		change func(d *Definition)
		says   string
	}{
		{"unknown table", func(d *Definition) { d.Source.Table = "platform.users" }, `table "platform.users" is not queryable`},
		{"unknown field", func(d *Definition) { d.Columns[0].Field = `id"; DROP TABLE tickets; --` }, `names field "id\"; DROP TABLE tickets; --"`},
		{"field of another table", func(d *Definition) { d.Columns[0].Field = "password_hash" }, `"password_hash", which table "tickets" does not have`},
		{"bad column key", func(d *Definition) { d.Columns[0].Key = `c0" FROM x` }, `column key`},
		{"unknown aggregate", func(d *Definition) { d.Columns[3].Agg = "pg_sleep" }, `unknown aggregate "pg_sleep"`},
		{"sum of text", func(d *Definition) { d.Columns[3] = Column{Key: "s", Field: "subject", Agg: AggSum} }, `sum needs a number field`},
		{"unknown bucket", func(d *Definition) { d.Columns[1].Bucket = "decade" }, `unknown bucket "decade"`},
		{"unknown operator", func(d *Definition) {
			d.Columns[3] = Column{Key: "n", Agg: AggCount, Where: &Filter{Field: "status", Op: "~*", Values: []string{"x"}}}
		}, `unknown operator "~*"`},
		{"ratio of a plain column", func(d *Definition) { d.Columns[3] = Column{Key: "r", Agg: AggRatio, Of: []string{"id", "subject"}} }, `ratio names "id"`},
		{"contains on a number", func(d *Definition) { d.Conditions[0].Field = "priority" }, `contains matching needs a text field`},
		{"date range on text", func(d *Definition) { d.Conditions[6].Field = "subject" }, `a date range needs a date or time field`},
		{"unknown condition type", func(d *Definition) { d.Conditions[0].Type = "sql" }, `unknown type "sql"`},
		{"bad default preset", func(d *Definition) { d.Conditions[6].Default = "tomorrow" }, `unknown date preset "tomorrow"`},
		{"order by unknown column", func(d *Definition) { d.OrderBy[0].Column = "nope" }, `order by names no column "nope"`},
		{"page size", func(d *Definition) { d.PageSize = 100000 }, `page size`},
		{"both table and SQL", func(d *Definition) { d.Source.SQL = "SELECT 1" }, `both a table and a SQL text`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ticketsQuery()
			tc.change(d)
			_, err := Compile(d, ticketsCatalogue(), adminEnv(), Request{})
			if err == nil || fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want Invalid saying %s", err, tc.says)
			}
		})
	}
}

// Injection attempts through every request input: each is refused with a clear error, or
// ends up as a bound value and never in the SQL text.
func TestCompileInjectionAttempts(t *testing.T) {
	evil := `x'); DROP TABLE tickets; --`
	tests := []struct {
		name string
		req  Request
		code fault.Code // "" = accepted as a value
	}{
		{"text value", Request{Values: url.Values{"subject": {evil}}}, ""},
		{"exact value", Request{Values: url.Values{"exact": {evil}}}, ""},
		{"choice value not an option", Request{Values: url.Values{"status": {evil}}}, fault.Invalid},
		{"number value", Request{Values: url.Values{"prio_min": {"1; DROP TABLE tickets"}}}, fault.Invalid},
		{"number NaN", Request{Values: url.Values{"amount_min": {"NaN"}}}, fault.Invalid},
		{"preset", Request{Values: url.Values{"period": {"today' OR 1=1 --"}}}, fault.Invalid},
		{"date", Request{Values: url.Values{"period_from": {"2024-01-01' OR '1'='1"}}}, fault.Invalid},
		{"agent id", Request{Values: url.Values{"agent": {"1 OR 1=1"}}}, fault.Invalid},
		{"team id", Request{Values: url.Values{"team": {"7); DROP TABLE tickets; --"}}}, fault.Invalid},
		{"sort column", Request{Sort: `created_at"; DROP TABLE tickets; --`}, fault.Invalid},
		{"sort not sortable", Request{Sort: "id"}, fault.Invalid},
		{"sort expression", Request{Sort: "1"}, fault.Invalid},
		{"page token garbage", Request{Page: "'; DROP TABLE tickets; --"}, fault.Invalid},
		{"page token other sort", Request{Page: token{Sig: "tickets|subject", Offset: 50}.encode()}, fault.Invalid},
		{"page token SQL in key", Request{Sort: "subject", Page: token{Sig: "tickets|subject", Keys: []string{evil, "2024-01-01T00:00:00Z", "1 OR 1=1"}}.encode()}, fault.Invalid},
		{"page token negative offset", Request{Page: token{Sig: "tickets|", Offset: -5}.encode()}, fault.Invalid},
		{"page token key as value", Request{Sort: "subject", Page: token{Sig: "tickets|subject", Keys: []string{evil, "2024-01-01T00:00:00Z", "5"}}.encode()}, ""},
		{"unknown form keys ignored", Request{Values: url.Values{`subject" OR 1=1`: {"x"}, "1=1": {"y"}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(ticketsQuery(), ticketsCatalogue(), adminEnv(), tc.req)
			if tc.code != "" {
				if err == nil || fault.CodeOf(err) != tc.code {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, s := range []string{p.SQL, p.SummarySQL, p.ExportSQL} {
				if strings.Contains(s, "DROP") || strings.Contains(s, "1=1") {
					t.Fatalf("input reached the SQL text: %s", s)
				}
			}
		})
	}
}

func TestImportExportRoundTrip(t *testing.T) {
	d := ticketsQuery()
	b, err := d.Export()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Import(b)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Errorf("round trip changed the definition:\n%+v\n%+v", got, d)
	}
	for _, bad := range []string{`{"key":"x","title":{"en":"X"},"source":{"table":"t"},"columns":[{"key":"a","field":"a"}],"sql_injection":1}`,
		`{"key":"X Y"}`, `not json`, `{"key":"x","title":{"en":"X"},"source":{"table":"t"},"columns":[{"key":"a","field":"a"}]} {}`} {
		if _, err := Import([]byte(bad)); fault.CodeOf(err) != fault.Invalid {
			t.Errorf("Import(%s) = %v, want Invalid", bad, err)
		}
	}
}

func TestBindNamed(t *testing.T) {
	tests := []struct {
		in, out string
		names   []string
		bad     string
	}{
		{in: "SELECT * FROM t WHERE at >= :from AND at < :to AND agent = ANY(:agent) AND at >= :from",
			out: "SELECT * FROM t WHERE at >= $1 AND at < $2 AND agent = ANY($3) AND at >= $1", names: []string{"from", "to", "agent"}},
		{in: "SELECT ':nope', \"a:b\", x::text, $$ :no $$, $q$ :no $q$ -- :no\n, /* :no */ :yes",
			out: "SELECT ':nope', \"a:b\", x::text, $$ :no $$, $q$ :no $q$ -- :no\n, /* :no */ $1", names: []string{"yes"}},
		{in: "SELECT 'it''s :x', E'\\' :y' , :z", out: "SELECT 'it''s :x', E'\\' :y' , $1", names: []string{"z"}},
		{in: "SELECT $1", bad: "use :name parameters"},
		{in: "SELECT 'open", bad: "unterminated"},
		{in: "SELECT /* open", bad: "unterminated"},
	}
	for _, tc := range tests {
		out, names, err := bindNamed(tc.in, 0)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("bindNamed(%q) err = %v, want %s", tc.in, err, tc.bad)
			}
			continue
		}
		if err != nil || out != tc.out || !reflect.DeepEqual(names, tc.names) {
			t.Errorf("bindNamed(%q) = %q %v %v\nwant %q %v", tc.in, out, names, err, tc.out, tc.names)
		}
	}
}

func TestFormat(t *testing.T) {
	env := adminEnv()
	tests := []struct {
		col  OutColumn
		v    any
		want string
	}{
		{OutColumn{Format: FormatDuration}, 3725.4, "1:02:05"},
		{OutColumn{Format: FormatDuration}, int64(59), "0:59"},
		{OutColumn{Format: FormatPercent}, 0.8126, "81.3%"},
		{OutColumn{Format: FormatNumber}, int64(1234567), "1,234,567"},
		{OutColumn{Format: FormatDecimal}, 2.5, "2.50"},
		{OutColumn{Format: FormatUser}, int64(2), "Bo"},
		{OutColumn{Format: FormatUser}, int64(99), "99"},
		{OutColumn{Format: FormatDateTime}, time.Date(2024, 2, 29, 17, 30, 0, 0, time.UTC), "2024-03-01 01:30:00"},
		{OutColumn{Format: FormatDate}, time.Date(2024, 2, 29, 17, 30, 0, 0, time.UTC), "2024-03-01"},
		{OutColumn{}, nil, ""},
	}
	for _, tc := range tests {
		if got := Format(tc.col, tc.v, env); got != tc.want {
			t.Errorf("Format(%s, %v) = %q, want %q", tc.col.Format, tc.v, got, tc.want)
		}
	}
}

func TestUsedArgs(t *testing.T) {
	cases := []struct {
		sql, want string
		args, got []any
	}{
		{`SELECT $2 FROM t WHERE a = $4`, `SELECT $1 FROM t WHERE a = $2`, []any{1, 2, 3, 4}, []any{2, 4}},
		{`SELECT $3, $1, $3`, `SELECT $1, $2, $1`, []any{1, 2, 3}, []any{3, 1}},
		{`SELECT "a$1", 'x$2' FROM t WHERE b = $2`, `SELECT "a$1", 'x$2' FROM t WHERE b = $1`, []any{1, 2}, []any{2}},
		{`SELECT "we""ird$1" WHERE $10 = 1`, `SELECT "we""ird$1" WHERE $1 = 1`, []any{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []any{10}},
		{`SELECT count(*) FROM t`, `SELECT count(*) FROM t`, []any{1}, nil},
	}
	for _, c := range cases {
		sql, args := usedArgs(c.sql, c.args)
		if sql != c.want || !reflect.DeepEqual(args, c.got) {
			t.Errorf("usedArgs(%s) = %s %v, want %s %v", c.sql, sql, args, c.want, c.got)
		}
	}
}
