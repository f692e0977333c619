// Package account owns tenants, users, teams, roles, passwords, sessions and API tokens.
package account

import (
	"slices"
	"strings"

	"github.com/ctid/ctid/fault"
)

// Role is what a user is to ctid. The seed's ROLE_CC_* names are accepted as aliases.
type Role string

const (
	RoleOperator    Role = "operator"     // 运营级管理员: creates tenants; belongs to none
	RoleAdmin       Role = "admin"        // 企业管理员: users, agents, teams, phones
	RoleConfigAdmin Role = "config_admin" // 企业配置管理员: data objects, code tables, queries, routing
	RoleSupervisor  Role = "supervisor"   // watches the whole floor live
	RoleTeamLead    Role = "team_lead"    // 班组长, ROLE_CC_MONITOR: their team's agents, calls, work orders
	RoleQA          Role = "qa"           // 质检员, ROLE_CC_CHECKER: scores work orders and calls
	RoleAgent       Role = "agent"        // 坐席, ROLE_CC_AGENT: takes calls, saves work orders
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleOperator, RoleAdmin, RoleConfigAdmin, RoleSupervisor, RoleTeamLead, RoleQA, RoleAgent}

var roleAliases = map[string]Role{
	"role_cc_monitor": RoleTeamLead,
	"role_cc_checker": RoleQA,
	"role_cc_agent":   RoleAgent,
	"teamlead":        RoleTeamLead,
	"lead":            RoleTeamLead,
	"checker":         RoleQA,
	"tenant_admin":    RoleAdmin,
	"config":          RoleConfigAdmin,
}

// ParseRole reads a role name or one of the seed's aliases.
func ParseRole(s string) (Role, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	if r, ok := roleAliases[k]; ok {
		return r, nil
	}
	if slices.Contains(Roles, Role(k)) {
		return Role(k), nil
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", fault.Errorf(fault.Invalid, "unknown role %q: want one of %s", s, strings.Join(names, ", "))
}

// Permission is something a role may do.
type Permission string

const (
	PermManageTenants Permission = "manage_tenants"
	PermManageUsers   Permission = "manage_users"
	PermConfigure     Permission = "configure"   // data objects, code tables, queries, routing
	PermWatchFloor    Permission = "watch_floor" // live wallboard
	PermScoreQA       Permission = "score_qa"
	PermTakeCalls     Permission = "take_calls"
	PermViewRecords   Permission = "view_records" // customers, work orders, call history (scoped by RowScope)
)

// permissions is the one table of who may do what.
var permissions = map[Role][]Permission{
	RoleOperator:    {PermManageTenants},
	RoleAdmin:       {PermManageUsers, PermWatchFloor, PermViewRecords},
	RoleConfigAdmin: {PermConfigure, PermViewRecords},
	RoleSupervisor:  {PermWatchFloor, PermViewRecords},
	RoleTeamLead:    {PermWatchFloor, PermViewRecords},
	RoleQA:          {PermScoreQA, PermViewRecords},
	RoleAgent:       {PermTakeCalls, PermViewRecords},
}

// Can reports whether any of roles grants p.
func Can(roles []Role, p Permission) bool {
	for _, r := range roles {
		if slices.Contains(permissions[r], p) {
			return true
		}
	}
	return false
}

// RowScope is how much of a tenant's records (calls, work orders, customers) a user sees.
type RowScope int

const (
	ScopeNone RowScope = iota
	ScopeOwn           // an agent: their own rows
	ScopeTeam          // a team lead: their team's rows
	ScopeAll           // QA, supervisors, admins: the whole tenant
)

// ScopeOf is the widest row scope that roles give.
func ScopeOf(roles []Role) RowScope {
	s := ScopeNone
	for _, r := range roles {
		var rs RowScope
		switch r {
		case RoleAdmin, RoleConfigAdmin, RoleSupervisor, RoleQA:
			rs = ScopeAll
		case RoleTeamLead:
			rs = ScopeTeam
		case RoleAgent:
			rs = ScopeOwn
		}
		s = max(s, rs)
	}
	return s
}

func (r Role) String() string { return string(r) }

// SeedName is the role's name in the seed documents, where it has one.
func (r Role) SeedName() string {
	switch r {
	case RoleTeamLead:
		return "ROLE_CC_MONITOR"
	case RoleQA:
		return "ROLE_CC_CHECKER"
	case RoleAgent:
		return "ROLE_CC_AGENT"
	}
	return ""
}

func parseRoles(names []string) ([]Role, error) {
	if len(names) == 0 {
		return nil, fault.Errorf(fault.Invalid, "a user needs at least one role")
	}
	var roles []Role
	for _, n := range names {
		r, err := ParseRole(n)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if slices.Contains(roles, RoleOperator) && len(roles) > 1 {
		return nil, fault.Errorf(fault.Invalid, "the operator role belongs to no tenant and cannot be combined with tenant roles")
	}
	return roles, nil
}

func roleStrings(roles []Role) []string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return s
}
