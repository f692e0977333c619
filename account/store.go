package account

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Limits on guessing passwords; the defaults are the config file's.
type LoginLimits struct {
	MaxFailures int           // failed logins of one user within Window that lock it
	Window      time.Duration // how far back failures count
	Lockout     time.Duration // how long a locked user (or address) waits
}

// DefaultLoginLimits: five failures in 15 minutes lock a user for 15 minutes; an address
// gets four times as many tries, so one office behind NAT is not locked by one person.
var DefaultLoginLimits = LoginLimits{MaxFailures: 5, Window: 15 * time.Minute, Lockout: 15 * time.Minute}

// Store reads and writes accounts in the platform schema.
type Store struct {
	pool       *pgxpool.Pool
	limits     LoginLimits
	sessionTTL time.Duration
	now        func() time.Time

	secretMu sync.Mutex
	secrets  map[string][]byte
}

// DefaultSessionTTL is how long a browser session lasts without activity... and at most.
const DefaultSessionTTL = 12 * time.Hour

// NewStore makes a Store on pool.
func NewStore(pool *pgxpool.Pool, limits LoginLimits, sessionTTL time.Duration) *Store {
	if limits.MaxFailures <= 0 {
		limits = DefaultLoginLimits
	}
	if sessionTTL <= 0 {
		sessionTTL = DefaultSessionTTL
	}
	return &Store{pool: pool, limits: limits, sessionTTL: sessionTTL, now: time.Now, secrets: map[string][]byte{}}
}

// SetClock replaces the store's clock (tests of expiry and lockout).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Pool is the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Actor is who does an admin action, for the audit log.
type Actor struct {
	UserID int64  // 0 for the command line
	Name   string // "cli:root", a username
}

// CLI is the actor of command-line admin actions.
var CLI = Actor{Name: "cli"}

// Audit records an action of another package (a batch delete) in the audit log of tenant
// tenantID, inside that package's transaction tx: the entry is written if and only if the
// action is.
func Audit(ctx context.Context, tx pgx.Tx, tenantID int64, actor Actor, action, target string, detail map[string]any) error {
	return audit(ctx, tx, tenantID, actor, action, target, detail)
}

func audit(ctx context.Context, tx pgx.Tx, tenantID int64, actor Actor, action, target string, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO platform.audit_log (tenant_id, actor_id, actor, action, target, detail)
		VALUES (NULLIF($1, 0), NULLIF($2, 0), $3, $4, $5, $6)`, tenantID, actor.UserID, actor.Name, action, target, b)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AuditEntry is one admin action as recorded.
type AuditEntry struct {
	At     time.Time
	Actor  string
	Action string
	Target string
	Detail map[string]any
}

// AuditLog lists the newest admin actions of a tenant (tenantID 0: platform-wide actions).
func (s *Store) AuditLog(ctx context.Context, tenantID int64, limit int) ([]AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, actor, action, target, detail FROM platform.audit_log
		WHERE tenant_id IS NOT DISTINCT FROM NULLIF($1, 0) ORDER BY id DESC LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.At, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// SessionTTL is how long a browser session lasts.
func (s *Store) SessionTTL() time.Duration { return s.sessionTTL }
