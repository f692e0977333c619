package cti

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// cachedExt reports whether the registrar holds a cached entry for ext of tenant acme.
func cachedExt(t *testing.T, s *testService, ext string) bool {
	t.Helper()
	tn, err := s.reg.dir.tenantByCode(ctxT(t), "acme")
	if err != nil {
		t.Fatal(err)
	}
	c := &s.reg.dir.users
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[userKey{tn.ID, ext}] != nil
}

// A SIP password changed through the Service is the only one that works from the moment
// the change returns: the old one, cached a moment ago, is refused at once.
func TestOldSIPPasswordRefusedAtOnce(t *testing.T) {
	pool := sipTenantFixture(t)
	u := mustAgent(t, pool, "acme", "dave", "1004", "first-password")
	s := startService(t, pool, Config{})
	c := newClient(t)
	req := func() *sip.Request { return registerReq(t, s, "1004", "", "<sip:1004@127.0.0.1:5980>") }
	if res := register(t, c, req(), "1004", "first-password"); res.StatusCode != 200 {
		t.Fatalf("first password = %d", res.StatusCode)
	}
	if !cachedExt(t, s, "1004") {
		t.Fatal("the registrar did not cache extension 1004: the test would prove nothing")
	}
	if err := s.SetSIPPassword(ctxT(t), u.ID, "second-password"); err != nil {
		t.Fatal(err)
	}
	if res := register(t, c, req(), "1004", "first-password"); res.StatusCode != 401 {
		t.Fatalf("old password right after the change = %d, want 401", res.StatusCode)
	}
	if res := register(t, c, req(), "1004", "second-password"); res.StatusCode != 200 {
		t.Fatalf("new password = %d, want 200", res.StatusCode)
	}
}

// A password changed elsewhere (another ctid process, the CLI: here a second Service and
// the package function) reaches every process through the database's notification: the
// cached entry is dropped and the old password refused long before the cache would expire.
// Disabling the account does the same.
func TestSIPCredentialChangesReachOtherProcesses(t *testing.T) {
	pool := sipTenantFixture(t)
	u := mustAgent(t, pool, "acme", "dave", "1004", "first-password")
	s1 := startService(t, pool, Config{})
	s2 := startService(t, pool, Config{})
	c := newClient(t)
	req := func() *sip.Request { return registerReq(t, s1, "1004", "", "<sip:1004@127.0.0.1:5980>") }
	waitForgotten := func(what string, since time.Time) {
		t.Helper()
		for cachedExt(t, s1, "1004") {
			if time.Since(since) > userCacheTTL/2 {
				t.Fatalf("%s: process 1 still caches extension 1004 after %v", what, time.Since(since))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if res := register(t, c, req(), "1004", "first-password"); res.StatusCode != 200 || !cachedExt(t, s1, "1004") {
		t.Fatalf("first password = %d (cached: %v)", res.StatusCode, cachedExt(t, s1, "1004"))
	}
	changed := time.Now()
	if err := s2.SetSIPPassword(ctxT(t), u.ID, "second-password"); err != nil {
		t.Fatal(err)
	}
	waitForgotten("password changed by process 2", changed)
	if res := register(t, c, req(), "1004", "first-password"); res.StatusCode != 401 {
		t.Fatalf("old password at process 1 after the change = %d, want 401", res.StatusCode)
	}
	if res := register(t, c, req(), "1004", "second-password"); res.StatusCode != 200 || !cachedExt(t, s1, "1004") {
		t.Fatalf("new password at process 1 = %d", res.StatusCode)
	}
	changed = time.Now()
	if _, err := pool.Exec(ctxT(t), `UPDATE platform.users SET disabled = true WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	waitForgotten("account disabled", changed)
	if res := register(t, c, req(), "1004", "second-password"); res.StatusCode == 200 {
		t.Fatal("a disabled account registered at process 1")
	}
}

// Without the notification channel nothing is cached: every REGISTER reads the agent.
func TestDirectoryCachesOnlyWhileListening(t *testing.T) {
	pool := sipTenantFixture(t)
	mustAgent(t, pool, "acme", "dave", "1004", "first-password")
	d := &directory{pool: pool}
	tn, err := d.tenantByCode(ctxT(t), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, live := range []bool{false, true} {
		d.live.Store(live)
		if _, err := d.cachedUser(ctxT(t), tn, "1004"); err != nil {
			t.Fatal(err)
		}
		d.users.mu.Lock()
		cached := d.users.m[userKey{tn.ID, "1004"}] != nil
		d.users.mu.Unlock()
		if cached != live {
			t.Fatalf("listening %v: cached %v", live, cached)
		}
	}
}
