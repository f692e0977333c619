package query_test

import (
	"context"
	"testing"

	"github.com/ctid/ctid/query"
)

// The totals row binds only the parameters it uses: an aggregate column with a where, or a
// bucket column, that is not totalled must not leave a parameter without a type (PostgreSQL:
// "could not determine data type of parameter $N").
func TestSummaryWithUntotalledFilteredAndBucketColumns(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 48, "acme")
	ctx := context.Background()
	cases := []struct {
		name    string
		def     *query.Definition
		total   int64
		totalOf map[string]float64
	}{
		{"bucket column, not grouped", &query.Definition{Key: "buckets", Title: query.Label{En: "B"}, Source: query.Source{Table: "tickets"},
			Columns: []query.Column{
				{Key: "day", Label: query.Label{En: "Day"}, Field: "created_at", Bucket: "day"},
				{Key: "talk", Label: query.Label{En: "Talk"}, Field: "talk_seconds", Total: true},
			}}, 48, map[string]float64{"talk": 48*47/2 + 24}},
		{"filtered aggregate not totalled", &query.Definition{Key: "agg", Title: query.Label{En: "A"}, Source: query.Source{Table: "tickets"},
			Columns: []query.Column{
				{Key: "status", Label: query.Label{En: "Status"}, Field: "status"},
				{Key: "closed", Label: query.Label{En: "Closed"}, Agg: query.AggCount, Where: &query.Filter{Field: "status", Op: query.OpEq, Values: []string{"closed"}}},
				{Key: "all", Label: query.Label{En: "All"}, Agg: query.AggCount, Total: true},
			}}, 2, map[string]float64{"all": 48}},
		{"bucket grouped, filtered aggregate totalled, another not", &query.Definition{Key: "mix", Title: query.Label{En: "M"}, Source: query.Source{Table: "tickets"},
			Columns: []query.Column{
				{Key: "day", Label: query.Label{En: "Day"}, Field: "created_at", Bucket: "day"},
				{Key: "open", Label: query.Label{En: "Open"}, Agg: query.AggCount, Where: &query.Filter{Field: "status", Op: query.OpEq, Values: []string{"open"}}},
				{Key: "closed", Label: query.Label{En: "Closed"}, Agg: query.AggCount, Total: true, Where: &query.Filter{Field: "status", Op: query.OpEq, Values: []string{"closed"}}},
			}}, 3, map[string]float64{"closed": 16}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := f.svc.Run(ctx, f.acme, f.env(f.admin), tc.def, query.Request{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != tc.total {
				t.Errorf("total = %d, want %d", res.Total, tc.total)
			}
			for k, want := range tc.totalOf {
				got, ok := res.Totals[k]
				var x float64
				switch v := got.(type) {
				case int64:
					x = float64(v)
				case float64:
					x = v
				}
				if !ok || x != want {
					t.Errorf("totals[%s] = %v (%T), want %v", k, got, got, want)
				}
			}
		})
	}
}
