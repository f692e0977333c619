package dataobject_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
)

// Every change to the catalogue is in the tenant's audit log with who made it and what
// changed; a refused change leaves no entry.
func TestCatalogueChangesAreAudited(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	admin := account.Actor{Name: "cfg-admin"}
	before := len(must[[]account.AuditEntry](t)(e.accounts.AuditLog(ctx, e.tenant.ID, 100)))

	must[*dataobject.Object](t)(e.store.CreateObject(ctx, e.tenant, dataobject.NewObject{Key: "complaint", Kind: dataobject.KindBaseData,
		NameEN: "Complaints", Fields: []dataobject.NewField{{Key: "subject", Type: dataobject.TypeText, MaxLength: 80}}}, admin))
	must[*dataobject.Object](t)(e.store.UpdateObject(ctx, e.tenant, "complaint", dataobject.ObjectOptions{NameEN: "Complaints",
		NameZH: "投诉", EditColumns: 3}, admin))
	must[*dataobject.Field](t)(e.store.AddField(ctx, e.tenant, "complaint", dataobject.NewField{Key: "body", Type: dataobject.TypeLongText}, admin))
	must[*dataobject.Field](t)(e.store.UpdateField(ctx, e.tenant, "complaint", "subject", dataobject.FieldOptions{LabelEN: "Subject",
		Required: true}, admin))
	must[[]string](t)(e.store.RenameField(ctx, e.tenant, "complaint", "body", "details", false, admin))
	must[[]string](t)(e.store.HideField(ctx, e.tenant, "complaint", "details", false, admin))
	mustOK(t, e.store.UnhideField(ctx, e.tenant, "complaint", "details", admin))
	must[*dataobject.CodeTable](t)(e.store.CreateCodeTable(ctx, e.tenant, "reason", "Reason", "", admin))
	mustOK(t, e.store.RenameCodeTable(ctx, e.tenant, "reason", "Reason", "原因", admin))
	mustOK(t, e.store.PutCode(ctx, e.tenant, "reason", dataobject.Code{Code: "late", LabelEN: "Late", Enabled: true}, admin))
	mustOK(t, e.store.PutCode(ctx, e.tenant, "reason", dataobject.Code{Code: "late", LabelEN: "Too late", Enabled: false}, admin))
	// refused: nothing changes, nothing is logged
	if _, err := e.store.AddField(ctx, e.tenant, "complaint", dataobject.NewField{Key: `x"; drop table x; --`, Type: dataobject.TypeText}, admin); err == nil {
		t.Fatal("a bad field key was accepted")
	}
	if _, err := e.store.RenameField(ctx, e.tenant, "complaint", "nope", "other", false, admin); err == nil {
		t.Fatal("renaming a missing field worked")
	}

	log := must[[]account.AuditEntry](t)(e.accounts.AuditLog(ctx, e.tenant.ID, 100))
	log = log[:len(log)-before] // newest first; the tenant's own creation is older
	want := []struct {
		action, target string
		detail         string // fmt of one detail entry, "" for none checked
		key            string
	}{
		{dataobject.AuditCodePut, "reason/late", "map[new:Too late old:Late]", "label_en"},
		{dataobject.AuditCodePut, "reason/late", "map[enabled:true label_en:Late label_zh: parent: position:0]", "created"},
		{dataobject.AuditCodeTableRename, "reason", "map[new:原因 old:]", "name_zh"},
		{dataobject.AuditCodeTableCreate, "reason", "Reason", "name_en"},
		{dataobject.AuditFieldUnhide, "complaint.details", "", ""},
		{dataobject.AuditFieldHide, "complaint.details", "", ""},
		{dataobject.AuditFieldRename, "complaint.body", "map[new:details old:body]", "key"},
		{dataobject.AuditFieldUpdate, "complaint.subject", "map[new:true old:false]", "required"},
		{dataobject.AuditFieldAdd, "complaint.body", "long_text", "type"},
		{dataobject.AuditObjectUpdate, "complaint", "map[new:3 old:2]", "edit_columns"},
		{dataobject.AuditObjectCreate, "complaint", "[subject text]", "fields"},
	}
	if len(log) != len(want) {
		for _, l := range log {
			t.Logf("%s %s %v", l.Action, l.Target, l.Detail)
		}
		t.Fatalf("%d audit entries, want %d", len(log), len(want))
	}
	for i, w := range want {
		l := log[i]
		if l.Action != w.action || l.Target != w.target || l.Actor != admin.Name || l.At.IsZero() {
			t.Errorf("entry %d: %s %s by %q at %v, want %s %s by %q", i, l.Action, l.Target, l.Actor, l.At, w.action, w.target, admin.Name)
			continue
		}
		if w.key != "" && fmt.Sprint(l.Detail[w.key]) != w.detail {
			t.Errorf("entry %d (%s): detail %s = %v, want %s (all: %v)", i, w.action, w.key, l.Detail[w.key], w.detail, l.Detail)
		}
	}
	// an update lists only what changed
	if upd := log[9].Detail; len(upd) != 2 || upd["name_zh"] == nil {
		t.Errorf("object update detail %v: want name_zh and edit_columns only", upd)
	}
}
