package dataobject

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db/dbtest"
)

// watchWait bounds the waits of these tests for a state that comes within milliseconds.
const watchWait = 10 * time.Second

// watching starts s.WatchCatalogue until the test ends.
func watching(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WatchCatalogue(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitListening waits until s's watcher is (or is not) listening.
func waitListening(t *testing.T, s *Store, want bool) {
	t.Helper()
	deadline := time.Now().Add(watchWait)
	for {
		s.lookups.mu.Lock()
		got := s.lookups.listening
		s.lookups.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("listening = %v after %s", got, watchWait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func matchedField(t *testing.T, s *Store, ten *account.Tenant, caller string) string {
	t.Helper()
	res, err := s.Lookup(context.Background(), ten, caller)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 1 {
		t.Fatalf("lookup %q: %+v", caller, res)
	}
	return res.Matches[0].Field
}

// twoStores are two Stores on one database, as two ctid processes would have: a
// (watching the catalogue) and b, with a tenant whose customer has a phone.
func twoStores(t *testing.T) (a, b *Store, pool *pgxpool.Pool, ten *account.Tenant) {
	t.Helper()
	ctx := context.Background()
	pool, _ = dbtest.NewDatabase(t)
	ten, err := account.NewStore(pool, account.LoginLimits{}, 0).CreateTenant(ctx, account.NewTenant{Code: "acme", Name: "Acme", Region: "CN"}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	a, b = New(pool, nil, nil, Options{}), New(pool, nil, nil, Options{})
	if _, err := b.Create(ctx, ten, "customer", map[string]any{"name": "Wang", "phones": "13812345678"}, account.CLI); err != nil {
		t.Fatal(err)
	}
	watching(t, a)
	waitListening(t, a, true)
	return a, b, pool, ten
}

// A field renamed by another process is matched under its new key without a restart:
// the rename's notification makes a forget the catalogue it keeps.
func TestLookupSeesRenameByAnotherStore(t *testing.T) {
	a, b, _, ten := twoStores(t)
	ctx := context.Background()
	if f := matchedField(t, a, ten, "13812345678"); f != "phones" {
		t.Fatalf("field = %q", f)
	}
	if _, err := b.RenameField(ctx, ten, "customer", "phones", "mobiles", false, account.CLI); err != nil {
		t.Fatal(err)
	}
	// a listens, so it trusts its copy until told otherwise: only the notification helps.
	deadline := time.Now().Add(watchWait)
	for matchedField(t, a, ten, "13812345678") != "mobiles" {
		if time.Now().After(deadline) {
			t.Fatalf("the rename was not seen within %s", watchWait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Changes announced while the watcher was disconnected are lost; when it connects again it
// forgets every catalogue it kept.
func TestLookupCatalogueAfterReconnect(t *testing.T) {
	a, b, pool, ten := twoStores(t)
	ctx := context.Background()
	if f := matchedField(t, a, ten, "13812345678"); f != "phones" {
		t.Fatalf("field = %q", f)
	}
	var killed int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN "`+catalogueChannel+`"') x`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the listener: %d, %v", killed, err)
	}
	waitListening(t, a, false)
	if _, err := b.RenameField(ctx, ten, "customer", "phones", "mobiles", false, account.CLI); err != nil {
		t.Fatal(err)
	}
	waitListening(t, a, true)
	if f := matchedField(t, a, ten, "13812345678"); f != "mobiles" {
		t.Fatalf("after reconnecting, field = %q, want the new key", f)
	}
}
