package cti

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// ListQueues reads a tenant's queues with their settings and caller priorities, by name.
func ListQueues(ctx context.Context, pool *pgxpool.Pool, tenant string) ([]Queue, error) {
	var names []string
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT name FROM queues ORDER BY name`)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list queues of %s: %w", tenant, err)
	}
	out := make([]Queue, 0, len(names))
	for _, name := range names {
		q, _, err := loadQueue(ctx, pool, tenant, name)
		if err != nil {
			return nil, err
		}
		out = append(out, *q)
	}
	return out, nil
}

// Queue reads one queue (NotFound when the tenant has none of that name).
func (s *Service) Queue(ctx context.Context, tenant, name string) (*Queue, error) {
	q, _, err := loadQueue(ctx, s.pool, tenant, name)
	return q, err
}

// Queues lists a tenant's queues (ListQueues).
func (s *Service) Queues(ctx context.Context, tenant string) ([]Queue, error) {
	return ListQueues(ctx, s.pool, tenant)
}

// QueueMember is an agent of a queue, as the admin pages show it.
type QueueMember struct {
	AgentID   int64
	Extension string
	Level     int // 1 is offered first
}

// QueueMembers lists a queue's members (enabled agents), by level.
func (s *Service) QueueMembers(ctx context.Context, tenant, name string) ([]QueueMember, error) {
	_, ms, err := loadQueue(ctx, s.pool, tenant, name)
	if err != nil {
		return nil, err
	}
	out := make([]QueueMember, 0, len(ms))
	for _, m := range ms {
		out = append(out, QueueMember{AgentID: m.AgentID, Extension: m.Extension, Level: m.Level})
	}
	return out, nil
}

// RemoveQueueMember takes an agent out of a queue (NotFound when not a member).
func RemoveQueueMember(ctx context.Context, pool *pgxpool.Pool, tenant, queue string, agentID int64) error {
	var n int64
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM queue_members WHERE queue = $1 AND agent_id = $2`, queue, agentID)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("remove member %d from queue %q: %w", agentID, queue, err)
	}
	if n == 0 {
		return fault.Errorf(fault.NotFound, "agent %d is not a member of queue %q", agentID, queue)
	}
	return nil
}

// RemoveQueueMember takes an agent out of a queue and makes calls see it at once.
func (s *Service) RemoveQueueMember(ctx context.Context, tenant, queue string, agentID int64) error {
	defer s.queueCfg.clear()
	return RemoveQueueMember(ctx, s.pool, tenant, queue, agentID)
}

// ListDIDs reads a tenant's numbers and their routes, by number.
func ListDIDs(ctx context.Context, pool *pgxpool.Pool, tenant string) ([]DID, error) {
	var out []DID
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT number, coalesce(queue, ''), coalesce(extension, ''), priority FROM dids ORDER BY number`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DID, error) {
			var d DID
			return d, r.Scan(&d.Number, &d.Queue, &d.Extension, &d.Priority)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list numbers of %s: %w", tenant, err)
	}
	return out, nil
}

// DIDs lists a tenant's numbers (ListDIDs).
func (s *Service) DIDs(ctx context.Context, tenant string) ([]DID, error) {
	return ListDIDs(ctx, s.pool, tenant)
}

// ListTrunks reads a tenant's trunks by name. Password is never filled: only its HA1s are
// kept, and HasPassword says whether there are some.
func ListTrunks(ctx context.Context, pool *pgxpool.Pool, tenant string) ([]TrunkInfo, error) {
	rows, err := pool.Query(ctx, `SELECT k.name, k.source, k.outbound_uri, k.caller_id, coalesce(k.auth_username, ''),
			k.auth_ha1_sha256 IS NOT NULL
		FROM platform.sip_trunks k JOIN platform.tenants t ON t.id = k.tenant_id WHERE t.code = $1 ORDER BY k.name`, tenant)
	if err != nil {
		return nil, fmt.Errorf("list trunks of %s: %w", tenant, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TrunkInfo, error) {
		ti := TrunkInfo{Trunk: Trunk{Tenant: tenant}}
		return ti, r.Scan(&ti.Name, &ti.Source, &ti.OutboundURI, &ti.CallerID, &ti.Username, &ti.HasPassword)
	})
	if err != nil {
		return nil, fmt.Errorf("list trunks of %s: %w", tenant, err)
	}
	return out, nil
}

// TrunkInfo is a trunk as listed: its settings without the password.
type TrunkInfo struct {
	Trunk
	HasPassword bool
}

// Trunks lists a tenant's trunks (ListTrunks).
func (s *Service) Trunks(ctx context.Context, tenant string) ([]TrunkInfo, error) {
	return ListTrunks(ctx, s.pool, tenant)
}

// CheckSIPPassword says whether password may be a SIP password (SetSIPPassword's rule), so
// a form can refuse it before it changes anything else.
func CheckSIPPassword(password string) error {
	if n := utf8.RuneCountInString(password); n < minSIPPassword || n > maxSIPPassword {
		return fault.Errorf(fault.Invalid, "SIP password must have %d–%d characters", minSIPPassword, maxSIPPassword)
	}
	return nil
}

// SIPDomain is the tenant's SIP domain, the realm of its digest ("" when it has none).
func (s *Service) SIPDomain(ctx context.Context, tenant string) (string, error) {
	t, err := s.reg.dir.tenantByCode(ctx, tenant)
	if err != nil {
		return "", err
	}
	return t.Domain, nil
}

// ChangeSIPDomain sets a tenant's SIP domain (the package function); REGISTERs use the new
// realm at once.
func (s *Service) ChangeSIPDomain(ctx context.Context, tenant, domain string, audit AuditFunc) (SIPDomainChange, error) {
	defer s.reg.dir.forgetAll()
	return ChangeSIPDomain(ctx, s.pool, tenant, domain, audit)
}

// SetSIPPassword sets an agent's SIP password (the package function); the registrar checks
// the next REGISTER against it, and the old password is refused from the moment this
// returns. (A change by another process reaches this one through the database's
// notification, within milliseconds; see dirnotify.go.)
func (s *Service) SetSIPPassword(ctx context.Context, userID int64, password string) error {
	defer s.reg.dir.users.clear()
	return SetSIPPassword(ctx, s.pool, userID, password)
}
