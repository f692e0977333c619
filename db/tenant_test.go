package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
)

func mustProvision(t *testing.T, pool *pgxpool.Pool, code string) db.Scope {
	t.Helper()
	var s db.Scope
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		s, err = db.ProvisionTenant(context.Background(), tx, code)
		if err != nil {
			return err
		}
		_, err = tx.Exec(context.Background(), `INSERT INTO platform.tenants (code, name, region, time_zone, schema_name, reader_role, reader_password)
			VALUES ($1, $1, 'CN', 'Asia/Shanghai', $2, $3, $4)`, code, s.Schema, s.ReaderRole, s.ReaderPassword)
		return err
	})
	if err != nil {
		t.Fatalf("provision %s: %v", code, err)
	}
	return s
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestReadOnlyScopeIsolation(t *testing.T) {
	pool, url := dbtest.NewDatabase(t)
	ctx := context.Background()
	readers, err := db.NewReaders(url)
	if err != nil {
		t.Fatal(err)
	}
	defer readers.Close()
	a := mustProvision(t, pool, "alpha")
	b := mustProvision(t, pool, "beta")
	for _, s := range []db.Scope{a, b} {
		err := db.InTenant(ctx, pool, s, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('"+s.Schema+"')")
			return err
		})
		if err != nil {
			t.Fatalf("create table in %s: %v", s.Schema, err)
		}
	}

	cases := []struct {
		name  string
		sql   string
		state string // expected SQLSTATE
	}{
		{"other tenant's table, schema-qualified", "SELECT v FROM t_beta.secrets", "42501"},
		{"platform users", "SELECT username FROM platform.users", "42501"},
		{"platform tenants", "SELECT code FROM platform.tenants", "42501"},
		{"write to own table", "INSERT INTO secrets VALUES ('x')", "25006"},
		{"temporary table", "CREATE TEMP TABLE x (n int)", "25006"},
		{"reset role, then read", "RESET ROLE; SELECT v FROM t_beta.secrets", "42501"},
		{"set_config role in the query", "SELECT set_config('role', 'ctid', true), (SELECT count(*) FROM t_beta.secrets)", "42501"},
		{"become the superuser", "SET ROLE ctid", "42501"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := readers.ReadOnly(ctx, a, 5*time.Second, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, tc.sql)
				return err
			})
			if got := sqlState(err); got != tc.state {
				t.Fatalf("%s: SQLSTATE %q (%v), want %q", tc.sql, got, err, tc.state)
			}
		})
	}

	t.Run("own table readable", func(t *testing.T) {
		var v string
		err := readers.ReadOnly(ctx, a, 5*time.Second, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT v FROM secrets").Scan(&v)
		})
		if err != nil || v != "t_alpha" {
			t.Fatalf("own table: %q %v", v, err)
		}
	})
	t.Run("statement timeout", func(t *testing.T) {
		err := readers.ReadOnly(ctx, a, 100*time.Millisecond, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SELECT pg_sleep(2)")
			return err
		})
		if got := sqlState(err); got != "57014" {
			t.Fatalf("want query_canceled (57014), got %q %v", got, err)
		}
	})
	t.Run("write scope sees only its schema unqualified", func(t *testing.T) {
		var v string
		err := db.InTenant(ctx, pool, b, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT v FROM secrets").Scan(&v)
		})
		if err != nil || v != "t_beta" {
			t.Fatalf("got %q %v", v, err)
		}
	})
	t.Run("bad scope refused", func(t *testing.T) {
		err := db.InTenant(ctx, pool, db.Scope{Schema: "public; drop"}, func(pgx.Tx) error { return nil })
		if err == nil {
			t.Fatal("bad schema name accepted")
		}
	})
}

func TestCheckTenantCode(t *testing.T) {
	for _, code := range []string{"acme", "a1", "demo_2", "abcdefghijklmnopqrstuvwxyz01234"} {
		if err := db.CheckTenantCode(code); err != nil {
			t.Errorf("%q refused: %v", code, err)
		}
	}
	for _, code := range []string{"", "a", "../x", "a;drop", "Acme", "1abc", "a-b", "abcdefghijklmnopqrstuvwxyz012345", "ä1"} {
		err := db.CheckTenantCode(code)
		if err == nil {
			t.Errorf("%q accepted", code)
		} else if !strings.Contains(err.Error(), "tenant code") {
			t.Errorf("%q: error does not name the tenant code: %v", code, err)
		}
	}
}

// catalogue is a fingerprint of every table and column ctid owns, to compare before and after.
func catalogue(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(context.Background(), `SELECT string_agg(table_schema||'.'||table_name||'.'||column_name||':'||data_type, ',' ORDER BY 1)
		FROM information_schema.columns WHERE table_schema = 'platform' OR table_schema LIKE 't\_%'`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMigrateTwiceChangesNothing(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t) // migrated once already
	mustProvision(t, pool, "gamma")
	ctx := context.Background()
	before := catalogue(t, pool)
	var rowsBefore int
	pool.QueryRow(ctx, "SELECT count(*) FROM platform.schema_migrations").Scan(&rowsBefore)
	for i := 0; i < 2; i++ {
		n, err := db.Migrate(ctx, pool)
		if err != nil {
			t.Fatalf("migrate run %d: %v", i+1, err)
		}
		if n != 0 {
			t.Fatalf("migrate run %d applied %d migrations on an up-to-date database", i+1, n)
		}
	}
	var rowsAfter int
	pool.QueryRow(ctx, "SELECT count(*) FROM platform.schema_migrations").Scan(&rowsAfter)
	if after := catalogue(t, pool); after != before || rowsAfter != rowsBefore {
		t.Fatalf("migrations changed the schema on a second run")
	}
	if err := db.CheckMigrated(ctx, pool); err != nil {
		t.Fatalf("CheckMigrated: %v", err)
	}
	if rowsBefore < 2 {
		t.Fatalf("expected platform and tenant migrations recorded, got %d rows", rowsBefore)
	}
}
