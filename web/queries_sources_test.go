package web_test

import (
	"fmt"
	"strings"
	"testing"
)

func TestQuerySourcesAPI(t *testing.T) {
	f := newWOFixture(t)
	body := `{"name": "Shop", "url": "postgres://shop:pw@127.0.0.1:1/shop?connect_timeout=2", "max_conns": 2}`
	if code, _ := apiCall(t, f.fixture, "PUT", "/api/v1/query-sources/shop", f.tokens["a1"], body); code != 403 {
		t.Fatalf("an agent registers a source: %d", code)
	}
	code, resp := apiCall(t, f.fixture, "PUT", "/api/v1/query-sources/shop", f.tokens["cfg"], body)
	if msg := fmt.Sprint(resp["error"]); code != 400 || !strings.Contains(msg, "cannot connect to 127.0.0.1:1") || strings.Contains(msg, ":pw@") {
		t.Fatalf("an unreachable source: %d %v", code, resp)
	}
	code, resp = apiCall(t, f.fixture, "PUT", "/api/v1/query-sources/shop", f.tokens["cfg"], `{"name": "Shop", "url": "shop.example:5432"}`)
	if code != 400 || !strings.Contains(fmt.Sprint(resp["error"]), "is not valid") {
		t.Fatalf("a bad URL: %d %v", code, resp)
	}
	if code, resp := apiCall(t, f.fixture, "GET", "/api/v1/query-sources", f.tokens["cfg"], ""); code != 200 || resp["total"] != float64(0) {
		t.Fatalf("sources after refusals: %d %v", code, resp)
	}
}
