package cti

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// ExternalEvent is a step of a call that an external PBX (Asterisk, FreeSWITCH, a cloud
// contact centre) routed itself and reports to ctid, so pops and statistics work there too.
type ExternalEvent struct {
	Event     string    `json:"event"`               // newCall, answer, hangup
	CallID    string    `json:"call_id"`             // the PBX's id of the call
	From      string    `json:"from,omitempty"`      // caller number (newCall)
	To        string    `json:"to,omitempty"`        // called number (newCall)
	Direction string    `json:"direction,omitempty"` // inbound (default), outbound, internal
	Agent     string    `json:"agent,omitempty"`     // the agent's extension or username (answer; newCall when ringing one agent)
	Queue     string    `json:"queue,omitempty"`     // queue name, when the PBX used one
	Cause     string    `json:"cause,omitempty"`     // hangup: who or why — caller, agent, busy, no_answer, failed, or a SIP code
	At        time.Time `json:"at,omitempty"`        // when it happened; default now
	// RecordingURL (hangup) is where the PBX keeps the call's recording: an http(s) URL,
	// stored with the CDR and linked from the QA scoring page.
	RecordingURL string `json:"recording_url,omitempty"`
}

// ExternalResult says what a reported event did.
type ExternalResult struct {
	Duplicate bool  `json:"duplicate"` // the (call id, event) was reported before: nothing changed
	Seq       int64 `json:"seq,omitempty"`
}

// ReportCallEvent feeds a call event of an external PBX into the tenant's event log and,
// at hangup, its CDR. It is idempotent on (call id, event).
func (s *Service) ReportCallEvent(ctx context.Context, tenant string, e ExternalEvent) (ExternalResult, error) {
	if err := e.check(); err != nil {
		return ExternalResult{}, err
	}
	t, err := s.reg.dir.tenantByCode(ctx, tenant)
	if err != nil {
		return ExternalResult{}, err
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	scope := db.Scope{Schema: db.SchemaName(tenant)}
	// The call's row and the claim of this (call id, event) are taken first; the event is
	// appended after. A crash in between loses that event's log entry but never a CDR: the
	// hangup's CDR is written with its event, and a retried hangup finds no claim missing.
	var row apiCall
	var dup bool
	err = db.InTenant(ctx, s.pool, scope, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO api_call_events (call_id, event) VALUES ($1, $2) ON CONFLICT DO NOTHING`, e.CallID, e.Event)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			dup = true
			return nil
		}
		return s.applyExternal(ctx, tx, t, &e, &row)
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return ExternalResult{}, err
		}
		return ExternalResult{}, fmt.Errorf("report %s of call %s: %w", e.Event, e.CallID, err)
	}
	if dup {
		return ExternalResult{Duplicate: true}, nil
	}
	ev := Event{Tenant: tenant, CallID: e.CallID, At: e.At, Queue: row.Queue, AgentID: row.AgentID}
	switch e.Event {
	case "newCall":
		ev.Type = CallOffered
		ev.Data = map[string]string{"caller": row.CallerRaw, "caller_e164": row.CallerE164, "callee": row.CalleeRaw,
			"did": row.CalleeRaw, "direction": row.Direction, "source": "api"}
		if row.AgentID != 0 {
			ev.Data["extension"] = row.AgentExtension
		}
	case "answer":
		ev.Type = CallAnswered
		ev.Data = map[string]string{"extension": row.AgentExtension, "source": "api"}
	case "hangup":
		ev.Type = CallEnded
		result, by, code := hangupOutcome(e.Cause, row.AnsweredAt != nil)
		ev.Data = map[string]string{"result": string(result), "hangup_by": by, "source": "api"}
		ev.CDR = row.cdr(e.At, result, by, code)
		ev.CDR.CallID = e.CallID
		ev.CDR.RecordingURL = e.RecordingURL
	}
	written, err := s.events.Append(ctx, ev)
	if err != nil {
		return ExternalResult{}, err
	}
	s.externalAgentState(ctx, tenant, e.Event, row)
	return ExternalResult{Seq: written.Seq}, nil
}

var externalEvents = map[string]bool{"newCall": true, "answer": true, "hangup": true}

func (e *ExternalEvent) check() error {
	if !externalEvents[e.Event] {
		return fault.Errorf(fault.Invalid, "event %q: want newCall, answer or hangup", e.Event)
	}
	if !callIDRE.MatchString(e.CallID) {
		return fault.Errorf(fault.Invalid, "call_id %q is not valid: 1–128 letters, digits and ._:@+-", e.CallID)
	}
	switch e.Direction {
	case "":
		e.Direction = string(Inbound)
	case string(Inbound), string(Outbound), string(Internal):
	default:
		return fault.Errorf(fault.Invalid, "direction %q: want inbound, outbound or internal", e.Direction)
	}
	if e.Queue != "" && !queueNameRE.MatchString(e.Queue) {
		return fault.Errorf(fault.Invalid, "queue %q is not a queue name", e.Queue)
	}
	for name, v := range map[string]string{"from": e.From, "to": e.To, "agent": e.Agent, "cause": e.Cause} {
		if len(v) > 64 {
			return fault.Errorf(fault.Invalid, "%s is longer than 64 characters", name)
		}
	}
	if e.RecordingURL != "" {
		if e.Event != "hangup" {
			return fault.Errorf(fault.Invalid, "recording_url comes with the hangup event, not %s", e.Event)
		}
		if err := CheckRecordingURL(e.RecordingURL); err != nil {
			return err
		}
	}
	if e.Event == "answer" && e.Agent == "" {
		return fault.Errorf(fault.Invalid, "answer needs the agent (extension or username)")
	}
	return nil
}

// apiCall is a reported call as stored in api_calls.
type apiCall struct {
	OfferedAt      time.Time
	Direction      string
	CallerRaw      string
	CallerE164     string
	CalleeRaw      string
	CalleeE164     string
	Queue          string
	AgentID        int64
	AgentExtension string
	AnsweredAt     *time.Time
}

func (s *Service) applyExternal(ctx context.Context, tx pgx.Tx, t *sipTenant, e *ExternalEvent, row *apiCall) error {
	var agentID int64
	var ext string
	if e.Agent != "" {
		err := tx.QueryRow(ctx, `SELECT id, coalesce(extension, '') FROM platform.users
			WHERE tenant_id = $1 AND (extension = $2 OR lower(username) = lower($2))`, t.ID, e.Agent).Scan(&agentID, &ext)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.Errorf(fault.Invalid, "agent %q is no extension or username of this tenant", e.Agent)
		}
		if err != nil {
			return err
		}
	}
	if e.Event == "newCall" {
		_, err := tx.Exec(ctx, `INSERT INTO api_calls (call_id, offered_at, direction, caller_raw, caller_e164, callee_raw,
			callee_e164, queue, agent_id, agent_extension) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			e.CallID, e.At, e.Direction, e.From, e164(e.From, t.Region), e.To, e164(e.To, t.Region), e.Queue, nullID(agentID), ext)
		if err != nil {
			return err
		}
	}
	var err error
	switch e.Event {
	case "answer":
		_, err = tx.Exec(ctx, `UPDATE api_calls SET answered_at = coalesce(answered_at, $2), agent_id = $3, agent_extension = $4
			WHERE call_id = $1`, e.CallID, e.At, agentID, ext)
	case "hangup":
		_, err = tx.Exec(ctx, `UPDATE api_calls SET ended_at = $2 WHERE call_id = $1`, e.CallID, e.At)
	}
	if err != nil {
		return err
	}
	var agent *int64
	err = tx.QueryRow(ctx, `SELECT offered_at, direction, caller_raw, caller_e164, callee_raw, callee_e164, queue, agent_id,
		agent_extension, answered_at FROM api_calls WHERE call_id = $1`, e.CallID).Scan(&row.OfferedAt, &row.Direction,
		&row.CallerRaw, &row.CallerE164, &row.CalleeRaw, &row.CalleeE164, &row.Queue, &agent, &row.AgentExtension, &row.AnsweredAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return fault.Errorf(fault.NotFound, "call %q was never reported with newCall", e.CallID)
	}
	if agent != nil {
		row.AgentID = *agent
	}
	return err
}

// hangupOutcome reads a hangup cause: who hung up, or why the call failed, or a SIP code.
func hangupOutcome(cause string, answered bool) (Result, string, int) {
	code, _ := strconv.Atoi(cause)
	switch c := strings.ToLower(cause); {
	case answered && c == "agent":
		return Answered, HangupAgent, 200
	case answered:
		return Answered, orDefault(map[string]string{"caller": HangupCaller, "system": HangupSystem}[c], HangupCaller), 200
	case c == "busy" || code == 486 || code == 600:
		return Busy, HangupSystem, max(code, 486)
	case c == "no_answer" || code == 408 || code == 480:
		return NoAnswer, HangupSystem, max(code, 480)
	case c == "failed" || code >= 500:
		return Failed, HangupSystem, code
	}
	return Abandoned, HangupCaller, 487
}

func (r *apiCall) cdr(end time.Time, result Result, by string, code int) *CDR {
	c := &CDR{OfferedAt: r.OfferedAt, Direction: Direction(r.Direction), Source: "api", CallerRaw: r.CallerRaw,
		CallerE164: r.CallerE164, CalleeRaw: r.CalleeRaw, CalleeE164: r.CalleeE164, DID: r.CalleeRaw, Queue: r.Queue,
		AgentID: r.AgentID, AgentExtension: r.AgentExtension, EndedAt: end, Result: result, HangupBy: by, SIPCause: code}
	if r.AnsweredAt != nil {
		c.AnsweredAt = *r.AnsweredAt
	}
	if c.EndedAt.Before(c.OfferedAt) {
		c.EndedAt = c.OfferedAt
	}
	return c
}

// externalAgentState moves the agent of a reported call: On call at answer (when Ready),
// back to Ready (or the queue's wrap-up) at hangup.
func (s *Service) externalAgentState(ctx context.Context, tenant, event string, row apiCall) {
	if row.AgentID == 0 {
		return
	}
	switch event {
	case "answer":
		s.setAgent(ctx, tenant, row.AgentID, Change{To: OnCall, Who: BySystem, From: Ready})
	case "hangup":
		if row.AnsweredAt == nil {
			return
		}
		q, _, err := s.loadQueue(ctx, tenant, row.Queue)
		if err != nil {
			q = nil
		}
		st, err := s.agents.Status(ctx, tenant, row.AgentID)
		if err == nil && st.State == OnCall {
			s.afterCall(tenant, row.AgentID, st.CallID, q)
		}
	}
}
