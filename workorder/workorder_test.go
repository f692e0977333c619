package workorder_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/workorder"
)

// The migration's default objects are what dataobject.CreateObject makes of the Go specs.
func TestDefaultObjectsMatchCatalogue(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, spec := range []dataobject.NewObject{workorder.DefaultLog, workorder.DefaultWorkOrder} {
		o := must[*dataobject.Object](t)(e.objects.Object(ctx, e.tenant, spec.Key))
		cp := spec
		cp.Key, cp.IsDefault = spec.Key+"_copy", false
		if cp.LogObject != "" {
			cp.LogObject += "_copy"
		}
		c := must[*dataobject.Object](t)(e.objects.CreateObject(ctx, e.tenant, cp, e.adminActor()))
		if o.Kind != c.Kind || o.SaveMode != c.SaveMode || o.Audit != c.Audit || o.Partitioned != c.Partitioned ||
			o.EditColumns != c.EditColumns || !o.IsDefault || (o.LogObject != "") != (c.LogObject != "") {
			t.Errorf("%s options: migration %+v, Go %+v", spec.Key, o, c)
		}
		if len(o.Fields) != len(c.Fields) {
			t.Fatalf("%s fields: migration %d, Go %d", spec.Key, len(o.Fields), len(c.Fields))
		}
		for i, f := range o.Fields {
			g := *c.Fields[i]
			g.ID = f.ID
			if *f != g {
				t.Errorf("%s field %d: migration %+v, Go %+v", spec.Key, i, *f, g)
			}
		}
		a, b := columns(t, e, o.Table), columns(t, e, c.Table)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s columns: migration %v, Go %v", spec.Key, a, b)
		}
	}
	d := must[*dataobject.Object](t)(e.objects.DefaultObject(ctx, e.tenant, dataobject.KindWorkOrder))
	if d.Key != workorder.ObjectKey || d.LogObject != workorder.LogKey {
		t.Fatalf("default work-order object = %s (log %q)", d.Key, d.LogObject)
	}
}

func columns(t *testing.T, e *env, table string) map[string]string {
	out := map[string]string{}
	mustOK(t, db.InTenant(context.Background(), e.pool, e.tenant.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT column_name, data_type || coalesce('(' || character_maximum_length || ')', '')
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`, table)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			out[k] = v
		}
		return rows.Err()
	}))
	return out
}

func TestSaveOncePerCall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cust := must[*dataobject.Record](t)(e.objects.Create(ctx, e.tenant, "customer", map[string]any{"name": "Zhang"}, e.adminActor()))
	in := workorder.Input{CallID: "call-1", CustomerID: cust.ID, Values: map[string]any{"subject": "Router broken", "type": "repair"}}
	w := must[*workorder.WorkOrder](t)(e.svc.Save(ctx, e.tenant, e.agentA1, in))
	if w.Values["status"] != "open" || w.Values["customer_id"] != cust.ID || w.Values["call_id"] != "call-1" ||
		w.OwnerID != e.agentA1.ID || w.Values["team_id"] != e.agentA1.TeamID {
		t.Fatalf("saved = %+v", w)
	}
	_, err := e.svc.Save(ctx, e.tenant, e.agentA1, in)
	if fault.CodeOf(err) != fault.Conflict || !strings.Contains(fault.MessageOf(err), fmt.Sprintf("#%d", w.ID)) {
		t.Fatalf("second save of one call: %v", err)
	}
	if p := must[*workorder.Page](t)(e.svc.List(ctx, e.tenant, e.qa, workorder.Filter{CallID: "call-1"})); p.Total != 1 {
		t.Fatalf("work orders of call-1 = %d, want 1", p.Total)
	}
	// Racing saves of one call: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.svc.Save(ctx, e.tenant, e.agentA2, workorder.Input{CallID: "call-2", Values: map[string]any{"subject": "race"}})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case fault.CodeOf(err) == fault.Conflict:
		default:
			t.Fatalf("racing save: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing saves of one call won, want 1", won)
	}
	// Mode many: a second save is fine.
	o := must[*dataobject.Object](t)(e.objects.Object(ctx, e.tenant, workorder.ObjectKey))
	must[*dataobject.Object](t)(e.objects.UpdateObject(ctx, e.tenant, o.Key, dataobject.ObjectOptions{NameEN: o.NameEN, NameZH: o.NameZH,
		IsDefault: true, LogObject: o.LogObject, EditColumns: o.EditColumns, SaveMode: dataobject.SaveMany, Audit: true}, e.adminActor()))
	must[*workorder.WorkOrder](t)(e.svc.Save(ctx, e.tenant, e.agentA1, in))
	if _, err := e.svc.Save(ctx, e.tenant, e.agentA1, workorder.Input{Values: map[string]any{"subject": "x", "owner_id": e.agentA2.ID}}); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("save for another agent: %v", err)
	}
	// Bad input changes nothing and says what is wrong.
	_, err = e.svc.Save(ctx, e.tenant, e.agentA1, workorder.Input{Values: map[string]any{"status": "bogus"}})
	if fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), "subject: is required") || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("invalid save: %v", err)
	}
}

func (e *env) adminActor() account.Actor {
	return account.Actor{UserID: e.admin.ID, Name: e.admin.Name()}
}

func TestEditHistoryOperationLogAndConflict(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := must[*workorder.WorkOrder](t)(e.svc.Save(ctx, e.tenant, e.agentA1, workorder.Input{CallID: "c9", Values: map[string]any{"subject": "Bill too high"}}))
	// The team lead and the agent both open it; the lead saves first.
	w2 := must[*workorder.WorkOrder](t)(e.svc.Update(ctx, e.tenant, e.lead, "", w.ID, map[string]any{"status": "pending", "handling_result": "Called billing"}, w.UpdatedAt))
	if w2.Values["status"] != "pending" || !w2.UpdatedAt.After(w.UpdatedAt) {
		t.Fatalf("updated = %+v", w2)
	}
	_, err := e.svc.Update(ctx, e.tenant, e.agentA1, "", w.ID, map[string]any{"status": "closed"}, w.UpdatedAt)
	if fault.CodeOf(err) != fault.Conflict || !strings.Contains(fault.MessageOf(err), e.lead.Name()) {
		t.Fatalf("stale edit: %v", err)
	}
	now := must[*workorder.WorkOrder](t)(e.svc.Get(ctx, e.tenant, e.agentA1, "", w.ID))
	if now.Values["status"] != "pending" {
		t.Fatalf("stale edit overwrote: status = %v", now.Values["status"])
	}
	for _, k := range []string{"owner_id", "team_id", "call_id"} {
		if _, err := e.svc.Update(ctx, e.tenant, e.agentA1, "", w.ID, map[string]any{k: 1}, now.UpdatedAt); fault.CodeOf(err) != fault.Invalid {
			t.Fatalf("edit of %s: %v", k, err)
		}
	}
	_, err = e.svc.Update(ctx, e.tenant, e.agentA1, "", w.ID, map[string]any{"status": "closed"}, time.Time{})
	if fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("edit without version: %v", err)
	}
	must[*workorder.WorkOrder](t)(e.svc.Update(ctx, e.tenant, e.agentA1, "", w.ID, map[string]any{"status": "resolved"}, now.UpdatedAt))

	hist := must[[]dataobject.HistoryEntry](t)(e.svc.History(ctx, e.tenant, e.agentA1, "", w.ID))
	if len(hist) != 3 || hist[0].Actor != e.agentA1.Name() || hist[1].Actor != e.lead.Name() || hist[2].Action != "create" {
		t.Fatalf("history = %+v", hist)
	}
	got := map[string]string{}
	for _, c := range hist[1].Changes {
		got[c.Field] = fmt.Sprint(c.Old, "→", c.New)
	}
	if got["status"] != "open→pending" || got["handling_result"] != "<nil>→Called billing" || len(got) != 2 {
		t.Fatalf("changes of the lead's edit = %v", got)
	}
	logs := must[[]workorder.LogEntry](t)(e.svc.OperationLog(ctx, e.tenant, e.agentA1, "", w.ID))
	if len(logs) != 3 || logs[0].Action != "update" || logs[2].Action != "create" || logs[1].Actor != e.lead.Name() ||
		logs[0].Snapshot["status"] != "resolved" || logs[2].Snapshot["subject"] != "Bill too high" {
		t.Fatalf("operation log = %+v", logs)
	}
}

func TestRoleScope(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	save := func(u *account.User, subject string) *workorder.WorkOrder {
		return must[*workorder.WorkOrder](t)(e.svc.Save(ctx, e.tenant, u, workorder.Input{Values: map[string]any{"subject": subject}}))
	}
	a1, a2, b1 := save(e.agentA1, "a1's"), save(e.agentA2, "a2's"), save(e.agentB1, "b1's")
	cases := []struct {
		who  *account.User
		sees []*workorder.WorkOrder
		not  []*workorder.WorkOrder
	}{
		{e.agentA1, []*workorder.WorkOrder{a1}, []*workorder.WorkOrder{a2, b1}},
		{e.agentB1, []*workorder.WorkOrder{b1}, []*workorder.WorkOrder{a1, a2}},
		{e.lead, []*workorder.WorkOrder{a1, a2}, []*workorder.WorkOrder{b1}},
		{e.qa, []*workorder.WorkOrder{a1, a2, b1}, nil},
		{e.admin, []*workorder.WorkOrder{a1, a2, b1}, nil},
	}
	for _, c := range cases {
		p := must[*workorder.Page](t)(e.svc.List(ctx, e.tenant, c.who, workorder.Filter{}))
		if p.Total != len(c.sees) || len(p.Items) != len(c.sees) {
			t.Errorf("%s lists %d, want %d", c.who.Username, p.Total, len(c.sees))
		}
		for _, w := range c.sees {
			if _, err := e.svc.Get(ctx, e.tenant, c.who, "", w.ID); err != nil {
				t.Errorf("%s cannot open %q: %v", c.who.Username, w.Values["subject"], err)
			}
		}
		for _, w := range c.not {
			if _, err := e.svc.Get(ctx, e.tenant, c.who, "", w.ID); fault.CodeOf(err) != fault.NotFound {
				t.Errorf("%s opens %q: %v", c.who.Username, w.Values["subject"], err)
			}
			if _, err := e.svc.Update(ctx, e.tenant, c.who, "", w.ID, map[string]any{"subject": "x"}, w.UpdatedAt); fault.CodeOf(err) != fault.NotFound {
				t.Errorf("%s edits %q: %v", c.who.Username, w.Values["subject"], err)
			}
			if _, err := e.svc.History(ctx, e.tenant, c.who, "", w.ID); fault.CodeOf(err) != fault.NotFound {
				t.Errorf("%s reads history of %q: %v", c.who.Username, w.Values["subject"], err)
			}
		}
	}
	// Filters and search.
	p := must[*workorder.Page](t)(e.svc.List(ctx, e.tenant, e.qa, workorder.Filter{Search: "A2'", AgentID: e.agentA2.ID}))
	if p.Total != 1 || p.Items[0].ID != a2.ID {
		t.Fatalf("search = %+v", p)
	}
	if p := must[*workorder.Page](t)(e.svc.List(ctx, e.tenant, e.qa, workorder.Filter{Search: "%"})); p.Total != 0 {
		t.Fatalf("search %% matched %d: wildcards must be literal", p.Total)
	}
	if _, err := e.svc.List(ctx, e.tenant, e.qa, workorder.Filter{Limit: 100000}); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("huge page: %v", err)
	}
}

func TestListAcrossMonths(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	lastMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 14)
	mustOK(t, e.objects.EnsurePartitions(ctx, e.tenant, lastMonth))
	old := must[*workorder.WorkOrder](t)(e.svc.Save(ctx, e.tenant, e.agentA1, workorder.Input{Values: map[string]any{"subject": "old"}}))
	cur := must[*workorder.WorkOrder](t)(e.svc.Save(ctx, e.tenant, e.agentA1, workorder.Input{Values: map[string]any{"subject": "new"}}))
	var partitions []string
	mustOK(t, db.InTenant(ctx, e.pool, e.tenant.Scope(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE obj_workorder SET created_at = $2 WHERE id = $1`, old.ID, lastMonth); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT tableoid::regclass::text FROM obj_workorder ORDER BY id`)
		if err != nil {
			return err
		}
		partitions, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}))
	want := []string{"obj_workorder" + lastMonth.Format("_p200601"), "obj_workorder" + now.Format("_p200601")}
	if fmt.Sprint(partitions) != fmt.Sprint(want) {
		t.Fatalf("partitions = %v, want %v", partitions, want)
	}
	p := must[*workorder.Page](t)(e.svc.List(ctx, e.tenant, e.agentA1, workorder.Filter{}))
	if p.Total != 2 || p.Items[0].ID != cur.ID || p.Items[1].ID != old.ID {
		t.Fatalf("list across months = %+v", p.Items)
	}
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	p = must[*workorder.Page](t)(e.svc.List(ctx, e.tenant, e.agentA1, workorder.Filter{From: monthStart.AddDate(0, -1, 0), To: monthStart}))
	if p.Total != 1 || p.Items[0].ID != old.ID {
		t.Fatalf("last month = %+v", p.Items)
	}
	// An edit of last month's work order stays in its partition and keeps its history.
	must[*workorder.WorkOrder](t)(e.svc.Update(ctx, e.tenant, e.agentA1, "", old.ID, map[string]any{"status": "closed"}, p.Items[0].UpdatedAt))
}

func TestAssignAndCallbacks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := must[*workorder.WorkOrder](t)(e.svc.Save(ctx, e.tenant, e.agentA1, workorder.Input{Values: map[string]any{
		"subject": "Call back", "callback_at": time.Now().Add(-time.Minute).Format(time.RFC3339), "caller_number": "+8613800138000"}}))
	if _, err := e.svc.Assign(ctx, e.tenant, e.agentA1, "", w.ID, workorder.Assignment{AgentID: e.agentA2.ID}, w.UpdatedAt); fault.CodeOf(err) != fault.Forbidden {
		t.Fatalf("agent assigns: %v", err)
	}
	if _, err := e.svc.Assign(ctx, e.tenant, e.lead, "", w.ID, workorder.Assignment{AgentID: e.agentB1.ID}, w.UpdatedAt); fault.CodeOf(err) != fault.Forbidden {
		t.Fatalf("lead assigns outside the team: %v", err)
	}
	due := must[[]*workorder.WorkOrder](t)(e.svc.DueCallbacks(ctx, e.tenant, e.agentA1, time.Now()))
	if len(due) != 1 || due[0].Values["caller_number"] != "+8613800138000" {
		t.Fatalf("a1's due callbacks = %+v", due)
	}
	moved := must[*workorder.WorkOrder](t)(e.svc.Assign(ctx, e.tenant, e.lead, "", w.ID, workorder.Assignment{AgentID: e.agentA2.ID}, w.UpdatedAt))
	if moved.OwnerID != e.agentA2.ID {
		t.Fatalf("owner after assign = %d", moved.OwnerID)
	}
	e.mu.Lock()
	notices := e.notices
	e.mu.Unlock()
	if len(notices) != 1 || notices[0].agentID != e.agentA2.ID || notices[0].typ != workorder.TypeAssigned || notices[0].tenant != "acme" {
		t.Fatalf("notices = %+v", notices)
	}
	if _, err := e.svc.Get(ctx, e.tenant, e.agentA1, "", w.ID); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("former owner still opens it: %v", err)
	}
	if due := must[[]*workorder.WorkOrder](t)(e.svc.DueCallbacks(ctx, e.tenant, e.agentA2, time.Now())); len(due) != 1 {
		t.Fatalf("a2's due callbacks = %d", len(due))
	}
	logs := must[[]workorder.LogEntry](t)(e.svc.OperationLog(ctx, e.tenant, e.agentA2, "", w.ID))
	if len(logs) != 2 || logs[0].Action != "assign" {
		t.Fatalf("operation log = %+v", logs)
	}
	open := must[[]*workorder.WorkOrder](t)(e.svc.OpenForCustomer(ctx, e.tenant, 424242, 5))
	if len(open) != 0 {
		t.Fatalf("open work orders of nobody = %d", len(open))
	}
}

// Running the migration again (a tenant that made these objects itself) changes nothing and
// does not fail: the tenant keeps its own objects.
func TestMigrationKeepsExistingObjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sql, err := os.ReadFile("../db/migrations/tenant/0500_workorder.sql")
	if err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		mustOK(t, db.InTenant(ctx, e.pool, e.tenant.Scope(), func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM data_objects) + (SELECT count(*) FROM data_fields) + (SELECT count(*) FROM codes)`).Scan(&n)
		}))
		return n
	}
	before := count()
	mustOK(t, db.InTenant(ctx, e.pool, e.tenant.Scope(), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, string(sql))
		return err
	}))
	if after := count(); after != before {
		t.Fatalf("catalogue rows %d → %d", before, after)
	}
}
