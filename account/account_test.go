package account_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/fault"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func newStore(t *testing.T) (*account.Store, *pgxpool.Pool) {
	t.Helper()
	pool, _ := dbtest.NewDatabase(t)
	return account.NewStore(pool, account.DefaultLoginLimits, time.Hour), pool
}

func mustTenant(t *testing.T, s *account.Store, code string) *account.Tenant {
	t.Helper()
	tn, err := s.CreateTenant(context.Background(), account.NewTenant{Code: code, Name: strings.ToUpper(code)}, account.CLI)
	if err != nil {
		t.Fatalf("create tenant %s: %v", code, err)
	}
	return tn
}

func mustUser(t *testing.T, s *account.Store, tenant, username string, roles ...string) *account.User {
	t.Helper()
	u, err := s.AddUser(context.Background(), account.NewUser{TenantCode: tenant, Username: username,
		Password: "secret-" + username, Roles: roles}, account.CLI)
	if err != nil {
		t.Fatalf("add user %s: %v", username, err)
	}
	return u
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestCreateTenantRefusesBadInputAndCreatesNothing(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	mustTenant(t, s, "acme")
	cases := []struct {
		name string
		nt   account.NewTenant
		want string
	}{
		{"path", account.NewTenant{Code: "../x", Name: "X"}, "tenant code"},
		{"injection", account.NewTenant{Code: "a;drop", Name: "X"}, "tenant code"},
		{"upper case", account.NewTenant{Code: "Acme2", Name: "X"}, "tenant code"},
		{"empty", account.NewTenant{Code: "", Name: "X"}, "tenant code is empty"},
		{"no name", account.NewTenant{Code: "okcode", Name: " "}, "name is empty"},
		{"bad region", account.NewTenant{Code: "okcode", Name: "X", Region: "XX"}, "region"},
		{"bad zone", account.NewTenant{Code: "okcode", Name: "X", TimeZone: "Mars/Base"}, "time zone"},
		{"duplicate", account.NewTenant{Code: "acme", Name: "Again"}, "already exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenants := count(t, pool, "SELECT count(*) FROM platform.tenants")
			schemas := count(t, pool, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'")
			_, err := s.CreateTenant(ctx, tc.nt, account.CLI)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if c := fault.CodeOf(err); c != fault.Invalid && c != fault.Conflict {
				t.Errorf("code %s, want invalid or conflict", c)
			}
			if n := count(t, pool, "SELECT count(*) FROM platform.tenants"); n != tenants {
				t.Errorf("tenants %d → %d", tenants, n)
			}
			if n := count(t, pool, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'"); n != schemas {
				t.Errorf("schemas %d → %d", schemas, n)
			}
		})
	}
}

func TestCreateTenantMakesSchemaRoleAndAudit(t *testing.T) {
	s, pool := newStore(t)
	tn := mustTenant(t, s, "acme")
	if tn.Region != "CN" || tn.TimeZone != "Asia/Shanghai" {
		t.Errorf("defaults: region %q zone %q", tn.Region, tn.TimeZone)
	}
	if n := count(t, pool, "SELECT count(*) FROM pg_namespace WHERE nspname = 't_acme'"); n != 1 {
		t.Fatal("schema t_acme missing")
	}
	if n := count(t, pool, "SELECT count(*) FROM pg_roles WHERE rolname = $1", tn.Scope().ReaderRole); n != 1 {
		t.Fatal("reader role missing")
	}
	if n := count(t, pool, "SELECT count(*) FROM t_acme.settings"); n != 0 {
		t.Fatal("tenant tables missing")
	}
	log, err := s.AuditLog(context.Background(), tn.ID, 10)
	if err != nil || len(log) != 1 || log[0].Action != "tenant.create" {
		t.Fatalf("audit log: %+v %v", log, err)
	}
}

func TestAddUser(t *testing.T) {
	s, _ := newStore(t)
	mustTenant(t, s, "acme")
	u, err := s.AddUser(context.Background(), account.NewUser{TenantCode: "acme", Username: "a1", Password: "password1",
		Roles: []string{"ROLE_CC_AGENT"}, Team: "t1", Extension: "1001"}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Has(account.RoleAgent) || u.TeamName != "t1" || u.Extension != "1001" || u.TenantCode() != "acme" {
		t.Fatalf("user %+v", u)
	}
	bad := []struct {
		nu   account.NewUser
		want string
	}{
		{account.NewUser{TenantCode: "acme", Username: "a1", Password: "password1", Roles: []string{"agent"}}, "already exists"},
		{account.NewUser{TenantCode: "acme", Username: "a2", Password: "password1", Roles: []string{"agent"}, Extension: "1001"}, "extension 1001 is already taken"},
		{account.NewUser{TenantCode: "acme", Username: "a3", Password: "short", Roles: []string{"agent"}}, "too short"},
		{account.NewUser{TenantCode: "acme", Username: "a4", Password: "password1", Roles: []string{"king"}}, "unknown role"},
		{account.NewUser{TenantCode: "nope", Username: "a5", Password: "password1", Roles: []string{"agent"}}, "does not exist"},
		{account.NewUser{TenantCode: "acme", Username: "bad name", Password: "password1", Roles: []string{"agent"}}, "username"},
		{account.NewUser{TenantCode: "acme", Username: "op", Password: "password1", Roles: []string{"operator"}}, "operator belongs to no tenant"},
		{account.NewUser{Username: "a6", Password: "password1", Roles: []string{"agent"}}, "belongs to a tenant"},
	}
	for _, b := range bad {
		_, err := s.AddUser(context.Background(), b.nu, account.CLI)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: error %v, want %q", b.nu, err, b.want)
		}
	}
}

func TestLogin(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustTenant(t, s, "acme")
	mustTenant(t, s, "other")
	mustUser(t, s, "acme", "a1", "agent")
	mustUser(t, s, "other", "b1", "agent")
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })

	if u, err := s.Login(ctx, "acme", "A1", "secret-a1", "10.0.0.1"); err != nil || u.Username != "a1" {
		t.Fatalf("good login: %v", err)
	}
	if _, err := s.Login(ctx, "acme", "a1", "wrong-password", "10.0.0.1"); fault.CodeOf(err) != fault.Unauthorized {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := s.Login(ctx, "nosuch", "a1", "secret-a1", "10.0.0.1"); err == nil || !strings.Contains(err.Error(), `tenant "nosuch" does not exist`) {
		t.Fatalf("unknown tenant: %v", err)
	}
	if _, err := s.Login(ctx, "acme", "b1", "secret-b1", "10.0.0.1"); fault.CodeOf(err) != fault.Unauthorized {
		t.Fatalf("user of another tenant logged in: %v", err)
	}

	t.Run("lockout", func(t *testing.T) {
		for i := 0; i < account.DefaultLoginLimits.MaxFailures; i++ {
			s.Login(ctx, "other", "b1", "wrong", "10.0.0.2")
		}
		_, err := s.Login(ctx, "other", "b1", "secret-b1", "10.0.0.3")
		if fault.CodeOf(err) != fault.TooMany || !strings.Contains(err.Error(), "try again in 15 minute") {
			t.Fatalf("right password during lockout: %v", err)
		}
		// acme/a1 is not affected by b1's lock.
		if _, err := s.Login(ctx, "acme", "a1", "secret-a1", "10.0.0.3"); err != nil {
			t.Fatalf("other user locked too: %v", err)
		}
		now = now.Add(16 * time.Minute)
		if _, err := s.Login(ctx, "other", "b1", "secret-b1", "10.0.0.3"); err != nil {
			t.Fatalf("still locked after the lockout: %v", err)
		}
	})
}

func TestSessionsAndTokens(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustTenant(t, s, "acme")
	u := mustUser(t, s, "acme", "a1", "agent")
	now := time.Now()
	s.SetClock(func() time.Time { return now })

	tok, err := s.CreateSession(ctx, u.ID, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := s.SessionByToken(ctx, tok)
	if err != nil || sess.User.ID != u.ID || sess.CSRFToken() == "" {
		t.Fatalf("session: %v", err)
	}
	now = now.Add(2 * time.Hour) // TTL is one hour in newStore
	if _, err := s.SessionByToken(ctx, tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired session accepted: %v", err)
	}
	now = time.Now()
	tok2, _ := s.CreateSession(ctx, u.ID, "", "")
	if err := s.DeleteSession(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByToken(ctx, tok2); fault.CodeOf(err) != fault.Unauthorized {
		t.Fatalf("signed-out session accepted: %v", err)
	}

	api, info, err := s.CreateToken(ctx, u.ID, "crm sync", 0)
	if err != nil || !strings.HasPrefix(api, "ctid_") {
		t.Fatalf("token: %q %v", api, err)
	}
	if got, err := s.UserByToken(ctx, api); err != nil || got.ID != u.ID {
		t.Fatalf("token user: %v", err)
	}
	if _, err := s.UserByToken(ctx, api+"x"); fault.CodeOf(err) != fault.Unauthorized {
		t.Fatalf("wrong token accepted: %v", err)
	}
	if err := s.RevokeToken(ctx, u.ID, info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByToken(ctx, api); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token accepted: %v", err)
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := account.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$") {
		t.Fatalf("hash %q is not argon2id PHC", h)
	}
	if !account.VerifyPassword(h, "correct horse") || account.VerifyPassword(h, "correct horsE") {
		t.Fatal("verify")
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$x$y$z$w", h[:len(h)-4]} {
		if account.VerifyPassword(bad, "correct horse") {
			t.Errorf("malformed hash %q verified", bad)
		}
	}
}

func TestRoles(t *testing.T) {
	cases := []struct {
		roles []account.Role
		perm  account.Permission
		can   bool
	}{
		{[]account.Role{account.RoleAgent}, account.PermTakeCalls, true},
		{[]account.Role{account.RoleAgent}, account.PermManageUsers, false},
		{[]account.Role{account.RoleQA}, account.PermScoreQA, true},
		{[]account.Role{account.RoleOperator}, account.PermManageTenants, true},
		{[]account.Role{account.RoleAdmin}, account.PermManageTenants, false},
		{[]account.Role{account.RoleConfigAdmin}, account.PermConfigure, true},
		{[]account.Role{account.RoleTeamLead}, account.PermWatchFloor, true},
	}
	for _, c := range cases {
		if got := account.Can(c.roles, c.perm); got != c.can {
			t.Errorf("Can(%v, %s) = %v", c.roles, c.perm, got)
		}
	}
	if account.ScopeOf([]account.Role{account.RoleAgent, account.RoleTeamLead}) != account.ScopeTeam {
		t.Error("agent+lead should see the team")
	}
	if r, err := account.ParseRole("ROLE_CC_CHECKER"); err != nil || r != account.RoleQA {
		t.Errorf("seed alias: %v %v", r, err)
	}
}
