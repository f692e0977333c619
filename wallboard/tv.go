package wallboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// TVToken is a read-only token URL of a wall display: it shows the queue figures of one
// tenant, nothing else, until a tenant admin revokes it.
type TVToken struct {
	ID        int64
	Name      string
	CreatedBy int64
	CreatedAt time.Time
	RevokedAt time.Time // zero while it works
}

const maxTVName = 100

// CreateTVToken makes a TV token of tenant t; the token itself is returned once and only its
// hash is stored.
func CreateTVToken(ctx context.Context, pool *pgxpool.Pool, t *account.Tenant, name string, by int64) (string, TVToken, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > maxTVName {
		return "", TVToken{}, fault.Errorf(fault.Invalid, "a TV token needs a name of 1–%d characters (where the screen is)", maxTVName)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", TVToken{}, fmt.Errorf("make TV token: %w", err)
	}
	token := "tv_" + base64.RawURLEncoding.EncodeToString(raw)
	hash := sha256.Sum256([]byte(token))
	tk := TVToken{Name: name, CreatedBy: by}
	err := db.InTenant(ctx, pool, t.Scope(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO wallboard_tokens (name, token_hash, created_by) VALUES ($1, $2, $3)
			RETURNING id, created_at`, name, hash[:], by).Scan(&tk.ID, &tk.CreatedAt)
	})
	if err != nil {
		return "", TVToken{}, fmt.Errorf("save TV token %q: %w", name, err)
	}
	return token, tk, nil
}

// ListTVTokens lists tenant t's TV tokens, newest first.
func ListTVTokens(ctx context.Context, pool *pgxpool.Pool, t *account.Tenant) ([]TVToken, error) {
	var out []TVToken
	err := db.InTenant(ctx, pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, name, created_by, created_at, revoked_at FROM wallboard_tokens ORDER BY id DESC`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var tk TVToken
			var revoked *time.Time
			if err := rows.Scan(&tk.ID, &tk.Name, &tk.CreatedBy, &tk.CreatedAt, &revoked); err != nil {
				return err
			}
			tk.RevokedAt = deref(revoked)
			out = append(out, tk)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list TV tokens: %w", err)
	}
	return out, nil
}

// RevokeTVToken ends a TV token: its screen stops at the next connection check.
func RevokeTVToken(ctx context.Context, pool *pgxpool.Pool, t *account.Tenant, id, by int64) error {
	var n int64
	err := db.InTenant(ctx, pool, t.Scope(), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE wallboard_tokens SET revoked_at = now(), revoked_by = $2 WHERE id = $1 AND revoked_at IS NULL`, id, by)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke TV token %d: %w", id, err)
	}
	if n == 0 {
		return fault.Errorf(fault.NotFound, "TV token %d does not exist or is already revoked", id)
	}
	return nil
}

// CheckTVToken says whether token is a live TV token of tenant t.
func CheckTVToken(ctx context.Context, pool *pgxpool.Pool, t *account.Tenant, token string) error {
	if !strings.HasPrefix(token, "tv_") || len(token) > 100 {
		return fault.Errorf(fault.Unauthorized, "not a TV token")
	}
	hash := sha256.Sum256([]byte(token))
	var revoked *time.Time
	err := db.InTenant(ctx, pool, t.Scope(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT revoked_at FROM wallboard_tokens WHERE token_hash = $1`, hash[:]).Scan(&revoked)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fault.Errorf(fault.Unauthorized, "this TV link is not valid")
	case err != nil:
		return fmt.Errorf("check TV token: %w", err)
	case revoked != nil:
		return fault.Errorf(fault.Unauthorized, "this TV link was revoked")
	}
	return nil
}
