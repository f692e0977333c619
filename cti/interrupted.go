package cti

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/db"
)

// interruptedLookback is how far back a start looks for calls a previous process left open.
// A call is over long before; older open calls (none, unless ctid was down for a week and
// more) stay as they are.
const interruptedLookback = 7 * 24 * time.Hour

// Several ctid processes may share a database (behind a SIP load balancer, or during a
// rolling restart). Each registers in platform.ctid_instances and holds the session
// advisory lock (instanceLockClass, its id) on its instance connection (instance.go) for as
// long as it lives; PostgreSQL lets the lock go when the session ends, whatever ended it:
// a clean stop, a kill, a crash, or a host that vanished (the connection's TCP keepalives
// end the session within about a minute). The calls a process handles name it in their
// call.offered event ("instance"). A call whose owner's lock is free has nobody left to
// end it.
//
// A lock is chosen over a heartbeat row: it needs no writes, no clock agreement between
// hosts and no expiry to tune, and it cannot look alive after its holder died.
const instanceLockClass int32 = 1668573540 // "ctid"

// sweepLockID is the advisory lock (instanceLockClass, 0) of whoever closes calls of dead
// processes, so two processes never close the same call twice. Instance ids start at 1.
const sweepLockID int32 = 0

// orphanSweepEvery is how often a running process looks for dead processes. A dead one's
// calls are closed once two sweeps in a row found it dead, so a process whose instance
// connection dropped for a moment (it takes its lock again at once) keeps its calls. While
// no process died a sweep is two small queries.
const orphanSweepEvery = 30 * time.Second

// clockMargin is how far the clocks of ctid hosts and PostgreSQL's may disagree.
const clockMargin = time.Hour

// deadInstances are the registered processes that do not hold their lock, with their start.
func (s *Service) deadInstances(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT i.id::text, i.started_at FROM platform.ctid_instances i
		WHERE i.stopped_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
			AND l.classid = $1::int::oid AND l.objid = i.id::oid
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, instanceLockClass)
	if err != nil {
		return nil, fmt.Errorf("find stopped ctid instances: %w", err)
	}
	defer rows.Close()
	dead := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("find stopped ctid instances: %w", err)
		}
		dead[id] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find stopped ctid instances: %w", err)
	}
	return dead, nil
}

// closeInterruptedCalls ends, at start, the calls that no live ctid process handles any
// more: calls routed by ctid (source sip) whose call.offered has no call.ended and whose
// owner is dead (or unknown: a call of a ctid from before owners were recorded). Each gets
// its call.ended event with a CDR of result Interrupted, built from the call's events; the
// CDR ends at the call's last event, the last moment ctid knew it alive (the event itself
// is of now). Then the agents left in such calls are made Ready. Calls of live processes,
// and calls reported by external PBXs (source api), are theirs to end and are left alone.
func (s *Service) closeInterruptedCalls(ctx context.Context) error {
	return s.withSweepLock(ctx, true, func() error {
		dead, err := s.deadInstances(ctx)
		if err != nil {
			return err
		}
		return s.closeOrphans(ctx, true, time.Now().Add(-interruptedLookback), dead,
			func(owner string) bool { _, ok := dead[owner]; return ok || owner == "" })
	})
}

// sweepOrphanedCalls is a running process's check for processes that died since (see
// orphanSweepEvery).
func (s *Service) sweepOrphanedCalls(ctx context.Context) error {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	dead, err := s.deadInstances(ctx)
	if err != nil {
		return err
	}
	confirmed := map[string]time.Time{}
	for id, at := range dead {
		if s.suspects[id] {
			confirmed[id] = at
		}
	}
	s.suspects = map[string]bool{}
	for id := range dead {
		s.suspects[id] = true
	}
	if len(confirmed) == 0 {
		return nil
	}
	// Its calls were offered after it started; the margin covers clocks of other hosts.
	since := time.Now()
	for _, at := range confirmed {
		if at.Before(since) {
			since = at
		}
	}
	since = since.Add(-clockMargin)
	// Another process sweeping now does the work; what it leaves is found next time.
	return s.withSweepLock(ctx, false, func() error {
		return s.closeOrphans(ctx, false, since, confirmed, func(owner string) bool { _, ok := confirmed[owner]; return ok })
	})
}

// withSweepLock runs f holding the sweep lock; without wait it skips f when another
// process holds the lock.
func (s *Service) withSweepLock(ctx context.Context, wait bool, f func() error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("sweep lock: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	got := true
	if wait {
		_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, instanceLockClass, sweepLockID)
	} else {
		err = tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, $2)`, instanceLockClass, sweepLockID).Scan(&got)
	}
	if err != nil {
		return fmt.Errorf("sweep lock: %w", err)
	}
	if !got {
		return nil
	}
	return f()
}

// closeOrphans closes, in every tenant, the open calls offered since whose owner is gone,
// frees their agents, and forgets the dead instances whose calls are all closed. atStart
// also frees agents left busy with no call of ctid's (an external PBX's call whose hangup
// a stop may have missed).
func (s *Service) closeOrphans(ctx context.Context, atStart bool, since time.Time, dead map[string]time.Time, gone func(owner string) bool) error {
	codes, err := s.tenantCodes(ctx)
	if err != nil {
		return err
	}
	for _, code := range codes {
		n, err := s.closeInterruptedOf(ctx, code, since, gone)
		if err != nil {
			return fmt.Errorf("close interrupted calls of %s: %w", code, err)
		}
		if n > 0 {
			s.log.Warn("closed calls interrupted by a stop of ctid", "tenant", code, "calls", n)
		}
		if err := s.agents.recover(ctx, code, atStart, gone); err != nil {
			return err
		}
	}
	for id := range dead {
		if _, err := s.pool.Exec(ctx, `DELETE FROM platform.ctid_instances WHERE id = $1::int`, id); err != nil {
			return fmt.Errorf("forget stopped ctid instance %s: %w", id, err)
		}
		s.log.Info("closed what a stopped ctid instance left", "stopped", id)
	}
	return nil
}

// closeInterruptedOf closes a tenant's open calls offered since whose owner is gone.
func (s *Service) closeInterruptedOf(ctx context.Context, tenant string, since time.Time, gone func(owner string) bool) (int, error) {
	var cdrs []*CDR
	err := db.InTenant(ctx, s.pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT o.call_id, coalesce(o.data->>'instance', '') FROM events o
			WHERE o.type = 'call.offered' AND o.at > $1 AND o.data->>'source' = 'sip' AND o.call_id <> ''
				AND NOT EXISTS (SELECT 1 FROM events e WHERE e.call_id = o.call_id AND e.type = 'call.ended')
			ORDER BY o.seq`, since)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id, owner string
			if err := rows.Scan(&id, &owner); err != nil {
				rows.Close()
				return err
			}
			if gone(owner) {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			rows, err := tx.Query(ctx, `SELECT at, type, coalesce(agent_id, 0), queue, data FROM events
				WHERE call_id = $1 ORDER BY seq`, id)
			if err != nil {
				return err
			}
			var evs []Event
			for rows.Next() {
				ev := Event{CallID: id}
				var typ string
				if err := rows.Scan(&ev.At, &typ, &ev.AgentID, &ev.Queue, &ev.Data); err != nil {
					rows.Close()
					return err
				}
				ev.Type = EventType(typ)
				evs = append(evs, ev)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			cdrs = append(cdrs, interruptedCDR(id, evs))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, cdr := range cdrs {
		data := map[string]string{"result": string(Interrupted), "hangup_by": HangupSystem}
		if _, err := s.events.Append(ctx, Event{Tenant: tenant, Type: CallEnded, CallID: cdr.CallID,
			AgentID: cdr.AgentID, Queue: cdr.Queue, Data: data, CDR: cdr}); err != nil {
			return 0, fmt.Errorf("end call %s: %w", cdr.CallID, err)
		}
		s.m.calls.WithLabelValues(string(Interrupted)).Inc()
	}
	return len(cdrs), nil
}

// recover moves agents whose state belongs to a call no live ctid process handles
// (reserved, ringing, on call, wrap-up: the call's owner is gone, so no timer or answer will
// ever move them) back to Ready with reason "restart": an agent left there would never be
// offered a call again. atStart also frees busy agents with no call of ctid's (an external
// PBX's call, whose hangup a stop may have missed).
func (a *Agents) recover(ctx context.Context, tenant string, atStart bool, gone func(owner string) bool) error {
	var ids []int64
	err := db.InTenant(ctx, a.pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT a.agent_id, o.data->>'instance', o.call_id IS NOT NULL FROM agent_states a
			LEFT JOIN LATERAL (SELECT e.call_id, e.data FROM events e WHERE e.call_id = a.call_id AND a.call_id <> ''
				AND e.type = 'call.offered' ORDER BY e.seq LIMIT 1) o ON true
			WHERE a.state IN ('reserved', 'ringing', 'on_call', 'wrap_up')`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var owner *string
			var ours bool
			if err := rows.Scan(&id, &owner, &ours); err != nil {
				rows.Close()
				return err
			}
			if (ours && gone(deref(owner))) || (!ours && atStart) {
				ids = append(ids, id)
			}
		}
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("find agents of %s left in calls: %w", tenant, err)
	}
	for _, id := range ids {
		if _, err := a.Set(ctx, tenant, id, Change{To: Ready, Who: BySystem, Reason: "restart"}); err != nil && !isConflict(err) {
			return err
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// interruptedCDR rebuilds what a call's events tell of it, oldest first.
func interruptedCDR(callID string, evs []Event) *CDR {
	c := &CDR{CallID: callID, Source: "sip", Direction: Inbound, Result: Interrupted, HangupBy: HangupSystem}
	for _, ev := range evs {
		if ev.Queue != "" {
			c.Queue = ev.Queue
		}
		switch ev.Type {
		case CallOffered:
			c.OfferedAt = ev.At
			c.CallerRaw, c.CallerE164 = ev.Data["caller"], ev.Data["caller_e164"]
			c.CalleeRaw, c.CalleeE164, c.DID = ev.Data["callee"], ev.Data["callee_e164"], ev.Data["did"]
			if d := Direction(ev.Data["direction"]); d == Outbound || d == Internal {
				c.Direction = d
			}
			if ev.AgentID != 0 { // an agent's own outbound call
				c.AgentID, c.AgentExtension = ev.AgentID, ev.Data["caller"]
			}
		case CallQueued:
			if c.QueuedAt.IsZero() {
				c.QueuedAt = ev.At
			}
		case CallRinging:
			if c.RingingAt.IsZero() {
				c.RingingAt = ev.At
			}
			if c.AnsweredAt.IsZero() {
				c.AgentID, c.AgentExtension = ev.AgentID, ev.Data["extension"]
			}
		case CallMissed:
			if c.AnsweredAt.IsZero() {
				c.AgentID, c.AgentExtension = ev.AgentID, ev.Data["extension"]
			}
		case CallAnswered:
			c.AnsweredAt = ev.At
			if ev.AgentID != 0 {
				c.AgentID, c.AgentExtension = ev.AgentID, ev.Data["extension"]
			}
		}
		c.EndedAt = ev.At
	}
	if c.EndedAt.Before(c.OfferedAt) {
		c.EndedAt = c.OfferedAt
	}
	return c
}
