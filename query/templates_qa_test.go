package query_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/query"
)

// The work-orders and QA-summary templates every tenant has, on real rows of the default
// work-order object and qa_scores, run by each role.
func TestWorkOrderAndQATemplates(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	at := f.now.Add(-2 * 60 * 60 * 1e9) // today, Shanghai
	err := db.InTenant(ctx, f.pool, f.acme.Scope(), func(tx pgx.Tx) error {
		for _, w := range []struct {
			subject, status string
			owner           int64
			deleted         bool
		}{
			{"a1 open", "open", f.a1.ID, false}, {"a1 closed", "closed", f.a1.ID, false}, {"a1 deleted", "open", f.a1.ID, true},
			{"a2 open", "open", f.a2.ID, false}, {"other open", "open", f.other.ID, false},
		} {
			if _, err := tx.Exec(ctx, `INSERT INTO obj_workorder (created_at, owner_id, subject, status, deleted_at)
				VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END)`, at, w.owner, w.subject, w.status, w.deleted); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO qa_forms (key, current_version) VALUES ('inbound', 1);
			INSERT INTO qa_form_versions (form_key, version, definition) VALUES ('inbound', 1, '{}')`); err != nil {
			return err
		}
		for i, sc := range []struct {
			agent       int64
			score       float64
			failed, cal bool
		}{
			{f.a1.ID, 90, false, false}, {f.a1.ID, 50, true, false}, {f.a1.ID, 10, true, true}, // the calibration round is left out
			{f.a2.ID, 70, false, false}, {f.other.ID, 0, true, false},
		} {
			if _, err := tx.Exec(ctx, `INSERT INTO qa_scores (form_key, form_version, object, record_id, agent_id, checker_id, checker,
				score, band, failed, answers, calibration, created_at) VALUES ('inbound', 1, 'workorder', $1, $2, 1, 'qa', $3, '', $4, '[]', $5, $6)`,
				i+1, sc.agent, sc.score, sc.failed, sc.cal, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(u *account.User, key string) *query.Result {
		t.Helper()
		env := f.env(u)
		res, err := f.svc.Run(ctx, f.acme, env, query.Template(key), query.Request{Values: url.Values{}})
		if err != nil {
			t.Fatalf("%s runs %s: %v", u.Username, key, err)
		}
		return res
	}
	cases := []struct {
		who        *account.User
		workOrders int64
		qaRows     int64
	}{
		{f.admin, 4, 3}, {f.lead, 3, 2}, {f.a1, 2, 1}, {f.other, 1, 1},
	}
	for _, c := range cases {
		if res := run(c.who, "work_orders"); res.Total != c.workOrders {
			t.Errorf("%s sees %d work orders, want %d (deleted ones never)", c.who.Username, res.Total, c.workOrders)
		}
		if res := run(c.who, "qa_summary"); res.Total != c.qaRows {
			t.Errorf("%s sees %d QA summary rows, want %d", c.who.Username, res.Total, c.qaRows)
		}
	}
	res := run(f.a1, "qa_summary")
	row := map[string]any{}
	for i, c := range res.Columns {
		row[c.Key] = res.Rows[0][i]
	}
	// a1: 90 and 50 (the calibration 10 left out): 2 scores, average 70, 1 fail, 50 %.
	if row["scores"] != int64(2) || row["average"] != 70.0 || row["fails"] != int64(1) || row["fail_rate"] != 0.5 || row["lowest"] != 50.0 {
		t.Fatalf("a1's QA summary = %v", row)
	}
}
