package query

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// Limits of external data sources.
const (
	defaultSourceConns   = 2
	maxSourceConns       = 10
	defaultSourceTimeout = 15 * time.Second
	maxSourceTimeout     = 10 * time.Minute
	sourceConnectTimeout = 5 * time.Second
	sourceIdleTimeout    = 2 * time.Minute
	maxSourceURL         = 2000
	sourceSecretName     = "query_sources"
)

// SourceInput registers an external read-only PostgreSQL data source.
type SourceInput struct {
	Key    string `json:"key"`
	Name   string `json:"name"`
	URL    string `json:"url"`    // postgres://user:password@host:port/db?sslmode=...
	Schema string `json:"schema"` // the schema whose tables queries may read; default public
	// MaxConns caps the source's connection pool (1–10, default 2).
	MaxConns int `json:"max_conns"`
	// StatementTimeoutMS limits every statement run there (default 15 000).
	StatementTimeoutMS int `json:"statement_timeout_ms"`
	// Password, when set, is the login's password (it replaces one in URL): write-only,
	// never shown back.
	Password string `json:"password,omitempty"`
	// KeepPassword keeps the password stored for this source when neither URL nor Password
	// has one (an admin changing a source without typing its password again).
	KeepPassword bool `json:"keep_password,omitempty"`
}

// Audit actions of external sources.
const (
	AuditSourcePut    = "query.source.put"
	AuditSourceDelete = "query.source.delete"
)

// DataSource is a registered external source as admins see it: the URL's password masked.
type DataSource struct {
	Key                string    `json:"key"`
	Name               string    `json:"name"`
	URL                string    `json:"url"`
	Schema             string    `json:"schema"`
	MaxConns           int       `json:"max_conns"`
	StatementTimeoutMS int       `json:"statement_timeout_ms"`
	UpdatedAt          time.Time `json:"updated_at"`
	UpdatedBy          string    `json:"updated_by"`
}

// sourcePools keeps one small pool per registered source, opened on first use.
type sourcePools struct {
	mu    sync.Mutex
	pools map[string]*pgxpool.Pool // schema/key@updated_at
}

func (p *sourcePools) closeAll(prefix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, pool := range p.pools {
		if strings.HasPrefix(k, prefix) {
			pool.Close()
			delete(p.pools, k)
		}
	}
}

// Close closes the pools of external sources.
func (s *Service) Close() { s.sources.closeAll("") }

// maskURL shows a connection URL without its password.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// sourceConfig checks a source's URL and settings and makes its pool configuration.
func sourceConfig(rawURL, schema string, maxConns int, timeout time.Duration) (*pgxpool.Config, error) {
	if len(rawURL) > maxSourceURL {
		return nil, fault.Errorf(fault.Invalid, "connection URL is longer than %d characters", maxSourceURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || (u.Host == "" && u.Query().Get("host") == "") {
		return nil, fault.Errorf(fault.Invalid, "connection URL %q is not valid: want postgres://user:password@host:port/database", maskURL(rawURL))
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "connection URL %q is not valid: check its host, port and options", maskURL(rawURL))
	}
	cfg.MaxConns = int32(maxConns)
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = sourceIdleTimeout
	cfg.ConnConfig.ConnectTimeout = sourceConnectTimeout
	// Every session is read-only by default as well; each run also opens a READ ONLY transaction.
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(timeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	return cfg, nil
}

// PutSource registers (or changes) an external source after connecting to it once, so a
// URL that does not work is refused with the reason.
func (s *Service) PutSource(ctx context.Context, t *account.Tenant, in SourceInput, actor account.Actor) (*DataSource, error) {
	if !keyRE.MatchString(in.Key) {
		return nil, fault.Errorf(fault.Invalid, "data source key %q is not valid: a lower-case letter, then up to 62 of a–z, 0–9, _", in.Key)
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > maxLabel {
		return nil, fault.Errorf(fault.Invalid, "data source %q needs a name of 1–%d characters", in.Key, maxLabel)
	}
	if in.Schema == "" {
		in.Schema = "public"
	}
	if !keyRE.MatchString(in.Schema) {
		return nil, fault.Errorf(fault.Invalid, "data source %q: schema %q is not a plain schema name", in.Key, in.Schema)
	}
	if in.MaxConns == 0 {
		in.MaxConns = defaultSourceConns
	}
	if in.MaxConns < 1 || in.MaxConns > maxSourceConns {
		return nil, fault.Errorf(fault.Invalid, "data source %q: max connections %d is out of range 1–%d", in.Key, in.MaxConns, maxSourceConns)
	}
	var err error
	timeout := time.Duration(in.StatementTimeoutMS) * time.Millisecond
	if timeout == 0 {
		timeout = defaultSourceTimeout
	}
	if timeout < 100*time.Millisecond || timeout > maxSourceTimeout {
		return nil, fault.Errorf(fault.Invalid, "data source %q: statement timeout %d ms is out of range 100–%d", in.Key, in.StatementTimeoutMS, maxSourceTimeout.Milliseconds())
	}
	if in.URL, err = s.withPassword(ctx, t, in); err != nil {
		return nil, err
	}
	cfg, err := sourceConfig(in.URL, in.Schema, in.MaxConns, timeout)
	if err != nil {
		return nil, err
	}
	if err := checkSource(ctx, cfg, in.Schema); err != nil {
		return nil, fault.Errorf(fault.Invalid, "data source %q: %s", in.Key, fault.MessageOf(err))
	}
	sealed, err := s.seal(ctx, []byte(in.URL))
	if err != nil {
		return nil, err
	}
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO query_sources (key, name, url_sealed, url_shown, schema_name, max_conns, statement_timeout_ms, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, url_sealed = EXCLUDED.url_sealed, url_shown = EXCLUDED.url_shown,
				schema_name = EXCLUDED.schema_name, max_conns = EXCLUDED.max_conns, statement_timeout_ms = EXCLUDED.statement_timeout_ms,
				updated_at = now(), updated_by = EXCLUDED.updated_by`,
			in.Key, in.Name, sealed, maskURL(in.URL), in.Schema, in.MaxConns, timeout.Milliseconds(), actor.Name)
		if err != nil {
			return err
		}
		return account.Audit(ctx, tx, t.ID, actor, AuditSourcePut, "query_source:"+in.Key, map[string]any{
			"name": in.Name, "url": maskURL(in.URL), "schema": in.Schema, "max_conns": in.MaxConns,
			"statement_timeout_ms": timeout.Milliseconds()})
	})
	if err != nil {
		return nil, fmt.Errorf("save data source %q: %w", in.Key, err)
	}
	s.sources.closeAll(t.Scope().Schema + "/" + in.Key + "@")
	return s.Source(ctx, t, in.Key)
}

// withPassword is in's URL with the password in force: in.Password if set, else the URL's
// own, else (KeepPassword) the one stored for the source.
func (s *Service) withPassword(ctx context.Context, t *account.Tenant, in SourceInput) (string, error) {
	u, err := url.Parse(in.URL)
	if err != nil || len(in.URL) > maxSourceURL {
		return in.URL, nil // sourceConfig says what is wrong
	}
	user := ""
	if u.User != nil {
		user = u.User.Username()
		if _, ok := u.User.Password(); ok && in.Password == "" {
			return in.URL, nil
		}
	}
	pw := in.Password
	if pw == "" {
		if !in.KeepPassword {
			return in.URL, nil
		}
		stored, err := s.storedURL(ctx, t, in.Key)
		if err != nil {
			return "", err
		}
		if stored == nil || stored.User == nil {
			return in.URL, nil
		}
		var ok bool
		if pw, ok = stored.User.Password(); !ok {
			return in.URL, nil
		}
	}
	if user == "" {
		return "", fault.Errorf(fault.Invalid, "data source %q: a password needs a user name in the URL (postgres://user@host/db)", in.Key)
	}
	u.User = url.UserPassword(user, pw)
	return u.String(), nil
}

// storedURL is the source's stored URL (nil when the source does not exist).
func (s *Service) storedURL(ctx context.Context, t *account.Tenant, key string) (*url.URL, error) {
	var sealed []byte
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT url_sealed FROM query_sources WHERE key = $1`, key).Scan(&sealed)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load data source %q: %w", key, err)
	}
	raw, err := s.open(ctx, sealed)
	if err != nil {
		return nil, fmt.Errorf("data source %q: %w", key, err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		return nil, fmt.Errorf("data source %q: stored URL: %w", key, err)
	}
	return u, nil
}

// CheckSource connects to a registered source afresh (as registering does) and reads its
// catalogue: the number of tables a query there may read, or why it cannot be reached.
func (s *Service) CheckSource(ctx context.Context, t *account.Tenant, key string) (int, error) {
	d, err := s.Source(ctx, t, key)
	if err != nil {
		return 0, err
	}
	u, err := s.storedURL(ctx, t, key)
	if err != nil {
		return 0, err
	}
	cfg, err := sourceConfig(u.String(), d.Schema, d.MaxConns, time.Duration(d.StatementTimeoutMS)*time.Millisecond)
	if err != nil {
		return 0, err
	}
	if err := checkSource(ctx, cfg, d.Schema); err != nil {
		return 0, fault.Errorf(fault.Invalid, "data source %q: %s", key, fault.MessageOf(err))
	}
	cat, err := s.SourceCatalogue(ctx, t, key)
	if err != nil {
		return 0, err
	}
	return len(cat.Tables()), nil
}

// checkSource connects once and checks that the schema exists.
func checkSource(ctx context.Context, cfg *pgxpool.Config, schema string) error {
	ctx, cancel := context.WithTimeout(ctx, sourceConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return fault.Errorf(fault.Invalid, "the server refused the connection: %s", pe.Message)
		}
		return fault.Errorf(fault.Invalid, "cannot connect to %s:%d: the server does not answer or the URL is wrong", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&ok); err != nil {
		return fault.Errorf(fault.Invalid, "the server answered but cannot be read: %v", err)
	}
	if !ok {
		return fault.Errorf(fault.Invalid, "the database has no schema %q", schema)
	}
	return nil
}

const sourceColumns = `key, name, url_shown, schema_name, max_conns, statement_timeout_ms, updated_at, updated_by`

func scanSource(row pgx.Row) (*DataSource, error) {
	var d DataSource
	err := row.Scan(&d.Key, &d.Name, &d.URL, &d.Schema, &d.MaxConns, &d.StatementTimeoutMS, &d.UpdatedAt, &d.UpdatedBy)
	return &d, err
}

// Source loads a registered source (its URL masked).
func (s *Service) Source(ctx context.Context, t *account.Tenant, key string) (*DataSource, error) {
	var d *DataSource
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		var err error
		d, err = scanSource(tx.QueryRow(ctx, `SELECT `+sourceColumns+` FROM query_sources WHERE key = $1`, key))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "data source %q does not exist", key)
	}
	if err != nil {
		return nil, fmt.Errorf("load data source %q: %w", key, err)
	}
	return d, nil
}

// Sources lists the tenant's external sources by key.
func (s *Service) Sources(ctx context.Context, t *account.Tenant) ([]*DataSource, error) {
	out := []*DataSource{}
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+sourceColumns+` FROM query_sources ORDER BY key`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanSource(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list data sources: %w", err)
	}
	return out, nil
}

// DeleteSource removes a source and closes its pool.
func (s *Service) DeleteSource(ctx context.Context, t *account.Tenant, key string, actor account.Actor) error {
	var n int64
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		var shown string
		err := tx.QueryRow(ctx, `DELETE FROM query_sources WHERE key = $1 RETURNING url_shown`, key).Scan(&shown)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		n = 1
		return account.Audit(ctx, tx, t.ID, actor, AuditSourceDelete, "query_source:"+key, map[string]any{"url": shown})
	})
	if err != nil {
		return fmt.Errorf("delete data source %q: %w", key, err)
	}
	if n == 0 {
		return fault.Errorf(fault.NotFound, "data source %q does not exist", key)
	}
	s.sources.closeAll(t.Scope().Schema + "/" + key + "@")
	return nil
}

// sourcePool is the pool of source key, opened on first use.
func (s *Service) sourcePool(ctx context.Context, t *account.Tenant, key string) (*pgxpool.Pool, time.Duration, error) {
	var sealed []byte
	var schema string
	var conns, timeoutMS int
	var updated time.Time
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT url_sealed, schema_name, max_conns, statement_timeout_ms, updated_at FROM query_sources WHERE key = $1`, key).
			Scan(&sealed, &schema, &conns, &timeoutMS, &updated)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fault.Errorf(fault.Invalid, "data source %q does not exist", key)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load data source %q: %w", key, err)
	}
	timeout := time.Duration(timeoutMS) * time.Millisecond
	id := fmt.Sprintf("%s/%s@%d", t.Scope().Schema, key, updated.UnixNano())
	s.sources.mu.Lock()
	defer s.sources.mu.Unlock()
	if p, ok := s.sources.pools[id]; ok {
		return p, timeout, nil
	}
	raw, err := s.open(ctx, sealed)
	if err != nil {
		return nil, 0, fmt.Errorf("data source %q: %w", key, err)
	}
	cfg, err := sourceConfig(string(raw), schema, conns, timeout)
	if err != nil {
		return nil, 0, err
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, 0, fault.Errorf(fault.Unavailable, "data source %q cannot be opened", key)
	}
	s.sources.pools[id] = p
	return p, timeout, nil
}

// sourceReadOnly runs fn in a READ ONLY transaction on source key, with its statement
// timeout (or timeout, when shorter).
func (s *Service) sourceReadOnly(ctx context.Context, t *account.Tenant, key string, timeout time.Duration, fn func(pgx.Tx) error) error {
	pool, limit, err := s.sourcePool(ctx, t, key)
	if err != nil {
		return err
	}
	timeout = min(timeout, limit)
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, fmt.Sprint(timeout.Milliseconds())); err != nil {
			return err
		}
		return fn(tx)
	})
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fault.Errorf(fault.Unavailable, "data source %q does not answer", key)
	}
	return err
}

// readOnly runs fn where d reads: the tenant's own schema as its reader, or an external source.
func (s *Service) readOnly(ctx context.Context, t *account.Tenant, d *Definition, timeout time.Duration, fn func(pgx.Tx) error) error {
	if d.Source.External != "" {
		return s.sourceReadOnly(ctx, t, d.Source.External, timeout, fn)
	}
	return s.readers.ReadOnly(ctx, t.Scope(), timeout, fn)
}

// SourceCatalogue lists the tables and columns of an external source's schema: what a
// query on it may name.
func (s *Service) SourceCatalogue(ctx context.Context, t *account.Tenant, key string) (cat *Catalogue, err error) {
	err = s.sourceReadOnly(ctx, t, key, runTimeout, func(tx pgx.Tx) error {
		cat, err = loadCatalogue(ctx, tx, false)
		return err
	})
	return cat, err
}

// seal encrypts b with the platform's source key (AES-256-GCM, nonce first).
func (s *Service) seal(ctx context.Context, b []byte) ([]byte, error) {
	aead, err := s.sourceCipher(ctx)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(b)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, b, nil), nil
}

func (s *Service) open(ctx context.Context, sealed []byte) ([]byte, error) {
	aead, err := s.sourceCipher(ctx)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed URL is too short")
	}
	return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
}

// sourceCipher is the AEAD of the platform secret "query_sources", made on first use and
// shared by every ctid process of the database.
func (s *Service) sourceCipher(ctx context.Context) (cipher.AEAD, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO platform.secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, sourceSecretName, fresh); err != nil {
		return nil, fmt.Errorf("create secret %s: %w", sourceSecretName, err)
	}
	var key []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM platform.secrets WHERE name = $1`, sourceSecretName).Scan(&key); err != nil {
		return nil, fmt.Errorf("load secret %s: %w", sourceSecretName, err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", sourceSecretName, err)
	}
	return cipher.NewGCM(block)
}
