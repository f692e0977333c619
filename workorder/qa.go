package workorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

var formKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,30}$`)

// Form is one version of a QA form.
type Form struct {
	Key       string    `json:"key"`
	Version   int       `json:"version"`
	Current   int       `json:"current_version"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	FormDef
}

// Score statuses.
const (
	StatusScored       = "scored"
	StatusAcknowledged = "acknowledged"
	StatusDisputed     = "disputed"
	StatusUpheld       = "upheld"
	StatusRescored     = "rescored"
)

// Score is a checker's scoring of one work order, or of a bare call (Object "", RecordID 0).
type Score struct {
	ID          int64     `json:"id"`
	Form        string    `json:"form"`
	FormVersion int       `json:"form_version"`
	Object      string    `json:"object"`
	RecordID    int64     `json:"record_id"`
	CallID      string    `json:"call_id,omitempty"` // the scored call (the work order's, or the bare call)
	AgentID     int64     `json:"agent_id"`
	TeamID      int64     `json:"team_id"`
	CheckerID   int64     `json:"checker_id"`
	Checker     string    `json:"checker"`
	Answers     []Answer  `json:"answers"`
	Comment     string    `json:"comment"`
	Calibration bool      `json:"calibration"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Values are the tenant's own fields of the QA score object (GetScore fills them).
	Values map[string]any `json:"values,omitempty"`
	Result
}

// ScoreEvent is one step of a score's history.
type ScoreEvent struct {
	At       time.Time `json:"at"`
	Action   string    `json:"action"`
	Actor    string    `json:"actor"`
	Comment  string    `json:"comment"`
	OldScore *float64  `json:"old_score,omitempty"`
	NewScore *float64  `json:"new_score,omitempty"`
}

func needs(u *account.User, p account.Permission, what string) error {
	if !u.Can(p) {
		return fault.Errorf(fault.Forbidden, "your roles do not allow %s", what)
	}
	return nil
}

// PutForm defines form key, or changes it. A form whose current version has scores is
// never changed in place: the change becomes a new version, and old scores keep theirs.
func (s *Service) PutForm(ctx context.Context, t *account.Tenant, u *account.User, key string, def FormDef) (*Form, error) {
	if err := needs(u, account.PermConfigure, "defining QA forms"); err != nil {
		return nil, err
	}
	if !formKeyRE.MatchString(key) {
		return nil, fault.Errorf(fault.Invalid, "QA form key %q is not valid: 2–31 of a–z, 0–9, _ starting with a letter", key)
	}
	if err := def.Check(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(def)
	if err != nil {
		return nil, err
	}
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		var cur int
		err := tx.QueryRow(ctx, `SELECT current_version FROM qa_forms WHERE key = $1 FOR UPDATE`, key).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			if _, err := tx.Exec(ctx, `INSERT INTO qa_forms (key, current_version) VALUES ($1, 1)`, key); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO qa_form_versions (form_key, version, definition, created_by) VALUES ($1, 1, $2, $3)`,
				key, raw, u.Name())
			return err
		}
		if err != nil {
			return err
		}
		var used bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM qa_scores WHERE form_key = $1 AND form_version = $2)`, key, cur).Scan(&used); err != nil {
			return err
		}
		if !used {
			_, err = tx.Exec(ctx, `UPDATE qa_form_versions SET definition = $3, created_at = now(), created_by = $4
				WHERE form_key = $1 AND version = $2`, key, cur, raw, u.Name())
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO qa_form_versions (form_key, version, definition, created_by) VALUES ($1, $2, $3, $4)`,
			key, cur+1, raw, u.Name()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE qa_forms SET current_version = $2, updated_at = now() WHERE key = $1`, key, cur+1)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("save QA form %q: %w", key, err)
	}
	return s.Form(ctx, t, key, 0)
}

// Form loads version of QA form key (0: the current one).
func (s *Service) Form(ctx context.Context, t *account.Tenant, key string, version int) (*Form, error) {
	f := &Form{Key: key}
	var raw []byte
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT v.version, f.current_version, v.definition, v.created_at, v.created_by
			FROM qa_forms f JOIN qa_form_versions v ON v.form_key = f.key
			WHERE f.key = $1 AND v.version = CASE WHEN $2 = 0 THEN f.current_version ELSE $2 END`, key, version).
			Scan(&f.Version, &f.Current, &raw, &f.CreatedAt, &f.CreatedBy)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		if version != 0 {
			return nil, fault.Errorf(fault.NotFound, "QA form %q has no version %d", key, version)
		}
		return nil, fault.Errorf(fault.NotFound, "QA form %q does not exist", key)
	}
	if err != nil {
		return nil, fmt.Errorf("load QA form %q: %w", key, err)
	}
	if err := json.Unmarshal(raw, &f.FormDef); err != nil {
		return nil, fmt.Errorf("QA form %q version %d: %w", key, f.Version, err)
	}
	return f, nil
}

// Forms lists the current version of every QA form, by key.
func (s *Service) Forms(ctx context.Context, t *account.Tenant) ([]*Form, error) {
	var keys []string
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT key FROM qa_forms ORDER BY key`)
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list QA forms: %w", err)
	}
	out := make([]*Form, 0, len(keys))
	for _, k := range keys {
		f, err := s.Form(ctx, t, k, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// ScoreInput is a checker's scoring of a work order (RecordID) or of a bare call that has
// no work order (CallID, RecordID 0).
type ScoreInput struct {
	Form     string
	Object   string // "" for the default work-order object
	RecordID int64
	CallID   string // a bare call: scored without a work order
	Answers  []Answer
	// Values are the tenant's own fields of the QA score object (QAObjectKey).
	Values      map[string]any
	Comment     string
	Calibration bool // one of several checkers scoring the same work order
}

// Score scores a work order on the current version of a form. A work order has one score
// outside calibration; calibration scores are one per checker.
func (s *Service) Score(ctx context.Context, t *account.Tenant, u *account.User, in ScoreInput) (*Score, error) {
	if err := needs(u, account.PermScoreQA, "scoring"); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(in.Comment) > maxCommentRunes {
		return nil, fault.Errorf(fault.Invalid, "comment is longer than %d characters", maxCommentRunes)
	}
	if _, ok := in.Values["owner_id"]; ok {
		return nil, fault.Errorf(fault.Invalid, "a score's agent is the scored work order's or call's, not a value")
	}
	form, err := s.Form(ctx, t, in.Form, 0)
	if err != nil {
		return nil, err
	}
	sub, err := s.subject(ctx, t, u, in)
	if err != nil {
		return nil, err
	}
	res, err := form.Score(in.Answers)
	if err != nil {
		return nil, err
	}
	answers, err := json.Marshal(in.Answers)
	if err != nil {
		return nil, err
	}
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence($1, 'id'))`,
		pgx.Identifier{t.Scope().Schema, "qa_scores"}.Sanitize()).Scan(&id); err != nil {
		return nil, fmt.Errorf("score %s: %w", sub.name, err)
	}
	insert := func(ctx context.Context, tx pgx.Tx) error {
		if in.Calibration {
			var dup bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM qa_scores WHERE object = $1 AND record_id = $2
					AND ($1 <> '' OR call_id = $4) AND checker_id = $3 AND calibration)`,
				sub.object, sub.recordID, u.ID, sub.callID).Scan(&dup); err != nil {
				return err
			}
			if dup {
				return fault.Errorf(fault.Conflict, "you have scored %s for calibration already", sub.name)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO qa_scores (id, form_key, form_version, object, record_id, call_id, agent_id, team_id,
				checker_id, checker, score, band, failed, critical_fail, answers, comment, calibration)
			OVERRIDING SYSTEM VALUE
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
			id, form.Key, form.Version, sub.object, sub.recordID, sub.callID, sub.agentID, sub.teamID, u.ID, u.Name(),
			res.Score, res.Band, res.Failed, res.CriticalFail, answers, strings.TrimSpace(in.Comment), in.Calibration)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return fault.Errorf(fault.Conflict, "%s is scored already; another checker's score goes in as calibration", sub.name)
		}
		if err != nil {
			return err
		}
		return scoreEvent(ctx, tx, id, "score", u, in.Comment, nil, &res.Score)
	}
	ownFields, err := s.qaHasFields(ctx, t)
	if err != nil {
		return nil, err
	}
	if len(in.Values) == 0 && !ownFields {
		err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error { return insert(ctx, tx) })
	} else {
		// The tenant's own fields go through the data-object layer (checks, code tables,
		// required fields, defaults, audit trail) in the same transaction as the score row:
		// the row is inserted first, then its fields are set as a whole update of the QA
		// object's record, so a required field left empty refuses the score and saves nothing.
		_, err = s.objects.UpdateWith(ctx, t, QAObjectKey, id, in.Values, actorOf(u), dataobject.WriteOptions{
			Whole: true,
			Within: func(ctx context.Context, tx pgx.Tx, o *dataobject.Object) error {
				if o.Table != qaTable {
					return fault.Errorf(fault.Invalid, "data object %q is not this tenant's QA score object: scores take no values", QAObjectKey)
				}
				return insert(ctx, tx)
			}})
	}
	if err != nil {
		return nil, wrapFault(err, "score %s", sub.name)
	}
	s.m.scores.Inc()
	return s.GetScore(ctx, t, u, id)
}

// QAObjectKey is the data object of kind qa whose table is qa_scores (tenant migration
// 0511_qa_object.sql): the tenant's own fields of QA scores.
const (
	QAObjectKey = "qa_score"
	qaTable     = "qa_scores"
)

// qaHasFields says whether the tenant's QA score object has fields of its own, which every
// score must then go through (required fields, defaults).
func (s *Service) qaHasFields(ctx context.Context, t *account.Tenant) (bool, error) {
	o, err := s.objects.Object(ctx, t, QAObjectKey)
	if fault.CodeOf(err) == fault.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return o.Table == qaTable && len(o.Visible()) > 0, nil
}

// scoreSubject is what a score is of: a work order, or a bare call.
type scoreSubject struct {
	object          string
	recordID        int64
	callID          string
	agentID, teamID int64
	name            string // for messages
}

// subject resolves a score's work order (which u must be able to see) or bare call.
func (s *Service) subject(ctx context.Context, t *account.Tenant, u *account.User, in ScoreInput) (scoreSubject, error) {
	if in.RecordID != 0 {
		w, err := s.Get(ctx, t, u, in.Object, in.RecordID)
		if err != nil {
			return scoreSubject{}, err
		}
		call, _ := w.Values[FieldCallID].(string)
		return scoreSubject{object: w.Object, recordID: w.ID, callID: call, agentID: w.OwnerID, teamID: w.team(),
			name: fmt.Sprintf("work order #%d", w.ID)}, nil
	}
	if in.CallID == "" {
		return scoreSubject{}, fault.Errorf(fault.Invalid, "a score needs a work order (record_id) or a call (call_id)")
	}
	cdr, err := cti.CDRByCallID(ctx, s.pool, t.Code, in.CallID)
	if err != nil {
		return scoreSubject{}, err
	}
	sub := scoreSubject{callID: cdr.CallID, agentID: cdr.AgentID, name: fmt.Sprintf("call %s", cdr.CallID)}
	if cdr.AgentID == 0 {
		return scoreSubject{}, fault.Errorf(fault.Invalid, "call %s reached no agent: there is no one to score", cdr.CallID)
	}
	agent, err := s.accounts.UserByID(ctx, cdr.AgentID)
	if err != nil {
		return scoreSubject{}, fmt.Errorf("agent of call %s: %w", cdr.CallID, err)
	}
	sub.teamID = agent.TeamID
	if !canSee(u, &WorkOrder{OwnerID: sub.agentID, Values: map[string]any{FieldTeam: sub.teamID}}) {
		return scoreSubject{}, fault.Errorf(fault.NotFound, "no CDR for call %q", in.CallID)
	}
	return sub, nil
}

func scoreEvent(ctx context.Context, tx pgx.Tx, id int64, action string, u *account.User, comment string, old, new *float64) error {
	_, err := tx.Exec(ctx, `INSERT INTO qa_score_events (score_id, action, actor_id, actor, comment, old_score, new_score)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, action, u.ID, u.Name(), strings.TrimSpace(comment), old, new)
	return err
}

func wrapFault(err error, format string, args ...any) error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

const scoreColumns = `id, form_key, form_version, object, record_id, call_id, agent_id, team_id, checker_id, checker, score::float8, band,
	failed, critical_fail, answers, comment, calibration, status, created_at, updated_at`

func scanScore(row pgx.Row) (*Score, error) {
	var sc Score
	var answers []byte
	err := row.Scan(&sc.ID, &sc.Form, &sc.FormVersion, &sc.Object, &sc.RecordID, &sc.CallID, &sc.AgentID, &sc.TeamID, &sc.CheckerID, &sc.Checker,
		&sc.Score, &sc.Band, &sc.Failed, &sc.CriticalFail, &answers, &sc.Comment, &sc.Calibration, &sc.Status, &sc.CreatedAt, &sc.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(answers, &sc.Answers); err != nil {
		return nil, err
	}
	return &sc, nil
}

// scoreScope is the condition on qa_scores rows that u may read, with its arguments
// starting at $n.
func scoreScope(u *account.User, n int) (string, []any, error) {
	switch account.ScopeOf(u.Roles) {
	case account.ScopeAll:
		return "true", nil, nil
	case account.ScopeTeam:
		if u.TeamID == 0 {
			return fmt.Sprintf("agent_id = $%d", n), []any{u.ID}, nil
		}
		return fmt.Sprintf("(agent_id = $%d OR team_id = $%d)", n, n+1), []any{u.ID, u.TeamID}, nil
	case account.ScopeOwn:
		// Agents see their own scores, not calibration rounds among checkers.
		return fmt.Sprintf("(agent_id = $%d AND NOT calibration)", n), []any{u.ID}, nil
	}
	return "", nil, fault.Errorf(fault.Forbidden, "your roles do not show QA scores")
}

// GetScore loads a score u may see; others are NotFound.
func (s *Service) GetScore(ctx context.Context, t *account.Tenant, u *account.User, id int64) (*Score, error) {
	cond, args, err := scoreScope(u, 2)
	if err != nil {
		return nil, err
	}
	var sc *Score
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		var err error
		sc, err = scanScore(tx.QueryRow(ctx, `SELECT `+scoreColumns+` FROM qa_scores WHERE id = $1 AND `+cond, append([]any{id}, args...)...))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "QA score %d does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load QA score %d: %w", id, err)
	}
	if err := s.scoreValues(ctx, t, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// scoreValues fills the tenant's own fields of a score, when its QA object has any.
func (s *Service) scoreValues(ctx context.Context, t *account.Tenant, sc *Score) error {
	o, err := s.objects.Object(ctx, t, QAObjectKey)
	if fault.CodeOf(err) == fault.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if o.Table != qaTable || len(o.Visible()) == 0 {
		return nil
	}
	rec, err := s.objects.Get(ctx, t, QAObjectKey, sc.ID)
	if err != nil {
		return fmt.Errorf("fields of QA score %d: %w", sc.ID, err)
	}
	sc.Values = rec.Values
	return nil
}

// ScoreFilter narrows a list of scores. Zero values do not filter.
type ScoreFilter struct {
	AgentID  int64
	TeamID   int64
	Status   string
	From, To time.Time
	Limit    int
}

// Scores lists the scores u may see, newest first: an agent's own, a team's, or all.
func (s *Service) Scores(ctx context.Context, t *account.Tenant, u *account.User, f ScoreFilter) ([]*Score, error) {
	cond, args, err := scoreScope(u, 1)
	if err != nil {
		return nil, err
	}
	where := []string{cond}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.AgentID != 0 {
		where = append(where, "agent_id = "+arg(f.AgentID))
	}
	if f.TeamID != 0 {
		where = append(where, "team_id = "+arg(f.TeamID))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(f.Status))
	}
	if !f.From.IsZero() {
		where = append(where, "created_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "created_at < "+arg(f.To))
	}
	if f.Limit <= 0 || f.Limit > MaxPageSize {
		f.Limit = DefaultPageSize
	}
	out := []*Score{}
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+scoreColumns+` FROM qa_scores WHERE `+strings.Join(where, " AND ")+
			fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, f.Limit), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sc, err := scanScore(rows)
			if err != nil {
				return err
			}
			out = append(out, sc)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list QA scores: %w", err)
	}
	return out, nil
}

// ScoreHistory lists what happened to a score, oldest first.
func (s *Service) ScoreHistory(ctx context.Context, t *account.Tenant, u *account.User, id int64) ([]ScoreEvent, error) {
	if _, err := s.GetScore(ctx, t, u, id); err != nil {
		return nil, err
	}
	out := []ScoreEvent{}
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT at, action, actor, comment, old_score::float8, new_score::float8
			FROM qa_score_events WHERE score_id = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e ScoreEvent
			if err := rows.Scan(&e.At, &e.Action, &e.Actor, &e.Comment, &e.OldScore, &e.NewScore); err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("history of QA score %d: %w", id, err)
	}
	return out, nil
}

// Acknowledge records that the scored agent accepts a score.
func (s *Service) Acknowledge(ctx context.Context, t *account.Tenant, u *account.User, id int64, comment string) (*Score, error) {
	return s.agentReply(ctx, t, u, id, StatusAcknowledged, "acknowledge", comment)
}

// Dispute records that the scored agent disputes a score; a comment says why.
func (s *Service) Dispute(ctx context.Context, t *account.Tenant, u *account.User, id int64, comment string) (*Score, error) {
	if strings.TrimSpace(comment) == "" {
		return nil, fault.Errorf(fault.Invalid, "a dispute needs a comment saying why")
	}
	return s.agentReply(ctx, t, u, id, StatusDisputed, "dispute", comment)
}

func (s *Service) agentReply(ctx context.Context, t *account.Tenant, u *account.User, id int64, status, action, comment string) (*Score, error) {
	if utf8.RuneCountInString(comment) > maxCommentRunes {
		return nil, fault.Errorf(fault.Invalid, "comment is longer than %d characters", maxCommentRunes)
	}
	sc, err := s.GetScore(ctx, t, u, id)
	if err != nil {
		return nil, err
	}
	if sc.AgentID != u.ID {
		return nil, fault.Errorf(fault.Forbidden, "only the scored agent can %s a score", action)
	}
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE qa_scores SET status = $2, updated_at = now() WHERE id = $1 AND status = 'scored' AND NOT calibration`, id, status)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fault.Errorf(fault.Conflict, "QA score %d is %s: it can be acknowledged or disputed once, while it is new", id, sc.Status)
		}
		return scoreEvent(ctx, tx, id, action, u, comment, nil, nil)
	})
	if err != nil {
		return nil, wrapFault(err, "%s QA score %d", action, id)
	}
	return s.GetScore(ctx, t, u, id)
}

// Resolution is a checker's answer to a dispute: uphold the score, or re-score with new
// answers on the score's own form version.
type Resolution struct {
	Uphold  bool
	Answers []Answer // re-score: the new answers
	Comment string
}

// Resolve settles a disputed score.
func (s *Service) Resolve(ctx context.Context, t *account.Tenant, u *account.User, id int64, r Resolution) (*Score, error) {
	if err := needs(u, account.PermScoreQA, "resolving disputes"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(r.Comment) == "" {
		return nil, fault.Errorf(fault.Invalid, "resolving a dispute needs a comment for the agent")
	}
	sc, err := s.GetScore(ctx, t, u, id)
	if err != nil {
		return nil, err
	}
	var res Result
	var answers []byte
	if !r.Uphold {
		form, err := s.Form(ctx, t, sc.Form, sc.FormVersion)
		if err != nil {
			return nil, err
		}
		if res, err = form.Score(r.Answers); err != nil {
			return nil, err
		}
		if answers, err = json.Marshal(r.Answers); err != nil {
			return nil, err
		}
	}
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		var tag pgconn.CommandTag
		var err error
		if r.Uphold {
			tag, err = tx.Exec(ctx, `UPDATE qa_scores SET status = 'upheld', updated_at = now() WHERE id = $1 AND status = 'disputed'`, id)
		} else {
			tag, err = tx.Exec(ctx, `UPDATE qa_scores SET status = 'rescored', score = $2, band = $3, failed = $4, critical_fail = $5,
				answers = $6, updated_at = now() WHERE id = $1 AND status = 'disputed'`, id, res.Score, res.Band, res.Failed, res.CriticalFail, answers)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fault.Errorf(fault.Conflict, "QA score %d is %s, not disputed", id, sc.Status)
		}
		if r.Uphold {
			return scoreEvent(ctx, tx, id, "uphold", u, r.Comment, &sc.Score, &sc.Score)
		}
		return scoreEvent(ctx, tx, id, "rescore", u, r.Comment, &sc.Score, &res.Score)
	})
	if err != nil {
		return nil, wrapFault(err, "resolve QA score %d", id)
	}
	return s.GetScore(ctx, t, u, id)
}

// Calibration is every checker's scoring of one work order side by side.
type Calibration struct {
	Scores []*Score          `json:"scores"`
	Items  []CalibrationItem `json:"items"`
	Mean   float64           `json:"mean"`
	Spread float64           `json:"spread"` // highest total minus lowest
	StdDev float64           `json:"std_dev"`
}

// CalibrationItem is one item's answers, one per score (in Scores order; "" when that
// score's form version lacks the item).
type CalibrationItem struct {
	Key     string   `json:"key"`
	Text    string   `json:"text"`
	Answers []string `json:"answers"`
	Agree   bool     `json:"agree"`
}

// Calibrate compares the scores of one work order (for QA and admins).
func (s *Service) Calibrate(ctx context.Context, t *account.Tenant, u *account.User, object string, recordID int64) (*Calibration, error) {
	if err := needs(u, account.PermScoreQA, "calibration"); err != nil {
		return nil, err
	}
	w, err := s.Get(ctx, t, u, object, recordID)
	if err != nil {
		return nil, err
	}
	return s.calibrate(ctx, t, fmt.Sprintf("work order %d", w.ID),
		`SELECT `+scoreColumns+` FROM qa_scores WHERE object = $1 AND record_id = $2 ORDER BY id`, w.Object, w.ID)
}

// CalibrateCall compares the scores of one bare call, scored without a work order (for QA
// and admins), as Calibrate does for a work order.
func (s *Service) CalibrateCall(ctx context.Context, t *account.Tenant, u *account.User, callID string) (*Calibration, error) {
	if err := needs(u, account.PermScoreQA, "calibration"); err != nil {
		return nil, err
	}
	sub, err := s.subject(ctx, t, u, ScoreInput{CallID: callID})
	if err != nil {
		return nil, err
	}
	return s.calibrate(ctx, t, sub.name,
		`SELECT `+scoreColumns+` FROM qa_scores WHERE object = '' AND call_id = $1 ORDER BY id`, sub.callID)
}

// calibrate lays out the scores that sql selects side by side, item by item.
func (s *Service) calibrate(ctx context.Context, t *account.Tenant, what, sql string, args ...any) (*Calibration, error) {
	c := &Calibration{Scores: []*Score{}, Items: []CalibrationItem{}}
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sc, err := scanScore(rows)
			if err != nil {
				return err
			}
			c.Scores = append(c.Scores, sc)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("calibration of %s: %w", what, err)
	}
	if len(c.Scores) == 0 {
		return c, nil
	}
	seen := map[string]int{}
	for i, sc := range c.Scores {
		form, err := s.Form(ctx, t, sc.Form, sc.FormVersion)
		if err != nil {
			return nil, err
		}
		byItem := map[string]string{}
		for _, a := range sc.Answers {
			byItem[a.Item] = strings.ToLower(strings.TrimSpace(a.Value))
		}
		for _, it := range form.Items() {
			k, ok := seen[it.Key]
			if !ok {
				k = len(c.Items)
				seen[it.Key] = k
				c.Items = append(c.Items, CalibrationItem{Key: it.Key, Text: it.Text, Answers: make([]string, len(c.Scores))})
			}
			c.Items[k].Answers[i] = byItem[it.Key]
		}
	}
	lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
	for _, sc := range c.Scores {
		lo, hi, sum = math.Min(lo, sc.Score), math.Max(hi, sc.Score), sum+sc.Score
	}
	n := float64(len(c.Scores))
	c.Mean, c.Spread = math.Round(sum/n*10)/10, math.Round((hi-lo)*10)/10
	var sq float64
	for _, sc := range c.Scores {
		sq += (sc.Score - sum/n) * (sc.Score - sum/n)
	}
	c.StdDev = math.Round(math.Sqrt(sq/n)*10) / 10
	for i := range c.Items {
		c.Items[i].Agree = true
		for _, a := range c.Items[i].Answers[1:] {
			c.Items[i].Agree = c.Items[i].Agree && a == c.Items[i].Answers[0]
		}
	}
	return c, nil
}

// Summary groupings.
const (
	ByAgent = "agent"
	ByTeam  = "team"
	ByMonth = "month"
)

// SummaryRow is one group of a QA summary.
type SummaryRow struct {
	Key     string  `json:"key"` // agent or team id, or YYYY-MM in the tenant's zone
	Count   int     `json:"count"`
	Average float64 `json:"average"`
	Fails   int     `json:"fails"`
}

// Summary averages the scores u may see (not calibration rounds) per agent, team or month.
func (s *Service) Summary(ctx context.Context, t *account.Tenant, u *account.User, by string, from, to time.Time) ([]SummaryRow, error) {
	var group string
	switch by {
	case ByAgent:
		group = "agent_id::text"
	case ByTeam:
		group = "team_id::text"
	case ByMonth:
		group = "to_char(created_at AT TIME ZONE $1, 'YYYY-MM')"
	default:
		return nil, fault.Errorf(fault.Invalid, "summarise by agent, team or month, not %q", by)
	}
	cond, args, err := scoreScope(u, 2)
	if err != nil {
		return nil, err
	}
	args = append([]any{t.Location().String()}, args...)
	where := []string{cond, "NOT calibration"}
	if !from.IsZero() {
		args = append(args, from)
		where = append(where, fmt.Sprintf("created_at >= $%d", len(args)))
	}
	if !to.IsZero() {
		args = append(args, to)
		where = append(where, fmt.Sprintf("created_at < $%d", len(args)))
	}
	out := []SummaryRow{}
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+group+` AS k, count(*), round(avg(score), 1)::float8, count(*) FILTER (WHERE failed)
			FROM qa_scores WHERE $1::text <> '' AND `+strings.Join(where, " AND ")+` GROUP BY k ORDER BY k`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r SummaryRow
			if err := rows.Scan(&r.Key, &r.Count, &r.Average, &r.Fails); err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("QA summary: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ScoringCall is the CDR of a bare call that u may score (the scoring page shows it).
func (s *Service) ScoringCall(ctx context.Context, t *account.Tenant, u *account.User, callID string) (*cti.CDR, error) {
	if err := needs(u, account.PermScoreQA, "scoring"); err != nil {
		return nil, err
	}
	if _, err := s.subject(ctx, t, u, ScoreInput{CallID: callID}); err != nil {
		return nil, err
	}
	return cti.CDRByCallID(ctx, s.pool, t.Code, callID)
}
