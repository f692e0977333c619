package dataobject_test

import (
	"context"
	"slices"
	"testing"

	"github.com/ctid/ctid/dataobject"
)

// A caller's customer levels are those of the customers matched best; weaker matches,
// unknown and withheld callers give none.
func TestCustomerLevels(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	for _, c := range []struct {
		name, phone, level string
	}{
		{"Zhang", "13812345678", "vip"},
		{"Zhang Jr", "138 1234 5678", "gold"}, // the same mobile: both levels
		{"Li", "13900001111", "normal"},
		{"Wang", "13700002222", ""}, // the field's default
	} {
		values := map[string]any{"name": c.name, "phones": []string{c.phone}}
		if c.level != "" {
			values["level"] = c.level
		}
		if _, err := e.store.Create(ctx, e.tenant, "customer", values, e.admin); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		caller string
		want   []string
	}{
		{"+8613812345678", []string{"gold", "vip"}},
		{"13900001111", []string{"normal"}},
		{"13700002222", []string{"normal"}},
		{"13600003333", nil},
		{"anonymous", nil},
	} {
		got, err := e.store.CustomerLevels(ctx, e.tenant, tc.caller)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("levels of %s = %v, want %v", tc.caller, got, tc.want)
		}
	}
}
