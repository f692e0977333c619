package account

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ctid/ctid/fault"
)

// WSTokenTTL is how long a WebSocket token may be used to open a console connection.
const WSTokenTTL = time.Minute

const wsSecretName = "ws_token"

// secret returns the named secret of this database, creating it on first use. Every ctid
// process on the database shares it, so a token made by one is accepted by another.
func (s *Store) secret(ctx context.Context, name string) ([]byte, error) {
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	if b, ok := s.secrets[name]; ok {
		return b, nil
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO platform.secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, fmt.Errorf("create secret %s: %w", name, err)
	}
	var b []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM platform.secrets WHERE name = $1`, name).Scan(&b); err != nil {
		return nil, fmt.Errorf("load secret %s: %w", name, err)
	}
	s.secrets[name] = b
	return b, nil
}

// WSToken makes a short-lived token that opens a console WebSocket as user (for clients that
// cannot send the session cookie).
func (s *Store) WSToken(ctx context.Context, userID int64) (string, time.Time, error) {
	key, err := s.secret(ctx, wsSecretName)
	if err != nil {
		return "", time.Time{}, err
	}
	expires := s.now().Add(WSTokenTTL)
	b := make([]byte, 16, 32)
	binary.BigEndian.PutUint64(b[:8], uint64(userID))
	binary.BigEndian.PutUint64(b[8:16], uint64(expires.Unix()))
	m := hmac.New(sha256.New, key)
	m.Write(b)
	b = append(b, m.Sum(nil)[:16]...)
	return base64.RawURLEncoding.EncodeToString(b), expires, nil
}

// UserByWSToken checks a WebSocket token and returns its user.
func (s *Store) UserByWSToken(ctx context.Context, token string) (*User, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 32 {
		return nil, fault.Errorf(fault.Unauthorized, "malformed WebSocket token")
	}
	key, err := s.secret(ctx, wsSecretName)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write(b[:16])
	if !hmac.Equal(m.Sum(nil)[:16], b[16:]) {
		return nil, fault.Errorf(fault.Unauthorized, "WebSocket token not valid")
	}
	if s.now().Unix() >= int64(binary.BigEndian.Uint64(b[8:16])) {
		return nil, fault.Errorf(fault.Unauthorized, "WebSocket token expired")
	}
	u, err := s.UserByID(ctx, int64(binary.BigEndian.Uint64(b[:8])))
	if err != nil {
		return nil, fault.Errorf(fault.Unauthorized, "WebSocket token of an unknown user")
	}
	if u.Disabled {
		return nil, fault.Errorf(fault.Unauthorized, "this account is disabled")
	}
	return u, nil
}
