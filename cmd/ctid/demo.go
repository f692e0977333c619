package main

import (
	"context"
	"time"

	"github.com/ctid/ctid/demo"
)

// demoPassword is every demo user's password; README lists the logins.
const demoPassword = demo.Password

// seedDemo creates what is missing of the demo tenant.
func (a *App) seedDemo(ctx context.Context) error {
	start := time.Now()
	if err := demo.Seed(ctx, demo.Deps{Pool: a.Pool, Accounts: a.Accounts, Objects: a.Objects, Logger: a.log}); err != nil {
		return err
	}
	a.log.Debug("demo tenant ready", "took", time.Since(start))
	return nil
}

// startDemoTraffic runs simulated phones and a caller against this ctid's own SIP listener.
func (a *App) startDemoTraffic() {
	a.background(func(ctx context.Context) error {
		return demo.Traffic(ctx, demo.TrafficOptions{SIPAddr: a.CTI.Addr("udp"), Every: a.cfg.Demo.CallEvery,
			Accounts: a.Accounts, Agents: a.CTI.Agents(), Human: "agent1", Logger: a.log, SaveTrunk: a.CTI.SaveTrunk})
	})
}
