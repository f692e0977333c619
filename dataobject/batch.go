package dataobject

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// MaxBatchDelete is the most records one batch delete may mark deleted.
const MaxBatchDelete = 50_000

// AuditBatchDelete is the audit-log action of a batch delete.
const AuditBatchDelete = "records.batch_delete"

// AllowsBatchDelete reports whether records of kind may be deleted in a batch: customers and
// base data. Work orders, QA and operation logs are history that other records refer to.
func AllowsBatchDelete(k Kind) bool { return k == KindCustomer || k == KindBaseData }

// BatchDelete is one multi-record delete.
type BatchDelete struct {
	// Select returns a statement selecting the ids of the records to delete. It runs in
	// the delete's own transaction (search_path set to the tenant's schema), so the rows it
	// picks are the rows deleted.
	Select func(ctx context.Context, tx pgx.Tx) (sql string, args []any, err error)
	Actor  account.Actor
	// Target and Detail go to the audit entry (a query's key, its filter); the object, the
	// count and the ids are added.
	Target string
	Detail map[string]any
	// DryRun counts the records the delete would mark and changes nothing (the
	// confirmation step).
	DryRun bool
}

// DeleteMany marks every record that b selects deleted, as Delete does one record, in one
// transaction with one audit-log entry (who, what, count, ids). It returns the ids marked
// (or, for a dry run, that would be). Only objects whose kind allows it (customers, base
// data) take batch deletes; more than MaxBatchDelete records are refused whole.
func (s *Store) DeleteMany(ctx context.Context, t *account.Tenant, key string, b BatchDelete) ([]int64, error) {
	var ids []int64
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		if !AllowsBatchDelete(o.Kind) {
			return fault.Errorf(fault.Forbidden, "records of %s object %q cannot be deleted in a batch", o.Kind, o.Key)
		}
		sel, args, err := b.Select(ctx, tx)
		if err != nil {
			return err
		}
		n := strconv.Itoa(len(args) + 1)
		stmt := "SELECT id FROM " + ident(o.Table) + " WHERE deleted_at IS NULL AND id IN (" + sel + ") ORDER BY id LIMIT $" + n
		if !b.DryRun {
			// Lock the rows first so that none changes between selection and update.
			stmt += " FOR UPDATE"
		}
		rows, err := tx.Query(ctx, stmt, append(args, MaxBatchDelete+1)...)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if len(ids) > MaxBatchDelete {
			return fault.Errorf(fault.Invalid, "more than %d records match: narrow the conditions and delete in parts", MaxBatchDelete)
		}
		if b.DryRun || len(ids) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, "UPDATE "+ident(o.Table)+" SET deleted_at = now(), updated_at = now(), updated_by = NULLIF($2, 0) WHERE id = ANY($1)",
			ids, b.Actor.UserID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM phone_keys WHERE object_id = $1 AND record_id = ANY($2)`, o.ID, ids); err != nil {
			return err
		}
		if o.Audit {
			if _, err := tx.Exec(ctx, `INSERT INTO record_history (object_id, record_id, action, actor_id, actor)
				SELECT $1, r, 'delete', NULLIF($3, 0), $4 FROM unnest($2::bigint[]) AS r`, o.ID, ids, b.Actor.UserID, b.Actor.Name); err != nil {
				return err
			}
		}
		detail := map[string]any{"object": o.Key, "count": len(ids), "ids": ids}
		for k, v := range b.Detail {
			detail[k] = v
		}
		return account.Audit(ctx, tx, t.ID, b.Actor, AuditBatchDelete, b.Target, detail)
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "batch delete of %s records", key)
	}
	return ids, nil
}

// ObjectOfTable finds the data object whose table is table (a query's source); NotFound when
// the table is not a data object's.
func (s *Store) ObjectOfTable(ctx context.Context, t *account.Tenant, table string) (*Object, error) {
	objs, err := s.Objects(ctx, t)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.Table == table {
			return o, nil
		}
	}
	return nil, fault.Errorf(fault.NotFound, "table %q is not a data object's", table)
}
