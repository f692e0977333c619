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

// closeInterruptedCalls ends the calls a previous ctid process was handling when it stopped
// without ending them (a crash, a kill, or a stop while calls were up): calls routed by ctid
// (source sip) whose call.offered has no call.ended. Each gets its call.ended event with a
// CDR of result Interrupted, built from the call's events; the CDR ends at the call's last
// event, the last moment ctid knew it alive (the event itself is of now). ctid runs as one process per database, so at start every
// such call is one no process handles any more. Calls reported by external PBXs (source api)
// are theirs to end and are left alone.
func (s *Service) closeInterruptedCalls(ctx context.Context) error {
	codes, err := s.tenantCodes(ctx)
	if err != nil {
		return err
	}
	for _, code := range codes {
		n, err := s.closeInterruptedOf(ctx, code)
		if err != nil {
			return fmt.Errorf("close interrupted calls of %s: %w", code, err)
		}
		if n > 0 {
			s.log.Warn("closed calls interrupted by a stop of ctid", "tenant", code, "calls", n)
		}
	}
	return nil
}

func (s *Service) closeInterruptedOf(ctx context.Context, tenant string) (int, error) {
	var cdrs []*CDR
	err := db.InTenant(ctx, s.pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT o.call_id FROM events o
			WHERE o.type = 'call.offered' AND o.at > $1 AND o.data->>'source' = 'sip' AND o.call_id <> ''
				AND NOT EXISTS (SELECT 1 FROM events e WHERE e.call_id = o.call_id AND e.type = 'call.ended')
			ORDER BY o.seq`, time.Now().Add(-interruptedLookback))
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
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
