package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/fault"
)

// auditActions lists tenant acme's newest audit actions with their targets.
func auditActions(t *testing.T, f *ctiFixture) []string {
	t.Helper()
	accounts := account.NewStore(f.pool, account.DefaultLoginLimits, time.Hour)
	tn, err := accounts.TenantByCode(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := accounts.AuditLog(context.Background(), tn.ID, 50)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "cti.") {
			out = append(out, e.Action+" "+e.Target+" by "+e.Actor)
		}
	}
	return out
}

// A config admin deletes a queue, a number and a trunk in the pages, each after a
// confirmation; a queue still routed to is refused with its references named. Every delete
// is audited and seen by the running SIP service at once.
func TestCTIAdminDeletes(t *testing.T) {
	f := newCTIFixture(t)
	ctx := context.Background()
	for _, q := range []cti.Queue{{Name: "sales"}, {Name: "support", Overflow: "queue:sales"}} {
		if err := f.svc.SaveQueue(ctx, "acme", q); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.SaveDID(ctx, "acme", cti.DID{Number: "+862150001234", Queue: "sales"}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SaveTrunk(ctx, cti.Trunk{Tenant: "acme", Name: "carrier", Source: netip.MustParsePrefix("192.0.2.10/32")}); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.mustLogin("acme", "cfg", "password-cfg")

	// The queue is in use: the confirmation page names why and offers no delete button.
	list := b.get("/admin/cti/queues")
	if !strings.Contains(list, `href="/admin/cti/queues/sales/delete"`) {
		t.Fatalf("queue list has no delete link:\n%s", list)
	}
	page := b.get("/admin/cti/queues/sales/delete")
	if !strings.Contains(page, `id="refusal"`) || !strings.Contains(page, "862150001234") || !strings.Contains(page, "support") ||
		strings.Contains(page, `id="confirm-delete"`) {
		t.Fatalf("confirmation of a queue in use:\n%s", page)
	}
	code, _, body := b.post(page, "/admin/cti/queues/sales/delete", url.Values{"confirm": {"1"}})
	if code != http.StatusConflict || !strings.Contains(body, "862150001234") || !strings.Contains(body, "support") {
		t.Fatalf("delete a queue in use: %d\n%s", code, body)
	}
	if _, err := f.svc.Queue(ctx, "acme", "sales"); err != nil {
		t.Fatalf("refused delete removed the queue: %v", err)
	}

	// The number: confirmation, then gone; without confirm=1 nothing happens.
	page = b.get("/admin/cti/numbers")
	if !strings.Contains(page, `href="/admin/cti/numbers/&#43;862150001234/delete"`) {
		t.Fatalf("number list has no delete link:\n%s", page)
	}
	page = b.get("/admin/cti/numbers/" + url.PathEscape("+862150001234") + "/delete")
	if !strings.Contains(page, `id="will-delete"`) || !strings.Contains(page, `id="confirm-delete"`) {
		t.Fatalf("number confirmation:\n%s", page)
	}
	if code, _, _ := b.post(page, "/admin/cti/numbers/+862150001234/delete", url.Values{}); code != http.StatusBadRequest {
		t.Fatalf("unconfirmed delete: %d, want 400 (asked again)", code)
	}
	if dids, err := f.svc.DIDs(ctx, "acme"); err != nil || len(dids) != 1 {
		t.Fatalf("unconfirmed delete changed numbers: %v, %v", dids, err)
	}
	code, loc, body := b.post(page, "/admin/cti/numbers/+862150001234/delete", url.Values{"confirm": {"1"}})
	if code != http.StatusSeeOther || loc != "/admin/cti/numbers?deleted=%2B862150001234" {
		t.Fatalf("delete number: %d %q\n%s", code, loc, body)
	}
	if !strings.Contains(b.get(loc), `id="notice"`) {
		t.Error("no notice after the delete")
	}
	if dids, err := f.svc.DIDs(ctx, "acme"); err != nil || len(dids) != 0 {
		t.Fatalf("numbers after delete = %v, %v", dids, err)
	}

	// Still refused: support overflows to sales. Once support points elsewhere it goes.
	page = b.get("/admin/cti/queues/sales/delete")
	if !strings.Contains(page, "support") || strings.Contains(page, "862150001234") {
		t.Fatalf("refusal after the number went:\n%s", page)
	}
	if err := f.svc.SaveQueue(ctx, "acme", cti.Queue{Name: "support"}); err != nil {
		t.Fatal(err)
	}
	page = b.get("/admin/cti/queues/sales/delete")
	if code, loc, body := b.post(page, "/admin/cti/queues/sales/delete", url.Values{"confirm": {"1"}}); code != http.StatusSeeOther || loc != "/admin/cti/queues?deleted=sales" {
		t.Fatalf("delete queue: %d %q\n%s", code, loc, body)
	}
	if _, err := f.svc.Queue(ctx, "acme", "sales"); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("deleted queue: %v", err)
	}

	page = b.get("/admin/cti/trunks/carrier/delete")
	if code, _, body := b.post(page, "/admin/cti/trunks/carrier/delete", url.Values{"confirm": {"1"}}); code != http.StatusSeeOther {
		t.Fatalf("delete trunk: %d\n%s", code, body)
	}
	if trunks, err := f.svc.Trunks(ctx, "acme"); err != nil || len(trunks) != 0 {
		t.Fatalf("trunks after delete = %v, %v", trunks, err)
	}
	if code, _, _ := b.do("GET", "/admin/cti/trunks/carrier/delete", nil, nil); code != http.StatusNotFound {
		t.Errorf("confirmation of a gone trunk: %d, want 404", code)
	}

	got := strings.Join(auditActions(t, f), "\n")
	for _, want := range []string{"cti.number.delete +862150001234 by cfg", "cti.queue.delete sales by cfg", "cti.trunk.delete carrier by cfg"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit log lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "cti.queue.delete") != 1 {
		t.Errorf("the refused delete was audited:\n%s", got)
	}

	// The API: 409 naming references, 204, 404; another tenant's queue is not found.
	if err := f.svc.SaveQueue(ctx, "acme", cti.Queue{Name: "vip"}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SaveQueue(ctx, "beta", cti.Queue{Name: "vip"}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SaveQueue(ctx, "acme", cti.Queue{Name: "support", Overflow: "queue:vip"}); err != nil {
		t.Fatal(err)
	}
	if code, out := f.call("acme/cfg", "DELETE", "/api/v1/cti/queues/vip", ""); code != 409 || !strings.Contains(fmt.Sprint(out), "support") {
		t.Fatalf("API delete of a queue in use: %d %v", code, out)
	}
	if code, _ := f.call("acme/a1", "DELETE", "/api/v1/cti/queues/support", ""); code != 403 {
		t.Fatalf("agent API delete: %d, want 403", code)
	}
	if code, _ := f.call("acme/cfg", "DELETE", "/api/v1/cti/queues/support", ""); code != 204 {
		t.Fatalf("API delete: %d, want 204", code)
	}
	if code, _ := f.call("acme/cfg", "DELETE", "/api/v1/cti/queues/support", ""); code != 404 {
		t.Fatalf("API delete of a gone queue: %d, want 404", code)
	}
	if _, err := f.svc.Queue(ctx, "beta", "vip"); err != nil {
		t.Fatalf("beta's queue: %v", err)
	}
}

// A config admin sets the tenant's SIP domain; the page says what the change leaves to do,
// refuses a bad host name, and audits the change. The registrar's realm follows at once.
func TestCTIAdminSIPDomain(t *testing.T) {
	f := newCTIFixture(t)
	ctx := context.Background()
	if err := cti.SetSIPDomain(ctx, f.pool, "acme", "acme.test"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetSIPPassword(ctx, f.ids["acme/a1"], "phone-secret-1"); err != nil {
		t.Fatal(err)
	}
	phone := newPhone(t)
	if res := phone.register(t, f.svc, "1001", "phone-secret-1"); res != 200 {
		t.Fatalf("register before the change: %d", res)
	}
	b := f.browser(t)
	b.mustLogin("acme", "cfg", "password-cfg")
	page := b.get("/admin/cti/sip")
	if !strings.Contains(page, `id="sip-domain">acme.test<`) || !strings.Contains(page, `id="sip-warning"`) {
		t.Fatalf("SIP page:\n%s", page)
	}
	for _, bad := range []string{"not a host!", "-bad.example"} {
		code, _, body := b.post(page, "/admin/cti/sip", url.Values{"domain": {bad}})
		if code != http.StatusBadRequest || !strings.Contains(body, "is not a host name") {
			t.Errorf("domain %q: %d\n%s", bad, code, body)
		}
	}
	if err := cti.SetSIPDomain(ctx, f.pool, "beta", "beta.test"); err != nil {
		t.Fatal(err)
	}
	code, _, body := b.post(page, "/admin/cti/sip", url.Values{"domain": {"beta.test"}})
	if code != http.StatusConflict || !strings.Contains(body, "belongs to another tenant") {
		t.Fatalf("another tenant's domain: %d\n%s", code, body)
	}
	if d, err := f.svc.SIPDomain(ctx, "acme"); err != nil || d != "acme.test" {
		t.Fatalf("refused changes changed the domain: %q, %v", d, err)
	}
	code, _, body = b.post(page, "/admin/cti/sip", url.Values{"domain": {"SIP.Acme.Example"}})
	if code != http.StatusOK || !strings.Contains(body, `id="sip-domain">sip.acme.example<`) || !strings.Contains(body, `id="sip-consequences"`) ||
		!strings.Contains(body, "1 agents and 0 trunks") {
		t.Fatalf("change domain: %d\n%s", code, body)
	}
	// The old domain is nobody's any more.
	if res := phone.register(t, f.svc, "1001", "phone-secret-1"); res != 404 {
		t.Fatalf("register at the old domain after the change: %d, want 404", res)
	}
	if got := strings.Join(auditActions(t, f), "\n"); !strings.Contains(got, "cti.sip_domain.set sip.acme.example by cfg") || strings.Count(got, "cti.sip_domain.set") != 1 {
		t.Fatalf("audit log:\n%s", got)
	}
	// Agents may not.
	ab := f.browser(t)
	home := ab.mustLogin("acme", "a1", "password-a1")
	if code, _, _ := ab.post(home, "/admin/cti/sip", url.Values{"domain": {"evil.example"}}); code != http.StatusForbidden {
		t.Fatalf("agent sets the SIP domain: %d, want 403", code)
	}
}

// Customer-level priority rules sit next to the caller rules, in the queue page and the
// API; a level that is no customer level code is refused and changes nothing.
func TestCTIAdminLevelPriorities(t *testing.T) {
	f := newCTIFixture(t)
	ctx := context.Background()
	b := f.browser(t)
	b.mustLogin("acme", "cfg", "password-cfg")
	page := b.get("/admin/cti/queues")
	code, loc, body := b.post(page, "/admin/cti/queues", url.Values{"name": {"sales"}, "strategy": {"longest_idle"},
		"ring_timeout_s": {"15"}, "max_wait_s": {"300"}, "service_level_s": {"20"}, "level_priorities": {"vip 6\n\ngold 3\n"}})
	if code != http.StatusSeeOther {
		t.Fatalf("create queue: %d %q\n%s", code, loc, body)
	}
	q, err := f.svc.Queue(ctx, "acme", "sales")
	if err != nil || len(q.LevelPriorities) != 2 || q.LevelPriorities[0] != (cti.LevelPriority{Level: "vip", Priority: 6}) {
		t.Fatalf("queue as cti reads it: %+v, %v", q, err)
	}
	page = b.get("/admin/cti/queues/sales")
	if !strings.Contains(page, `name="level_priorities"`) || !strings.Contains(page, "vip 6\ngold 3") {
		t.Fatalf("queue page lacks the level rules:\n%s", page)
	}
	for _, tc := range []struct{ levels, want string }{
		{"diamond 5", "&#34;diamond&#34; is not a customer level"},
		{"vip high", "line 1: priority &#34;high&#34;"},
		{"vip 12", "priority 12 of customer level vip"},
	} {
		code, _, body := b.post(page, "/admin/cti/queues/sales", url.Values{"strategy": {"longest_idle"}, "ring_timeout_s": {"15"},
			"max_wait_s": {"300"}, "service_level_s": {"20"}, "level_priorities": {tc.levels}})
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("levels %q: %d, want 400 saying %q\n%s", tc.levels, code, tc.want, body)
		}
	}
	if q, err := f.svc.Queue(ctx, "acme", "sales"); err != nil || len(q.LevelPriorities) != 2 {
		t.Fatalf("refused forms changed the rules: %+v, %v", q, err)
	}
	code, out := f.call("acme/cfg", "PUT", "/api/v1/cti/queues/sales", `{"level_priorities":[{"level":"gold","priority":4}]}`)
	if code != 200 || fmt.Sprint(out["level_priorities"]) != "[map[level:gold priority:4]]" {
		t.Fatalf("API put: %d %v", code, out)
	}
	if code, out := f.call("acme/cfg", "PUT", "/api/v1/cti/queues/sales", `{"level_priorities":[{"level":"diamond","priority":4}]}`); code != 400 {
		t.Fatalf("API put of an unknown level: %d %v", code, out)
	}
	if code, out := f.call("acme/cfg", "GET", "/api/v1/cti/queues/sales", ""); code != 200 || fmt.Sprint(out["level_priorities"]) != "[map[level:gold priority:4]]" {
		t.Fatalf("API get: %d %v", code, out)
	}
}
