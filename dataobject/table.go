package dataobject

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
)

// partitionsAhead is how many months of partitions exist beyond the current one, so a
// missed maintenance run never sends rows to the default partition.
const partitionsAhead = 3

// createTableSQL is the table of a new object with the system columns only; fields are
// added one ALTER TABLE at a time. bigserial, not identity: PostgreSQL before 17 has no
// identity columns on partitioned tables.
func createTableSQL(table string, partitioned bool) string {
	sql := "CREATE TABLE " + ident(table) + ` (
	id         bigserial,
	created_at timestamptz NOT NULL DEFAULT now(),
	created_by bigint,
	updated_at timestamptz NOT NULL DEFAULT now(),
	updated_by bigint,
	owner_id   bigint,
	deleted_at timestamptz,
	`
	if partitioned {
		// A partitioned table's keys must hold the partition key.
		return sql + "PRIMARY KEY (id, created_at)\n) PARTITION BY RANGE (created_at)"
	}
	return sql + "PRIMARY KEY (id)\n)"
}

func systemIndexSQL(table string) []string {
	t := ident(table)
	return []string{
		"CREATE INDEX " + ident(table+"_created_at") + " ON " + t + " (created_at)",
		"CREATE INDEX " + ident(table+"_owner") + " ON " + t + " (owner_id, created_at)",
	}
}

// EnsurePartitions creates the monthly partitions of every partitioned object of t from
// this month to partitionsAhead months ahead. ctid runs it at start and daily.
func (s *Store) EnsurePartitions(ctx context.Context, t *account.Tenant, now time.Time) error {
	return s.inTenant(ctx, t, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT table_name FROM data_objects WHERE partitioned ORDER BY id`)
		if err != nil {
			return err
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, table := range tables {
			if err := ensurePartitions(ctx, tx, table, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// ensurePartitions creates table's default partition and its monthly partitions (UTC
// months) from now's month to partitionsAhead months later, where missing.
func ensurePartitions(ctx context.Context, tx pgx.Tx, table string, now time.Time) error {
	stmts := []string{"CREATE TABLE IF NOT EXISTS " + ident(table+"_default") + " PARTITION OF " + ident(table) + " DEFAULT"}
	month := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i <= partitionsAhead; i++ {
		from, to := month.AddDate(0, i, 0), month.AddDate(0, i+1, 0)
		// The bounds are our own formatted times, not user input.
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')",
			ident(table+from.Format("_p200601")), ident(table), from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("partitions of %s: %w", table, err)
		}
	}
	return nil
}
