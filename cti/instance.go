package cti

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// directoryChannel is where PostgreSQL announces changes of agents' SIP credentials and of
// tenants' SIP domains (platform migration 0130: triggers on platform.users and
// platform.tenants), whoever made them: this process, another ctid, the CLI.
const directoryChannel = "ctid_sip_directory"

// directoryRetry is the pause before listening again after the connection failed.
const directoryRetry = time.Second

// keepInstance holds this process's instance connection until ctx ends: a connection of
// its own that holds the instance's advisory lock (interrupted.go: other processes see this
// one alive by it) and listens on directoryChannel, forgetting each announced registrar
// entry. Caching is on only while it listens (d.live): after a failure the caches are
// dropped and every REGISTER reads the database until listening works again, so an old
// password is never accepted for want of a notification; the connection, and with it the
// lock, is made again at once. ready gets the outcome of the first attempt (nil once the
// lock is held and listening started); a process that cannot take its lock does not start.
func (s *Service) keepInstance(ctx context.Context, ready chan<- error) {
	d := s.reg.dir
	first := true
	for ctx.Err() == nil {
		err := s.keepInstanceOnce(ctx, func() {
			// Anything may have changed while nobody listened.
			d.forgetAll()
			d.live.Store(true)
			if first {
				first = false
				ready <- nil
			}
		})
		d.live.Store(false)
		d.forgetAll()
		if first {
			ready <- err
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("instance connection lost: SIP credentials are read per REGISTER until it is back", "instance", s.instance, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(directoryRetry):
		}
	}
}

func (s *Service) keepInstanceOnce(ctx context.Context, listening func()) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	// A host that vanishes (no FIN) must not keep its lock for the kernel's two hours:
	// the server probes the idle session and ends it within about a minute.
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["tcp_keepalives_idle"] = "30"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "10"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, instanceLockClass, s.instanceID).Scan(&locked); err != nil {
		return fmt.Errorf("lock instance %d: %w", s.instanceID, err)
	}
	if !locked {
		return fmt.Errorf("lock instance %d: held by another session", s.instanceID)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+directoryChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		s.applyDirectoryChange(n.Payload)
	}
}

// applyDirectoryChange forgets what a notification names; one it cannot read drops all.
func (s *Service) applyDirectoryChange(payload string) {
	d := s.reg.dir
	kind, rest, _ := strings.Cut(payload, ":")
	switch kind {
	case "user":
		tenant, ext, ok := strings.Cut(rest, ":")
		if id, err := strconv.ParseInt(tenant, 10, 64); err == nil && ok {
			d.forgetUser(id, ext)
			return
		}
	case "tenant":
		d.forgetTenants()
		return
	}
	d.forgetAll()
}
