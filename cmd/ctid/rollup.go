package main

import (
	"context"
	"fmt"

	"github.com/ctid/ctid/query"
)

// cmdRollupRebuild recomputes a tenant's statistics rollups from its whole event log.
func cmdRollupRebuild(ctx context.Context, args []string, e env) error {
	fs := newFlags("rollup rebuild", "Recompute a tenant's agent and queue statistics rollups from its whole event log\n"+
		"(after changing the tenant's time zone, or to check them). Reports read the old rollups until it is done.", e)
	configPath := fs.String("config", "", "configuration file (YAML)")
	tenant := fs.String("tenant", "", "tenant code (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tenant == "" {
		return &usageError{"usage: ctid rollup rebuild --tenant CODE"}
	}
	a, err := adminApp(ctx, *configPath, e)
	if err != nil {
		return err
	}
	defer a.Close()
	t, err := a.Accounts.TenantByCode(ctx, *tenant)
	if err != nil {
		return err
	}
	if err := query.NewRollups(a.Pool, a.log, nil).Rebuild(ctx, t); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "rebuilt the statistics rollups of tenant %s\n", t.Code)
	return nil
}
