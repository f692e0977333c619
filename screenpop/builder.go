package screenpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

// Limits of pop building.
const (
	buildTimeout    = 2 * time.Second  // one pop's lookups; past it the pop goes out without them
	recentCallLimit = 5                // "last calls of this number" in a pop
	builtKeep       = 10 * time.Minute // built pops stay in memory this long for live delivery
)

// The pop rules: what the console opens.
const (
	RuleOne      = "one"      // one record matched (or the agent's earlier pick): open it
	RulePicker   = "picker"   // several matched: let the agent pick
	RuleNew      = "new"      // none matched: a new-customer form with the number
	RuleWithheld = "withheld" // no caller number: a new form without a number
)

// Pop is what a console shows for a call.
type Pop struct {
	Call           CallInfo       `json:"call"`
	Rule           string         `json:"rule"`
	MatchReason    string         `json:"match_reason"`
	Matches        []PopMatch     `json:"matches"`
	Total          int            `json:"total"`
	Chosen         *RecordRef     `json:"chosen,omitempty"`
	RecentCalls    []RecentCall   `json:"recent_calls"`
	NewCustomer    map[string]any `json:"new_customer"`
	Draft          map[string]any `json:"draft"`
	Degraded       string         `json:"degraded,omitempty"` // why parts are missing (lookup failed or too slow)
	BuildMillis    float64        `json:"build_ms"`
	OpenWorkOrders []any          `json:"open_work_orders"`
}

// CallInfo is the call part of a pop.
type CallInfo struct {
	ID         string    `json:"id"`
	Caller     string    `json:"caller"`
	CallerE164 string    `json:"caller_e164"`
	DID        string    `json:"did"`
	Queue      string    `json:"queue"`
	Direction  string    `json:"direction"`
	Callee     string    `json:"callee,omitempty"` // the number an agent's outbound call dialled
	OfferedAt  time.Time `json:"offered_at"`
}

// PopMatch is one matching record.
type PopMatch struct {
	Object   string         `json:"object"`
	RecordID int64          `json:"record_id"`
	Field    string         `json:"field"`
	Number   string         `json:"number"`
	Reason   string         `json:"match_reason"`
	Rank     int            `json:"rank"`
	Record   map[string]any `json:"record"`
}

// RecordRef names one record of a data object.
type RecordRef struct {
	Object   string `json:"object"`
	RecordID int64  `json:"record_id"`
}

// RecentCall is one earlier call of the same number.
type RecentCall struct {
	CallID      string    `json:"call_id"`
	OfferedAt   time.Time `json:"offered_at"`
	Queue       string    `json:"queue"`
	Agent       string    `json:"agent_extension"`
	Result      string    `json:"result"`
	TalkSeconds float64   `json:"talk_seconds"`
}

// Builder builds each call's pop once, when the call is offered — before an agent rings —
// from indexed lookups, and keeps it: in memory for live delivery, in the tenant's pops table
// for replay and for other ctid instances.
type Builder struct {
	pool       *pgxpool.Pool
	objects    *dataobject.Store
	workOrders WorkOrderSource // nil: pops carry no open work orders and the plain draft
	log        *slog.Logger
	m          *metrics

	mu    sync.Mutex
	calls map[string]*popFuture // tenant/call id
}

type popFuture struct {
	done    chan struct{}
	pop     *Pop
	err     error
	started time.Time
}

// WorkOrderSource gives a pop what it shows of work orders for the chosen customer (object
// and record id, its field values): the open work orders, and draft values mapped from the
// customer's fields (package workorder provides it).
type WorkOrderSource func(ctx context.Context, t *account.Tenant, object string, recordID int64, record map[string]any) (open []any, draft map[string]any, err error)

// NewBuilder makes a Builder.
func NewBuilder(pool *pgxpool.Pool, objects *dataobject.Store, logger *slog.Logger, m *metrics) *Builder {
	return &Builder{pool: pool, objects: objects, log: logger, m: m, calls: map[string]*popFuture{}}
}

func callKey(tenant, callID string) string { return tenant + "/" + callID }

// Start begins building the pop of an offered call in the background.
func (b *Builder) Start(t *account.Tenant, ev cti.Event) {
	b.future(t, ev)
}

// future is the build of ev's pop: the one under way or done here, else a new one. Start
// and Get share it, so a pop is built once however they interleave.
func (b *Builder) future(t *account.Tenant, ev cti.Event) *popFuture {
	key := callKey(t.Code, ev.CallID)
	b.mu.Lock()
	defer b.mu.Unlock()
	if f, ok := b.calls[key]; ok {
		return f
	}
	f := &popFuture{done: make(chan struct{}), started: time.Now()}
	b.calls[key] = f
	b.sweepLocked()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		f.pop, f.err = b.build(ctx, t, ev)
		close(f.done)
	}()
	return f
}

// sweepLocked forgets built pops older than builtKeep; the pops table still has them.
func (b *Builder) sweepLocked() {
	for k, f := range b.calls {
		if time.Since(f.started) > builtKeep {
			select {
			case <-f.done:
				delete(b.calls, k)
			default:
			}
		}
	}
}

// Get returns the pop of a call: the one being built or built here, else the stored one, else
// one built now from the call's call.offered event.
func (b *Builder) Get(ctx context.Context, t *account.Tenant, callID string) (*Pop, error) {
	b.mu.Lock()
	f := b.calls[callKey(t.Code, callID)]
	b.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
			return f.pop, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var raw []byte
	err := b.pool.QueryRow(ctx, `SELECT payload FROM `+pgx.Identifier{t.Scope().Schema, "pops"}.Sanitize()+` WHERE call_id = $1`, callID).Scan(&raw)
	if err == nil {
		var p Pop
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("stored pop of call %s: %w", callID, err)
		}
		return &p, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("load pop of call %s: %w", callID, err)
	}
	offered, err := b.offeredEvent(ctx, t, callID)
	if err != nil {
		return nil, err
	}
	f = b.future(t, offered)
	select {
	case <-f.done:
		return f.pop, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *Builder) offeredEvent(ctx context.Context, t *account.Tenant, callID string) (cti.Event, error) {
	ev := cti.Event{Tenant: t.Code, CallID: callID, Type: cti.CallOffered}
	err := b.pool.QueryRow(ctx, `SELECT seq, at, queue, data FROM `+pgx.Identifier{t.Scope().Schema, "events"}.Sanitize()+`
		WHERE call_id = $1 AND type = 'call.offered' ORDER BY seq LIMIT 1`, callID).Scan(&ev.Seq, &ev.At, &ev.Queue, &ev.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return ev, fault.Errorf(fault.NotFound, "call %q was never offered", callID)
	}
	if err != nil {
		return ev, fmt.Errorf("load call %s: %w", callID, err)
	}
	return ev, nil
}

// build makes the pop of an offered call and stores it. A failing or slow lookup degrades
// the pop (the console still shows the call and a new-customer form) rather than losing it.
func (b *Builder) build(ctx context.Context, t *account.Tenant, ev cti.Event) (*Pop, error) {
	start := time.Now()
	p := &Pop{
		Call: CallInfo{ID: ev.CallID, Caller: ev.Data["caller"], CallerE164: ev.Data["caller_e164"], DID: ev.Data["did"],
			Queue: ev.Queue, Direction: ev.Data["direction"], OfferedAt: ev.At},
		Matches: []PopMatch{}, RecentCalls: []RecentCall{}, OpenWorkOrders: []any{},
	}
	// The customer is the other party: the caller, or the number an agent's outbound call
	// dialled (from the phone or by click-to-dial), whose caller is the agent's extension.
	party := p.Call.Caller
	if p.Call.Direction == string(cti.Outbound) && ev.Data["callee"] != "" {
		p.Call.Callee = ev.Data["callee"]
		party = p.Call.Callee
	}
	res, err := b.objects.Lookup(ctx, t, party)
	if err != nil {
		b.log.Warn("pop lookup failed", "tenant", t.Code, "call", ev.CallID, "err", err)
		p.Degraded = "customer lookup failed"
		res = &dataobject.LookupResult{Caller: dataobject.Normalize(party, t.Region), Reason: dataobject.ReasonNone}
	}
	if p.Call.CallerE164 == "" && p.Call.Callee == "" {
		p.Call.CallerE164 = res.Caller.E164
	}
	p.MatchReason, p.Total = res.Reason, res.Total
	for _, m := range res.Matches {
		p.Matches = append(p.Matches, PopMatch{Object: m.Object, RecordID: m.RecordID, Field: m.Field, Number: m.Number,
			Reason: m.Reason, Rank: m.Rank, Record: m.Record})
	}
	switch {
	case res.Caller.Anonymous:
		p.Rule = RuleWithheld
		p.NewCustomer = map[string]any{}
	case len(p.Matches) == 0:
		p.Rule = RuleNew
		p.NewCustomer = map[string]any{"phone": firstNonEmpty(res.Caller.E164, p.Call.Caller)}
	case len(p.Matches) == 1:
		p.Rule = RuleOne
		p.Chosen = &RecordRef{Object: p.Matches[0].Object, RecordID: p.Matches[0].RecordID}
	default:
		p.Rule = RulePicker
		if ref, err := b.choice(ctx, t, res.Caller); err == nil && ref != nil && containsRef(p.Matches, *ref) {
			p.Chosen = ref
		}
	}
	if key := callerKey(res.Caller); key != "" && p.Degraded == "" {
		if p.RecentCalls, err = b.recentCalls(ctx, t, res.Caller.E164, ev.CallID); err != nil {
			b.log.Warn("pop recent calls failed", "tenant", t.Code, "call", ev.CallID, "err", err)
			p.Degraded = "recent calls unavailable"
			p.RecentCalls = []RecentCall{}
		}
	}
	p.Draft = draftFor(p)
	if p.Chosen != nil && b.workOrders != nil && p.Degraded == "" {
		b.addWorkOrders(ctx, t, p)
	}
	p.BuildMillis = float64(time.Since(start).Microseconds()) / 1000
	b.m.buildSeconds.Observe(time.Since(start).Seconds())
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode pop: %w", err)
	}
	// The stored pop is what replay shows; a failure to store it is logged, the live pop goes on.
	if _, err := b.pool.Exec(context.WithoutCancel(ctx), `INSERT INTO `+pgx.Identifier{t.Scope().Schema, "pops"}.Sanitize()+
		` (call_id, payload) VALUES ($1, $2) ON CONFLICT (call_id) DO NOTHING`, ev.CallID, raw); err != nil {
		b.log.Warn("store pop", "tenant", t.Code, "call", ev.CallID, "err", err)
	}
	return p, nil
}

// draftFor pre-fills a work-order draft from the call and the chosen record.
func draftFor(p *Pop) map[string]any {
	d := map[string]any{"call_id": p.Call.ID, "caller_number": firstNonEmpty(p.Call.CallerE164, p.Call.Caller), "queue": p.Call.Queue}
	if p.Chosen != nil {
		d["customer_object"], d["customer_id"] = p.Chosen.Object, p.Chosen.RecordID
		for _, m := range p.Matches {
			if m.RecordID == p.Chosen.RecordID && m.Object == p.Chosen.Object {
				if name, ok := m.Record["name"]; ok {
					d["customer_name"] = name
				}
			}
		}
	}
	return d
}

// addWorkOrders puts the chosen customer's open work orders in the pop and adds the mapped
// customer fields to the draft (call fields already there win). A failure degrades the pop.
func (b *Builder) addWorkOrders(ctx context.Context, t *account.Tenant, p *Pop) {
	var record map[string]any
	for _, m := range p.Matches {
		if m.Object == p.Chosen.Object && m.RecordID == p.Chosen.RecordID {
			record = m.Record
		}
	}
	open, draft, err := b.workOrders(ctx, t, p.Chosen.Object, p.Chosen.RecordID, record)
	if err != nil {
		b.log.Warn("pop work orders failed", "tenant", t.Code, "call", p.Call.ID, "err", err)
		p.Degraded = "open work orders unavailable"
		return
	}
	p.OpenWorkOrders = append(p.OpenWorkOrders, open...)
	for k, v := range draft {
		if _, set := p.Draft[k]; !set {
			p.Draft[k] = v
		}
	}
}

func (b *Builder) recentCalls(ctx context.Context, t *account.Tenant, e164, exclude string) ([]RecentCall, error) {
	out := []RecentCall{}
	if e164 == "" {
		return out, nil
	}
	rows, err := b.pool.Query(ctx, `SELECT call_id, offered_at, queue, agent_extension, result, talk_seconds
		FROM `+pgx.Identifier{t.Scope().Schema, "cdrs"}.Sanitize()+`
		WHERE caller_e164 = $1 AND caller_e164 <> '' AND call_id <> $2 ORDER BY offered_at DESC LIMIT $3`, e164, exclude, recentCallLimit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c RecentCall
		if err := rows.Scan(&c.CallID, &c.OfferedAt, &c.Queue, &c.Agent, &c.Result, &c.TalkSeconds); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// callerKey is what a picked record is remembered by: the E.164 number, else the digits.
func callerKey(p dataobject.Phone) string {
	if p.E164 != "" {
		return p.E164
	}
	return p.Digits
}

func (b *Builder) choice(ctx context.Context, t *account.Tenant, caller dataobject.Phone) (*RecordRef, error) {
	key := callerKey(caller)
	if key == "" {
		return nil, nil
	}
	var ref RecordRef
	err := b.pool.QueryRow(ctx, `SELECT object, record_id FROM `+pgx.Identifier{t.Scope().Schema, "pop_choices"}.Sanitize()+
		` WHERE caller_key = $1`, key).Scan(&ref.Object, &ref.RecordID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &ref, nil
}

// Choose remembers that agent picked ref for the caller of callID; the next pop for that
// number opens it. The record must be one of the call's matches.
func (b *Builder) Choose(ctx context.Context, t *account.Tenant, agentID int64, callID string, ref RecordRef) error {
	p, err := b.Get(ctx, t, callID)
	if err != nil {
		return err
	}
	if !containsRef(p.Matches, ref) {
		return fault.Errorf(fault.Invalid, "record %s/%d is not one of the matches of call %s", ref.Object, ref.RecordID, callID)
	}
	key := callerKey(dataobject.Normalize(p.Call.Caller, t.Region))
	if key == "" {
		return fault.Errorf(fault.Invalid, "call %s has no caller number to remember a choice for", callID)
	}
	_, err = b.pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{t.Scope().Schema, "pop_choices"}.Sanitize()+
		` (caller_key, object, record_id, chosen_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (caller_key) DO UPDATE SET object = EXCLUDED.object, record_id = EXCLUDED.record_id,
			chosen_by = EXCLUDED.chosen_by, chosen_at = now()`, key, ref.Object, ref.RecordID, agentID)
	if err != nil {
		return fmt.Errorf("remember pop choice: %w", err)
	}
	return nil
}

func containsRef(ms []PopMatch, ref RecordRef) bool {
	for _, m := range ms {
		if m.Object == ref.Object && m.RecordID == ref.RecordID {
			return true
		}
	}
	return false
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
