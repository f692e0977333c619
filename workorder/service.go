package workorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// Limits of lists and maintenance.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
	maxSearchLength = 100
)

// Notifier delivers a live message to an agent's consoles (screenpop.Hub.Notify).
type Notifier func(ctx context.Context, tenant string, agentID int64, typ string, data any)

// TypeAssigned is the console message of an assignment (screenpop.TypeWorkAssigned).
const TypeAssigned = "workorder.assigned"

// Options wire a Service.
type Options struct {
	Pool       *pgxpool.Pool
	Objects    *dataobject.Store
	Accounts   *account.Store
	Notify     Notifier // nil: assignments are not pushed to consoles
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Service saves, edits, lists and assigns work orders, and runs QA.
type Service struct {
	pool     *pgxpool.Pool
	objects  *dataobject.Store
	accounts *account.Store
	notify   Notifier
	log      *slog.Logger
	m        *metrics
}

// New makes a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: o.Pool, objects: o.Objects, accounts: o.Accounts, notify: o.Notify,
		log: o.Logger.With("component", "workorder"), m: newMetrics(o.Registerer)}
}

// WorkOrder is one work order as lists and pages show it.
type WorkOrder struct {
	ID        int64          `json:"id"`
	Object    string         `json:"object"`
	Values    map[string]any `json:"values"`
	OwnerID   int64          `json:"owner_id"` // the agent it belongs to (0: a team's)
	CreatedAt time.Time      `json:"created_at"`
	CreatedBy int64          `json:"created_by"`
	UpdatedAt time.Time      `json:"updated_at"` // the version an edit must send back
	UpdatedBy int64          `json:"updated_by"`
}

func fromRecord(object string, r *dataobject.Record) *WorkOrder {
	return &WorkOrder{ID: r.ID, Object: object, Values: r.Values, OwnerID: r.OwnerID, CreatedAt: r.CreatedAt,
		CreatedBy: r.CreatedBy, UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy}
}

func (w *WorkOrder) team() int64 {
	n, _ := w.Values[FieldTeam].(int64)
	return n
}

// object resolves "" to the tenant's default work-order object and refuses other kinds.
func (s *Service) object(ctx context.Context, t *account.Tenant, key string) (*dataobject.Object, error) {
	if key == "" {
		return s.objects.DefaultObject(ctx, t, dataobject.KindWorkOrder)
	}
	o, err := s.objects.Object(ctx, t, key)
	if err != nil {
		return nil, err
	}
	if o.Kind != dataobject.KindWorkOrder {
		return nil, fault.Errorf(fault.Invalid, "object %q holds %s records, not work orders", key, o.Kind)
	}
	return o, nil
}

// Input is a work order to save from a pop or a form.
type Input struct {
	Object     string         // "" for the default work-order object
	CallID     string         // the call it was saved from ("" for none)
	CustomerID int64          // the customer it is about (0 for none)
	Values     map[string]any // field key → value, as forms and JSON send them
}

// Save stores a new work order by u (an agent, owner of it). With the object's save mode
// "once", a second save from the same call is refused with a Conflict naming the first.
func (s *Service) Save(ctx context.Context, t *account.Tenant, u *account.User, in Input) (*WorkOrder, error) {
	start := time.Now()
	o, err := s.object(ctx, t, in.Object)
	if err != nil {
		return nil, err
	}
	vals := make(map[string]any, len(in.Values)+3)
	for k, v := range in.Values {
		vals[k] = v
	}
	if in.CallID != "" {
		if o.Field(FieldCallID) == nil {
			return nil, fault.Errorf(fault.Invalid, "object %q has no %s field to link the call to", o.Key, FieldCallID)
		}
		vals[FieldCallID] = in.CallID
	}
	if in.CustomerID != 0 {
		if o.Field(FieldCustomer) == nil {
			return nil, fault.Errorf(fault.Invalid, "object %q has no %s field to link the customer to", o.Key, FieldCustomer)
		}
		vals[FieldCustomer] = in.CustomerID
	}
	if _, set := vals[FieldTeam]; !set && u.TeamID != 0 && o.Field(FieldTeam) != nil {
		vals[FieldTeam] = u.TeamID
	}
	if _, ok := vals["owner_id"]; ok {
		return nil, fault.Errorf(fault.Invalid, "a saved work order is its agent's: owner_id changes by assignment")
	}
	callID, _ := vals[FieldCallID].(string)
	opts := dataobject.WriteOptions{}
	if o.SaveMode == dataobject.SaveOnce && strings.TrimSpace(callID) != "" {
		opts.Within = func(ctx context.Context, tx pgx.Tx, o *dataobject.Object) error {
			return claimCall(ctx, tx, t, o, strings.TrimSpace(callID))
		}
	}
	r, err := s.objects.CreateWith(ctx, t, o.Key, vals, actorOf(u), opts)
	if err != nil {
		s.m.saves.WithLabelValues(outcome(err)).Inc()
		return nil, err
	}
	s.m.saves.WithLabelValues("saved").Inc()
	s.m.saveSeconds.Observe(time.Since(start).Seconds())
	return fromRecord(o.Key, r), nil
}

// claimCall refuses a second work order of object o for callID. The advisory lock makes two
// racing saves of one call wait for each other, so exactly one wins.
func claimCall(ctx context.Context, tx pgx.Tx, t *account.Tenant, o *dataobject.Object, callID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		t.Scope().Schema+"/"+o.Key+"/"+callID); err != nil {
		return fmt.Errorf("lock call %s: %w", callID, err)
	}
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM `+pgx.Identifier{o.Table}.Sanitize()+
		` WHERE call_id = $1 AND deleted_at IS NULL ORDER BY id LIMIT 1`, callID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("work orders of call %s: %w", callID, err)
	}
	return fault.Errorf(fault.Conflict, "work order #%d was already saved for this call, and %q allows one per call: edit that one instead", id, o.Name("en"))
}

func actorOf(u *account.User) account.Actor { return account.Actor{UserID: u.ID, Name: u.Name()} }

func outcome(err error) string {
	switch fault.CodeOf(err) {
	case fault.Invalid:
		return "invalid"
	case fault.Conflict:
		return "conflict"
	case fault.Internal:
		return "error"
	}
	return "refused"
}

// canSee reports whether u's role scope covers w: agents their own, team leads their
// team's (and their own), QA, supervisors and admins all.
func canSee(u *account.User, w *WorkOrder) bool {
	switch account.ScopeOf(u.Roles) {
	case account.ScopeAll:
		return true
	case account.ScopeTeam:
		return w.OwnerID == u.ID || (u.TeamID != 0 && w.team() == u.TeamID)
	case account.ScopeOwn:
		return w.OwnerID == u.ID
	}
	return false
}

// Get loads a work order u may see; others are NotFound, so their existence does not leak.
func (s *Service) Get(ctx context.Context, t *account.Tenant, u *account.User, object string, id int64) (*WorkOrder, error) {
	o, err := s.object(ctx, t, object)
	if err != nil {
		return nil, err
	}
	r, err := s.objects.Get(ctx, t, o.Key, id)
	if err != nil {
		return nil, err
	}
	w := fromRecord(o.Key, r)
	if !canSee(u, w) {
		return nil, fault.Errorf(fault.NotFound, "work order %d does not exist", id)
	}
	return w, nil
}

// Update changes fields of a work order. version is its UpdatedAt as u last read it: if
// someone saved it since, the update is a Conflict naming who, and nothing is overwritten.
func (s *Service) Update(ctx context.Context, t *account.Tenant, u *account.User, object string, id int64, values map[string]any, version time.Time) (*WorkOrder, error) {
	w, err := s.Get(ctx, t, u, object, id)
	if err != nil {
		return nil, err
	}
	if version.IsZero() {
		return nil, fault.Errorf(fault.Invalid, "an edit must send the version (updated_at) of the work order it changes")
	}
	if _, ok := values["owner_id"]; ok {
		return nil, fault.Errorf(fault.Invalid, "owner_id changes by assignment, not by editing")
	}
	if _, ok := values[FieldCallID]; ok {
		return nil, fault.Errorf(fault.Invalid, "the call of a work order cannot be changed")
	}
	if _, ok := values[FieldTeam]; ok {
		return nil, fault.Errorf(fault.Invalid, "%s changes by assignment, not by editing", FieldTeam)
	}
	r, err := s.objects.UpdateWith(ctx, t, w.Object, id, values, actorOf(u), dataobject.WriteOptions{IfUpdatedAt: version})
	if err != nil {
		s.m.saves.WithLabelValues(outcome(err)).Inc()
		return nil, err
	}
	s.m.saves.WithLabelValues("saved").Inc()
	return fromRecord(w.Object, r), nil
}

// History is a work order's audit trail, newest first.
func (s *Service) History(ctx context.Context, t *account.Tenant, u *account.User, object string, id int64) ([]dataobject.HistoryEntry, error) {
	w, err := s.Get(ctx, t, u, object, id)
	if err != nil {
		return nil, err
	}
	return s.objects.History(ctx, t, w.Object, id)
}

// LogEntry is one operation-log record of a work order.
type LogEntry struct {
	At       time.Time      `json:"at"`
	Action   string         `json:"action"`
	Actor    string         `json:"actor"`
	Snapshot map[string]any `json:"snapshot"`
}

// OperationLog lists the operation-log records of a work order, newest first.
func (s *Service) OperationLog(ctx context.Context, t *account.Tenant, u *account.User, object string, id int64) ([]LogEntry, error) {
	w, err := s.Get(ctx, t, u, object, id)
	if err != nil {
		return nil, err
	}
	o, err := s.objects.Object(ctx, t, w.Object)
	if err != nil {
		return nil, err
	}
	out := []LogEntry{}
	if o.LogObject == "" {
		return out, nil
	}
	lo, err := s.objects.Object(ctx, t, o.LogObject)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{dataobject.LogFieldRecord, dataobject.LogFieldAction, dataobject.LogFieldActor, dataobject.LogFieldSnapshot} {
		if lo.Field(k) == nil {
			return nil, fault.Errorf(fault.Invalid, "operation-log object %q lacks field %q", lo.Key, k)
		}
	}
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT created_at, coalesce(action, ''), coalesce(actor, ''), coalesce(snapshot, '{}')
			FROM `+pgx.Identifier{lo.Table}.Sanitize()+` WHERE record_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e LogEntry
			var snap string
			if err := rows.Scan(&e.At, &e.Action, &e.Actor, &snap); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(snap), &e.Snapshot); err != nil {
				e.Snapshot = map[string]any{"raw": snap}
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("operation log of work order %d: %w", id, err)
	}
	return out, nil
}

type metrics struct {
	saves       *prometheus.CounterVec
	saveSeconds prometheus.Histogram
	scores      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		saves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_workorder_saves_total",
			Help: "Work-order saves and edits by outcome (saved, invalid, conflict, refused, error).",
		}, []string{"outcome"}),
		saveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ctid_workorder_save_seconds",
			Help:    "Time to save a new work order with its audit trail and operation log.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .25},
		}),
		scores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ctid_workorder_qa_scores_total",
			Help: "QA scores saved.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.saves, m.saveSeconds, m.scores)
	}
	return m
}
