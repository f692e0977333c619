package workorder_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/workorder"
)

// cdr writes a CDR of call id answered by agent (nil: no agent).
func (e *env) cdr(t *testing.T, id string, agent *account.User) {
	t.Helper()
	var agentID *int64
	if agent != nil {
		agentID = &agent.ID
	}
	at := time.Now().Add(-time.Hour)
	_, err := e.pool.Exec(context.Background(), `INSERT INTO t_acme.cdrs (call_id, offered_at, direction, agent_id, answered_at, ended_at,
		result, seq, recording_url) VALUES ($1, $2, 'inbound', $3, $4, $5, 'answered', 1, 'https://pbx.example/r/1.wav')`,
		id, at, agentID, at.Add(5*time.Second), at.Add(time.Minute))
	mustOK(t, err)
}

func TestQABareCall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	must[*workorder.Form](t)(e.svc.PutForm(ctx, e.tenant, e.config, "inbound", sampleForm()))
	e.cdr(t, "call-1", e.agentA1)
	e.cdr(t, "call-nobody", nil)
	in := workorder.ScoreInput{Form: "inbound", CallID: "call-1", Answers: answers("yes", "2", "pass", "yes")}
	sc := must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, in))
	// The same math as a work order's: (10 + 15 + 60 + 5) / 105 = 85.7.
	if sc.Score != 85.7 || sc.Object != "" || sc.RecordID != 0 || sc.CallID != "call-1" || sc.AgentID != e.agentA1.ID || sc.TeamID != e.agentA1.TeamID {
		t.Fatalf("bare-call score = %+v", sc)
	}
	if _, err := e.svc.Score(ctx, e.tenant, e.qa2, in); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("second score of a call outside calibration: %v", err)
	}
	in.Calibration = true
	must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa2, in))
	if _, err := e.svc.Score(ctx, e.tenant, e.qa2, in); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("a checker's second calibration of a call: %v", err)
	}
	for _, c := range []struct {
		in   workorder.ScoreInput
		code fault.Code
	}{
		{workorder.ScoreInput{Form: "inbound", CallID: "call-nobody", Answers: answers("yes", "2", "pass", "yes")}, fault.Invalid},
		{workorder.ScoreInput{Form: "inbound", CallID: "no-such-call", Answers: answers("yes", "2", "pass", "yes")}, fault.NotFound},
		{workorder.ScoreInput{Form: "inbound", Answers: answers("yes", "2", "pass", "yes")}, fault.Invalid},
	} {
		if _, err := e.svc.Score(ctx, e.tenant, e.qa, c.in); fault.CodeOf(err) != c.code {
			t.Errorf("score %+v: %v, want %s", c.in, err, c.code)
		}
	}
	// The scored agent sees it (not the calibration round) and may dispute it; another team's agent does not see it.
	mine := must[[]*workorder.Score](t)(e.svc.Scores(ctx, e.tenant, e.agentA1, workorder.ScoreFilter{}))
	if len(mine) != 1 || mine[0].ID != sc.ID {
		t.Fatalf("agent's scores = %+v", mine)
	}
	if _, err := e.svc.GetScore(ctx, e.tenant, e.agentB1, sc.ID); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("another team's agent reads the score: %v", err)
	}
	must[*workorder.Score](t)(e.svc.Dispute(ctx, e.tenant, e.agentA1, sc.ID, "I did greet"))
	if r := must[*workorder.Score](t)(e.svc.Resolve(ctx, e.tenant, e.qa, sc.ID, workorder.Resolution{Answers: answers("yes", "4", "pass", "yes"), Comment: "ok"})); r.Score != 100 || r.Status != workorder.StatusRescored {
		t.Fatalf("re-scored bare call = %+v", r)
	}
}

func TestQAScoresAreADataObject(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o := must[*dataobject.Object](t)(e.objects.DefaultObject(ctx, e.tenant, dataobject.KindQA))
	if o.Key != workorder.QAObjectKey || o.Table != "qa_scores" {
		t.Fatalf("default QA object = %s on %s", o.Key, o.Table)
	}
	if _, err := e.objects.AddField(ctx, e.tenant, o.Key, dataobject.NewField{Key: "score", Type: dataobject.TypeText, LabelEN: "Score"}, e.adminActor()); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("a field named like a built-in column: %v", err)
	}
	must[*dataobject.Field](t)(e.objects.AddField(ctx, e.tenant, o.Key, dataobject.NewField{Key: "coaching_topic", Type: dataobject.TypeText,
		LabelEN: "Coaching topic", MaxLength: 40}, e.adminActor()))
	must[*workorder.Form](t)(e.svc.PutForm(ctx, e.tenant, e.config, "inbound", sampleForm()))
	w := e.workOrder(t, e.agentA1, "with coaching")
	in := workorder.ScoreInput{Form: "inbound", RecordID: w.ID, Answers: answers("yes", "2", "pass", "yes"),
		Values: map[string]any{"coaching_topic": "a very long topic that is far longer than forty characters"}}
	if _, err := e.svc.Score(ctx, e.tenant, e.qa, in); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("a value the field refuses: %v", err)
	}
	in.Values = map[string]any{"no_such_field": "x"}
	if _, err := e.svc.Score(ctx, e.tenant, e.qa, in); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("an unknown field: %v", err)
	}
	// Nothing was saved by the refused scores: the work order is still unscored.
	in.Values = map[string]any{"coaching_topic": "greeting"}
	sc := must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, in))
	if sc.Values["coaching_topic"] != "greeting" || sc.Score != 85.7 {
		t.Fatalf("score with a tenant field = %+v", sc)
	}
	// The agent sees the field too, and the audit trail has the checker.
	if got := must[*workorder.Score](t)(e.svc.GetScore(ctx, e.tenant, e.agentA1, sc.ID)); got.Values["coaching_topic"] != "greeting" {
		t.Fatalf("agent's view = %+v", got.Values)
	}
	hist := must[[]dataobject.HistoryEntry](t)(e.objects.History(ctx, e.tenant, o.Key, sc.ID))
	if len(hist) != 1 || hist[0].ActorID != e.qa.ID || hist[0].Changes[0].Field != "coaching_topic" {
		t.Fatalf("history = %+v", hist)
	}
	if _, err := e.svc.Score(ctx, e.tenant, e.qa, workorder.ScoreInput{Form: "inbound", RecordID: w.ID, Answers: answers("yes", "2", "pass", "yes"),
		Values: map[string]any{"owner_id": e.agentA2.ID}}); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("a score's owner as a value: %v", err)
	}
}

// A required field a tenant added to the QA score object must be filled in to score: a score
// without it is refused naming the field, for a work order and for a bare call, and saves
// nothing; a field's default fills in when no value is given.
func TestQARequiredTenantField(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	must[*dataobject.Field](t)(e.objects.AddField(ctx, e.tenant, workorder.QAObjectKey, dataobject.NewField{Key: "coaching_topic", Type: dataobject.TypeText,
		LabelEN: "Coaching topic", MaxLength: 40, Required: true}, e.adminActor()))
	must[*dataobject.Field](t)(e.objects.AddField(ctx, e.tenant, workorder.QAObjectKey, dataobject.NewField{Key: "channel", Type: dataobject.TypeText,
		LabelEN: "Channel", MaxLength: 20, Default: "phone"}, e.adminActor()))
	must[*workorder.Form](t)(e.svc.PutForm(ctx, e.tenant, e.config, "inbound", sampleForm()))
	w := e.workOrder(t, e.agentA1, "needs a topic")
	e.cdr(t, "call-req", e.agentA1)
	for _, c := range []struct {
		name   string
		in     workorder.ScoreInput
		values map[string]any
	}{
		{"work order, no values", workorder.ScoreInput{RecordID: w.ID}, nil},
		{"work order, other values only", workorder.ScoreInput{RecordID: w.ID}, map[string]any{"channel": "chat"}},
		{"work order, blank value", workorder.ScoreInput{RecordID: w.ID}, map[string]any{"coaching_topic": "  "}},
		{"bare call, no values", workorder.ScoreInput{CallID: "call-req"}, nil},
		{"calibration, no values", workorder.ScoreInput{RecordID: w.ID, Calibration: true}, nil},
	} {
		in := c.in
		in.Form, in.Answers, in.Values = "inbound", answers("yes", "2", "pass", "yes"), c.values
		_, err := e.svc.Score(ctx, e.tenant, e.qa, in)
		if fault.CodeOf(err) != fault.Invalid || !strings.Contains(fault.MessageOf(err), "coaching_topic") || !strings.Contains(fault.MessageOf(err), "required") {
			t.Errorf("%s: %v, want Invalid naming coaching_topic as required", c.name, err)
		}
	}
	var rows, events int
	mustOK(t, e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM t_acme.qa_scores), (SELECT count(*) FROM t_acme.qa_score_events)`).Scan(&rows, &events))
	if rows != 0 || events != 0 {
		t.Fatalf("refused scores left %d scores and %d events", rows, events)
	}
	sc := must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, workorder.ScoreInput{Form: "inbound", RecordID: w.ID,
		Answers: answers("yes", "2", "pass", "yes"), Values: map[string]any{"coaching_topic": "greeting"}}))
	if sc.Values["coaching_topic"] != "greeting" || sc.Values["channel"] != "phone" || sc.Score != 85.7 {
		t.Fatalf("score with the required field = %+v", sc)
	}
}
