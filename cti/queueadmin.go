package cti

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/db"
)

// ListQueues reads a tenant's queues with their settings and caller priorities, by name.
func ListQueues(ctx context.Context, pool *pgxpool.Pool, tenant string) ([]Queue, error) {
	var names []string
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT name FROM queues ORDER BY name`)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list queues of %s: %w", tenant, err)
	}
	out := make([]Queue, 0, len(names))
	for _, name := range names {
		q, _, err := loadQueue(ctx, pool, tenant, name)
		if err != nil {
			return nil, err
		}
		out = append(out, *q)
	}
	return out, nil
}

// Queue reads one queue (NotFound when the tenant has none of that name).
func (s *Service) Queue(ctx context.Context, tenant, name string) (*Queue, error) {
	q, _, err := loadQueue(ctx, s.pool, tenant, name)
	return q, err
}

// Queues lists a tenant's queues (ListQueues).
func (s *Service) Queues(ctx context.Context, tenant string) ([]Queue, error) {
	return ListQueues(ctx, s.pool, tenant)
}
