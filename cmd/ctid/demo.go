package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// demoPassword is every demo user's password; README lists the logins.
const demoPassword = "demo1234"

// demoUsers has one user per role, two agents in one team led by "lead".
var demoUsers = []account.NewUser{
	{Username: "operator", DisplayName: "Platform Operator", Roles: []string{"operator"}},
	{TenantCode: "demo", Username: "admin", DisplayName: "Ada Admin", Roles: []string{"admin"}},
	{TenantCode: "demo", Username: "config", DisplayName: "Carl Config", Roles: []string{"config_admin"}},
	{TenantCode: "demo", Username: "supervisor", DisplayName: "Sue Supervisor", Roles: []string{"supervisor"}},
	{TenantCode: "demo", Username: "lead", DisplayName: "Li Lead", Roles: []string{"team_lead"}, Team: "Team A"},
	{TenantCode: "demo", Username: "qa", DisplayName: "Quinn QA", Roles: []string{"qa"}},
	{TenantCode: "demo", Username: "agent1", DisplayName: "Wang Fang", Roles: []string{"agent"}, Team: "Team A", Extension: "1001"},
	{TenantCode: "demo", Username: "agent2", DisplayName: "Zhang Wei", Roles: []string{"agent"}, Team: "Team A", Extension: "1002"},
}

// ensureDemo creates the demo tenant and its users when they are missing; existing ones are
// left as they are, so restarts keep what a person changed.
func ensureDemo(ctx context.Context, accounts *account.Store, log *slog.Logger) error {
	if _, err := accounts.TenantByCode(ctx, "demo"); fault.CodeOf(err) == fault.NotFound {
		if _, err := accounts.CreateTenant(ctx, account.NewTenant{Code: "demo", Name: "Demo Call Centre",
			Region: "CN", TimeZone: "Asia/Shanghai"}, account.Actor{Name: "demo"}); err != nil {
			return fmt.Errorf("demo tenant: %w", err)
		}
		log.Info("created demo tenant", "code", "demo")
	} else if err != nil {
		return fmt.Errorf("demo tenant: %w", err)
	}
	for _, nu := range demoUsers {
		nu.Password = demoPassword
		_, err := accounts.AddUser(ctx, nu, account.Actor{Name: "demo"})
		if err != nil && fault.CodeOf(err) != fault.Conflict {
			return fmt.Errorf("demo user %s: %w", nu.Username, err)
		}
	}
	return nil
}
