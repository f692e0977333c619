package dataobject_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// columns lists table's columns in the tenant schema as name → SQL type.
func columns(tb testing.TB, e *env, table string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := db.InTenant(context.Background(), e.pool, e.tenant.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
			FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, table)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n, t string
			if err := rows.Scan(&n, &t); err != nil {
				return err
			}
			out[n] = t
		}
		return rows.Err()
	})
	mustOK(tb, err)
	return out
}

func tableExists(tb testing.TB, e *env, table string) bool {
	var ok bool
	mustOK(tb, db.InTenant(context.Background(), e.pool, e.tenant.Scope(), func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok)
	}))
	return ok
}

func everyType() []dataobject.NewField {
	return []dataobject.NewField{
		{Key: "title", Type: dataobject.TypeText, MaxLength: 20, Required: true, LabelZH: "标题"},
		{Key: "body", Type: dataobject.TypeLongText},
		{Key: "qty", Type: dataobject.TypeInteger, Unique: true},
		{Key: "price", Type: dataobject.TypeDecimal},
		{Key: "due", Type: dataobject.TypeDate},
		{Key: "seen_at", Type: dataobject.TypeDateTime},
		{Key: "done", Type: dataobject.TypeBoolean, Default: "no"},
		{Key: "tel", Type: dataobject.TypePhone, MatchCaller: true},
		{Key: "tels", Type: dataobject.TypePhone, Multi: true},
		{Key: "mail", Type: dataobject.TypeEmail},
		{Key: "lvl", Type: dataobject.TypeCode, CodeTable: "customer_level"},
		{Key: "lvls", Type: dataobject.TypeCode, CodeTable: "customer_level", Multi: true},
		{Key: "cust", Type: dataobject.TypeReference, RefObject: "customer"},
	}
}

func TestObjectWithEveryFieldType(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	o := must[*dataobject.Object](t)(e.store.CreateObject(ctx, e.tenant, dataobject.NewObject{
		Key: "things", Kind: dataobject.KindBaseData, NameEN: "Things", NameZH: "东西", EditColumns: 3, Audit: true,
		Fields: everyType()}, e.admin))
	if o.Table != "obj_things" || len(o.Fields) != 13 || o.EditColumns != 3 {
		t.Fatalf("object = %+v", o)
	}
	want := map[string]string{
		"id": "bigint", "created_at": "timestamp with time zone", "created_by": "bigint", "updated_at": "timestamp with time zone",
		"updated_by": "bigint", "owner_id": "bigint", "deleted_at": "timestamp with time zone",
		"title": "character varying(20)", "body": "text", "qty": "bigint", "price": "numeric", "due": "date",
		"seen_at": "timestamp with time zone", "done": "boolean", "tel": "text", "tels": "text[]", "mail": "character varying(320)",
		"lvl": "text", "lvls": "text[]", "cust": "bigint",
	}
	got := columns(t, e, "obj_things")
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s: type %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("columns = %v", got)
	}

	cust := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "Wang"}, e.admin))
	r := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "things", map[string]any{
		"title": "Hello", "body": "long text", "qty": "42", "price": "12.50", "due": "2026/3/1", "seen_at": "2026-03-01 09:30",
		"tel": "138 1234 5678", "tels": "010-65529988; +44 20 7946 0000", "mail": "a@example.com", "lvl": "gold",
		"lvls": []any{"gold", "vip"}, "cust": cust.ID,
	}, e.admin))
	loc := e.tenant.Location()
	wantVals := map[string]any{
		"title": "Hello", "body": "long text", "qty": int64(42), "price": "12.50", "due": "2026-03-01",
		"seen_at": time.Date(2026, 3, 1, 9, 30, 0, 0, loc), "done": false, "tel": "138 1234 5678",
		"tels": []string{"010-65529988", "+44 20 7946 0000"}, "mail": "a@example.com", "lvl": "gold",
		"lvls": []string{"gold", "vip"}, "cust": cust.ID,
	}
	for k, v := range wantVals {
		g := r.Values[k]
		if tm, ok := v.(time.Time); ok {
			if gt, ok := g.(time.Time); !ok || !gt.Equal(tm) {
				t.Errorf("%s = %v, want %v", k, g, v)
			}
			continue
		}
		if !equalValue(g, v) {
			t.Errorf("%s = %#v, want %#v", k, g, v)
		}
	}

	t.Run("bad values name the field and problem", func(t *testing.T) {
		_, err := e.store.Create(ctx, e.tenant, "things", map[string]any{
			"title": strings.Repeat("x", 21), "qty": "4.5", "due": "yesterday", "mail": "not-mail", "lvl": "platinum",
			"cust": 999, "nosuch": 1}, e.admin)
		var ve *dataobject.ValidationError
		if !errors.As(err, &ve) || fault.CodeOf(err) != fault.Invalid {
			t.Fatalf("err = %v", err)
		}
		var fields []string
		for _, f := range ve.Fields {
			fields = append(fields, f.Field)
		}
		slices.Sort(fields)
		if strings.Join(fields, ",") != "cust,due,lvl,mail,nosuch,qty,title" {
			t.Fatalf("fields with problems = %v (%v)", fields, err)
		}
	})
	t.Run("unique field refuses a second record with its value", func(t *testing.T) {
		_, err := e.store.Create(ctx, e.tenant, "things", map[string]any{"title": "Again", "qty": 42}, e.admin)
		var ve *dataobject.ValidationError
		if !errors.As(err, &ve) || ve.Fields[0].Field != "qty" {
			t.Fatalf("err = %v", err)
		}
	})
}

func equalValue(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok || bok {
		return aok && bok && slices.Equal(as, bs)
	}
	return a == b
}

func TestFailingFieldLeavesNothing(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	fields := []dataobject.NewField{
		{Key: "fine", Type: dataobject.TypeText},
		{Key: "broken", Type: dataobject.TypeCode, CodeTable: "no_such_table"},
	}
	_, err := e.store.CreateObject(ctx, e.tenant, dataobject.NewObject{Key: "orders", Kind: dataobject.KindWorkOrder, NameEN: "Orders", Fields: fields}, e.admin)
	if fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), "no_such_table") {
		t.Fatalf("err = %v", err)
	}
	if tableExists(t, e, "obj_orders") {
		t.Fatal("table obj_orders was left behind")
	}
	if _, err := e.store.Object(ctx, e.tenant, "orders"); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("catalogue row left behind: %v", err)
	}
	// A failing AddField leaves the table as it was.
	_, err = e.store.AddField(ctx, e.tenant, "customer", dataobject.NewField{Key: "vip", Type: dataobject.TypeText, Default: strings.Repeat("x", 300)}, e.admin)
	if fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("err = %v", err)
	}
	if _, ok := columns(t, e, "obj_customer")["vip"]; ok {
		t.Fatal("column vip was added")
	}
}

func TestHostileIdentifiers(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	hostile := `name"; drop table x; --`
	for _, key := range []string{hostile, "Name", "a", "1abc", "ab-c", "id", "created_at", "owner_id", strings.Repeat("a", 32), "naïve"} {
		_, err := e.store.AddField(ctx, e.tenant, "customer", dataobject.NewField{Key: key, Type: dataobject.TypeText}, e.admin)
		if fault.CodeOf(err) != fault.Invalid {
			t.Errorf("field key %q: err = %v, want Invalid", key, err)
		}
		_, err = e.store.CreateObject(ctx, e.tenant, dataobject.NewObject{Key: key, Kind: dataobject.KindBaseData, NameEN: "x"}, e.admin)
		if key != "id" && key != "created_at" && key != "owner_id" && fault.CodeOf(err) != fault.Invalid {
			t.Errorf("object key %q: err = %v, want Invalid", key, err)
		}
	}
	// As a label or a name it is just text, stored as typed.
	o := must[*dataobject.Object](t)(e.store.CreateObject(ctx, e.tenant, dataobject.NewObject{Key: "notes_x", Kind: dataobject.KindBaseData,
		NameEN: hostile, NameZH: hostile, Fields: []dataobject.NewField{{Key: "body", Type: dataobject.TypeText, LabelEN: hostile, LabelZH: hostile, Default: hostile}}}, e.admin))
	got := must[*dataobject.Object](t)(e.store.Object(ctx, e.tenant, "notes_x"))
	if got.NameEN != hostile || got.Field("body").LabelEN != hostile || got.Field("body").Default != hostile || o.Table != "obj_notes_x" {
		t.Fatalf("object = %+v, field = %+v", got, got.Field("body"))
	}
	r := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "notes_x", map[string]any{}, e.admin))
	if r.Values["body"] != hostile {
		t.Fatalf("default = %v", r.Values["body"])
	}
	_, err := e.store.RenameField(ctx, e.tenant, "notes_x", "body", hostile, false, e.admin)
	if fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("rename to hostile key: %v", err)
	}
	if err := e.store.PutCode(ctx, e.tenant, "customer_level", dataobject.Code{Code: hostile, LabelEN: "x"}, e.admin); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("hostile code: %v", err)
	}
	if !tableExists(t, e, "obj_customer") || !tableExists(t, e, "obj_notes_x") {
		t.Fatal("a table went missing")
	}
}

func TestAddHideRenameField(t *testing.T) {
	usage := func(ctx context.Context, tx pgx.Tx, table, field string) ([]string, error) {
		if table == "obj_customer" && field == "company" {
			return []string{"vip_report"}, nil
		}
		return nil, nil
	}
	e := newEnv(t, "CN", dataobject.Options{FieldUsage: usage})
	ctx := context.Background()
	r := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "Li", "company": "Acme Ltd", "phones": "13812345678"}, e.admin))

	f := must[*dataobject.Field](t)(e.store.AddField(ctx, e.tenant, "customer", dataobject.NewField{Key: "city", Type: dataobject.TypeText, LabelZH: "城市", Searchable: true}, e.admin))
	if f.Position != 80 {
		t.Errorf("new field position = %d, want after the last (80)", f.Position)
	}
	must[*dataobject.Record](t)(e.store.Update(ctx, e.tenant, "customer", r.ID, map[string]any{"city": "Shanghai"}, e.admin))

	t.Run("rename used by a query is refused, naming it", func(t *testing.T) {
		_, err := e.store.RenameField(ctx, e.tenant, "customer", "company", "employer", false, e.admin)
		if fault.CodeOf(err) != fault.Conflict || !strings.Contains(err.Error(), "vip_report") {
			t.Fatalf("err = %v", err)
		}
		users := must[[]string](t)(e.store.RenameField(ctx, e.tenant, "customer", "company", "employer", true, e.admin))
		if !slices.Equal(users, []string{"vip_report"}) {
			t.Fatalf("users = %v", users)
		}
		got := must[*dataobject.Record](t)(e.store.Get(ctx, e.tenant, "customer", r.ID))
		if got.Values["employer"] != "Acme Ltd" {
			t.Fatalf("renamed field lost its data: %v", got.Values)
		}
		if _, ok := columns(t, e, "obj_customer")["employer"]; !ok {
			t.Fatal("column not renamed")
		}
	})
	t.Run("hide keeps the data and stops matching", func(t *testing.T) {
		must[[]string](t)(e.store.HideField(ctx, e.tenant, "customer", "city", false, e.admin))
		o := must[*dataobject.Object](t)(e.store.Object(ctx, e.tenant, "customer"))
		for _, f := range o.Visible() {
			if f.Key == "city" {
				t.Fatal("hidden field is visible")
			}
		}
		if _, ok := columns(t, e, "obj_customer")["city"]; !ok {
			t.Fatal("hidden field lost its column")
		}
		if res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "13812345678")); res.Total != 1 {
			t.Fatalf("before hiding phones: total %d", res.Total)
		}
		must[[]string](t)(e.store.HideField(ctx, e.tenant, "customer", "phones", false, e.admin))
		if res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "13812345678")); res.Total != 0 {
			t.Fatalf("hidden phone field still matched: %+v", res)
		}
		mustOK(t, e.store.UnhideField(ctx, e.tenant, "customer", "city", e.admin))
		mustOK(t, e.store.UnhideField(ctx, e.tenant, "customer", "phones", e.admin))
		got := must[*dataobject.Record](t)(e.store.Get(ctx, e.tenant, "customer", r.ID))
		if got.Values["city"] != "Shanghai" {
			t.Fatalf("unhidden field lost its data: %v", got.Values)
		}
		if res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "13812345678")); res.Total != 1 {
			t.Fatalf("after unhiding phones: total %d", res.Total)
		}
	})
	t.Run("unique on shared values is refused", func(t *testing.T) {
		must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "Li"}, e.admin))
		_, err := e.store.UpdateField(ctx, e.tenant, "customer", "name", dataobject.FieldOptions{LabelEN: "Name", Unique: true, Required: true}, e.admin)
		if fault.CodeOf(err) != fault.Conflict {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDefaultCustomerMatchesCatalogue(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	o := must[*dataobject.Object](t)(e.store.DefaultObject(ctx, e.tenant, dataobject.KindCustomer))
	if o.Key != "customer" || !o.IsDefault || !o.Audit {
		t.Fatalf("default customer object = %+v", o)
	}
	spec := dataobject.DefaultCustomer
	spec.Key, spec.IsDefault = "customer_copy", false
	cp := must[*dataobject.Object](t)(e.store.CreateObject(ctx, e.tenant, spec, e.admin))
	if len(o.Fields) != len(cp.Fields) {
		t.Fatalf("fields: migration %d, Go %d", len(o.Fields), len(cp.Fields))
	}
	for i, f := range o.Fields {
		g := *cp.Fields[i]
		g.ID = f.ID
		if *f != g {
			t.Errorf("field %d: migration %+v, Go %+v", i, *f, g)
		}
	}
	a, b := columns(t, e, "obj_customer"), columns(t, e, "obj_customer_copy")
	if len(a) != len(b) {
		t.Fatalf("columns: %v vs %v", a, b)
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("column %s: migration %q, Go %q", k, v, b[k])
		}
	}
	indexes := func(table string) int {
		var n int
		mustOK(t, db.InTenant(ctx, e.pool, e.tenant.Scope(), func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1`, table).Scan(&n)
		}))
		return n
	}
	if indexes("obj_customer") != indexes("obj_customer_copy") {
		t.Errorf("indexes: migration %d, Go %d", indexes("obj_customer"), indexes("obj_customer_copy"))
	}
}

func TestPartitionedObject(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	must[*dataobject.Object](t)(e.store.CreateObject(ctx, e.tenant, dataobject.NewObject{Key: "oplog", Kind: dataobject.KindOperationLog,
		NameEN: "Operation log", Partitioned: true, Fields: []dataobject.NewField{{Key: "what", Type: dataobject.TypeText}}}, e.admin))
	must[*dataobject.Object](t)(e.store.CreateObject(ctx, e.tenant, dataobject.NewObject{Key: "ticket", Kind: dataobject.KindWorkOrder,
		NameEN: "Work orders", LogObject: "oplog", SaveMode: dataobject.SaveMany, Partitioned: true,
		Fields: []dataobject.NewField{{Key: "customer", Type: dataobject.TypeReference, RefObject: "customer"}}}, e.admin))
	_, err := e.store.AddField(ctx, e.tenant, "ticket", dataobject.NewField{Key: "ticket", Type: dataobject.TypeText, Unique: true}, e.admin)
	if fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("unique field on partitioned object: %v", err)
	}
	now := time.Now().UTC()
	for _, m := range []time.Time{now, now.AddDate(0, 3, 0)} {
		name := "obj_ticket" + time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC).Format("_p200601")
		if !tableExists(t, e, name) {
			t.Errorf("partition %s missing", name)
		}
	}
	mustOK(t, e.store.EnsurePartitions(ctx, e.tenant, now.AddDate(0, 5, 0)))
	if name := "obj_ticket" + time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 8, 0).Format("_p200601"); !tableExists(t, e, name) {
		t.Errorf("EnsurePartitions did not create %s", name)
	}
	cust := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "Zhao"}, e.admin))
	w := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "ticket", map[string]any{"customer": cust.ID}, e.admin))
	if w.Values["customer"] != cust.ID {
		t.Fatalf("work order = %+v", w)
	}
	o := must[*dataobject.Object](t)(e.store.Object(ctx, e.tenant, "ticket"))
	if o.LogObject != "oplog" || o.SaveMode != dataobject.SaveMany || !o.Partitioned {
		t.Fatalf("object options = %+v", o)
	}
	_, err = e.store.CreateObject(ctx, e.tenant, dataobject.NewObject{Key: "wo2", Kind: dataobject.KindWorkOrder, NameEN: "x", LogObject: "customer"}, e.admin)
	if fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("log object of wrong kind: %v", err)
	}
}
