package db

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Scope names the tenant whose data a transaction may touch.
type Scope struct {
	Schema         string // t_<code>
	ReaderRole     string // the tenant's read-only login role, for report queries
	ReaderPassword string
}

func (s Scope) check() error {
	if !tenantSchemaRE.MatchString(s.Schema) {
		return fmt.Errorf("tenant scope: bad schema name %q", s.Schema)
	}
	return nil
}

// InTenant runs fn in a transaction whose search_path is the tenant's schema (SET LOCAL), so
// unqualified names resolve there and nowhere else. It is the one entry point for
// tenant-scoped writes. fn's error rolls the transaction back.
func InTenant(ctx context.Context, pool *pgxpool.Pool, s Scope, fn func(pgx.Tx) error) error {
	if err := s.check(); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{s.Schema}.Sanitize()); err != nil {
			return fmt.Errorf("tenant scope %s: %w", s.Schema, err)
		}
		return fn(tx)
	})
}

// Reader connection pools are small: report queries are few and short.
const (
	readerMaxConns          = 4
	readerIdleTimeout       = 2 * time.Minute
	defaultStatementTimeout = 30 * time.Second
)

// Readers keeps one small pool per tenant whose connections log in as that tenant's reader
// role. Report and admin-defined queries run there: the session user itself can read only
// its tenant's schema, so no SQL text — not even RESET ROLE — reaches another tenant.
type Readers struct {
	base  *pgxpool.Config
	mu    sync.Mutex
	pools map[string]*pgxpool.Pool
}

// NewReaders prepares reader pools on the server and database of url.
func NewReaders(url string) (*Readers, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.MaxConns = readerMaxConns
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = readerIdleTimeout
	// Report queries are short aggregates whose cost estimates (views over rollups) often pass
	// jit_above_cost: compiling them took seconds, running them milliseconds.
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	return &Readers{base: cfg, pools: map[string]*pgxpool.Pool{}}, nil
}

func (r *Readers) pool(ctx context.Context, s Scope) (*pgxpool.Pool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pools[s.ReaderRole]; ok {
		return p, nil
	}
	cfg := r.base.Copy()
	cfg.ConnConfig.User = s.ReaderRole
	cfg.ConnConfig.Password = s.ReaderPassword
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("reader pool for %s: %w", s.Schema, err)
	}
	r.pools[s.ReaderRole] = p
	return p, nil
}

// ReadOnly runs fn in a READ ONLY transaction on a connection of the tenant's reader role,
// with search_path set to the tenant's schema, SET LOCAL ROLE to the reader and
// statement_timeout applied (0 means the default of 30 s).
func (r *Readers) ReadOnly(ctx context.Context, s Scope, timeout time.Duration, fn func(pgx.Tx) error) error {
	if err := s.check(); err != nil {
		return err
	}
	if s.ReaderRole == "" {
		return fmt.Errorf("tenant scope %s: no reader role", s.Schema)
	}
	if timeout <= 0 {
		timeout = defaultStatementTimeout
	}
	pool, err := r.pool(ctx, s)
	if err != nil {
		return err
	}
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true), set_config('role', $2, true),
			set_config('statement_timeout', $3, true)`,
			pgx.Identifier{s.Schema}.Sanitize(), s.ReaderRole, fmt.Sprint(timeout.Milliseconds()))
		if err != nil {
			return fmt.Errorf("read-only scope %s: %w", s.Schema, err)
		}
		return fn(tx)
	})
}

// Close closes every reader pool.
func (r *Readers) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, p := range r.pools {
		p.Close()
		delete(r.pools, k)
	}
}
