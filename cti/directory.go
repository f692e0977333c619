package cti

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/fault"
)

var sipDomainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// Limits of SIP passwords.
const (
	minSIPPassword = 8
	maxSIPPassword = 128
)

// SetSIPDomain sets the SIP domain (digest realm) of a tenant. Its agents' SIP passwords
// are made for the old realm and must be set again.
func SetSIPDomain(ctx context.Context, pool *pgxpool.Pool, tenantCode, domain string) error {
	_, err := ChangeSIPDomain(ctx, pool, tenantCode, domain, nil)
	return err
}

// SIPDomainChange is what a change of SIP domain leaves to do.
type SIPDomainChange struct {
	Old, New string
	// Digest credentials made for the old domain (the realm is part of each HA1): these
	// agents and trunks need their SIP passwords set again before they can authenticate.
	Agents, Trunks int
}

// ChangeSIPDomain sets a tenant's SIP domain (a host name, lower-cased; unique among
// tenants), with audit in the same transaction. The registrar's realm follows at once. Bindings
// of phones registered now stay (calls keep reaching them until they expire), but a phone
// registers again only with the new domain and a SIP password set after the change.
func ChangeSIPDomain(ctx context.Context, pool *pgxpool.Pool, tenantCode, domain string, audit AuditFunc) (SIPDomainChange, error) {
	domain = strings.ToLower(strings.TrimSpace(domain))
	ch := SIPDomainChange{New: domain}
	if len(domain) > 253 || !sipDomainRE.MatchString(domain) {
		return ch, fault.Errorf(fault.Invalid, "SIP domain %q is not a host name", domain)
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var id int64
		var old *string
		if err := tx.QueryRow(ctx, `SELECT id, sip_domain FROM platform.tenants WHERE code = $1 FOR UPDATE`, tenantCode).Scan(&id, &old); err != nil {
			return err
		}
		if old != nil {
			ch.Old = *old
		}
		if ch.Old == domain {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE platform.tenants SET sip_domain = $2 WHERE id = $1`, id, domain); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM platform.users WHERE tenant_id = $1 AND sip_ha1_sha256 IS NOT NULL AND sip_realm <> $2),
				(SELECT count(*) FROM platform.sip_trunks WHERE tenant_id = $1 AND auth_ha1_sha256 IS NOT NULL AND auth_realm <> $2)`,
			id, domain).Scan(&ch.Agents, &ch.Trunks)
		if err != nil {
			return err
		}
		return audit.record(ctx, tx)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return ch, fault.Errorf(fault.NotFound, "tenant %q does not exist", tenantCode)
	}
	if err != nil {
		if strings.Contains(err.Error(), "tenants_sip_domain") {
			return ch, fault.Errorf(fault.Conflict, "SIP domain %q belongs to another tenant", domain)
		}
		if fault.CodeOf(err) != fault.Internal {
			return ch, err
		}
		return ch, fmt.Errorf("set SIP domain of %q: %w", tenantCode, err)
	}
	return ch, nil
}

// SetSIPPassword stores the digest HA1s (MD5 and SHA-256) of an agent's SIP password for the
// realm of the agent's tenant; the password itself is not kept. The agent needs an extension
// and the tenant a SIP domain.
func SetSIPPassword(ctx context.Context, pool *pgxpool.Pool, userID int64, password string) error {
	if err := CheckSIPPassword(password); err != nil {
		return err
	}
	var ext, realm *string
	err := pool.QueryRow(ctx, `SELECT u.extension, t.sip_domain FROM platform.users u
		JOIN platform.tenants t ON t.id = u.tenant_id WHERE u.id = $1`, userID).Scan(&ext, &realm)
	if errors.Is(err, pgx.ErrNoRows) {
		return fault.Errorf(fault.NotFound, "user %d does not exist or belongs to no tenant", userID)
	}
	if err != nil {
		return fmt.Errorf("load user %d: %w", userID, err)
	}
	if ext == nil {
		return fault.Errorf(fault.Invalid, "user %d has no extension: a SIP password needs one", userID)
	}
	if realm == nil {
		return fault.Errorf(fault.Invalid, "the user's tenant has no SIP domain: set it first")
	}
	_, err = pool.Exec(ctx, `UPDATE platform.users SET sip_ha1_md5 = $2, sip_ha1_sha256 = $3, sip_realm = $4,
		updated_at = now() WHERE id = $1`, userID, ha1(md5Alg, *ext, *realm, password), ha1(sha256Alg, *ext, *realm, password), *realm)
	if err != nil {
		return fmt.Errorf("store SIP password of user %d: %w", userID, err)
	}
	return nil
}

// Digest algorithms ctid offers, strongest first (RFC 8760).
const (
	sha256Alg = "SHA-256"
	md5Alg    = "MD5"
)

func ha1(alg, user, realm, password string) string {
	s := user + ":" + realm + ":" + password
	if alg == sha256Alg {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// sipUser is what digest and routing need of an agent.
type sipUser struct {
	ID        int64
	Extension string
	HA1MD5    string
	HA1SHA256 string
	Realm     string // the realm the HA1s were made for
	Disabled  bool
}

// sipTenant is a tenant as SIP sees it.
type sipTenant struct {
	ID     int64
	Code   string
	Domain string
	Region string
}

// domainCacheTTL bounds how long a change of SIP domains takes to reach the registrar.
const domainCacheTTL = 10 * time.Second

// userCacheTTL bounds how long a cached agent (HA1s, disabled) is reused. A change is not
// waited for: the database announces it (ctid_sip_directory, see dirnotify.go) and every
// process forgets the entry at once; while a process cannot listen, it caches nothing.
// A digest that fails against a cached entry is checked again against the database, so a new
// password works at once.
const userCacheTTL = 10 * time.Second

// directory finds tenants by SIP domain and agents by extension.
type directory struct {
	pool  *pgxpool.Pool
	users ttlCache[userKey, *sipUser] // by extension: a REGISTER needs the HA1s, not a query
	// live is true while this process listens for changes (dirnotify.go): only then may
	// users be answered from the cache.
	live atomic.Bool

	mu       sync.Mutex
	byDomain map[string]*sipTenant
	loadedAt time.Time
}

func (d *directory) tenantByDomain(ctx context.Context, domain string) (*sipTenant, error) {
	domain = strings.ToLower(domain)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.loadedAt.IsZero() || time.Since(d.loadedAt) > domainCacheTTL {
		rows, err := d.pool.Query(ctx, `SELECT id, code, sip_domain, region FROM platform.tenants
			WHERE sip_domain IS NOT NULL AND status = 'active'`)
		if err != nil {
			return nil, fmt.Errorf("load SIP domains: %w", err)
		}
		m := map[string]*sipTenant{}
		for rows.Next() {
			var t sipTenant
			if err := rows.Scan(&t.ID, &t.Code, &t.Domain, &t.Region); err != nil {
				rows.Close()
				return nil, fmt.Errorf("load SIP domains: %w", err)
			}
			m[t.Domain] = &t
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("load SIP domains: %w", err)
		}
		d.byDomain, d.loadedAt = m, time.Now()
	}
	t := d.byDomain[domain]
	if t == nil {
		return nil, fault.Errorf(fault.NotFound, "no tenant has SIP domain %q", domain)
	}
	return t, nil
}

func (d *directory) tenantByCode(ctx context.Context, code string) (*sipTenant, error) {
	var t sipTenant
	var domain *string
	err := d.pool.QueryRow(ctx, `SELECT id, code, sip_domain, region FROM platform.tenants WHERE code = $1`, code).
		Scan(&t.ID, &t.Code, &domain, &t.Region)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "tenant %q does not exist", code)
	}
	if err != nil {
		return nil, fmt.Errorf("load tenant %q: %w", code, err)
	}
	if domain != nil {
		t.Domain = *domain
	}
	return &t, nil
}

type userKey struct {
	tenant int64
	ext    string
}

// cachedUser is userByExtension through the cache (at most userCacheTTL old).
func (d *directory) cachedUser(ctx context.Context, t *sipTenant, ext string) (*sipUser, error) {
	if !d.live.Load() {
		return d.userByExtension(ctx, t, ext)
	}
	return d.users.get(userKey{t.ID, ext}, func() (*sipUser, error) { return d.userByExtension(ctx, t, ext) })
}

// freshUser reads the user again, and caches what it read.
func (d *directory) freshUser(ctx context.Context, t *sipTenant, ext string) (*sipUser, error) {
	d.users.forget(userKey{t.ID, ext})
	return d.cachedUser(ctx, t, ext)
}

func (d *directory) userByExtension(ctx context.Context, t *sipTenant, ext string) (*sipUser, error) {
	var u sipUser
	var md5h, shah, realm *string
	err := d.pool.QueryRow(ctx, `SELECT id, extension, sip_ha1_md5, sip_ha1_sha256, sip_realm, disabled
		FROM platform.users WHERE tenant_id = $1 AND extension = $2`, t.ID, ext).
		Scan(&u.ID, &u.Extension, &md5h, &shah, &realm, &u.Disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "extension %q does not exist", ext)
	}
	if err != nil {
		return nil, fmt.Errorf("load extension %q: %w", ext, err)
	}
	for _, p := range []struct {
		src *string
		dst *string
	}{{md5h, &u.HA1MD5}, {shah, &u.HA1SHA256}, {realm, &u.Realm}} {
		if p.src != nil {
			*p.dst = *p.src
		}
	}
	return &u, nil
}

// forgetUser drops what is cached of an agent: the next REGISTER reads it again.
func (d *directory) forgetUser(tenantID int64, ext string) {
	d.users.forget(userKey{tenantID, ext})
}

// forgetAll drops every cached agent and tenant.
func (d *directory) forgetAll() {
	d.users.clear()
	d.forgetTenants()
}

// forgetTenants makes the next lookup by SIP domain read the tenants again.
func (d *directory) forgetTenants() {
	d.mu.Lock()
	d.loadedAt = time.Time{}
	d.mu.Unlock()
}
