package account

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ctid/ctid/fault"
)

// User is a person who signs in: to one tenant, or to the platform as an operator.
type User struct {
	ID          int64
	Tenant      *Tenant // nil for a platform operator
	Username    string
	DisplayName string
	Roles       []Role
	TeamID      int64
	TeamName    string
	Extension   string // the agent's phone extension, "" when none
	Locale      string // "" (from the browser), "en", "zh-CN"
	Disabled    bool
	CreatedAt   time.Time
}

// Can reports whether the user's roles grant p.
func (u *User) Can(p Permission) bool { return Can(u.Roles, p) }

// Has reports whether the user has role r.
func (u *User) Has(r Role) bool {
	for _, x := range u.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// TenantCode is the user's tenant code, "" for an operator.
func (u *User) TenantCode() string {
	if u.Tenant == nil {
		return ""
	}
	return u.Tenant.Code
}

// Name is the display name, or the username when there is none.
func (u *User) Name() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Username
}

// NewUser is what it takes to add a user.
type NewUser struct {
	TenantCode  string // "" for a platform operator
	Username    string
	DisplayName string
	Password    string
	Roles       []string
	Team        string // created in the tenant when missing
	Extension   string
}

var (
	usernameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	extensionRE = regexp.MustCompile(`^[0-9]{2,8}$`)
)

const userColumns = `u.id, u.username, u.display_name, u.roles, coalesce(u.team_id, 0), coalesce(tm.name, ''),
	coalesce(u.extension, ''), u.locale, u.disabled, u.created_at, coalesce(u.tenant_id, 0)`

const userFrom = ` FROM platform.users u LEFT JOIN platform.teams tm ON tm.id = u.team_id `

func scanUser(row pgx.Row) (*User, int64, error) {
	var u User
	var roles []string
	var tenantID int64
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &roles, &u.TeamID, &u.TeamName, &u.Extension,
		&u.Locale, &u.Disabled, &u.CreatedAt, &tenantID)
	for _, r := range roles {
		u.Roles = append(u.Roles, Role(r))
	}
	return &u, tenantID, err
}

// attachTenant loads the tenant of a user read with scanUser.
func (s *Store) attachTenant(ctx context.Context, u *User, tenantID int64) error {
	if tenantID == 0 {
		return nil
	}
	t, err := s.TenantByID(ctx, tenantID)
	if err != nil {
		return err
	}
	u.Tenant = t
	return nil
}

// AddUser adds a user to a tenant (or an operator to the platform), creating its team when
// missing, and records the action in the audit log.
func (s *Store) AddUser(ctx context.Context, nu NewUser, actor Actor) (*User, error) {
	roles, err := parseRoles(nu.Roles)
	if err != nil {
		return nil, err
	}
	nu.Username = strings.TrimSpace(nu.Username)
	if !usernameRE.MatchString(nu.Username) {
		return nil, fault.Errorf(fault.Invalid, "username %q is not valid: 1–64 letters, digits, '.', '_', '@', '-', starting with a letter or digit", nu.Username)
	}
	if nu.Extension != "" && !extensionRE.MatchString(nu.Extension) {
		return nil, fault.Errorf(fault.Invalid, "extension %q is not valid: 2–8 digits", nu.Extension)
	}
	isOperator := roles[0] == RoleOperator
	switch {
	case isOperator && nu.TenantCode != "":
		return nil, fault.Errorf(fault.Invalid, "an operator belongs to no tenant: leave the tenant out")
	case !isOperator && nu.TenantCode == "":
		return nil, fault.Errorf(fault.Invalid, "a %s belongs to a tenant: name it", roles[0])
	case isOperator && (nu.Team != "" || nu.Extension != ""):
		return nil, fault.Errorf(fault.Invalid, "an operator has no team or extension")
	}
	hash, err := HashPassword(nu.Password)
	if err != nil {
		return nil, err
	}
	var tenant *Tenant
	if !isOperator {
		if tenant, err = s.TenantByCode(ctx, nu.TenantCode); err != nil {
			return nil, err
		}
	}
	var id int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var tenantID, teamID *int64
		if tenant != nil {
			tenantID = &tenant.ID
		}
		if nu.Team != "" {
			var tid int64
			if err := tx.QueryRow(ctx, `INSERT INTO platform.teams (tenant_id, name) VALUES ($1, $2)
				ON CONFLICT (tenant_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id`, tenant.ID, nu.Team).Scan(&tid); err != nil {
				return fmt.Errorf("team %q: %w", nu.Team, err)
			}
			teamID = &tid
		}
		var ext *string
		if nu.Extension != "" {
			ext = &nu.Extension
		}
		err := tx.QueryRow(ctx, `INSERT INTO platform.users (tenant_id, username, display_name, password_hash, roles, team_id, extension)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			tenantID, nu.Username, strings.TrimSpace(nu.DisplayName), hash, roleStrings(roles), teamID, ext).Scan(&id)
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				if strings.Contains(pgErr.ConstraintName, "extension") {
					return fault.Errorf(fault.Conflict, "extension %s is already taken in tenant %q", nu.Extension, nu.TenantCode)
				}
				return fault.Errorf(fault.Conflict, "user %q already exists", nu.Username)
			}
			return err
		}
		var tid int64
		if tenant != nil {
			tid = tenant.ID
		}
		return audit(ctx, tx, tid, actor, "user.add", nu.Username, map[string]any{"roles": roleStrings(roles), "team": nu.Team, "extension": nu.Extension})
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return nil, err
		}
		return nil, fmt.Errorf("add user %q: %w", nu.Username, err)
	}
	return s.UserByID(ctx, id)
}

// UserByID loads a user with their tenant.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	u, tenantID, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+userFrom+` WHERE u.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "user %d does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load user %d: %w", id, err)
	}
	return u, s.attachTenant(ctx, u, tenantID)
}

// ListUsers lists a tenant's users by username (tenantID 0: the platform operators).
func (s *Store) ListUsers(ctx context.Context, tenantID int64) ([]*User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+userFrom+` WHERE u.tenant_id IS NOT DISTINCT FROM NULLIF($1, 0)
		ORDER BY lower(u.username)`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, _, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetLocale remembers the user's UI language ("en", "zh-CN").
func (s *Store) SetLocale(ctx context.Context, userID int64, locale string) error {
	_, err := s.pool.Exec(ctx, `UPDATE platform.users SET locale = $2, updated_at = now() WHERE id = $1`, userID, locale)
	if err != nil {
		return fmt.Errorf("set locale of user %d: %w", userID, err)
	}
	return nil
}

// Team is a group of agents with a team lead.
type Team struct {
	ID   int64
	Name string
}

// ListTeams lists a tenant's teams by name.
func (s *Store) ListTeams(ctx context.Context, tenantID int64) ([]Team, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name FROM platform.teams WHERE tenant_id = $1 ORDER BY name`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Team])
}

// SetExtension gives a tenant's user an extension ("" takes it away) and records it in the
// audit log. A changed extension drops the user's SIP password: its digest HA1s are made
// with the extension, so the admin sets a new one.
func (s *Store) SetExtension(ctx context.Context, tenantID, userID int64, ext string, actor Actor) error {
	ext = strings.TrimSpace(ext)
	if ext != "" && !extensionRE.MatchString(ext) {
		return fault.Errorf(fault.Invalid, "extension %q is not valid: 2–8 digits", ext)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var username string
		var old *string
		err := tx.QueryRow(ctx, `SELECT username, extension FROM platform.users WHERE id = $1 AND tenant_id = $2 FOR UPDATE`,
			userID, tenantID).Scan(&username, &old)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.Errorf(fault.NotFound, "user %d does not exist", userID)
		}
		if err != nil {
			return err
		}
		if (old == nil && ext == "") || (old != nil && *old == ext) {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE platform.users SET extension = NULLIF($2, ''), sip_ha1_md5 = NULL, sip_ha1_sha256 = NULL,
			sip_realm = NULL, updated_at = now() WHERE id = $1`, userID, ext)
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				return fault.Errorf(fault.Conflict, "extension %s is already taken", ext)
			}
			return err
		}
		return audit(ctx, tx, tenantID, actor, "user.extension", username, map[string]any{"extension": ext})
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return err
		}
		return fmt.Errorf("set extension of user %d: %w", userID, err)
	}
	return nil
}
