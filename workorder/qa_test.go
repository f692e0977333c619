package workorder_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/workorder"
)

func (e *env) workOrder(t *testing.T, u *account.User, subject string) *workorder.WorkOrder {
	t.Helper()
	return must[*workorder.WorkOrder](t)(e.svc.Save(context.Background(), e.tenant, u, workorder.Input{Values: map[string]any{"subject": subject}}))
}

func TestQAFormVersions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	def := sampleForm()
	if _, err := e.svc.PutForm(ctx, e.tenant, e.qa, "inbound", def); fault.CodeOf(err) != fault.Forbidden {
		t.Fatalf("a checker defines a form: %v", err)
	}
	f1 := must[*workorder.Form](t)(e.svc.PutForm(ctx, e.tenant, e.config, "inbound", def))
	def.Name = "Inbound calls (typo fixed)"
	if f := must[*workorder.Form](t)(e.svc.PutForm(ctx, e.tenant, e.config, "inbound", def)); f.Version != 1 || f.Name != def.Name {
		t.Fatalf("edit of an unused form: version %d name %q", f.Version, f.Name)
	}
	w := e.workOrder(t, e.agentA1, "scored on v1")
	old := must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, workorder.ScoreInput{Form: "inbound", RecordID: w.ID,
		Answers: answers("yes", "2", "pass", "yes")}))
	// (10 + 15 + 60 + 5) / 105 = 85.714… → 85.7
	if old.FormVersion != f1.Version || old.Score != 85.7 || old.Band != "good" || old.AgentID != e.agentA1.ID {
		t.Fatalf("score = %+v", old)
	}
	def.Sections[1].Items[0].Weight = 20 // accuracy now counts less
	f2 := must[*workorder.Form](t)(e.svc.PutForm(ctx, e.tenant, e.config, "inbound", def))
	if f2.Version != 2 || f2.Current != 2 {
		t.Fatalf("edit of a used form: version %d", f2.Version)
	}
	if v1 := must[*workorder.Form](t)(e.svc.Form(ctx, e.tenant, "inbound", 1)); v1.Sections[1].Items[0].Weight != 60 {
		t.Fatalf("version 1 changed: %+v", v1.Sections[1].Items[0])
	}
	w2 := e.workOrder(t, e.agentA1, "scored on v2")
	sc := must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, workorder.ScoreInput{Form: "inbound", RecordID: w2.ID,
		Answers: answers("yes", "2", "pass", "yes")}))
	// (10 + 15 + 20 + 5) / 65 = 76.923… → 76.9
	if sc.FormVersion != 2 || sc.Score != 76.9 || sc.Band != "needs work" {
		t.Fatalf("score on v2 = %+v", sc)
	}
	if again := must[*workorder.Score](t)(e.svc.GetScore(ctx, e.tenant, e.qa, old.ID)); again.FormVersion != 1 || again.Score != 85.7 {
		t.Fatalf("old score after the form changed = %+v", again)
	}
}

func TestQAScoreDisputeAndScope(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	must[*workorder.Form](t)(e.svc.PutForm(ctx, e.tenant, e.config, "inbound", sampleForm()))
	w := e.workOrder(t, e.agentA1, "disputed")
	wb := e.workOrder(t, e.agentB1, "other team")
	if _, err := e.svc.Score(ctx, e.tenant, e.agentA2, workorder.ScoreInput{Form: "inbound", RecordID: w.ID, Answers: answers("yes", "4", "pass", "yes")}); fault.CodeOf(err) != fault.Forbidden {
		t.Fatalf("an agent scores: %v", err)
	}
	sc := must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, workorder.ScoreInput{Form: "inbound", RecordID: w.ID,
		Answers: append(answers("yes", "4", "pass", "no")[:3], workorder.Answer{Item: "privacy", Value: "no", Comment: "read the card number back"}),
		Comment: "verify identity first"}))
	if sc.Score != 0 || sc.CriticalFail != "privacy" || !sc.Failed || sc.Answers[3].Comment != "read the card number back" {
		t.Fatalf("critical fail = %+v", sc)
	}
	scB := must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, workorder.ScoreInput{Form: "inbound", RecordID: wb.ID, Answers: answers("yes", "4", "pass", "yes")}))
	if _, err := e.svc.Score(ctx, e.tenant, e.qa2, workorder.ScoreInput{Form: "inbound", RecordID: w.ID, Answers: answers("yes", "4", "pass", "yes")}); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("second score outside calibration: %v", err)
	}
	// Who sees which score.
	for _, c := range []struct {
		who  *account.User
		sees []int64
	}{
		{e.agentA1, []int64{sc.ID}}, {e.agentA2, nil}, {e.agentB1, []int64{scB.ID}}, {e.lead, []int64{sc.ID}}, {e.qa2, []int64{scB.ID, sc.ID}},
	} {
		list := must[[]*workorder.Score](t)(e.svc.Scores(ctx, e.tenant, c.who, workorder.ScoreFilter{}))
		var ids []int64
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(c.sees) {
			t.Errorf("%s sees scores %v, want %v", c.who.Username, ids, c.sees)
		}
	}
	if _, err := e.svc.GetScore(ctx, e.tenant, e.agentA2, sc.ID); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("a2 reads a1's score: %v", err)
	}
	if _, err := e.svc.Dispute(ctx, e.tenant, e.lead, sc.ID, "not theirs"); fault.CodeOf(err) != fault.Forbidden {
		t.Fatalf("the lead disputes the agent's score: %v", err)
	}
	if _, err := e.svc.Dispute(ctx, e.tenant, e.agentA1, sc.ID, " "); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("dispute without a comment: %v", err)
	}
	d := must[*workorder.Score](t)(e.svc.Dispute(ctx, e.tenant, e.agentA1, sc.ID, "I did verify: see the recording at 0:40"))
	if d.Status != workorder.StatusDisputed {
		t.Fatalf("status = %s", d.Status)
	}
	if _, err := e.svc.Acknowledge(ctx, e.tenant, e.agentA1, sc.ID, ""); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("acknowledge after dispute: %v", err)
	}
	r := must[*workorder.Score](t)(e.svc.Resolve(ctx, e.tenant, e.qa2, sc.ID, workorder.Resolution{
		Answers: answers("yes", "4", "pass", "yes"), Comment: "confirmed on the recording"}))
	if r.Status != workorder.StatusRescored || r.Score != 100 || r.Failed || r.CriticalFail != "" {
		t.Fatalf("re-scored = %+v", r)
	}
	if _, err := e.svc.Resolve(ctx, e.tenant, e.qa2, sc.ID, workorder.Resolution{Uphold: true, Comment: "again"}); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("resolving twice: %v", err)
	}
	hist := must[[]workorder.ScoreEvent](t)(e.svc.ScoreHistory(ctx, e.tenant, e.agentA1, sc.ID))
	var steps []string
	for _, h := range hist {
		steps = append(steps, h.Action+"/"+h.Actor)
	}
	if fmt.Sprint(steps) != "[score/checker name dispute/a1 name rescore/checker2 name]" || *hist[2].OldScore != 0 || *hist[2].NewScore != 100 {
		t.Fatalf("history = %v", steps)
	}
	// The other agent acknowledges theirs.
	if a := must[*workorder.Score](t)(e.svc.Acknowledge(ctx, e.tenant, e.agentB1, scB.ID, "thanks")); a.Status != workorder.StatusAcknowledged {
		t.Fatalf("acknowledged = %+v", a)
	}
}

func TestQAQueueCalibrationSummary(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	must[*workorder.Form](t)(e.svc.PutForm(ctx, e.tenant, e.config, "inbound", sampleForm()))
	var ws []*workorder.WorkOrder
	for i := range 20 {
		u := e.agentA1
		if i%2 == 1 {
			u = e.agentB1
		}
		ws = append(ws, e.workOrder(t, u, fmt.Sprintf("wo %d", i)))
	}
	if _, err := e.svc.Queue(ctx, e.tenant, e.agentA1, workorder.Filter{}); fault.CodeOf(err) != fault.Forbidden {
		t.Fatalf("an agent reads the QA queue: %v", err)
	}
	q := must[*workorder.Page](t)(e.svc.Queue(ctx, e.tenant, e.qa, workorder.Filter{}))
	if q.Total != 20 {
		t.Fatalf("queue = %d", q.Total)
	}
	must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, workorder.ScoreInput{Form: "inbound", RecordID: ws[0].ID, Answers: answers("yes", "4", "pass", "yes")}))
	if q := must[*workorder.Page](t)(e.svc.Queue(ctx, e.tenant, e.qa, workorder.Filter{AgentID: e.agentA1.ID})); q.Total != 9 {
		t.Fatalf("a1's queue after one score = %d, want 9", q.Total)
	}
	// A sample is a stable subset; 100 % is everything.
	s1 := must[*workorder.Page](t)(e.svc.Queue(ctx, e.tenant, e.qa, workorder.Filter{SamplePercent: 30, SampleSeed: 7}))
	s2 := must[*workorder.Page](t)(e.svc.Queue(ctx, e.tenant, e.qa, workorder.Filter{SamplePercent: 30, SampleSeed: 7}))
	if s1.Total >= 19 || fmt.Sprint(ids(s1)) != fmt.Sprint(ids(s2)) {
		t.Fatalf("30 %% samples: %v and %v", ids(s1), ids(s2))
	}
	if all := must[*workorder.Page](t)(e.svc.Queue(ctx, e.tenant, e.qa, workorder.Filter{SamplePercent: 100})); all.Total != 19 {
		t.Fatalf("100 %% sample = %d", all.Total)
	}
	if _, err := e.svc.Queue(ctx, e.tenant, e.qa, workorder.Filter{SamplePercent: 101}); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("sample 101: %v", err)
	}
	// Calibration: two checkers score ws[1]; one item differs.
	must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, workorder.ScoreInput{Form: "inbound", RecordID: ws[1].ID, Calibration: true, Answers: answers("yes", "4", "pass", "yes")}))
	must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa2, workorder.ScoreInput{Form: "inbound", RecordID: ws[1].ID, Calibration: true, Answers: answers("yes", "2", "pass", "yes")}))
	if _, err := e.svc.Score(ctx, e.tenant, e.qa2, workorder.ScoreInput{Form: "inbound", RecordID: ws[1].ID, Calibration: true, Answers: answers("yes", "2", "pass", "yes")}); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("same checker calibrates twice: %v", err)
	}
	c := must[*workorder.Calibration](t)(e.svc.Calibrate(ctx, e.tenant, e.qa, "", ws[1].ID))
	// 100 and 85.7: spread 14.3, mean 92.85 → 92.9 (half away from zero)
	if len(c.Scores) != 2 || c.Spread != 14.3 || c.Mean != 92.9 || len(c.Items) != 4 {
		t.Fatalf("calibration = %+v", c)
	}
	for _, it := range c.Items {
		if it.Agree != (it.Key != "empathy") {
			t.Errorf("item %s: answers %v agree=%v", it.Key, it.Answers, it.Agree)
		}
	}
	// The agent does not see calibration rounds; summaries leave them out.
	if list := must[[]*workorder.Score](t)(e.svc.Scores(ctx, e.tenant, e.agentB1, workorder.ScoreFilter{})); len(list) != 0 {
		t.Fatalf("b1 sees calibration scores: %d", len(list))
	}
	must[*workorder.Score](t)(e.svc.Score(ctx, e.tenant, e.qa, workorder.ScoreInput{Form: "inbound", RecordID: ws[2].ID, Answers: answers("yes", "4", "pass", "no")}))
	sum := must[[]workorder.SummaryRow](t)(e.svc.Summary(ctx, e.tenant, e.qa, workorder.ByAgent, ws[0].CreatedAt.AddDate(0, 0, -1), ws[0].CreatedAt.AddDate(0, 0, 1)))
	if len(sum) != 1 || sum[0].Key != fmt.Sprint(e.agentA1.ID) || sum[0].Count != 2 || sum[0].Average != 50 || sum[0].Fails != 1 {
		t.Fatalf("summary by agent = %+v", sum)
	}
	if mine := must[[]workorder.SummaryRow](t)(e.svc.Summary(ctx, e.tenant, e.agentB1, workorder.ByMonth, ws[0].CreatedAt.AddDate(0, -1, 0), ws[0].CreatedAt.AddDate(0, 1, 0))); len(mine) != 0 {
		t.Fatalf("b1's summary counts others or calibration: %+v", mine)
	}
	if _, err := e.svc.Summary(ctx, e.tenant, e.qa, "queue", ws[0].CreatedAt, ws[0].CreatedAt); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("summary by queue: %v", err)
	}
}

func ids(p *workorder.Page) []int64 {
	var out []int64
	for _, w := range p.Items {
		out = append(out, w.ID)
	}
	return out
}
