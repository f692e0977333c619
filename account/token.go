package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/fault"
)

// tokenPrefix marks ctid API tokens, so that secret scanners and people recognise them.
const tokenPrefix = "ctid_"

// APIToken describes a bearer token for /api/v1 (never the token itself: only its hash is kept).
type APIToken struct {
	ID         int64
	Name       string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// CreateToken makes an API token that acts as user; ttl 0 means it does not expire. The token
// is returned once and cannot be read back.
func (s *Store) CreateToken(ctx context.Context, userID int64, name string, ttl time.Duration) (string, *APIToken, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", nil, fault.Errorf(fault.Invalid, "token name must be 1–100 characters")
	}
	token, hash, err := newToken(tokenPrefix)
	if err != nil {
		return "", nil, err
	}
	var expires *time.Time
	if ttl > 0 {
		e := s.now().Add(ttl)
		expires = &e
	}
	t := APIToken{Name: name, ExpiresAt: expires}
	err = s.pool.QueryRow(ctx, `INSERT INTO platform.api_tokens (user_id, name, token_hash, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at`, userID, name, hash, expires, s.now()).Scan(&t.ID, &t.CreatedAt)
	if err != nil {
		return "", nil, fmt.Errorf("create API token: %w", err)
	}
	return token, &t, nil
}

// UserByToken finds the user a bearer token acts as. Unknown, revoked and expired tokens are
// Unauthorized errors.
func (s *Store) UserByToken(ctx context.Context, token string) (*User, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return nil, fault.Errorf(fault.Unauthorized, "not a ctid API token")
	}
	var id, userID int64
	var expires, revoked *time.Time
	err := s.pool.QueryRow(ctx, `SELECT id, user_id, expires_at, revoked_at FROM platform.api_tokens WHERE token_hash = $1`,
		hashToken(token)).Scan(&id, &userID, &expires, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.Unauthorized, "unknown API token")
	}
	if err != nil {
		return nil, fmt.Errorf("load API token: %w", err)
	}
	switch {
	case revoked != nil:
		return nil, fault.Errorf(fault.Unauthorized, "API token revoked")
	case expires != nil && !s.now().Before(*expires):
		return nil, fault.Errorf(fault.Unauthorized, "API token expired")
	}
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, fault.Errorf(fault.Unauthorized, "this account is disabled")
	}
	if _, err := s.pool.Exec(ctx, `UPDATE platform.api_tokens SET last_used_at = $2 WHERE id = $1`, id, s.now()); err != nil {
		return nil, fmt.Errorf("touch API token: %w", err)
	}
	return u, nil
}

// ListTokens lists a user's API tokens, newest first.
func (s *Store) ListTokens(ctx context.Context, userID int64) ([]APIToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, created_at, expires_at, last_used_at, revoked_at
		FROM platform.api_tokens WHERE user_id = $1 ORDER BY id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[APIToken])
}

// RevokeToken revokes one of the user's tokens; another user's token is NotFound.
func (s *Store) RevokeToken(ctx context.Context, userID, tokenID int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE platform.api_tokens SET revoked_at = coalesce(revoked_at, $3)
		WHERE id = $1 AND user_id = $2`, tokenID, userID, s.now())
	if err != nil {
		return fmt.Errorf("revoke API token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fault.Errorf(fault.NotFound, "API token %d does not exist", tokenID)
	}
	return nil
}
