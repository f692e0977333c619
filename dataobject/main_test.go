package dataobject_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type env struct {
	pool     *pgxpool.Pool
	url      string // of the test's database
	accounts *account.Store
	store    *dataobject.Store
	tenant   *account.Tenant
	admin    account.Actor
}

// newEnv gives a test a fresh database with one tenant of region and a Store on it.
func newEnv(tb testing.TB, region string, opts dataobject.Options) *env {
	tb.Helper()
	pool, url := dbtest.NewDatabase(tb)
	accounts := account.NewStore(pool, account.LoginLimits{}, 0)
	ten, err := accounts.CreateTenant(context.Background(), account.NewTenant{Code: "acme", Name: "Acme", Region: region}, account.CLI)
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	return &env{pool: pool, url: url, accounts: accounts, tenant: ten, admin: account.Actor{UserID: 0, Name: "test-admin"},
		store: dataobject.New(pool, nil, prometheus.NewRegistry(), opts)}
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
