package cti

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// AuditFunc records an admin change in the audit log inside the change's own transaction
// (web passes account.Audit with the acting user), so the entry is written if and only if
// the change is. nil records nothing (the command line, tests).
type AuditFunc func(ctx context.Context, tx pgx.Tx) error

func (f AuditFunc) record(ctx context.Context, tx pgx.Tx) error {
	if f == nil {
		return nil
	}
	return f(ctx, tx)
}

// QueueRefs is what still routes calls to a queue: numbers, and queues overflowing to it.
type QueueRefs struct {
	Numbers    []string
	OverflowOf []string
}

// Empty reports whether nothing refers to the queue.
func (r QueueRefs) Empty() bool { return len(r.Numbers) == 0 && len(r.OverflowOf) == 0 }

func (r QueueRefs) String() string {
	var parts []string
	if len(r.Numbers) > 0 {
		parts = append(parts, "numbers "+strings.Join(r.Numbers, ", ")+" route to it")
	}
	if len(r.OverflowOf) > 0 {
		parts = append(parts, "queues "+strings.Join(r.OverflowOf, ", ")+" overflow to it")
	}
	return strings.Join(parts, "; ")
}

func queueRefs(ctx context.Context, tx pgx.Tx, name string) (QueueRefs, error) {
	var r QueueRefs
	rows, err := tx.Query(ctx, `SELECT number FROM dids WHERE queue = $1 ORDER BY number`, name)
	if err != nil {
		return r, err
	}
	if r.Numbers, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return r, err
	}
	rows, err = tx.Query(ctx, `SELECT name FROM queues WHERE overflow = 'queue:' || $1 AND name <> $1 ORDER BY name`, name)
	if err != nil {
		return r, err
	}
	r.OverflowOf, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return r, err
}

// QueueReferences says what still refers to a tenant's queue (NotFound: no such queue).
func QueueReferences(ctx context.Context, pool *pgxpool.Pool, tenant, name string) (QueueRefs, error) {
	var refs QueueRefs
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM queues WHERE name = $1`, name).Scan(&one); err != nil {
			return err
		}
		var err error
		refs, err = queueRefs(ctx, tx, name)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return refs, fault.Errorf(fault.NotFound, "queue %q does not exist", name)
	}
	if err != nil {
		return refs, fmt.Errorf("references of queue %q: %w", name, err)
	}
	return refs, nil
}

// DeleteQueue deletes a tenant's queue with its members and priority rules. A queue that a
// number routes to, or that another queue overflows to, is refused (Conflict naming them):
// calls would find nowhere to go. Callers waiting in it when it goes stay in its line
// until their maximum wait sends them to its overflow.
func DeleteQueue(ctx context.Context, pool *pgxpool.Pool, tenant, name string, audit AuditFunc) error {
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		var one int
		// The lock keeps a number from being routed to the queue while it goes.
		if err := tx.QueryRow(ctx, `SELECT 1 FROM queues WHERE name = $1 FOR UPDATE`, name).Scan(&one); err != nil {
			return err
		}
		refs, err := queueRefs(ctx, tx, name)
		if err != nil {
			return err
		}
		if !refs.Empty() {
			return fault.Errorf(fault.Conflict, "queue %s is still in use: %s; route those elsewhere first", name, refs)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM queues WHERE name = $1`, name); err != nil {
			return err
		}
		return audit.record(ctx, tx)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return fault.Errorf(fault.NotFound, "queue %q does not exist", name)
	}
	if err != nil && fault.CodeOf(err) == fault.Internal {
		if strings.Contains(err.Error(), "dids_queue_fkey") { // a number routed to it meanwhile
			return fault.Errorf(fault.Conflict, "queue %s is still in use: a number routes to it", name)
		}
		return fmt.Errorf("delete queue %q: %w", name, err)
	}
	return err
}

// DeleteDID takes a number out of service: its calls get 404 from then on.
func DeleteDID(ctx context.Context, pool *pgxpool.Pool, tenant, number string, audit AuditFunc) error {
	inTenant := func(fn func(pgx.Tx) error) error {
		return db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, fn)
	}
	return deleteAudited(ctx, inTenant, fmt.Sprintf("number %q", number), audit,
		`DELETE FROM dids WHERE number = $1`, number)
}

// DeleteTrunk deletes a tenant's trunk: INVITEs from its source get 403 from then on, and
// agents' outbound calls take the next trunk with an outbound URI (or fail without one).
func DeleteTrunk(ctx context.Context, pool *pgxpool.Pool, tenant, name string, audit AuditFunc) error {
	inTx := func(fn func(pgx.Tx) error) error { return pgx.BeginFunc(ctx, pool, fn) }
	return deleteAudited(ctx, inTx, fmt.Sprintf("trunk %q", name), audit,
		`DELETE FROM platform.sip_trunks k USING platform.tenants t
		WHERE t.id = k.tenant_id AND t.code = $1 AND k.name = $2`, tenant, name)
}

// deleteAudited runs the DELETE sql in a transaction of inTx and records audit in it when a
// row went; what ("number \"801\"") names the row in errors, NotFound when there was none.
func deleteAudited(ctx context.Context, inTx func(func(pgx.Tx) error) error, what string, audit AuditFunc, sql string, args ...any) error {
	var n int64
	err := inTx(func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		return audit.record(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", what, err)
	}
	if n == 0 {
		return fault.Errorf(fault.NotFound, "%s does not exist", what)
	}
	return nil
}

// DeleteQueue deletes a queue (the package function); calls see it at once.
func (s *Service) DeleteQueue(ctx context.Context, tenant, name string, audit AuditFunc) error {
	defer s.queueCfg.clear()
	return DeleteQueue(ctx, s.pool, tenant, name, audit)
}

// QueueReferences says what still refers to a queue (the package function).
func (s *Service) QueueReferences(ctx context.Context, tenant, name string) (QueueRefs, error) {
	return QueueReferences(ctx, s.pool, tenant, name)
}

// DeleteDID takes a number out of service (the package function); calls see it at once.
func (s *Service) DeleteDID(ctx context.Context, tenant, number string, audit AuditFunc) error {
	defer s.dids.clear()
	return DeleteDID(ctx, s.pool, tenant, number, audit)
}

// DeleteTrunk deletes a trunk (the package function); calls see it at once.
func (s *Service) DeleteTrunk(ctx context.Context, tenant, name string, audit AuditFunc) error {
	defer s.trunks.clear()
	return DeleteTrunk(ctx, s.pool, tenant, name, audit)
}
