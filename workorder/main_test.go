package workorder_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/workorder"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type notice struct {
	tenant  string
	agentID int64
	typ     string
	data    any
}

type env struct {
	pool     *pgxpool.Pool
	accounts *account.Store
	objects  *dataobject.Store
	svc      *workorder.Service
	tenant   *account.Tenant
	// agentA1, agentA2 and lead are team A; agentB1 is team B.
	agentA1, agentA2, agentB1, lead, qa, qa2, admin, config *account.User

	mu      sync.Mutex
	notices []notice
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	ctx := context.Background()
	pool, _ := dbtest.NewDatabase(tb)
	e := &env{pool: pool, accounts: account.NewStore(pool, account.LoginLimits{}, 0)}
	var err error
	e.tenant, err = e.accounts.CreateTenant(ctx, account.NewTenant{Code: "acme", Name: "Acme", Region: "CN", TimeZone: "Asia/Shanghai"}, account.CLI)
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	user := func(name, team string, roles ...string) *account.User {
		u, err := e.accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: name, DisplayName: name + " name",
			Password: "correct horse battery", Roles: roles, Team: team}, account.CLI)
		if err != nil {
			tb.Fatalf("add user %s: %v", name, err)
		}
		if u, err = e.accounts.UserByID(ctx, u.ID); err != nil {
			tb.Fatal(err)
		}
		return u
	}
	e.agentA1 = user("a1", "A", "agent")
	e.agentA2 = user("a2", "A", "agent")
	e.agentB1 = user("b1", "B", "agent")
	e.lead = user("leada", "A", "team_lead")
	e.qa = user("checker", "", "qa")
	e.admin = user("boss", "", "admin")
	e.qa2 = user("checker2", "", "qa")
	e.config = user("cfg", "", "config_admin")
	e.objects = dataobject.New(pool, nil, prometheus.NewRegistry(), dataobject.Options{})
	e.svc = workorder.New(workorder.Options{Pool: pool, Objects: e.objects, Accounts: e.accounts, Registerer: prometheus.NewRegistry(),
		Notify: func(_ context.Context, tenant string, agentID int64, typ string, data any) {
			e.mu.Lock()
			e.notices = append(e.notices, notice{tenant, agentID, typ, data})
			e.mu.Unlock()
		}})
	return e
}

func must[T any](tb testing.TB) func(T, error) T {
	return func(v T, err error) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

func mustOK(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
