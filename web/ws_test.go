package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ctid/ctid/screenpop"
)

func (f *fixture) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws" + query
}

// hello dials the console socket and returns the server's first message, or the HTTP status
// of a refused upgrade.
func hello(t *testing.T, url string, header http.Header) (screenpop.Message, int) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return screenpop.Message{}, resp.StatusCode
	}
	defer ws.Close()
	var m screenpop.Message
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("read hello: %v", err)
	}
	return m, http.StatusSwitchingProtocols
}

func TestConsoleWebSocketAuth(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a1, err := f.accounts.Login(ctx, "acme", "a1", "password-a1", "t")
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := f.accounts.Login(ctx, "beta", "a1", "password-a1", "t")
	apiTok, _, _ := f.accounts.CreateToken(ctx, a1.ID, "console", 0)

	// A token from the API opens the console of its user.
	code, body := apiCall(t, f, "GET", "/api/v1/ws-token", apiTok, "")
	if code != 200 {
		t.Fatalf("ws-token: %d %v", code, body)
	}
	m, status := hello(t, f.wsURL("?token="+body["token"].(string)), nil)
	if status != http.StatusSwitchingProtocols || m.Type != screenpop.TypeHello {
		t.Fatalf("token connect: %d %+v", status, m)
	}
	if d := m.Data.(map[string]any); d["tenant"] != "acme" || int64(d["user_id"].(float64)) != a1.ID {
		t.Fatalf("hello is for %v", d)
	}
	// Another tenant's user's token is that user's console, in that tenant only.
	bTok, _, _ := f.accounts.WSToken(ctx, b1.ID)
	m, _ = hello(t, f.wsURL("?token="+bTok), nil)
	if d := m.Data.(map[string]any); d["tenant"] != "beta" {
		t.Fatalf("beta's token opened %v", d)
	}

	// A session cookie works too; a page of another site does not.
	b := f.browser(t)
	b.mustLogin("acme", "a1", "password-a1")
	u, _ := http.NewRequest("GET", f.srv.URL, nil)
	cookies := b.c.Jar.Cookies(u.URL)
	header := http.Header{}
	for _, c := range cookies {
		header.Add("Cookie", c.Name+"="+c.Value)
	}
	if _, status := hello(t, f.wsURL(""), header); status != http.StatusSwitchingProtocols {
		t.Fatalf("session cookie: %d", status)
	}
	header.Set("Origin", "https://evil.example")
	if _, status := hello(t, f.wsURL(""), header); status != http.StatusForbidden {
		t.Fatalf("foreign Origin: %d, want 403", status)
	}

	for _, bad := range []string{"?token=garbage", "?token=" + strings.Repeat("A", 43), ""} {
		if _, status := hello(t, f.wsURL(bad), nil); status != http.StatusUnauthorized {
			t.Errorf("%q: %d, want 401", bad, status)
		}
	}
	// Tokens expire after a minute.
	f.now = f.now.Add(2 * time.Minute)
	tok, _, _ := f.accounts.WSToken(ctx, a1.ID)
	f.now = f.now.Add(2 * time.Minute)
	if _, status := hello(t, f.wsURL("?token="+tok), nil); status != http.StatusUnauthorized {
		t.Fatalf("expired token: %d", status)
	}
}
