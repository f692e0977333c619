package web_test

import (
	"testing"
)

// The API side of click-to-dial; the SIP side (phone rings, then the trunk) is tested in cti
// and, through the console, in cmd/ctid.
func TestDialAPIRefusals(t *testing.T) {
	f := newCTIFixture(t)
	for _, tc := range []struct {
		who, method, path, body string
		status                  int
		code, fallback          string
	}{
		// acme's agent has an extension but no registered phone: the console falls back to tel:.
		{"acme/a1", "POST", "/api/v1/calls/dial", `{"number":"0138 0013-8000"}`, 409, "no_phone", "tel:013800138000"},
		{"acme/a1", "POST", "/api/v1/calls/dial", `{"number":"call me"}`, 400, "invalid", ""},
		{"acme/a1", "POST", "/api/v1/calls/dial", `{"number":"1","extra":1}`, 400, "invalid", ""},
		{"acme/sup", "POST", "/api/v1/calls/dial", `{"number":"013800138000"}`, 403, "forbidden", ""}, // takes no calls
		{"acme/a1", "GET", "/api/v1/calls/dial/abc123", "", 404, "not_found", ""},
		{"acme/a1", "GET", "/api/v1/calls/dial/'%20OR%201=1", "", 404, "not_found", ""},
		{"acme/a1", "DELETE", "/api/v1/calls/dial/abc123", "", 404, "not_found", ""},
	} {
		status, out := f.call(tc.who, tc.method, tc.path, tc.body)
		e, _ := out["error"].(map[string]any)
		if status != tc.status || e == nil || e["code"] != tc.code || e["message"] == "" {
			t.Fatalf("%s %s %s %s = %d %v, want %d %s", tc.who, tc.method, tc.path, tc.body, status, out, tc.status, tc.code)
		}
		if fb, _ := out["fallback"].(string); fb != tc.fallback {
			t.Errorf("%s %s: fallback %q, want %q", tc.method, tc.body, fb, tc.fallback)
		}
	}
}
