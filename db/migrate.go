package db

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations are plain SQL files named NNNN_what.sql. Platform migrations run once per
// database; tenant migrations run once per tenant schema, with search_path set to it, so a
// new tenant replays them all and an existing one gets the new ones at the next start.
//
// We keep our own small migrator instead of goose because tenant migrations must run inside
// the transaction that provisions the tenant (schema, role, tables: all or nothing) and be
// recorded per schema; each file is applied in its own transaction and recorded with it.
//
//go:embed migrations
var migrationFiles embed.FS

// migrateLock serialises migrations between ctid processes sharing a database.
const migrateLock = 7_422_311_901

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, path.Join("migrations", dir))
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations %s: %w", dir, err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_what.sql", dir, e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join("migrations", dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

const createBookkeeping = `
CREATE SCHEMA IF NOT EXISTS platform;
CREATE TABLE IF NOT EXISTS platform.schema_migrations (
    scope      text NOT NULL,
    version    int NOT NULL,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, version)
)`

// Migrate brings the platform schema and every tenant schema up to date. It is idempotent
// and safe to run from several processes at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (applied int, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLock)); err != nil {
		return 0, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrateLock))
	if _, err := conn.Exec(ctx, createBookkeeping); err != nil {
		return 0, fmt.Errorf("migrate: bookkeeping table: %w", err)
	}
	platform, err := loadMigrations("platform")
	if err != nil {
		return 0, err
	}
	for _, m := range platform {
		n, err := applyOne(ctx, conn.Conn(), "platform", "", m)
		if err != nil {
			return applied, err
		}
		applied += n
	}
	rows, err := conn.Query(ctx, "SELECT schema_name FROM platform.tenants ORDER BY id")
	if err != nil {
		return applied, fmt.Errorf("migrate: list tenants: %w", err)
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return applied, fmt.Errorf("migrate: list tenants: %w", err)
	}
	tenant, err := loadMigrations("tenant")
	if err != nil {
		return applied, err
	}
	for _, schema := range schemas {
		for _, m := range tenant {
			n, err := applyOne(ctx, conn.Conn(), schema, schema, m)
			if err != nil {
				return applied, err
			}
			applied += n
		}
	}
	return applied, nil
}

// applyOne applies m in its own transaction unless scope already has it.
func applyOne(ctx context.Context, conn *pgx.Conn, scope, searchPath string, m migration) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var err error
		n, err = applyInTx(ctx, tx, scope, searchPath, m)
		return err
	})
	return n, err
}

func applyInTx(ctx context.Context, tx pgx.Tx, scope, searchPath string, m migration) (int, error) {
	var done bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM platform.schema_migrations WHERE scope = $1 AND version = $2)",
		scope, m.version).Scan(&done); err != nil {
		return 0, fmt.Errorf("migration %s for %s: %w", m.name, scope, err)
	}
	if done {
		return 0, nil
	}
	if searchPath != "" {
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{searchPath}.Sanitize()); err != nil {
			return 0, fmt.Errorf("migration %s for %s: set search_path: %w", m.name, scope, err)
		}
	}
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return 0, fmt.Errorf("migration %s for %s: %w", m.name, scope, err)
	}
	if searchPath != "" {
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', 'platform', true)"); err != nil {
			return 0, err
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO platform.schema_migrations (scope, version, name) VALUES ($1, $2, $3)",
		scope, m.version, m.name); err != nil {
		return 0, fmt.Errorf("record migration %s for %s: %w", m.name, scope, err)
	}
	return 1, nil
}

// migrateTenant applies every tenant migration to schema inside tx (used when provisioning).
func migrateTenant(ctx context.Context, tx pgx.Tx, schema string) error {
	ms, err := loadMigrations("tenant")
	if err != nil {
		return err
	}
	for _, m := range ms {
		if _, err := applyInTx(ctx, tx, schema, schema, m); err != nil {
			return err
		}
	}
	return nil
}

// ErrPending reports migrations that are embedded but not applied.
var ErrPending = errors.New("migrations pending")

// CheckMigrated returns ErrPending (wrapped, with a count) unless every embedded platform
// migration has been applied: /readyz uses it.
func CheckMigrated(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations("platform")
	if err != nil {
		return err
	}
	var have int
	err = pool.QueryRow(ctx, "SELECT count(*) FROM platform.schema_migrations WHERE scope = 'platform'").Scan(&have)
	if err != nil {
		return fmt.Errorf("read applied migrations: %w", err)
	}
	if have < len(ms) {
		return fmt.Errorf("%w: %d of %d platform migrations applied", ErrPending, have, len(ms))
	}
	return nil
}
