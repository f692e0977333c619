package account

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/fault"
)

// addrFailureFactor: an address may fail this many times more often than one user.
const addrFailureFactor = 4

// sessionTouchInterval limits how often a session's last-seen time is written.
const sessionTouchInterval = time.Minute

// Login checks a password. Repeated failures for a user or from an address lock that key for
// a while; the error says so and for how long. Unknown tenants are named; unknown users and
// wrong passwords get one message, and take equally long.
func (s *Store) Login(ctx context.Context, tenantCode, username, password, remoteAddr string) (*User, error) {
	tenantCode = strings.TrimSpace(strings.ToLower(tenantCode))
	username = strings.TrimSpace(username)
	userKey := "user:" + tenantCode + "/" + strings.ToLower(username)
	addrKey := "addr:" + remoteAddr
	if err := s.checkLocked(ctx, userKey, addrKey); err != nil {
		return nil, err
	}
	var tenantID int64
	if tenantCode != "" {
		t, err := s.TenantByCode(ctx, tenantCode)
		if err != nil {
			VerifyPassword(dummyHash, password)
			if fault.CodeOf(err) == fault.NotFound {
				if ferr := s.recordFailure(ctx, addrKey, s.limits.MaxFailures*addrFailureFactor); ferr != nil {
					return nil, ferr
				}
				return nil, fault.Errorf(fault.Unauthorized, "tenant %q does not exist", tenantCode)
			}
			return nil, err
		}
		if t.Status != "active" {
			return nil, fault.Errorf(fault.Forbidden, "tenant %q is %s", tenantCode, t.Status)
		}
		tenantID = t.ID
	}
	var id int64
	var hash string
	var disabled bool
	err := s.pool.QueryRow(ctx, `SELECT id, password_hash, disabled FROM platform.users
		WHERE tenant_id IS NOT DISTINCT FROM NULLIF($1, 0) AND lower(username) = lower($2)`, tenantID, username).Scan(&id, &hash, &disabled)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("login: %w", err)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		hash = dummyHash
	}
	if !VerifyPassword(hash, password) || id == 0 {
		if err := s.recordFailure(ctx, userKey, s.limits.MaxFailures); err != nil {
			return nil, err
		}
		if err := s.recordFailure(ctx, addrKey, s.limits.MaxFailures*addrFailureFactor); err != nil {
			return nil, err
		}
		return nil, fault.Errorf(fault.Unauthorized, "wrong username or password")
	}
	if disabled {
		return nil, fault.Errorf(fault.Forbidden, "this account is disabled")
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM platform.login_failures WHERE key = $1`, userKey); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return s.UserByID(ctx, id)
}

func (s *Store) checkLocked(ctx context.Context, keys ...string) error {
	var until *time.Time
	err := s.pool.QueryRow(ctx, `SELECT max(locked_until) FROM platform.login_failures
		WHERE key = ANY($1) AND locked_until > $2`, keys, s.now()).Scan(&until)
	if err != nil {
		return fmt.Errorf("check login lockout: %w", err)
	}
	if until != nil {
		wait := int(math.Ceil(until.Sub(s.now()).Minutes()))
		return fault.Errorf(fault.TooMany, "too many failed logins: locked, try again in %d minute(s)", max(wait, 1))
	}
	return nil
}

// recordFailure counts a failed login for key; the limit-th failure within the window locks it.
func (s *Store) recordFailure(ctx context.Context, key string, limit int) error {
	now := s.now()
	_, err := s.pool.Exec(ctx, `
		INSERT INTO platform.login_failures AS f (key, failures, first_at) VALUES ($1, 1, $2)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN f.first_at < $2 - $3::interval THEN 1 ELSE f.failures + 1 END,
			first_at = CASE WHEN f.first_at < $2 - $3::interval THEN $2 ELSE f.first_at END`,
		key, now, s.limits.Window)
	if err != nil {
		return fmt.Errorf("record failed login: %w", err)
	}
	_, err = s.pool.Exec(ctx, `UPDATE platform.login_failures SET locked_until = $2::timestamptz + $3::interval
		WHERE key = $1 AND failures >= $4`, key, now, s.limits.Lockout, limit)
	if err != nil {
		return fmt.Errorf("record failed login: %w", err)
	}
	return nil
}

// newToken returns a random token and the SHA-256 hash that is stored in its place.
func newToken(prefix string) (token string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("random token: %w", err)
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token), nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Session is a signed-in browser.
type Session struct {
	User      *User
	ExpiresAt time.Time
	token     string
}

// CSRFToken is the token that state-changing forms of this session must carry. It is derived
// from the session token, so it needs no storage and dies with the session.
func (s *Session) CSRFToken() string { return CSRFTokenFor(s.token) }

// CSRFTokenFor derives the CSRF token of a session or pre-login token.
func CSRFTokenFor(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("ctid csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CreateSession starts a session for user and returns its token (for the cookie).
func (s *Store) CreateSession(ctx context.Context, userID int64, remoteAddr, userAgent string) (string, error) {
	token, hash, err := newToken("")
	if err != nil {
		return "", err
	}
	now := s.now()
	if len(userAgent) > 200 {
		userAgent = userAgent[:200]
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO platform.sessions (token_hash, user_id, created_at, expires_at, last_seen_at, remote_addr, user_agent)
		VALUES ($1, $2, $3, $4, $3, $5, $6)`, hash, userID, now, now.Add(s.sessionTTL), remoteAddr, userAgent)
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	// Expired sessions are swept as new ones start; the index on expires_at keeps it cheap.
	if _, err := s.pool.Exec(ctx, `DELETE FROM platform.sessions WHERE expires_at < $1`, now); err != nil {
		return "", fmt.Errorf("sweep sessions: %w", err)
	}
	return token, nil
}

// SessionByToken finds the live session of a cookie's token. An unknown or expired session is
// an Unauthorized error.
func (s *Store) SessionByToken(ctx context.Context, token string) (*Session, error) {
	if token == "" {
		return nil, fault.Errorf(fault.Unauthorized, "not signed in")
	}
	var userID int64
	var expires, lastSeen time.Time
	err := s.pool.QueryRow(ctx, `SELECT user_id, expires_at, last_seen_at FROM platform.sessions WHERE token_hash = $1`,
		hashToken(token)).Scan(&userID, &expires, &lastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.Unauthorized, "session unknown or signed out")
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	now := s.now()
	if !now.Before(expires) {
		return nil, fault.Errorf(fault.Unauthorized, "session expired")
	}
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, fault.Errorf(fault.Unauthorized, "this account is disabled")
	}
	if now.Sub(lastSeen) > sessionTouchInterval {
		if _, err := s.pool.Exec(ctx, `UPDATE platform.sessions SET last_seen_at = $2 WHERE token_hash = $1`, hashToken(token), now); err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
	}
	return &Session{User: u, ExpiresAt: expires, token: token}, nil
}

// DeleteSession signs a session out.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM platform.sessions WHERE token_hash = $1`, hashToken(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
