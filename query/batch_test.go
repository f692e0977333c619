package query_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

// matching runs query.Matching for u in acme and returns the ids it selects.
func (f *fixture) matching(t *testing.T, d *query.Definition, env *query.Env, req query.Request, only []int64) ([]int64, error) {
	t.Helper()
	var ids []int64
	err := db.InTenant(context.Background(), f.pool, f.acme.Scope(), func(tx pgx.Tx) error {
		sql, args, _, err := query.Matching(context.Background(), tx, d, env, req, only)
		if err != nil {
			return err
		}
		rows, err := tx.Query(context.Background(), sql+" ORDER BY 1", args...)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return ids, err
}

// Batch delete selects rows with the run's conditions and the viewer's row scope: ids that
// a team lead or an agent cannot see are never selected, even when the request names them.
func TestMatchingKeepsScopeAndConditions(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 24, "acme")
	d := ticketsDef()
	d.Batch = []string{query.BatchDelete}
	all := make([]int64, 24)
	for i := range all {
		all[i] = int64(i + 1)
	}
	// Owners in turn: a1, a2, other (south), lead; today (since local midnight) holds 11 rows.
	cases := []struct {
		name string
		env  *query.Env
		req  query.Request
		only []int64
		want []int64
	}{
		{"admin, all today", f.env(f.admin), query.Request{}, nil, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"admin, named ids, some not today", f.env(f.admin), query.Request{}, []int64{2, 11, 12, 20}, []int64{2, 11}},
		{"lead, all ids named, whole period", f.env(f.lead), query.Request{Values: map[string][]string{"period": {"last_7_days"}}}, all,
			[]int64{1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 18, 20, 21, 22, 24}},
		{"agent a1, all ids named", f.env(f.a1), query.Request{Values: map[string][]string{"period": {"last_7_days"}}}, all,
			[]int64{1, 5, 9, 13, 17, 21}},
		{"agent a1, another's id", f.env(f.a1), query.Request{Values: map[string][]string{"period": {"last_7_days"}}}, []int64{3}, nil},
		{"status condition", f.env(f.admin), query.Request{Values: map[string][]string{"status": {"closed"}}}, nil, []int64{1, 4, 7, 10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.matching(t, d, tc.env, tc.req, tc.only)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
		})
	}
	// Refused: a query that does not offer it, and a definition that cannot (aggregates).
	if _, err := f.matching(t, ticketsDef(), f.env(f.admin), query.Request{}, nil); fault.CodeOf(err) != fault.Forbidden {
		t.Errorf("query without batch delete: %v", err)
	}
	agg := ticketsDef()
	agg.Batch = []string{query.BatchDelete}
	agg.Columns = append(agg.Columns, query.Column{Key: "n", Label: query.Label{En: "N"}, Agg: query.AggCount})
	if err := agg.Check(); fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), "aggregate") {
		t.Errorf("aggregate batch delete: %v", err)
	}
	noID := ticketsDef()
	noID.Batch = []string{query.BatchDelete}
	noID.Columns = noID.Columns[1:]
	if err := noID.Check(); fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), `"id"`) {
		t.Errorf("batch delete without an id column: %v", err)
	}
	sqlDef := &query.Definition{Key: "s", Title: query.Label{En: "S"}, Source: query.Source{SQL: "SELECT 1 AS id"}, Batch: []string{query.BatchDelete}}
	if err := sqlDef.Check(); fault.CodeOf(err) != fault.Invalid {
		t.Errorf("SQL-text batch delete: %v", err)
	}
}
