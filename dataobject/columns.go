package dataobject

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Column is a column of an object's real table, as PostgreSQL has it: what the admin pages
// show next to the catalogue, so an admin sees the table the catalogue made.
type Column struct {
	Name    string
	Type    string // as format_type prints it: "character varying(200)", "bigint", "text[]"
	NotNull bool
}

// TableColumns lists the columns of object key's table in table order.
func (s *Store) TableColumns(ctx context.Context, t *account.Tenant, key string) ([]Column, error) {
	var cols []Column
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
			FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
			ORDER BY a.attnum`, ident(o.Table))
		if err != nil {
			return err
		}
		cols, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Column, error) {
			var c Column
			err := row.Scan(&c.Name, &c.Type, &c.NotNull)
			return c, err
		})
		return err
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "columns of %q", key)
	}
	return cols, nil
}

// FieldUsers names the saved queries that use a field, so an admin sees them before hiding
// or renaming it (nil when the Store has no FieldUsage).
func (s *Store) FieldUsers(ctx context.Context, t *account.Tenant, objectKey, fieldKey string) ([]string, error) {
	if s.opts.FieldUsage == nil {
		return nil, nil
	}
	var users []string
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, objectKey)
		if err != nil {
			return err
		}
		if o.Field(fieldKey) == nil {
			return fault.Errorf(fault.NotFound, "object %q has no field %q", objectKey, fieldKey)
		}
		users, err = s.opts.FieldUsage(ctx, tx, o.Table, fieldKey)
		return err
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "queries using %s.%s", objectKey, fieldKey)
	}
	return users, nil
}
