package dataobject_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

func TestCodeTables(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	must[*dataobject.CodeTable](t)(e.store.CreateCodeTable(ctx, e.tenant, "region", "Region", "地区", e.admin))
	put := func(c dataobject.Code) error { return e.store.PutCode(ctx, e.tenant, "region", c, e.admin) }
	mustOK(t, put(dataobject.Code{Code: "sh", LabelEN: "Shanghai", LabelZH: "上海", Position: 20, Enabled: true}))
	mustOK(t, put(dataobject.Code{Code: "bj", LabelEN: "Beijing", LabelZH: "北京", Position: 10, Enabled: true}))
	mustOK(t, put(dataobject.Code{Code: "bj.hd", Parent: "bj", LabelEN: "Haidian", LabelZH: "海淀", Position: 2, Enabled: true}))
	mustOK(t, put(dataobject.Code{Code: "bj.cy", Parent: "bj", LabelEN: "Chaoyang", LabelZH: "朝阳", Position: 1, Enabled: true}))
	mustOK(t, put(dataobject.Code{Code: "sh.pd", Parent: "sh", LabelEN: "Pudong", LabelZH: "浦东", Enabled: false}))

	for _, bad := range []struct {
		c    dataobject.Code
		want string
	}{
		{dataobject.Code{Code: "bj.hd.x", Parent: "bj.hd", LabelEN: "x"}, "two levels"},
		{dataobject.Code{Code: "bj", Parent: "sh", LabelEN: "Beijing"}, "two levels"},
		{dataobject.Code{Code: "gz", Parent: "nowhere", LabelEN: "x"}, "not a code"},
		{dataobject.Code{Code: "", LabelEN: "x"}, "not valid"},
		{dataobject.Code{Code: "x y", LabelEN: "x"}, "not valid"},
		{dataobject.Code{Code: "gz"}, "English label"},
	} {
		if err := put(bad.c); fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("PutCode(%+v) = %v, want Invalid with %q", bad.c, err, bad.want)
		}
	}
	if _, err := e.store.CreateCodeTable(ctx, e.tenant, "region", "Again", "", e.admin); fault.CodeOf(err) != fault.Conflict {
		t.Errorf("duplicate code table: %v", err)
	}
	ct := must[*dataobject.CodeTable](t)(e.store.CodeTable(ctx, e.tenant, "region"))
	var order []string
	for _, c := range ct.Codes {
		order = append(order, c.Code)
	}
	if strings.Join(order, ",") != "bj,bj.cy,bj.hd,sh,sh.pd" {
		t.Fatalf("order = %v", order)
	}
	if kids := ct.Children("sh"); len(kids) != 0 {
		t.Fatalf("disabled code offered: %v", kids)
	}
	if c, _ := ct.Code("bj.hd"); c.Label("zh-CN") != "海淀" || c.Label("en") != "Haidian" {
		t.Fatalf("labels = %+v", c)
	}

	// code fields take enabled codes only
	must[*dataobject.Field](t)(e.store.AddField(ctx, e.tenant, "customer", dataobject.NewField{Key: "region", Type: dataobject.TypeCode, CodeTable: "region"}, e.admin))
	if _, err := e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "x", "region": "sh.pd"}, e.admin); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("disabled code accepted: %v", err)
	}
	r := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "x", "region": "bj.hd"}, e.admin))
	if r.Values["region"] != "bj.hd" || r.Values["level"] != "normal" {
		t.Fatalf("values = %v (level should take its default)", r.Values)
	}
}

func TestRecordAuditTrail(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	agent := account.Actor{UserID: 0, Name: "agent007"}
	r := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "Wang", "company": "Old Co", "phones": "13812345678"}, agent))
	must[*dataobject.Record](t)(e.store.Update(ctx, e.tenant, "customer", r.ID, map[string]any{
		"name": "Wang", "company": "New Co", "level": "vip", "phones": []string{"13812345678", "010-65529988"}}, e.admin))
	// an update that changes nothing records nothing
	must[*dataobject.Record](t)(e.store.Update(ctx, e.tenant, "customer", r.ID, map[string]any{"company": "New Co"}, e.admin))
	mustOK(t, e.store.Delete(ctx, e.tenant, "customer", r.ID, e.admin))

	h := must[[]dataobject.HistoryEntry](t)(e.store.History(ctx, e.tenant, "customer", r.ID))
	if len(h) != 3 || h[0].Action != "delete" || h[1].Action != "update" || h[2].Action != "create" || h[2].Actor != "agent007" {
		t.Fatalf("history = %+v", h)
	}
	got := map[string]string{}
	for _, c := range h[1].Changes {
		got[c.Field] = fmt.Sprintf("%v → %v", c.Old, c.New)
	}
	want := map[string]string{"company": "Old Co → New Co", "level": "normal → vip", "phones": "[13812345678] → [13812345678 010-65529988]"}
	if fmt.Sprint(got) != fmt.Sprint(want) || h[1].Actor != "test-admin" {
		t.Fatalf("changes = %v by %s, want %v", got, h[1].Actor, want)
	}
	if _, err := e.store.Get(ctx, e.tenant, "customer", r.ID); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("deleted record: %v", err)
	}
	if _, err := e.store.Update(ctx, e.tenant, "customer", r.ID, map[string]any{"name": "x"}, e.admin); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("update of deleted record: %v", err)
	}
	if _, err := e.store.Update(ctx, e.tenant, "customer", 999, map[string]any{"name": ""}, e.admin); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("update of unknown record: %v", err)
	}
}

func TestListSearchAndPaging(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	for i := range 25 {
		level := "normal"
		if i%5 == 0 {
			level = "gold"
		}
		values := map[string]any{"name": fmt.Sprintf("客户 %02d", i), "company": fmt.Sprintf("Firm %d", i%3), "level": level,
			"phones": fmt.Sprintf("1380000%04d", i), ownerKey: int64(i%2 + 1)}
		must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", values, e.admin))
	}
	cases := []struct {
		q           dataobject.ListQuery
		total, page int
		first       string
	}{
		{dataobject.ListQuery{}, 25, 20, "客户 24"},
		{dataobject.ListQuery{Page: 2}, 25, 5, "客户 04"},
		{dataobject.ListQuery{Search: "firm 1"}, 8, 8, "客户 22"},
		{dataobject.ListQuery{Search: "客户 1"}, 10, 10, "客户 19"},
		{dataobject.ListQuery{Search: "138-0000-0007"}, 1, 1, "客户 07"},
		{dataobject.ListQuery{Search: "0007"}, 1, 1, "客户 07"},
		{dataobject.ListQuery{Search: "100%"}, 0, 0, ""},
		{dataobject.ListQuery{Filters: map[string]string{"level": "gold"}}, 5, 5, "客户 20"},
		{dataobject.ListQuery{Filters: map[string]string{"level": "金卡"}}, 5, 5, "客户 20"},
		{dataobject.ListQuery{Owners: []int64{2}, PerPage: 3}, 12, 3, "客户 23"},
	}
	for _, c := range cases {
		items, total := must2(t)(e.store.List(ctx, e.tenant, "customer", c.q))
		first := ""
		if len(items) > 0 {
			first = fmt.Sprint(items[0].Values["name"])
		}
		if total != c.total || len(items) != c.page || first != c.first {
			t.Errorf("%+v: total %d, %d items, first %q; want %d, %d, %q", c.q, total, len(items), first, c.total, c.page, c.first)
		}
	}
	if _, _, err := e.store.List(ctx, e.tenant, "customer", dataobject.ListQuery{Filters: map[string]string{`x"; drop`: "1"}}); fault.CodeOf(err) != fault.Invalid {
		t.Errorf("filter on unknown field: %v", err)
	}
}

const ownerKey = "owner_id"

func must2(tb testing.TB) func([]*dataobject.Record, int, error) ([]*dataobject.Record, int) {
	return func(r []*dataobject.Record, n int, err error) ([]*dataobject.Record, int) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return r, n
	}
}
