package dataobject

import (
	"context"
	"reflect"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
)

// Audit-log actions of catalogue changes (account.AuditLog lists them with who and when).
const (
	AuditObjectCreate    = "dataobject.object.create"
	AuditObjectUpdate    = "dataobject.object.update"
	AuditFieldAdd        = "dataobject.field.add"
	AuditFieldUpdate     = "dataobject.field.update"
	AuditFieldHide       = "dataobject.field.hide"
	AuditFieldUnhide     = "dataobject.field.unhide"
	AuditFieldRename     = "dataobject.field.rename"
	AuditCodeTableCreate = "dataobject.code_table.create"
	AuditCodeTableRename = "dataobject.code_table.rename"
	AuditCodePut         = "dataobject.code.put"
)

// catalogueChange is the audit-log entry of one change to a tenant's catalogue.
type catalogueChange struct {
	action string
	target string // object key, object.field, code table key, table/code
	detail map[string]any
}

// changeCatalogue runs fn, a change to t's catalogue, in a transaction scoped to t and
// writes the audit-log entry fn returns in the same transaction: a change is made and
// logged, or neither. Lookup reads the tenant's catalogue again afterwards, in this
// process and, told by a notification sent at commit, in every other (WatchCatalogue).
func (s *Store) changeCatalogue(ctx context.Context, t *account.Tenant, actor account.Actor, fn func(tx pgx.Tx) (catalogueChange, error)) error {
	schema := t.Scope().Schema
	defer s.forgetLookup(schema)
	return s.inTenant(ctx, t, func(tx pgx.Tx) error {
		c, err := fn(tx)
		if err != nil {
			return err
		}
		if err := announceCatalogueChange(ctx, tx, schema); err != nil {
			return err
		}
		return account.Audit(ctx, tx, t.ID, actor, c.action, c.target, c.detail)
	})
}

// changes lists, for an audit entry, each option whose value differs between before and
// after as {"old": ..., "new": ...}.
func changes(before, after map[string]any) map[string]any {
	out := map[string]any{}
	for k, next := range after {
		if prev := before[k]; !reflect.DeepEqual(prev, next) {
			out[k] = map[string]any{"old": prev, "new": next}
		}
	}
	return out
}

// auditOptions are an object's options as its audit entries show them.
func (o *Object) auditOptions() map[string]any {
	return map[string]any{"name_en": o.NameEN, "name_zh": o.NameZH, "is_default": o.IsDefault, "log_object": o.LogObject,
		"edit_columns": o.EditColumns, "save_mode": string(o.SaveMode), "audit": o.Audit}
}

// auditOptions are a field's options as its audit entries show them.
func (f *Field) auditOptions() map[string]any {
	return map[string]any{"label_en": f.LabelEN, "label_zh": f.LabelZH, "max_length": f.MaxLength, "required": f.Required,
		"unique": f.Unique, "default": f.Default, "searchable": f.Searchable, "in_list": f.InList, "position": f.Position,
		"match_caller": f.MatchCaller}
}
