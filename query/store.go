package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// List lists the tenant's queries: the standard templates, then the saved ones, by key.
func (s *Service) List(ctx context.Context, t *account.Tenant) ([]*Definition, error) {
	out := Templates()
	var saved []*Definition
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT definition FROM queries ORDER BY key`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d Definition
			if err := rows.Scan(&d); err != nil {
				return err
			}
			saved = append(saved, &d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list queries of %s: %w", t.Code, err)
	}
	return append(out, saved...), nil
}

// Get finds a query by key: a standard template or a saved one.
func (s *Service) Get(ctx context.Context, t *account.Tenant, key string) (*Definition, error) {
	if d := Template(key); d != nil {
		return d, nil
	}
	var d Definition
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT definition FROM queries WHERE key = $1`, key).Scan(&d)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "query %q does not exist", key)
	}
	if err != nil {
		return nil, fmt.Errorf("load query %q: %w", key, err)
	}
	return &d, nil
}

// Check compiles d against the tenant's catalogue as an admin would run it, so a definition
// that cannot run is refused with an error naming the bad part.
func (s *Service) Check(ctx context.Context, t *account.Tenant, d *Definition) error {
	if err := d.Check(); err != nil {
		return err
	}
	env := &Env{Loc: t.Location(), Viewer: Viewer{Scope: account.ScopeAll}}
	return s.readOnly(ctx, t, d, runTimeout, func(tx pgx.Tx) error {
		p, err := plan(ctx, tx, d, env, Request{})
		if err != nil {
			return err
		}
		// Let PostgreSQL check the whole statement without running it.
		_, err = tx.Exec(ctx, "EXPLAIN "+p.SQL, p.Args...)
		if err != nil {
			return runError(d, err)
		}
		return nil
	})
}

// Save stores d (new or replacing the saved query of its key) after checking that it
// compiles. Standard templates cannot be overwritten: save a copy under another key.
func (s *Service) Save(ctx context.Context, t *account.Tenant, d *Definition, by string) error {
	d.Builtin = false
	if Template(d.Key) != nil {
		return fault.Errorf(fault.Conflict, "query %q is a standard template: save your copy under another key", d.Key)
	}
	if err := s.Check(ctx, t, d); err != nil {
		return err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO queries (key, definition, updated_by) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now(), updated_by = EXCLUDED.updated_by`,
			d.Key, b, by)
		return err
	})
	if err != nil {
		return fmt.Errorf("save query %q: %w", d.Key, err)
	}
	return nil
}

// Delete removes a saved query.
func (s *Service) Delete(ctx context.Context, t *account.Tenant, key string) error {
	if Template(key) != nil {
		return fault.Errorf(fault.Conflict, "query %q is a standard template and cannot be deleted", key)
	}
	var n int64
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM queries WHERE key = $1`, key)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete query %q: %w", key, err)
	}
	if n == 0 {
		return fault.Errorf(fault.NotFound, "query %q does not exist", key)
	}
	return nil
}

// internalTables are ctid's own bookkeeping tables, never queryable.
var internalTables = []string{"queries", "query_tables", "query_sources", "settings", "event_counter"}

// TableChoice is a table of the tenant's schema and whether queries may read it.
type TableChoice struct {
	Name    string `json:"name"`
	Allowed bool   `json:"allowed"`
	Label   Label  `json:"label"`
}

// TableChoices lists the tables and views of the tenant's schema (partitions excluded) with
// their allow-list state, for the admin page.
func (s *Service) TableChoices(ctx context.Context, t *account.Tenant) ([]TableChoice, error) {
	var out []TableChoice
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT c.relname, q.table_name IS NOT NULL, coalesce(q.label_en, ''), coalesce(q.label_zh, '')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN query_tables q ON q.table_name = c.relname
			WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
			ORDER BY c.relname`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c TableChoice
			if err := rows.Scan(&c.Name, &c.Allowed, &c.Label.En, &c.Label.Zh); err != nil {
				return err
			}
			if !slices.Contains(internalTables, c.Name) {
				out = append(out, c)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", t.Code, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// AllowTable puts a table of the tenant's schema on the allow-list (allow) or takes it off.
func (s *Service) AllowTable(ctx context.Context, t *account.Tenant, name string, label Label, allow bool, by string) error {
	if slices.Contains(internalTables, name) {
		return fault.Errorf(fault.Forbidden, "table %q is ctid's own and cannot be queried", name)
	}
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		if !allow {
			_, err := tx.Exec(ctx, `DELETE FROM query_tables WHERE table_name = $1`, name)
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition)`,
			name).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fault.Errorf(fault.NotFound, "table %q does not exist in this tenant", name)
		}
		_, err := tx.Exec(ctx, `INSERT INTO query_tables (table_name, label_en, label_zh, added_by) VALUES ($1, $2, $3, $4)
			ON CONFLICT (table_name) DO UPDATE SET label_en = EXCLUDED.label_en, label_zh = EXCLUDED.label_zh`,
			name, label.En, label.Zh, by)
		return err
	})
	if err != nil && fault.CodeOf(err) == fault.Internal {
		return fmt.Errorf("allow table %q: %w", name, err)
	}
	return err
}
