package query

import "testing"

func TestUsesField(t *testing.T) {
	d := &Definition{Source: Source{Table: "obj_customer"}, OwnerField: "owner_id",
		Columns:    []Column{{Key: "n", Field: "name"}, {Key: "vip", Agg: "count", Where: &Filter{Field: "level", Op: OpEq, Also: []Filter{{Field: "city", Op: OpNotNull}}}}},
		Conditions: []Condition{{Key: "c", Field: "company"}}}
	sql := &Definition{Source: Source{SQL: "SELECT name, Company FROM obj_customer WHERE level = :lv"}}
	cases := []struct {
		d            *Definition
		table, field string
		want         bool
	}{
		{d, "obj_customer", "name", true},
		{d, "obj_customer", "company", true},
		{d, "obj_customer", "level", true},
		{d, "obj_customer", "city", true},
		{d, "obj_customer", "owner_id", true},
		{d, "obj_customer", "email", false},
		{d, "obj_order", "name", false},
		{sql, "obj_customer", "company", true},
		{sql, "obj_customer", "email", false},
		{sql, "obj_order", "name", false},
		{sql, "obj_customer", "nam", false},
	}
	for _, c := range cases {
		if got := c.d.usesField(c.table, c.field); got != c.want {
			t.Errorf("usesField(%s, %s) = %v, want %v", c.table, c.field, got, c.want)
		}
	}
}
