package db

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"regexp"

	"github.com/jackc/pgx/v5"
)

var (
	tenantCodeRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{1,30}$`)
	tenantSchemaRE = regexp.MustCompile(`^t_[a-z][a-z0-9_]{1,30}$`)
)

// CheckTenantCode says what is wrong with code, or returns nil when it is a valid tenant code.
func CheckTenantCode(code string) error {
	if code == "" {
		return fmt.Errorf("tenant code is empty: want a lower-case letter then 1–30 of a–z, 0–9, _")
	}
	if !tenantCodeRE.MatchString(code) {
		return fmt.Errorf("tenant code %q is not valid: want a lower-case letter then 1–30 of a–z, 0–9, _", code)
	}
	return nil
}

// SchemaName is the schema that holds tenant code's data.
func SchemaName(code string) string { return "t_" + code }

// ProvisionTenant creates, inside tx, the schema of tenant code, its reader role (USAGE and
// SELECT on that schema only) and the tenant tables, and returns the scope to reach them.
// Roles are cluster-wide, so the role name carries a hash of the database name: two
// databases on one server (tests, staging) never share a tenant's role.
//
// The reader role can log in (with a random password kept in platform.tenants): report
// queries run on connections whose session user is the reader itself, because a session
// user with more rights could leave a SET ROLE with RESET ROLE or set_config('role', ...).
func ProvisionTenant(ctx context.Context, tx pgx.Tx, code string) (Scope, error) {
	if err := CheckTenantCode(code); err != nil {
		return Scope{}, err
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return Scope{}, err
	}
	password := hex.EncodeToString(secret)
	var dbname string
	if err := tx.QueryRow(ctx, "SELECT current_database()").Scan(&dbname); err != nil {
		return Scope{}, fmt.Errorf("provision tenant %q: %w", code, err)
	}
	h := fnv.New32a()
	h.Write([]byte(dbname))
	schema := SchemaName(code)
	role := fmt.Sprintf("ctidr_%s_%08x", code, h.Sum32())
	s, r := pgx.Identifier{schema}.Sanitize(), pgx.Identifier{role}.Sanitize()
	var roleExists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&roleExists); err != nil {
		return Scope{}, fmt.Errorf("provision tenant %q: %w", code, err)
	}
	stmts := []string{"CREATE SCHEMA " + s}
	// The password is our own hex string: no user input reaches this SQL text.
	if roleExists {
		stmts = append(stmts, "ALTER ROLE "+r+" LOGIN NOINHERIT PASSWORD '"+password+"'")
	} else {
		stmts = append(stmts, "CREATE ROLE "+r+" LOGIN NOINHERIT PASSWORD '"+password+"'")
	}
	stmts = append(stmts,
		"GRANT USAGE ON SCHEMA "+s+" TO "+r,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA "+s+" GRANT SELECT ON TABLES TO "+r,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA "+s+" GRANT SELECT ON SEQUENCES TO "+r,
	)
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return Scope{}, fmt.Errorf("provision tenant %q: %s: %w", code, stmt, err)
		}
	}
	if err := migrateTenant(ctx, tx, schema); err != nil {
		return Scope{}, fmt.Errorf("provision tenant %q: %w", code, err)
	}
	if _, err := tx.Exec(ctx, "GRANT SELECT ON ALL TABLES IN SCHEMA "+s+" TO "+r); err != nil {
		return Scope{}, fmt.Errorf("provision tenant %q: grant reader: %w", code, err)
	}
	return Scope{Schema: schema, ReaderRole: role, ReaderPassword: password}, nil
}
