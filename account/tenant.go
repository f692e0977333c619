package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/nyaruka/phonenumbers"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// Tenant is one enterprise (企业) on the platform.
type Tenant struct {
	ID        int64
	Code      string
	Name      string
	Region    string // default phone region, ISO 3166 (CN, GB, US...)
	TimeZone  string // IANA name, e.g. Asia/Shanghai
	Status    string // active, suspended
	CreatedAt time.Time
	scope     db.Scope
}

// Scope is the database scope of the tenant's data.
func (t *Tenant) Scope() db.Scope { return t.scope }

// Location is the tenant's time zone.
func (t *Tenant) Location() *time.Location {
	loc, err := time.LoadLocation(t.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// NewTenant is what it takes to create a tenant.
type NewTenant struct {
	Code     string
	Name     string
	Region   string // default CN
	TimeZone string // default Asia/Shanghai
}

const tenantColumns = `id, code, name, region, time_zone, status, created_at, schema_name, reader_role, reader_password`

func scanTenant(row pgx.Row) (*Tenant, error) {
	var t Tenant
	err := row.Scan(&t.ID, &t.Code, &t.Name, &t.Region, &t.TimeZone, &t.Status, &t.CreatedAt,
		&t.scope.Schema, &t.scope.ReaderRole, &t.scope.ReaderPassword)
	return &t, err
}

func checkNewTenant(nt *NewTenant) error {
	if err := db.CheckTenantCode(nt.Code); err != nil {
		return fault.Errorf(fault.Invalid, "%s", err)
	}
	nt.Name = strings.TrimSpace(nt.Name)
	if nt.Name == "" {
		return fault.Errorf(fault.Invalid, "tenant name is empty")
	}
	if utf8.RuneCountInString(nt.Name) > 100 {
		return fault.Errorf(fault.Invalid, "tenant name is too long: at most 100 characters")
	}
	if nt.Region == "" {
		nt.Region = "CN"
	}
	nt.Region = strings.ToUpper(nt.Region)
	if !phonenumbers.GetSupportedRegions()[nt.Region] {
		return fault.Errorf(fault.Invalid, "region %q is not a phone region: want a two-letter country code such as CN, GB or US", nt.Region)
	}
	if nt.TimeZone == "" {
		nt.TimeZone = "Asia/Shanghai"
	}
	if _, err := time.LoadLocation(nt.TimeZone); err != nil || nt.TimeZone == "Local" {
		return fault.Errorf(fault.Invalid, "time zone %q is not known: want an IANA name such as Asia/Shanghai", nt.TimeZone)
	}
	return nil
}

// CreateTenant creates the tenant row, its schema t_<code> with the tenant tables, and its
// reader role, all in one transaction: a refused tenant leaves nothing behind.
func (s *Store) CreateTenant(ctx context.Context, nt NewTenant, actor Actor) (*Tenant, error) {
	if err := checkNewTenant(&nt); err != nil {
		return nil, err
	}
	var t *Tenant
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM platform.tenants WHERE code = $1)
			OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $2)`, nt.Code, db.SchemaName(nt.Code)).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return fault.Errorf(fault.Conflict, "tenant %q already exists", nt.Code)
		}
		scope, err := db.ProvisionTenant(ctx, tx, nt.Code)
		if err != nil {
			return err
		}
		t, err = scanTenant(tx.QueryRow(ctx, `INSERT INTO platform.tenants (code, name, region, time_zone, schema_name, reader_role, reader_password)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+tenantColumns,
			nt.Code, nt.Name, nt.Region, nt.TimeZone, scope.Schema, scope.ReaderRole, scope.ReaderPassword))
		if err != nil {
			return err
		}
		return audit(ctx, tx, t.ID, actor, "tenant.create", nt.Code, map[string]any{"name": nt.Name, "region": nt.Region, "time_zone": nt.TimeZone})
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return nil, err
		}
		return nil, fmt.Errorf("create tenant %q: %w", nt.Code, err)
	}
	return t, nil
}

// TenantByCode finds a tenant; an unknown code is a NotFound error naming it.
func (s *Store) TenantByCode(ctx context.Context, code string) (*Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM platform.tenants WHERE code = $1`, code))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "tenant %q does not exist", code)
	}
	if err != nil {
		return nil, fmt.Errorf("load tenant %q: %w", code, err)
	}
	return t, nil
}

// TenantByID finds a tenant by id.
func (s *Store) TenantByID(ctx context.Context, id int64) (*Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM platform.tenants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "tenant %d does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load tenant %d: %w", id, err)
	}
	return t, nil
}

// ListTenants lists every tenant by code.
func (s *Store) ListTenants(ctx context.Context) ([]*Tenant, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tenantColumns+` FROM platform.tenants ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []*Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
