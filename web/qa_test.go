package web_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/web/browsertest"
	"github.com/ctid/ctid/workorder"
)

const qaFormJSON = `{"name": "Inbound calls", "sections": [
  {"title": "Opening", "items": [
    {"key": "greeting", "text": "Greets with name", "kind": "yes_no", "weight": 10},
    {"key": "empathy", "text": "Shows empathy", "kind": "scale", "max": 4, "weight": 30}]},
  {"title": "Handling", "items": [
    {"key": "accuracy", "text": "Gives correct information", "kind": "pass_fail", "weight": 60, "allow_na": true},
    {"key": "privacy", "text": "Verifies identity", "kind": "yes_no", "weight": 5, "critical": true}]}],
  "bands": [{"min": 0, "label": "fail", "fail": true}, {"min": 60, "label": "needs work"}, {"min": 80, "label": "good"}]}`

func TestQAAPIScopeAndDispute(t *testing.T) {
	f := newWOFixture(t)
	ctx := context.Background()
	if code, body := apiCall(t, f.fixture, "PUT", "/api/v1/qa/forms/inbound", f.tokens["qa"], qaFormJSON); code != 403 {
		t.Fatalf("a checker defines a form: %d %v", code, body)
	}
	if code, body := apiCall(t, f.fixture, "PUT", "/api/v1/qa/forms/inbound", f.tokens["cfg"], qaFormJSON); code != 200 || body["version"] != float64(1) {
		t.Fatalf("define form: %d %v", code, body)
	}
	w, err := f.svc.Save(ctx, f.tenant, f.users["a1"], workorder.Input{Values: map[string]any{"subject": "to score"}})
	if err != nil {
		t.Fatal(err)
	}
	score := fmt.Sprintf(`{"form": "inbound", "record_id": %d, "answers": [{"item": "greeting", "value": "yes"},
		{"item": "empathy", "value": "3"}, {"item": "accuracy", "value": "na"}, {"item": "privacy", "value": "yes"}]}`, w.ID)
	if code, _ := apiCall(t, f.fixture, "POST", "/api/v1/qa/scores", f.tokens["a2"], score); code != 403 {
		t.Fatalf("an agent scores: %d", code)
	}
	code, body := apiCall(t, f.fixture, "POST", "/api/v1/qa/scores", f.tokens["qa"], score)
	if code != 201 || body["score"] != 83.3 || body["band"] != "good" {
		t.Fatalf("score: %d %v", code, body)
	}
	path := fmt.Sprintf("/api/v1/qa/scores/%v", body["id"])
	for user, want := range map[string]int{"a1": 200, "lead": 200, "qa": 200, "a2": 404, "s1": 404} {
		if code, body := apiCall(t, f.fixture, "GET", path, f.tokens[user], ""); code != want {
			t.Errorf("%s reads the score: %d %v, want %d", user, code, body, want)
		}
	}
	if code, body := apiCall(t, f.fixture, "POST", path+"/dispute", f.tokens["a1"], `{"comment": "accuracy applied"}`); code != 200 || body["status"] != "disputed" {
		t.Fatalf("dispute: %d %v", code, body)
	}
	code, body = apiCall(t, f.fixture, "POST", path+"/resolve", f.tokens["qa"], `{"answers": [{"item": "greeting", "value": "yes"},
		{"item": "empathy", "value": "3"}, {"item": "accuracy", "value": "pass"}, {"item": "privacy", "value": "yes"}], "comment": "fair point"}`)
	// (10 + 22.5 + 60 + 5) / 105 = 92.857… → 92.9
	if code != 200 || body["status"] != "rescored" || body["score"] != 92.9 {
		t.Fatalf("resolve: %d %v", code, body)
	}
	if code, body := apiCall(t, f.fixture, "GET", "/api/v1/qa/summary?by=agent", f.tokens["a2"], ""); code != 200 || len(body["items"].([]any)) != 0 {
		t.Fatalf("a2's summary shows a1's scores: %d %v", code, body)
	}
	if code, body := apiCall(t, f.fixture, "GET", "/api/v1/qa/summary?by=team", f.tokens["lead"], ""); code != 200 || len(body["items"].([]any)) != 1 {
		t.Fatalf("lead's summary: %d %v", code, body)
	}
	// The agent's own scores page shows it; the summary page renders.
	b := f.browser(t)
	b.mustLogin("acme", "a1", "password-a1")
	if code, _, page := b.do("GET", "/qa/scores", nil, nil); code != 200 || !strings.Contains(page, "92.9") || !strings.Contains(page, "Re-scored") {
		t.Fatalf("a1's scores page: %d\n%s", code, page)
	}
	if code, _, _ := b.do("GET", "/qa/queue", nil, nil); code != 403 {
		t.Fatalf("a1 opens the QA queue: %d", code)
	}
	q := f.browser(t)
	q.mustLogin("acme", "qa", "password-qa")
	if code, _, page := q.do("GET", "/qa/summary?by=month", nil, nil); code != 200 || !strings.Contains(page, "92.9") {
		t.Fatalf("summary page: %d\n%s", code, page)
	}
	if code, _, page := q.do("GET", fmt.Sprintf("/qa/calibration/%d", w.ID), nil, nil); code != 200 || !strings.Contains(page, `id="qa-spread">0.0`) {
		t.Fatalf("calibration page: %d\n%s", code, page)
	}
	// The same flow through the pages: a1 disputes a new score, the checker re-scores it.
	w2, err := f.svc.Save(ctx, f.tenant, f.users["a1"], workorder.Input{Values: map[string]any{"subject": "second"}})
	if err != nil {
		t.Fatal(err)
	}
	code, body = apiCall(t, f.fixture, "POST", "/api/v1/qa/scores", f.tokens["qa"], strings.Replace(score, fmt.Sprint(w.ID), fmt.Sprint(w2.ID), 1))
	if code != 201 {
		t.Fatalf("score: %d %v", code, body)
	}
	spath := fmt.Sprintf("/qa/scores/%v", body["id"])
	_, _, page := b.do("GET", spath, nil, nil)
	if code, _, page := b.do("POST", spath+"/reply", url.Values{"csrf_token": {csrfOf(t, page)}, "action": {"dispute"}, "comment": {" "}}, nil); code != 400 || !strings.Contains(page, "needs a comment") {
		t.Fatalf("dispute without comment: %d", code)
	}
	if code, _, _ := b.do("POST", spath+"/reply", url.Values{"csrf_token": {csrfOf(t, page)}, "action": {"dispute"}, "comment": {"accuracy applied"}}, nil); code != 303 {
		t.Fatalf("dispute: %d", code)
	}
	_, _, page = q.do("GET", spath, nil, nil)
	if !strings.Contains(page, `id="qa-rescore"`) || !strings.Contains(page, `id="r_empathy_3" checked`) {
		t.Fatalf("resolve form missing or without the answers:\n%s", page)
	}
	form := url.Values{"csrf_token": {csrfOf(t, page)}, "action": {"rescore"}, "comment": {"fair"},
		"a_greeting": {"yes"}, "a_empathy": {"3"}, "a_accuracy": {"pass"}, "a_privacy": {"yes"}}
	if code, _, _ := q.do("POST", spath+"/resolve", form, nil); code != 303 {
		t.Fatalf("re-score: %d", code)
	}
	if _, _, page := b.do("GET", spath, nil, nil); !strings.Contains(page, `id="qa-total">92.9`) || !strings.Contains(page, "Re-scored") {
		t.Fatalf("a1 sees after re-score:\n%s", page)
	}
}

// A checker scores one work order from the queue in the browser: the scoring page shows the
// work order and the form; a failed critical item gives 0 and the fail band.
func TestQAScoringInBrowser(t *testing.T) {
	f := newWOFixture(t)
	ctx := context.Background()
	if code, body := apiCall(t, f.fixture, "PUT", "/api/v1/qa/forms/inbound", f.tokens["cfg"], qaFormJSON); code != 200 {
		t.Fatalf("define form: %d %v", code, body)
	}
	w, err := f.svc.Save(ctx, f.tenant, f.users["a1"], workorder.Input{Values: map[string]any{"subject": "Refund request"}})
	if err != nil {
		t.Fatal(err)
	}
	bctx := browsertest.New(t)
	err = chromedp.Do(bctx,
		chromedp.Navigate(f.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#tenant"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#username"), "qa"),
		chromedp.SendKeys(chromedp.CSS("#password"), "password-qa"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#welcome")),
		chromedp.Navigate(f.srv.URL+"/qa/queue"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#qa-queue tr[data-id="%d"] a.score-link`, w.ID))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#qa-queue tr[data-id="%d"] a.score-link`, w.ID))),
		chromedp.WaitVisible(chromedp.CSS("#qa-score-form")),
		chromedp.Click(chromedp.CSS("#a_greeting_yes")),
		chromedp.Click(chromedp.CSS("#a_empathy_4")),
		chromedp.Click(chromedp.CSS("#a_accuracy_pass")),
		chromedp.Click(chromedp.CSS("#a_privacy_no")),
		chromedp.SendKeys(chromedp.CSS(`input[name="c_privacy"]`), "read the card number aloud"),
		chromedp.Click(chromedp.CSS("#qa-save")),
		chromedp.WaitVisible(chromedp.CSS("#qa-total")),
	)
	if err != nil {
		t.Fatal(err)
	}
	total, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#qa-total")))
	if err != nil {
		t.Fatal(err)
	}
	band, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#qa-band")))
	if total != "0.0" || !strings.HasPrefix(band, "fail") || !strings.Contains(band, "privacy") {
		t.Fatalf("score page: total %q band %q", total, band)
	}
	list, err := f.svc.Scores(ctx, f.tenant, f.users["qa"], workorder.ScoreFilter{})
	if err != nil || len(list) != 1 || list[0].RecordID != w.ID || list[0].Answers[3].Comment != "read the card number aloud" {
		t.Fatalf("stored scores: %+v %v", list, err)
	}
	if q, err := f.svc.Queue(ctx, f.tenant, f.users["qa"], workorder.Filter{}); err != nil || q.Total != 0 {
		t.Fatalf("queue after scoring: %+v %v", q, err)
	}
}

// A work order saved for a call opens from the call history, and its scoring page shows the
// call's CDR.
func TestCallHistoryOpensWorkOrderAndScoringShowsTheCall(t *testing.T) {
	f := newWOFixture(t)
	ctx := context.Background()
	a1 := f.users["a1"]
	w, err := f.svc.Save(ctx, f.tenant, a1, workorder.Input{CallID: "c-q1", Values: map[string]any{"subject": "Billing"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cdr := &cti.CDR{CallID: "c-q1", OfferedAt: now.Add(-3 * time.Minute), Direction: cti.Inbound, Source: "api", CallerRaw: "13900005555",
		CallerE164: "+8613900005555", Queue: "sales", AgentID: a1.ID, AnsweredAt: now.Add(-170 * time.Second), EndedAt: now.Add(-time.Minute), Result: cti.Answered}
	if _, err := f.events.Append(ctx, cti.Event{Tenant: "acme", Type: cti.CallEnded, CallID: "c-q1", AgentID: a1.ID, CDR: cdr}); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.mustLogin("acme", "a1", "password-a1")
	if code, _, page := b.do("GET", "/queries/call_history?period=last_7_days", nil, nil); code != 200 || !strings.Contains(page, `href="/workorders?call_id=c-q1"`) {
		t.Fatalf("call history without the work-order link: %d\n%s", code, page)
	} else if !strings.Contains(page, `<a href="tel:&#43;8613900005555" class="dial" data-number="&#43;8613900005555">`) || !strings.Contains(page, `id="dial-status"`) {
		t.Fatalf("call history: the caller is no click-to-dial link\n%s", page)
	}
	if code, _, page := b.do("GET", "/workorders?call_id=c-q1", nil, nil); code != 200 || !strings.Contains(page, fmt.Sprintf(`data-id="%d"`, w.ID)) {
		t.Fatalf("work orders of the call: %d", code)
	}
	if _, err := f.svc.PutForm(ctx, f.tenant, f.users["cfg"], "inbound", workorder.FormDef{Name: "Short", Sections: []workorder.Section{{Title: "All",
		Items: []workorder.Item{{Key: "ok", Text: "Handled well", Kind: workorder.ItemYesNo, Weight: 1}}}}, Bands: []workorder.Band{{Min: 0, Label: "any"}}}); err != nil {
		t.Fatal(err)
	}
	q := f.browser(t)
	q.mustLogin("acme", "qa", "password-qa")
	code, _, page := q.do("GET", fmt.Sprintf("/qa/score/%d", w.ID), nil, nil)
	cdrPart := page[strings.Index(page, `id="qa-cdr"`):]
	if code != 200 || !strings.Contains(cdrPart, "c-q1") || !strings.Contains(cdrPart, "answered") || !strings.Contains(cdrPart, "110 s") {
		t.Fatalf("scoring page without the call: %d\n%s", code, page)
	}
}

func TestWorkOrderAdminPage(t *testing.T) {
	f := newWOFixture(t)
	ctx := context.Background()
	b := f.browser(t)
	b.mustLogin("acme", "cfg", "password-cfg")
	_, _, page := b.do("GET", "/admin/workorders", nil, nil)
	csrf := csrfOf(t, page)
	if code, _, page := b.do("POST", "/admin/workorders/settings", url.Values{"csrf_token": {csrf}, "auto_ready": {"1"},
		"draft_map": {"name=customer_name\ncompany=shoe_size"}}, nil); code != 400 || !strings.Contains(page, `no field &#34;shoe_size&#34;`) {
		t.Fatalf("bad mapping: %d\n%s", code, page)
	}
	if code, _, _ := b.do("POST", "/admin/workorders/settings", url.Values{"csrf_token": {csrf},
		"draft_map": {"name=customer_name\ncompany = description"}}, nil); code != 303 {
		t.Fatalf("mapping: %d", code)
	}
	st, err := f.svc.Settings(ctx, f.tenant)
	if err != nil || st.AutoReady || st.DraftMap["company"] != "description" || len(st.DraftMap) != 2 {
		t.Fatalf("settings = %+v %v", st, err)
	}
	if code, _, page := b.do("POST", "/admin/workorders/qa-forms", url.Values{"csrf_token": {csrf}, "key": {"inbound"},
		"definition": {`{"name": "x", "sections": []`}}, nil); code != 400 || !strings.Contains(page, "not valid JSON") {
		t.Fatalf("broken JSON: %d", code)
	}
	if code, _, _ := b.do("POST", "/admin/workorders/qa-forms", url.Values{"csrf_token": {csrf}, "key": {"inbound"},
		"definition": {qaFormJSON}}, nil); code != 303 {
		t.Fatalf("new form: %d", code)
	}
	if _, _, page := b.do("GET", "/admin/workorders", nil, nil); !strings.Contains(page, "inbound · v1") || !strings.Contains(page, "company=description") {
		t.Fatalf("admin page after saving:\n%s", page)
	}
	a := f.browser(t)
	a.mustLogin("acme", "a1", "password-a1")
	if code, _, _ := a.do("GET", "/admin/workorders", nil, nil); code != 403 {
		t.Fatalf("an agent opens the settings: %d", code)
	}
}
