package web_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/workorder"
)

// waitCDR waits until the event log has written the CDR of call.
func waitCDR(t *testing.T, f *woFixture, call string) *cti.CDR {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := cti.CDRByCallID(context.Background(), f.pool, "acme", call)
		if err == nil {
			return c
		}
		if fault.CodeOf(err) != fault.NotFound || time.Now().After(deadline) {
			t.Fatalf("CDR of %s: %v", call, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A PBX reports a call with its recording; a checker scores the bare call (no work order)
// from its scoring page, which links the recording; an agent may not open the page.
func TestQABareCallWithRecording(t *testing.T) {
	f := newWOFixture(t)
	if code, body := apiCall(t, f.fixture, "PUT", "/api/v1/qa/forms/inbound", f.tokens["cfg"], qaFormJSON); code != 200 {
		t.Fatalf("define form: %d %v", code, body)
	}
	const call = "pbx-77.1"
	for _, ev := range []string{
		`{"event": "newCall", "call_id": "pbx-77.1", "from": "13800138000", "to": "02155550000"}`,
		`{"event": "answer", "call_id": "pbx-77.1", "agent": "1001"}`,
		`{"event": "hangup", "call_id": "pbx-77.1", "cause": "caller", "recording_url": "javascript:alert(1)"}`,
		`{"event": "hangup", "call_id": "pbx-77.1", "cause": "caller", "recording_url": "https://pbx.example/rec/77.wav?x=1&y=2"}`,
	} {
		code, body := apiCall(t, f.fixture, "POST", "/api/v1/cti/events", f.tokens["cfg"], ev)
		if strings.Contains(ev, "javascript:") {
			if code != 400 || !strings.Contains(fmt.Sprint(body["error"]), "recording_url") {
				t.Fatalf("a javascript: recording: %d %v", code, body)
			}
			continue
		}
		if code != 200 && code != 201 && code != 202 {
			t.Fatalf("report %s: %d %v", ev, code, body)
		}
	}
	waitCDR(t, f, call)
	a := f.browser(t)
	a.mustLogin("acme", "a1", "password-a1")
	if code, _, _ := a.do("GET", "/qa/call/"+call, nil, nil); code != 403 {
		t.Fatalf("an agent opens a call's scoring page: %d", code)
	}
	q := f.browser(t)
	q.mustLogin("acme", "qa", "password-qa")
	code, _, page := q.do("GET", "/qa/call/"+call, nil, nil)
	if code != 200 || !strings.Contains(page, `id="qa-recording" href="https://pbx.example/rec/77.wav?x=1&amp;y=2"`) && !strings.Contains(page, `href="https://pbx.example/rec/77.wav?x=1&amp;y=2" id="qa-recording"`) {
		t.Fatalf("call scoring page without the recording link: %d\n%s", code, page)
	}
	form := url.Values{"csrf_token": {csrfOf(t, page)}, "form": {"inbound"},
		"a_greeting": {"yes"}, "a_empathy": {"4"}, "a_accuracy": {"na"}, "a_privacy": {"yes"}}
	code, h, _ := q.do("POST", "/qa/call/"+call, form, nil)
	if code != 303 || !strings.HasPrefix(h.Get("Location"), "/qa/scores/") {
		t.Fatalf("score the call: %d %v", code, h)
	}
	if code, _, page := q.do("GET", h.Get("Location"), nil, nil); code != 200 || !strings.Contains(page, `id="qa-scored-call">`+call) || !strings.Contains(page, "100.0") {
		t.Fatalf("score page of the call: %d\n%s", code, page)
	}
	// The agent sees the score of their call.
	if code, body := apiCall(t, f.fixture, "GET", "/api/v1/qa/scores", f.tokens["a1"], ""); code != 200 || len(body["items"].([]any)) != 1 {
		t.Fatalf("a1's scores: %d %v", code, body)
	}
	// A work order of the same call shows the recording on its scoring page too.
	w, err := f.svc.Save(context.Background(), f.tenant, f.users["a1"], workorder.Input{CallID: call, Values: map[string]any{"subject": "refund"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, page := q.do("GET", fmt.Sprintf("/qa/score/%d", w.ID), nil, nil); !strings.Contains(page, `id="qa-recording"`) {
		t.Fatalf("work order's scoring page without the recording:\n%s", page)
	}
}
