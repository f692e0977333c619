package query_test

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/query"
)

// A page filtered to several agents (a team, agents picked, a team lead's scope) is read per
// agent when an index starts with the owner field. It must give the very rows, totals and
// page tokens of the plain "= ANY" read, page after page, in every sort.
func TestSeveralAgentsPageReadPerAgent(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 60, "acme")
	ctx := context.Background()
	exec := func(sql string) {
		t.Helper()
		if err := db.InTenant(ctx, f.pool, f.acme.Scope(), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Ties on the time: the order's last part (the primary key) must settle them the same way.
	exec(fmt.Sprintf(`INSERT INTO tickets (id, created_at, subject, status, talk_seconds, agent_id)
		SELECT 100 + g, '2024-02-29T20:00:00+08:00', 'tie ' || g, 'open', g, CASE WHEN g %% 2 = 0 THEN %d ELSE %d END
		FROM generate_series(1, 9) AS g`, f.a1.ID, f.a2.ID))

	d := ticketsDef()
	d.Conditions = append(d.Conditions,
		query.Condition{Key: "agent", Label: query.Label{En: "Agent"}, Field: "agent_id", Type: query.CondAgent, Multi: true},
		query.Condition{Key: "team", Label: query.Label{En: "Team"}, Field: "agent_id", Type: query.CondTeam})
	north := fmt.Sprint(f.a1.TeamID)
	cases := []struct {
		name   string
		viewer *account.User
		vals   url.Values
		sort   string
	}{
		{"team filter", f.admin, url.Values{"period": {""}, "team": {north}}, ""},
		{"agents picked, one twice", f.admin, url.Values{"period": {""}, "agent": {fmt.Sprint(f.a1.ID), fmt.Sprint(f.other.ID), fmt.Sprint(f.a1.ID)}}, ""},
		{"team filter, oldest first", f.admin, url.Values{"period": {""}, "team": {north}}, "created"},
		{"team filter, by subject", f.admin, url.Values{"period": {""}, "team": {north}}, "-subject"},
		{"team filter and status", f.admin, url.Values{"period": {""}, "team": {north}, "status": {"open"}}, ""},
		{"team lead's scope", f.lead, url.Values{"period": {""}}, ""},
		{"team lead's scope and a team filter", f.lead, url.Values{"period": {""}, "team": {north}}, ""},
		{"team lead's scope and one agent", f.lead, url.Values{"period": {""}, "agent": {fmt.Sprint(f.a2.ID)}}, ""},
	}
	type page struct {
		Rows   [][]any
		Total  int64
		Totals map[string]any
		Next   string
	}
	read := func(viewer *account.User, vals url.Values, sort string) (pages []page, plan string) {
		t.Helper()
		tok := ""
		for {
			res, err := f.svc.Run(ctx, f.acme, f.env(viewer), d, query.Request{Values: vals, Sort: sort, Page: tok})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Keyset {
				t.Fatal("want keyset paging")
			}
			pages = append(pages, page{res.Rows, res.Total, res.Totals, res.Next})
			if tok = res.Next; tok == "" || len(pages) > 20 {
				break
			}
		}
		plan, err := f.svc.Explain(ctx, f.acme, f.env(viewer), d, query.Request{Values: vals, Sort: sort})
		if err != nil {
			t.Fatal(err)
		}
		return pages, plan
	}
	want := map[string][]page{}
	for _, c := range cases {
		pages, plan := read(c.viewer, c.vals, c.sort)
		if strings.Contains(plan, "ctid_fan_ids") {
			t.Fatalf("%s: read per agent without an index on agent_id:\n%s", c.name, plan)
		}
		if len(pages) < 2 && c.name != "team lead's scope and one agent" {
			t.Fatalf("%s: %d pages, want several to compare", c.name, len(pages))
		}
		want[c.name] = pages
	}
	exec(`CREATE INDEX tickets_agent ON tickets (agent_id, created_at)`)
	for _, c := range cases {
		got, plan := read(c.viewer, c.vals, c.sort)
		perAgent := strings.Contains(plan, "ctid_fan_ids")
		if wantPerAgent := c.name != "team lead's scope and one agent"; perAgent != wantPerAgent {
			t.Errorf("%s: read per agent %v, want %v:\n%s", c.name, perAgent, wantPerAgent, plan)
		}
		if !reflect.DeepEqual(got, want[c.name]) {
			t.Errorf("%s: pages differ with the per-agent read:\n got %v\nwant %v", c.name, got, want[c.name])
		}
	}
}
