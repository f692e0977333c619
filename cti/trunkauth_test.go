package cti

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo"

	"github.com/ctid/ctid/fault"
)

// A trunk with credentials must answer 407 besides coming from its network: the right
// password routes the call to an agent, none gets 407, wrong ones 407 again then 403.
func TestTrunkDigestCredentials(t *testing.T) {
	f := newCallFixture(t, Queue{}, false)
	ctx := f.ctx
	carrier := Trunk{Tenant: "acme", Name: "carrier", Source: netip.MustParsePrefix("127.0.0.1/32"), Username: "carrier-1", Password: "trunk-pass-1"}
	if err := f.s.SaveTrunk(ctx, carrier); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what  string
		trunk Trunk
		want  fault.Code
	}{
		{"password without username", Trunk{Tenant: "acme", Name: "other", Source: netip.MustParsePrefix("10.0.0.1/32"), Password: "trunk-pass-2"}, fault.Invalid},
		{"username without password", Trunk{Tenant: "acme", Name: "other", Source: netip.MustParsePrefix("10.0.0.1/32"), Username: "other"}, fault.Invalid},
		{"bad username", Trunk{Tenant: "acme", Name: "other", Source: netip.MustParsePrefix("10.0.0.1/32"), Username: "a b", Password: "trunk-pass-2"}, fault.Invalid},
		{"short password", Trunk{Tenant: "acme", Name: "other", Source: netip.MustParsePrefix("10.0.0.1/32"), Username: "other", Password: "x"}, fault.Invalid},
	} {
		if err := f.s.SaveTrunk(ctx, tc.trunk); fault.CodeOf(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.what, err, tc.want)
		}
	}
	// Changing the trunk without a password keeps the stored one (same username).
	carrier.Password, carrier.CallerID = "", "02155550001"
	if err := f.s.SaveTrunk(ctx, carrier); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := f.pool.QueryRow(ctx, `SELECT auth_ha1_md5 FROM platform.sip_trunks WHERE name = 'carrier'`).Scan(&stored); err != nil || stored == "" {
		t.Fatalf("HA1 after an edit without password = %q, %v", stored, err)
	}

	call := func(user, password string) error {
		sess := f.trunk.dial(ctx, f.s, testDID)
		return sess.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user, Password: password})
	}
	code := func(err error) int {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return de.Res.StatusCode
		}
		t.Fatalf("call: %v, want a final response", err)
		return 0
	}
	if c := code(call("", "")); c != 407 {
		t.Fatalf("INVITE without credentials = %d, want 407", c)
	}
	if err := call("carrier-1", "trunk-pass-1"); err != nil {
		t.Fatalf("INVITE with the trunk's credentials: %v", err)
	}
	d := recv(t, f.a.invites, "INVITE at agent a")
	if d.InviteRequest.GetHeader("Proxy-Authorization") != nil {
		t.Fatal("the trunk's credentials were passed on to the agent's phone")
	}
	// Wrong passwords (sipgo answers each challenge twice): 407 until the limit (5), then 403,
	// and then even the right password is refused from that source for a while.
	var codes []int
	for range 3 {
		codes = append(codes, code(call("carrier-1", "wrong-password")))
	}
	if codes[0] != 407 || codes[1] != 407 || codes[2] != 403 {
		t.Fatalf("wrong trunk passwords = %v, want 407 407 403", codes)
	}
	if c := code(call("carrier-1", "trunk-pass-1")); c != 403 {
		t.Fatalf("right password while locked = %d, want 403", c)
	}
}
