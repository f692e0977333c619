package web_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/workorder"
)

// insertCDR writes the CDR of an answered inbound call taken by agent.
func insertCDR(t *testing.T, f *woFixture, call string, agent *account.User) {
	t.Helper()
	at := time.Now().Add(-time.Hour)
	_, err := f.pool.Exec(context.Background(), `INSERT INTO t_acme.cdrs (call_id, offered_at, direction, agent_id, answered_at, ended_at, result, seq)
		VALUES ($1, $2, 'inbound', $3, $4, $5, 'answered', 1)`, call, at, agent.ID, at.Add(5*time.Second), at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
}

// A required field the tenant added to the QA score object: a score without it is refused
// through the API and the page, naming the field, and nothing is saved; the page keeps the
// checker's answers and marks the field required.
func TestQARequiredTenantFieldAPIAndPage(t *testing.T) {
	f := newWOFixture(t)
	ctx := context.Background()
	if code, body := apiCall(t, f.fixture, "PUT", "/api/v1/qa/forms/inbound", f.tokens["cfg"], qaFormJSON); code != 200 {
		t.Fatalf("define form: %d %v", code, body)
	}
	if _, err := f.objects.AddField(ctx, f.tenant, workorder.QAObjectKey, dataobject.NewField{Key: "coaching_topic", Type: dataobject.TypeText,
		LabelEN: "Coaching topic", MaxLength: 40, Required: true}, account.CLI); err != nil {
		t.Fatal(err)
	}
	w, err := f.svc.Save(ctx, f.tenant, f.users["a1"], workorder.Input{Values: map[string]any{"subject": "to score"}})
	if err != nil {
		t.Fatal(err)
	}
	insertCDR(t, f, "c-req", f.users["a1"])
	answers := `"answers": [{"item": "greeting", "value": "yes"}, {"item": "empathy", "value": "3"}, {"item": "accuracy", "value": "na"}, {"item": "privacy", "value": "yes"}]`
	for _, subject := range []string{fmt.Sprintf(`"record_id": %d`, w.ID), `"call_id": "c-req"`} {
		for _, values := range []string{``, `, "values": {"coaching_topic": ""}`} {
			body := `{"form": "inbound", ` + subject + `, ` + answers + values + `}`
			code, out := apiCall(t, f.fixture, "POST", "/api/v1/qa/scores", f.tokens["qa"], body)
			if msg := fmt.Sprint(out["error"]); code != 400 || !strings.Contains(msg, "coaching_topic") || !strings.Contains(msg, "required") {
				t.Errorf("score %s without the required field: %d %v", body, code, out)
			}
		}
	}
	q := f.browser(t)
	q.mustLogin("acme", "qa", "password-qa")
	path := fmt.Sprintf("/qa/score/%d", w.ID)
	_, _, page := q.do("GET", path, nil, nil)
	if !strings.Contains(page, `name="v_coaching_topic" value="" required`) {
		t.Fatalf("scoring page does not mark the required field:\n%s", page)
	}
	form := url.Values{"csrf_token": {csrfOf(t, page)}, "form": {"inbound"},
		"a_greeting": {"yes"}, "a_empathy": {"3"}, "a_accuracy": {"na"}, "a_privacy": {"yes"}, "v_coaching_topic": {"  "}}
	code, _, page := q.do("POST", path, form, nil)
	if code != 400 || !strings.Contains(page, `id="error"`) || !strings.Contains(page, "coaching_topic: is required") || !strings.Contains(page, `id="a_empathy_3" checked`) {
		t.Fatalf("page score without the required field: %d\n%s", code, page)
	}
	var n int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM t_acme.qa_scores`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused scores saved %d rows (%v)", n, err)
	}
	form.Set("v_coaching_topic", "empathy")
	code, h, _ := q.do("POST", path, form, nil)
	if code != 303 || !strings.HasPrefix(h.Get("Location"), "/qa/scores/") {
		t.Fatalf("score with the field: %d %v", code, h)
	}
	if code, out := apiCall(t, f.fixture, "POST", "/api/v1/qa/scores", f.tokens["qa"],
		`{"form": "inbound", "call_id": "c-req", `+answers+`, "values": {"coaching_topic": "tone"}}`); code != 201 || out["values"].(map[string]any)["coaching_topic"] != "tone" {
		t.Fatalf("API score of the call with the field: %d %v", code, out)
	}
}

// Several checkers score the same bare call: its calibration page and API show each item's
// answers side by side, the differing items, and the spread of totals; scores of a work order
// of the same call are not part of it, and agents may not see it.
func TestQABareCallCalibration(t *testing.T) {
	f := newWOFixture(t)
	ctx := context.Background()
	if code, body := apiCall(t, f.fixture, "PUT", "/api/v1/qa/forms/inbound", f.tokens["cfg"], qaFormJSON); code != 200 {
		t.Fatalf("define form: %d %v", code, body)
	}
	insertCDR(t, f, "c-cal", f.users["a1"])
	qa2, err := f.accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: "qa2", Password: "password-qa2", Roles: []string{"qa"}}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	if f.tokens["qa2"], _, err = f.accounts.CreateToken(ctx, qa2.ID, "test", time.Hour); err != nil {
		t.Fatal(err)
	}
	score := func(user, calibration, empathy, accuracy string) map[string]any {
		t.Helper()
		code, out := apiCall(t, f.fixture, "POST", "/api/v1/qa/scores", f.tokens[user], `{"form": "inbound", "call_id": "c-cal", "calibration": `+calibration+`,
			"answers": [{"item": "greeting", "value": "yes"}, {"item": "empathy", "value": "`+empathy+`"}, {"item": "accuracy", "value": "`+accuracy+`"}, {"item": "privacy", "value": "yes"}]}`)
		if code != 201 {
			t.Fatalf("%s scores the call: %d %v", user, code, out)
		}
		return out
	}
	first := score("qa", "false", "4", "pass") // 100
	score("qa2", "true", "2", "fail")          // (10 + 15 + 0 + 5) / 105 = 28.6
	// A work order of the same call, scored too: not part of the call's calibration.
	w, err := f.svc.Save(ctx, f.tenant, f.users["a1"], workorder.Input{CallID: "c-cal", Values: map[string]any{"subject": "same call"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, out := apiCall(t, f.fixture, "POST", "/api/v1/qa/scores", f.tokens["qa"], fmt.Sprintf(`{"form": "inbound", "record_id": %d,
		"answers": [{"item": "greeting", "value": "no"}, {"item": "empathy", "value": "0"}, {"item": "accuracy", "value": "fail"}, {"item": "privacy", "value": "yes"}]}`, w.ID)); code != 201 {
		t.Fatalf("score the work order: %d %v", code, out)
	}

	code, c := apiCall(t, f.fixture, "GET", "/api/v1/qa/calls/c-cal/calibration", f.tokens["qa"], "")
	if code != 200 || len(c["scores"].([]any)) != 2 || c["spread"] != 71.4 || c["mean"] != 64.3 {
		t.Fatalf("calibration of the call: %d %v", code, c)
	}
	agree := map[string]bool{}
	for _, it := range c["items"].([]any) {
		m := it.(map[string]any)
		agree[m["key"].(string)] = m["agree"].(bool)
	}
	if fmt.Sprint(agree) != "map[accuracy:false empathy:false greeting:true privacy:true]" {
		t.Fatalf("items agree = %v", agree)
	}
	for user, want := range map[string]int{"a1": 403, "lead": 403, "qa2": 200} {
		if code, out := apiCall(t, f.fixture, "GET", "/api/v1/qa/calls/c-cal/calibration", f.tokens[user], ""); code != want {
			t.Errorf("%s reads the call's calibration: %d %v, want %d", user, code, out, want)
		}
	}
	if code, out := apiCall(t, f.fixture, "GET", "/api/v1/qa/calls/no-such-call/calibration", f.tokens["qa"], ""); code != 404 {
		t.Errorf("calibration of an unknown call: %d %v", code, out)
	}

	q := f.browser(t)
	q.mustLogin("acme", "qa", "password-qa")
	_, _, show := q.do("GET", fmt.Sprintf("/qa/scores/%v", first["id"]), nil, nil)
	if !strings.Contains(show, `href="/qa/call/c-cal/calibration" id="qa-calibration-link"`) {
		t.Fatalf("the call's score page does not link its calibration:\n%s", show)
	}
	code, _, page := q.do("GET", "/qa/call/c-cal/calibration", nil, nil)
	if code != 200 || !strings.Contains(page, `id="qa-calibration-call">c-cal`) || !strings.Contains(page, `id="qa-spread">71.4`) ||
		!strings.Contains(page, `id="qa-mean">64.3`) || strings.Count(page, `class="differs"`) != 2 || !strings.Contains(page, "<th>28.6</th>") {
		t.Fatalf("calibration page of the call: %d\n%s", code, page)
	}
	a := f.browser(t)
	a.mustLogin("acme", "a1", "password-a1")
	if code, _, _ := a.do("GET", "/qa/call/c-cal/calibration", nil, nil); code != 403 {
		t.Fatalf("an agent opens the call's calibration page: %d", code)
	}
}

// versionOf is the work-order version in the edit form of page.
func versionOf(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="version" value="`)
	if !ok {
		t.Fatalf("no version in the page:\n%s", page)
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// The work-order page's edit and assign forms: a refusal re-shows the page with its message
// and status (a stale edit 409 naming who changed it, an agent assigning 403, a bad agent
// 400), nothing is saved, and a good post redirects.
func TestWorkOrderPageFormRefusals(t *testing.T) {
	f := newWOFixture(t)
	ctx := context.Background()
	w, err := f.svc.Save(ctx, f.tenant, f.users["a1"], workorder.Input{Values: map[string]any{"subject": "first"}})
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/workorders/%d", w.ID)
	a := f.browser(t)
	a.mustLogin("acme", "a1", "password-a1")
	_, _, page := a.do("GET", path, nil, nil)
	stale := url.Values{"csrf_token": {csrfOf(t, page)}, "version": {versionOf(t, page)}, "subject": {"from a1"}}
	if _, err := f.svc.Update(ctx, f.tenant, f.users["lead"], "", w.ID, map[string]any{"subject": "from the lead"}, w.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	code, _, page := a.do("POST", path, stale, nil)
	if code != 409 || !strings.Contains(page, `id="error"`) || !strings.Contains(page, "lead") || !strings.Contains(page, "nothing was saved") {
		t.Fatalf("stale edit: %d\n%s", code, page)
	}
	fresh := url.Values{"csrf_token": {csrfOf(t, page)}, "version": {versionOf(t, page)}, "subject": {"from a1"}}
	if code, h, _ := a.do("POST", path, fresh, nil); code != 303 || h.Get("Location") != path+"?saved=1" {
		t.Fatalf("edit: %d %v", code, h)
	}
	_, _, page = a.do("GET", path, nil, nil)
	assign := url.Values{"csrf_token": {csrfOf(t, page)}, "version": {versionOf(t, page)}, "agent_id": {fmt.Sprint(f.users["a2"].ID)}}
	if code, _, page := a.do("POST", path+"/assign", assign, nil); code != 403 || !strings.Contains(page, "assign work orders") {
		t.Fatalf("an agent assigns: %d\n%s", code, page)
	}
	l := f.browser(t)
	l.mustLogin("acme", "lead", "password-lead")
	_, _, page = l.do("GET", path, nil, nil)
	assign = url.Values{"csrf_token": {csrfOf(t, page)}, "version": {versionOf(t, page)}, "agent_id": {fmt.Sprint(f.users["lead"].ID)}}
	if code, _, page := l.do("POST", path+"/assign", assign, nil); code != 400 || !strings.Contains(page, "is not an agent") {
		t.Fatalf("assign to a non-agent: %d\n%s", code, page)
	}
	assign.Set("agent_id", fmt.Sprint(f.users["a2"].ID))
	if code, h, _ := l.do("POST", path+"/assign", assign, nil); code != 303 || h.Get("Location") != path+"?saved=1" {
		t.Fatalf("assign: %d %v", code, h)
	}
	got, err := f.svc.Get(ctx, f.tenant, f.users["lead"], "", w.ID)
	if err != nil || got.OwnerID != f.users["a2"].ID || got.Values["subject"] != "from a1" {
		t.Fatalf("after the forms: %+v (%v)", got, err)
	}
}
