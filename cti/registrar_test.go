package cti

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/fault"
)

const testDomain = "acme.test"

// mustAgent adds an agent with an extension and a SIP password to tenant code.
func mustAgent(tb testing.TB, pool *pgxpool.Pool, code, username, ext, password string) *account.User {
	tb.Helper()
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	u, err := store.AddUser(context.Background(), account.NewUser{TenantCode: code, Username: username,
		Password: "correct horse battery", Roles: []string{"agent"}, Extension: ext}, account.CLI)
	if err != nil {
		tb.Fatal(err)
	}
	if err := SetSIPPassword(context.Background(), pool, u.ID, password); err != nil {
		tb.Fatal(err)
	}
	return u
}

// sipTenantFixture makes tenant acme with SIP domain acme.test.
func sipTenantFixture(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, _ := dbtest.NewDatabase(tb)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(tb, store, "acme")
	if err := SetSIPDomain(context.Background(), pool, "acme", testDomain); err != nil {
		tb.Fatal(err)
	}
	return pool
}

// registerReq builds a REGISTER of ext at acme.test sent to the service's UDP listener.
func registerReq(tb testing.TB, s *testService, ext string, expires string, contacts ...string) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: testDomain})
	req.SetDestination(s.Addr("udp"))
	aor := sip.Uri{User: ext, Host: testDomain}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	for _, c := range contacts {
		req.AppendHeader(sip.NewHeader("Contact", c))
	}
	if expires != "" {
		req.AppendHeader(sip.NewHeader("Expires", expires))
	}
	return req
}

// register sends req, answers the challenge with password, and returns the final response.
func register(tb testing.TB, c *sipgo.Client, req *sip.Request, ext, password string) *sip.Response {
	tb.Helper()
	ctx := ctxT(tb)
	res, err := c.Do(ctx, req)
	if err != nil {
		tb.Fatal(err)
	}
	if res.StatusCode != 401 {
		return res
	}
	res, err = c.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: ext, Password: password})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func TestRegisterWithDigest(t *testing.T) {
	pool := sipTenantFixture(t)
	mustAgent(t, pool, "acme", "alice", "1001", "s3cret-pass")
	s := startService(t, pool, Config{AuthFailLimit: 3})
	c := newClient(t)
	ctx := ctxT(t)

	t.Run("challenge offers SHA-256 then MD5", func(t *testing.T) {
		res, err := c.Do(ctx, registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5999>"))
		if err != nil {
			t.Fatal(err)
		}
		hs := res.GetHeaders("WWW-Authenticate")
		if res.StatusCode != 401 || len(hs) != 2 || !strings.Contains(hs[0].Value(), "SHA-256") ||
			!strings.Contains(hs[1].Value(), "MD5") || !strings.Contains(hs[0].Value(), `realm="acme.test"`) {
			t.Fatalf("challenge = %d %v", res.StatusCode, hs)
		}
	})
	t.Run("SHA-256", func(t *testing.T) {
		res := register(t, c, registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5999>"), "1001", "s3cret-pass")
		if res.StatusCode != 200 || !strings.Contains(res.GetHeader("Contact").Value(), "127.0.0.1:5999") {
			t.Fatalf("register = %d %v", res.StatusCode, res.GetHeader("Contact"))
		}
	})
	t.Run("MD5", func(t *testing.T) {
		req := registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5998>")
		res, err := c.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		md5Chal, err := digest.ParseChallenge(res.GetHeaders("WWW-Authenticate")[1].Value())
		if err != nil {
			t.Fatal(err)
		}
		cred, err := digest.Digest(md5Chal, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(),
			Username: "1001", Password: "s3cret-pass", Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
		req.CSeq().SeqNo++
		req.RemoveHeader("Via")
		res, err = c.Do(ctx, req)
		if err != nil || res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 2 {
			t.Fatalf("MD5 register = %v %v; want 200 with both contacts", res, err)
		}
	})
	t.Run("Expires limits and un-REGISTER", func(t *testing.T) {
		res := register(t, c, registerReq(t, s, "1001", "10", "<sip:1001@127.0.0.1:5997>"), "1001", "s3cret-pass")
		if res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil {
			t.Fatalf("too brief = %d, want 423 with Min-Expires", res.StatusCode)
		}
		res = register(t, c, registerReq(t, s, "1001", "99999", "<sip:1001@127.0.0.1:5997>"), "1001", "s3cret-pass")
		if res.StatusCode != 200 || !strings.Contains(res.String(), "127.0.0.1:5997>;expires=3600") {
			t.Fatalf("too long = %d, want 200 capped at 3600:\n%s", res.StatusCode, res)
		}
		res = register(t, c, registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5997>;expires=0"), "1001", "s3cret-pass")
		if res.StatusCode != 200 || strings.Contains(res.String(), "5997") || len(res.GetHeaders("Contact")) != 2 {
			t.Fatalf("un-REGISTER one contact = %d:\n%s", res.StatusCode, res)
		}
	})
	t.Run("bad password: 401 again, then 403 at the limit", func(t *testing.T) {
		var codes []int
		for i := 0; i < 4; i++ {
			res := register(t, c, registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5996>"), "1001", "wrong-password")
			codes = append(codes, res.StatusCode)
		}
		if codes[0] != 401 || codes[1] != 401 || codes[2] != 403 || codes[3] != 403 {
			t.Fatalf("codes for wrong passwords = %v, want 401 401 403 403", codes)
		}
		res := register(t, c, registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5996>"), "1001", "s3cret-pass")
		if res.StatusCode != 403 {
			t.Fatalf("right password while locked = %d, want 403", res.StatusCode)
		}
	})
	t.Run("unknown domain", func(t *testing.T) {
		req := registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5996>")
		req.To().Address.Host = "nosuch.test"
		res, err := c.Do(ctx, req)
		if err != nil || res.StatusCode != 404 {
			t.Fatalf("unknown domain = %v %v, want 404", res, err)
		}
	})

	// A restart keeps the registrations.
	s.stop(t)
	s2 := startService(t, pool, Config{})
	got := s2.reg.contacts("acme", "1001")
	if len(got) != 2 {
		t.Fatalf("after restart %d contacts, want 2", len(got))
	}
}

func TestRegisterRemoveAllAndStaleNonce(t *testing.T) {
	pool := sipTenantFixture(t)
	mustAgent(t, pool, "acme", "bob", "1002", "another-pass")
	s := startService(t, pool, Config{NonceTTL: 1}) // every nonce is stale at once
	c := newClient(t)
	res := register(t, c, registerReq(t, s, "1002", "", "<sip:1002@127.0.0.1:5990>"), "1002", "another-pass")
	if res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("expired nonce = %d %v, want 401 stale=true", res.StatusCode, res.GetHeader("WWW-Authenticate"))
	}
	s.stop(t)
	s = startService(t, pool, Config{})
	res = register(t, c, registerReq(t, s, "1002", "", "<sip:1002@127.0.0.1:5990>", "<sip:1002@127.0.0.1:5991>"), "1002", "another-pass")
	if res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 2 {
		t.Fatalf("two contacts = %d %v", res.StatusCode, res.GetHeaders("Contact"))
	}
	res = register(t, c, registerReq(t, s, "1002", "0", "*"), "1002", "another-pass")
	if res.StatusCode != 200 || res.GetHeader("Contact") != nil || len(s.reg.contacts("acme", "1002")) != 0 {
		t.Fatalf("remove all = %d:\n%s", res.StatusCode, res)
	}
	var n int
	if err := pool.QueryRow(ctxT(t), `SELECT count(*) FROM t_acme.sip_bindings`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("stored bindings after remove-all = %d, %v", n, err)
	}
}

func TestSetSIPPasswordStoresHA1Only(t *testing.T) {
	pool := sipTenantFixture(t)
	u := mustAgent(t, pool, "acme", "carol", "1003", "plain-text-pw")
	ctx := ctxT(t)
	var md5h, shah, realm string
	if err := pool.QueryRow(ctx, `SELECT sip_ha1_md5, sip_ha1_sha256, sip_realm FROM platform.users WHERE id = $1`, u.ID).
		Scan(&md5h, &shah, &realm); err != nil {
		t.Fatal(err)
	}
	if md5h != ha1(md5Alg, "1003", testDomain, "plain-text-pw") || len(shah) != 64 || realm != testDomain {
		t.Fatalf("stored %s %s %s", md5h, shah, realm)
	}
	var leaked bool
	if err := pool.QueryRow(ctx, `SELECT position('plain-text-pw' in u::text) > 0 FROM platform.users u WHERE id = $1`, u.ID).Scan(&leaked); err != nil || leaked {
		t.Fatalf("plain password stored: %v %v", leaked, err)
	}
	for _, tc := range []struct {
		pw   string
		want fault.Code
	}{{"short", fault.Invalid}, {strings.Repeat("x", 200), fault.Invalid}} {
		if err := SetSIPPassword(ctx, pool, u.ID, tc.pw); fault.CodeOf(err) != tc.want {
			t.Errorf("password %q: %v", tc.pw[:5], err)
		}
	}
	if err := SetSIPDomain(ctx, pool, "acme", "Not A Domain!"); fault.CodeOf(err) != fault.Invalid {
		t.Errorf("bad domain: %v", err)
	}
}

// The registrar caches agents' HA1s; a password set meanwhile (by the admin CLI, another
// process) works at once, and the old one is refused once the cache has been refreshed.
func TestRegisterAfterPasswordChange(t *testing.T) {
	pool := sipTenantFixture(t)
	u := mustAgent(t, pool, "acme", "dave", "1004", "first-password")
	s := startService(t, pool, Config{})
	c := newClient(t)
	if res := register(t, c, registerReq(t, s, "1004", "", "<sip:1004@127.0.0.1:5980>"), "1004", "first-password"); res.StatusCode != 200 {
		t.Fatalf("first password = %d", res.StatusCode)
	}
	if err := SetSIPPassword(ctxT(t), pool, u.ID, "second-password"); err != nil {
		t.Fatal(err)
	}
	if res := register(t, c, registerReq(t, s, "1004", "", "<sip:1004@127.0.0.1:5980>"), "1004", "second-password"); res.StatusCode != 200 {
		t.Fatalf("new password = %d, want 200 at once", res.StatusCode)
	}
	if res := register(t, c, registerReq(t, s, "1004", "", "<sip:1004@127.0.0.1:5980>"), "1004", "first-password"); res.StatusCode != 401 {
		t.Fatalf("old password after the new one was read = %d, want 401", res.StatusCode)
	}
}

// An extension holds at most maxContactsPerExt contacts: a REGISTER that would add one more
// is refused and changes nothing, in memory or stored.
func TestRegisterContactLimit(t *testing.T) {
	pool := sipTenantFixture(t)
	mustAgent(t, pool, "acme", "erin", "1005", "erin-password")
	s := startService(t, pool, Config{})
	c := newClient(t)
	contact := func(i int) string { return fmt.Sprintf("<sip:1005@127.0.0.1:%d>", 6000+i) }
	var all []string
	for i := 0; i < maxContactsPerExt; i++ {
		all = append(all, contact(i))
	}
	if res := register(t, c, registerReq(t, s, "1005", "", all...), "1005", "erin-password"); res.StatusCode != 200 {
		t.Fatalf("%d contacts = %d", maxContactsPerExt, res.StatusCode)
	}
	// A refresh of registered contacts is no new one.
	if res := register(t, c, registerReq(t, s, "1005", "", contact(0), contact(1)), "1005", "erin-password"); res.StatusCode != 200 {
		t.Fatalf("refresh at the limit = %d", res.StatusCode)
	}
	res := register(t, c, registerReq(t, s, "1005", "", contact(maxContactsPerExt)), "1005", "erin-password")
	if res.StatusCode != 400 || !strings.Contains(res.Reason, "at most") {
		t.Fatalf("one contact over the limit = %d %q, want 400", res.StatusCode, res.Reason)
	}
	var n int
	if err := pool.QueryRow(ctxT(t), `SELECT count(*) FROM t_acme.sip_bindings WHERE extension = '1005'`).Scan(&n); err != nil || n != maxContactsPerExt {
		t.Fatalf("stored contacts = %d, %v; want %d", n, err, maxContactsPerExt)
	}
	if got := len(s.reg.contacts("acme", "1005")); got != maxContactsPerExt {
		t.Fatalf("contacts in memory = %d, want %d", got, maxContactsPerExt)
	}
	// Removing one makes room for another.
	res = register(t, c, registerReq(t, s, "1005", "", contact(0)+";expires=0", contact(maxContactsPerExt)), "1005", "erin-password")
	if res.StatusCode != 200 || len(res.GetHeaders("Contact")) != maxContactsPerExt {
		t.Fatalf("swap one contact = %d with %d contacts", res.StatusCode, len(res.GetHeaders("Contact")))
	}
}

// A captured Authorization header sent again is refused with a fresh challenge; the same
// nonce with a higher nonce count (a phone reusing its nonce) is accepted, a lower one not.
func TestReplayedDigestAnswerIsRefused(t *testing.T) {
	pool := sipTenantFixture(t)
	mustAgent(t, pool, "acme", "alice", "1001", "s3cret-pass")
	s := startService(t, pool, Config{AuthFailLimit: 3})
	c := newClient(t)
	ctx := ctxT(t)
	res, err := c.Do(ctx, registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5999>"))
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("challenge = %v, %v", res, err)
	}
	chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	answer := func(nc int) string {
		cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:" + testDomain,
			Username: "1001", Password: "s3cret-pass", Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		return cred.String()
	}
	send := func(auth string) *sip.Response {
		t.Helper()
		req := registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5999>")
		req.AppendHeader(sip.NewHeader("Authorization", auth))
		res, err := c.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := answer(1)
	for _, tc := range []struct {
		what string
		auth string
		want int
	}{
		{"first use of nc 1", first, 200},
		{"the same header replayed", first, 401},
		{"the same header replayed again", first, 401},
		{"nc 2 of the same nonce", answer(2), 200},
		{"nc 1 again, lower than 2", answer(1), 401},
		{"nc 2 again", answer(2), 401},
		{"nc 5", answer(5), 200},
	} {
		res := send(tc.auth)
		if res.StatusCode != tc.want {
			t.Fatalf("%s = %d, want %d", tc.what, res.StatusCode, tc.want)
		}
		if tc.want == 401 {
			fresh, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
			if err != nil || fresh.Nonce == chal.Nonce || fresh.Stale {
				t.Fatalf("%s: challenge %v (%v), want a fresh nonce, not stale", tc.what, res.GetHeader("WWW-Authenticate"), err)
			}
		}
	}
	// Replays are no wrong passwords: they did not lock the extension (limit 3, four replays).
	if res := register(t, c, registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5999>"), "1001", "s3cret-pass"); res.StatusCode != 200 {
		t.Fatalf("register after replays = %d, want 200", res.StatusCode)
	}
}

func TestNonceCountsAreRememberedPerNonce(t *testing.T) {
	n := newNonces(time.Minute)
	clock := time.Now()
	n.now = func() time.Time { return clock }
	for _, tc := range []struct {
		nonce string
		nc    int
		want  bool
		after time.Duration // the clock moves on before the use
	}{
		{"a", 1, true, 0},
		{"a", 1, false, 0},
		{"b", 1, true, 0},
		{"a", 3, true, 0},
		{"a", 2, false, 0},
		{"a", 0, false, 0},
		{"a", 1 << 33, false, 0},
		{"a", 3, false, 61 * time.Second}, // rotated once: still remembered in the previous generation
		{"b", 1, false, 0},
		{"a", 4, true, 0},
	} {
		clock = clock.Add(tc.after)
		if got := n.use(tc.nonce, tc.nc); got != tc.want {
			t.Fatalf("use(%s, %d) = %v, want %v", tc.nonce, tc.nc, got, tc.want)
		}
	}
}
