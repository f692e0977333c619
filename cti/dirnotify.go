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

// listenDirectory keeps the registrar's caches honest until ctx ends: it listens on
// directoryChannel on a connection of its own and forgets each announced entry. Caching is
// on only while it listens (d.live): after a failure the caches are dropped and every
// REGISTER reads the database until listening works again, so an old password is never
// accepted for want of a notification. ready is closed after the first attempt.
func (s *Service) listenDirectory(ctx context.Context, ready chan<- struct{}) {
	d := s.reg.dir
	first := true
	for ctx.Err() == nil {
		err := s.listenDirectoryOnce(ctx, func() {
			// Anything may have changed while nobody listened.
			d.forgetAll()
			d.live.Store(true)
			if first {
				first = false
				close(ready)
			}
		})
		d.live.Store(false)
		d.forgetAll()
		if first {
			first = false
			close(ready)
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("SIP directory notifications lost: credentials are read per REGISTER until they are back", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(directoryRetry):
		}
	}
}

func (s *Service) listenDirectoryOnce(ctx context.Context, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
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
