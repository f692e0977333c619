package cti

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// A queue's members are the tenant's own users: another tenant's user, or no user at all,
// is refused by the cti layer itself (not only by the admin page), naming the user, and
// nothing is added.
func TestSetQueueMemberRefusesUsersOfOtherTenants(t *testing.T) {
	pool := sipTenantFixture(t)
	ctx := ctxT(t)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(t, store, "beta")
	own := mustAgent(t, pool, "acme", "alice", "1001", "alice-pass")
	other, err := store.AddUser(ctx, account.NewUser{TenantCode: "beta", Username: "mallory",
		Password: "correct horse battery", Roles: []string{"agent"}, Extension: "1001"}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveQueue(ctx, pool, "acme", Queue{Name: "sales"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		queue string
		user  int64
		want  fault.Code
	}{
		{"own user", "sales", own.ID, ""},
		{"another tenant's user", "sales", other.ID, fault.Invalid},
		{"no such user", "sales", 987654, fault.Invalid},
		{"own user, no such queue", "nope", own.ID, fault.NotFound},
	} {
		err := SetQueueMember(ctx, pool, "acme", tc.queue, tc.user, 2)
		if fault.CodeOf(err) != tc.want && !(tc.want == "" && err == nil) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if tc.want == fault.Invalid && !strings.Contains(err.Error(), "user "+strconv.FormatInt(tc.user, 10)) {
			t.Errorf("%s: %q does not name the user", tc.name, err)
		}
	}
	var ids []int64
	rows, err := pool.Query(ctx, `SELECT agent_id FROM t_acme.queue_members ORDER BY agent_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) != 1 || ids[0] != own.ID {
		t.Fatalf("members of sales = %v, %v; want only %d", ids, rows.Err(), own.ID)
	}
}
