package cti

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// Direction of a call as seen from the tenant.
type Direction string

const (
	Inbound  Direction = "inbound"  // from a trunk to the tenant
	Outbound Direction = "outbound" // from an agent to an external number
	Internal Direction = "internal" // between two of the tenant's extensions
)

// Result is how a call ended, once per call.
type Result string

const (
	Answered  Result = "answered"
	Abandoned Result = "abandoned" // the caller hung up before an answer
	Timeout   Result = "timeout"   // max wait passed with nowhere to overflow to (480)
	Busy      Result = "busy"      // outbound: the far end was busy
	NoAnswer  Result = "no_answer" // outbound or extension: nobody answered
	Failed    Result = "failed"    // an error of a trunk, phone or ctid
	Rejected  Result = "rejected"  // refused: unknown number, no route
	// Interrupted: ctid stopped while the call was in progress; the next start closed it.
	Interrupted Result = "interrupted"
)

var results = map[Result]bool{Answered: true, Abandoned: true, Timeout: true, Busy: true, NoAnswer: true, Failed: true,
	Rejected: true, Interrupted: true}

// Who hung up a call.
const (
	HangupCaller = "caller"
	HangupAgent  = "agent"
	HangupSystem = "system"
)

// CDR is the one call detail record of a call (table cdrs, partitioned by month of OfferedAt).
type CDR struct {
	CallID         string
	OfferedAt      time.Time
	Direction      Direction
	Source         string // "sip" (ctid routed it) or "api" (an external PBX reported it)
	CallerRaw      string // as signalled
	CallerE164     string // normalised with the tenant's region, "" when not a phone number
	CalleeRaw      string
	CalleeE164     string
	DID            string // the tenant's number that was called (inbound)
	Queue          string
	AgentID        int64 // the agent who answered (or was last offered), 0 for none
	AgentExtension string
	QueuedAt       time.Time // zero: never queued
	RingingAt      time.Time // first agent ringing
	AnsweredAt     time.Time
	EndedAt        time.Time
	Result         Result
	HangupBy       string // caller, agent, system, ""
	SIPCause       int    // final SIP status of the call (200 when answered), 0 when none
	SIPCallIDs     []string
	RecordingURL   string // where the PBX keeps the call's recording (http or https), "" for none
}

// WaitSeconds is the time from offer to answer (or to the end, when unanswered).
func (c *CDR) WaitSeconds() float64 {
	end := c.EndedAt
	if !c.AnsweredAt.IsZero() {
		end = c.AnsweredAt
	}
	return nonNegative(end.Sub(c.OfferedAt).Seconds())
}

// TalkSeconds is the time from answer to end.
func (c *CDR) TalkSeconds() float64 {
	if c.AnsweredAt.IsZero() {
		return 0
	}
	return nonNegative(c.EndedAt.Sub(c.AnsweredAt).Seconds())
}

func nonNegative(f float64) float64 {
	if f < 0 {
		return 0
	}
	return f
}

func (c *CDR) check() error {
	if !callIDRE.MatchString(c.CallID) {
		return fault.Errorf(fault.Invalid, "CDR call id %q is not valid", c.CallID)
	}
	switch c.Direction {
	case Inbound, Outbound, Internal:
	default:
		return fault.Errorf(fault.Invalid, "CDR direction %q: want inbound, outbound or internal", c.Direction)
	}
	switch c.Source {
	case "":
		c.Source = "sip"
	case "sip", "api":
	default:
		return fault.Errorf(fault.Invalid, "CDR source %q: want sip or api", c.Source)
	}
	if !results[c.Result] {
		return fault.Errorf(fault.Invalid, "CDR result %q is not known", c.Result)
	}
	switch c.HangupBy {
	case "", HangupCaller, HangupAgent, HangupSystem:
	default:
		return fault.Errorf(fault.Invalid, "CDR hangup side %q: want caller, agent or system", c.HangupBy)
	}
	if c.RecordingURL != "" {
		if err := CheckRecordingURL(c.RecordingURL); err != nil {
			return err
		}
	}
	if c.OfferedAt.IsZero() || c.EndedAt.IsZero() {
		return fault.Errorf(fault.Invalid, "CDR of call %s needs its offer and end times", c.CallID)
	}
	if c.EndedAt.Before(c.OfferedAt) {
		return fault.Errorf(fault.Invalid, "CDR of call %s ends before it was offered", c.CallID)
	}
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// cdrRows are CDRs as the columns of one insert.
type cdrRows struct {
	callID, direction, source, callerRaw, callerE164, calleeRaw, calleeE164 []string
	did, queue, agentExtension, result, hangupBy, recordingURL, sipCallIDs  []string
	offeredAt, endedAt                                                      []time.Time
	queuedAt, ringingAt, answeredAt                                         []*time.Time
	agentID                                                                 []*int64
	wait, talk                                                              []float64
	sipCause                                                                []int32
	ord                                                                     []int64
}

// add appends c, written with the event at place ord (1…n) of its tenant's batch.
func (r *cdrRows) add(c *CDR, ord int64) error {
	ids := c.SIPCallIDs
	if ids == nil {
		ids = []string{}
	}
	js, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("SIP Call-IDs of CDR %s: %w", c.CallID, err)
	}
	r.callID, r.offeredAt, r.direction, r.source = append(r.callID, c.CallID), append(r.offeredAt, c.OfferedAt),
		append(r.direction, string(c.Direction)), append(r.source, c.Source)
	r.callerRaw, r.callerE164 = append(r.callerRaw, c.CallerRaw), append(r.callerE164, c.CallerE164)
	r.calleeRaw, r.calleeE164 = append(r.calleeRaw, c.CalleeRaw), append(r.calleeE164, c.CalleeE164)
	r.did, r.queue, r.agentID = append(r.did, c.DID), append(r.queue, c.Queue), append(r.agentID, nullID(c.AgentID))
	r.agentExtension = append(r.agentExtension, c.AgentExtension)
	r.queuedAt, r.ringingAt = append(r.queuedAt, nullTime(c.QueuedAt)), append(r.ringingAt, nullTime(c.RingingAt))
	r.answeredAt, r.endedAt = append(r.answeredAt, nullTime(c.AnsweredAt)), append(r.endedAt, c.EndedAt)
	r.wait, r.talk = append(r.wait, c.WaitSeconds()), append(r.talk, c.TalkSeconds())
	r.result, r.hangupBy, r.sipCause = append(r.result, string(c.Result)), append(r.hangupBy, c.HangupBy), append(r.sipCause, int32(c.SIPCause))
	r.sipCallIDs, r.ord, r.recordingURL = append(r.sipCallIDs, string(js)), append(r.ord, ord), append(r.recordingURL, c.RecordingURL)
	return nil
}

// queueInsert adds the insert of the rows to b: one statement for all, arrays unnested; base
// is the SQL of the sequence number before the batch's first event, with $25 the batch's
// number of events n. A CDR for the same call and offer time is written once: a repeat (an
// idempotent API retry) changes nothing.
func (r *cdrRows) queueInsert(b *pgx.Batch, table, base string, n int) {
	if len(r.callID) == 0 {
		return
	}
	b.Queue(`INSERT INTO `+table+` (call_id, offered_at, direction, source, caller_raw, caller_e164,
		callee_raw, callee_e164, did, queue, agent_id, agent_extension, queued_at, ringing_at, answered_at, ended_at,
		wait_seconds, talk_seconds, result, hangup_by, sip_cause, sip_call_ids, seq, recording_url)
		SELECT call_id, offered_at, direction, source, caller_raw, caller_e164, callee_raw, callee_e164, did, queue,
			agent_id, agent_extension, queued_at, ringing_at, answered_at, ended_at, wait_seconds, talk_seconds, result,
			hangup_by, sip_cause, ARRAY(SELECT jsonb_array_elements_text(ids)), `+base+` + ord, recording_url
		FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::bigint[], $12::text[], $13::timestamptz[], $14::timestamptz[], $15::timestamptz[],
			$16::timestamptz[], $17::float8[], $18::float8[], $19::text[], $20::text[], $21::int[], $22::jsonb[], $23::bigint[],
			$24::text[])
			AS r(call_id, offered_at, direction, source, caller_raw, caller_e164, callee_raw, callee_e164, did, queue,
				agent_id, agent_extension, queued_at, ringing_at, answered_at, ended_at, wait_seconds, talk_seconds, result,
				hangup_by, sip_cause, ids, ord, recording_url)
		ON CONFLICT (call_id, offered_at) DO NOTHING`,
		r.callID, r.offeredAt, r.direction, r.source, r.callerRaw, r.callerE164, r.calleeRaw, r.calleeE164,
		r.did, r.queue, r.agentID, r.agentExtension, r.queuedAt, r.ringingAt, r.answeredAt,
		r.endedAt, r.wait, r.talk, r.result, r.hangupBy, r.sipCause, r.sipCallIDs, r.ord, r.recordingURL, n)
}

const cdrColumns = `call_id, offered_at, direction, source, caller_raw, caller_e164, callee_raw, callee_e164, did, queue,
	coalesce(agent_id, 0), agent_extension, queued_at, ringing_at, answered_at, ended_at, result, hangup_by, sip_cause, sip_call_ids,
	recording_url`

func scanCDR(row pgx.Row) (*CDR, error) {
	var c CDR
	var queued, ringing, answered *time.Time
	var dir, result string
	err := row.Scan(&c.CallID, &c.OfferedAt, &dir, &c.Source, &c.CallerRaw, &c.CallerE164, &c.CalleeRaw, &c.CalleeE164,
		&c.DID, &c.Queue, &c.AgentID, &c.AgentExtension, &queued, &ringing, &answered, &c.EndedAt, &result,
		&c.HangupBy, &c.SIPCause, &c.SIPCallIDs, &c.RecordingURL)
	if err != nil {
		return nil, err
	}
	c.Direction, c.Result = Direction(dir), Result(result)
	for _, p := range []struct {
		src *time.Time
		dst *time.Time
	}{{queued, &c.QueuedAt}, {ringing, &c.RingingAt}, {answered, &c.AnsweredAt}} {
		if p.src != nil {
			*p.dst = *p.src
		}
	}
	return &c, nil
}

// CDRByCallID reads the CDR of a call of the tenant; NotFound when there is none.
func CDRByCallID(ctx context.Context, pool *pgxpool.Pool, tenant, callID string) (*CDR, error) {
	var c *CDR
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		var err error
		c, err = scanCDR(tx.QueryRow(ctx, `SELECT `+cdrColumns+` FROM cdrs WHERE call_id = $1 ORDER BY offered_at DESC LIMIT 1`, callID))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "no CDR for call %q", callID)
	}
	if err != nil {
		return nil, fmt.Errorf("read CDR of call %q: %w", callID, err)
	}
	return c, nil
}

// partitionsAhead is how many months after the current one have their CDR partition ready.
const partitionsAhead = 2

// EnsurePartitions creates the monthly CDR partitions of tenant from the month of now
// through partitionsAhead months later (in UTC), when missing. Run it at start and daily.
func EnsurePartitions(ctx context.Context, pool *pgxpool.Pool, tenant string, now time.Time) error {
	schema := db.SchemaName(tenant)
	month := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	return db.InTenant(ctx, pool, db.Scope{Schema: schema}, func(tx pgx.Tx) error {
		for i := 0; i <= partitionsAhead; i++ {
			from := month.AddDate(0, i, 0)
			to := from.AddDate(0, 1, 0)
			name := pgx.Identifier{schema, "cdrs_" + from.Format("200601")}.Sanitize()
			// Bounds are our own formatted dates and the name our own: no input reaches this text.
			stmt := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
				name, pgx.Identifier{schema, "cdrs"}.Sanitize(), from.Format(time.RFC3339), to.Format(time.RFC3339))
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("create CDR partition %s of tenant %s: %w", from.Format("2006-01"), tenant, err)
			}
		}
		return nil
	})
}

// maxRecordingURL is the longest recording URL a CDR keeps.
const maxRecordingURL = 2000

// CheckRecordingURL accepts an absolute http or https URL: pages show it as a link, so any
// other scheme (javascript:, data:) is refused.
func CheckRecordingURL(s string) error {
	if len(s) > maxRecordingURL {
		return fault.Errorf(fault.Invalid, "recording_url is longer than %d characters", maxRecordingURL)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fault.Errorf(fault.Invalid, "recording_url %q is not an http or https URL", s)
	}
	return nil
}
