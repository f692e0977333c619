package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/fault"
)

// TrafficOptions set up demo traffic inside a running ctid.
type TrafficOptions struct {
	SIPAddr  string        // ctid's UDP SIP address
	Every    time.Duration // a new call this often (default 15 s)
	Accounts *account.Store
	Agents   *cti.Agents
	// Human is the agent a person watches in the console: their phone is simulated too, but
	// their state is theirs to set. The other demo agents are set Ready.
	Human  string
	Logger *slog.Logger
	// SaveTrunk (optional) points the demo trunk's outbound side at the simulated caller, who
	// then answers agents' outbound and click-to-dial calls.
	SaveTrunk func(context.Context, cti.Trunk) error
}

// Traffic runs simulated phones for the demo agents and a caller on the demo number until
// ctx ends.
func Traffic(ctx context.Context, o TrafficOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Every <= 0 {
		o.Every = 15 * time.Second
	}
	t, err := o.Accounts.TenantByCode(ctx, Tenant)
	if err != nil {
		return fmt.Errorf("demo traffic: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, nu := range Users {
		if nu.Extension == "" {
			continue
		}
		p, err := NewPhone(PhoneOptions{Server: o.SIPAddr, Domain: Domain, Extension: nu.Extension, Password: Password,
			AnswerMin: 2 * time.Second, AnswerMax: 5 * time.Second, TalkMin: 8 * time.Second, TalkMax: 25 * time.Second, Logger: log})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(ctx); err != nil {
				log.Warn("demo phone stopped", "extension", nu.Extension, "err", err)
			}
		}()
		if nu.Username == o.Human {
			continue
		}
		u, err := findUser(ctx, o.Accounts, t, nu.Username)
		if err != nil {
			return err
		}
		if _, err := o.Agents.Set(ctx, Tenant, u.ID, cti.Change{To: cti.Ready, Who: cti.ByAgent, Actor: "demo"}); err != nil &&
			fault.CodeOf(err) != fault.Conflict {
			log.Warn("demo agent not set ready", "agent", nu.Username, "err", err)
		}
	}
	known, shared := Numbers()
	c, err := NewCaller(CallerOptions{Server: o.SIPAddr, DID: DID, Every: o.Every, Numbers: NumberMix(known, shared), Logger: log})
	if err != nil {
		return err
	}
	if o.SaveTrunk != nil {
		err := o.SaveTrunk(ctx, cti.Trunk{Tenant: Tenant, Name: "demo-caller", Source: netip.MustParsePrefix("127.0.0.1/32"),
			OutboundURI: "sip:" + c.Addr(), CallerID: DID})
		if err != nil {
			return fmt.Errorf("demo trunk outbound: %w", err)
		}
	}
	log.Info("demo traffic running", "every", o.Every, "number", DID)
	return c.Run(ctx)
}
