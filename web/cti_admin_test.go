package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
)

func (f *ctiFixture) browser(t *testing.T) *browser {
	return (&fixture{srv: f.srv}).browser(t)
}

// A config admin builds a queue with members and caller priorities, a number routing to it
// and a trunk in the pages; the running SIP service reads them back at once. Refused input
// is named in the form and changes nothing.
func TestCTIAdminPagesConfigureRouting(t *testing.T) {
	f := newCTIFixture(t)
	ctx := context.Background()
	if err := cti.SetSIPDomain(ctx, f.pool, "acme", "acme.test"); err != nil { // the trunk's digest realm
		t.Fatal(err)
	}
	b := f.browser(t)
	home := b.mustLogin("acme", "cfg", "password-cfg")
	if !strings.Contains(home, `href="/admin/cti/queues"`) {
		t.Fatal("a config admin has no telephony link")
	}
	page := b.get("/admin/cti/queues")
	code, loc, body := b.post(page, "/admin/cti/queues", url.Values{"name": {"sales"}, "strategy": {"ring_all"},
		"ring_timeout_s": {"20"}, "max_wait_s": {"120"}, "overflow": {"ext:1001"}, "wrapup_s": {"5"},
		"service_level_s": {"30"}, "missed_limit": {"2"}, "priorities": {"+86138* 5\n\n+8613900000000 9\n"}})
	if code != http.StatusSeeOther || loc != "/admin/cti/queues/sales?saved=1" {
		t.Fatalf("create queue: %d %q\n%s", code, loc, body)
	}
	page = b.get(loc)
	agent := strconv.FormatInt(f.ids["acme/a1"], 10)
	if code, _, body := b.post(page, "/admin/cti/queues/sales/members", url.Values{"agent_id": {agent}, "level": {"2"}}); code != http.StatusSeeOther {
		t.Fatalf("add member: %d\n%s", code, body)
	}
	q, err := f.svc.Queue(ctx, "acme", "sales")
	if err != nil {
		t.Fatal(err)
	}
	if q.Strategy != cti.RingAll || q.RingTimeout != 20*time.Second || q.MaxWait != 2*time.Minute || q.Overflow != "ext:1001" ||
		q.WrapUp != 5*time.Second || q.ServiceLevel != 30*time.Second || q.MissedLimit != 2 || len(q.CallerPriorities) != 2 ||
		q.CallerPriorities[0] != (cti.CallerPriority{Caller: "+8613900000000", Priority: 9}) {
		t.Fatalf("queue as cti reads it: %+v", q)
	}
	members, err := f.svc.QueueMembers(ctx, "acme", "sales")
	if err != nil || len(members) != 1 || members[0].AgentID != f.ids["acme/a1"] || members[0].Level != 2 || members[0].Extension != "1001" {
		t.Fatalf("members = %+v, %v", members, err)
	}
	page = b.get("/admin/cti/queues/sales")
	if !strings.Contains(page, `data-agent="`+agent+`"`) || !strings.Contains(page, "+86138* 5") {
		t.Fatalf("queue page lacks the member or the priority rule:\n%s", page)
	}

	// Edit: the settings form saves over the queue.
	code, _, body = b.post(page, "/admin/cti/queues/sales", url.Values{"strategy": {"round_robin"}, "ring_timeout_s": {"10"},
		"max_wait_s": {"60"}, "service_level_s": {"20"}, "priorities": {""}})
	if code != http.StatusSeeOther {
		t.Fatalf("edit queue: %d\n%s", code, body)
	}
	if q, err = f.svc.Queue(ctx, "acme", "sales"); err != nil || q.Strategy != cti.RoundRobin || q.RingTimeout != 10*time.Second || len(q.CallerPriorities) != 0 {
		t.Fatalf("edited queue = %+v, %v", q, err)
	}

	page = b.get("/admin/cti/numbers")
	code, loc, body = b.post(page, "/admin/cti/numbers", url.Values{"number": {"+862150001234"}, "queue": {"sales"}, "priority": {"3"}})
	if code != http.StatusSeeOther {
		t.Fatalf("save number: %d %q\n%s", code, loc, body)
	}
	dids, err := f.svc.DIDs(ctx, "acme")
	if err != nil || len(dids) != 1 || dids[0] != (cti.DID{Number: "+862150001234", Queue: "sales", Priority: 3}) {
		t.Fatalf("numbers = %+v, %v", dids, err)
	}

	page = b.get("/admin/cti/trunks")
	code, _, body = b.post(page, "/admin/cti/trunks", url.Values{"name": {"carrier"}, "source": {"192.0.2.10"},
		"outbound_uri": {"sip:gw.example.net:5060"}, "caller_id": {"+862150001234"}, "username": {"acme-gw"}, "password": {"trunk-secret-1"}})
	if code != http.StatusSeeOther {
		t.Fatalf("save trunk: %d\n%s", code, body)
	}
	page = b.get("/admin/cti/trunks")
	if strings.Contains(page, "trunk-secret-1") || !strings.Contains(page, "192.0.2.10/32") || !strings.Contains(page, "acme-gw") {
		t.Fatalf("trunk list shows the password or lacks the trunk:\n%s", page)
	}
	trunks, err := f.svc.Trunks(ctx, "acme")
	if err != nil || len(trunks) != 1 || !trunks[0].HasPassword || trunks[0].OutboundURI != "sip:gw.example.net:5060" {
		t.Fatalf("trunks = %+v, %v", trunks, err)
	}

	// Refused input: the form names the problem, nothing changes.
	for _, tc := range []struct {
		path string
		form url.Values
		want string
	}{
		{"/admin/cti/numbers", url.Values{"number": {"+862150009999"}, "queue": {"nope"}}, "queue &#34;nope&#34; does not exist"},
		{"/admin/cti/numbers", url.Values{"number": {"+862150001234"}, "queue": {"sales"}, "extension": {"1001"}}, "exactly one"},
		{"/admin/cti/numbers", url.Values{"number": {"hello"}, "extension": {"1001"}}, "number &#34;hello&#34; is not valid"},
		{"/admin/cti/trunks", url.Values{"name": {"carrier"}, "source": {"300.1.1.1"}}, "source &#34;300.1.1.1&#34; is not an IP address"},
		{"/admin/cti/trunks", url.Values{"name": {"carrier"}, "source": {"192.0.2.10"}, "outbound_uri": {"gw example"}}, "is not a SIP URI"},
		{"/admin/cti/queues", url.Values{"name": {"support"}, "strategy": {"fastest"}}, "queue strategy &#34;fastest&#34;"},
		{"/admin/cti/queues", url.Values{"name": {"support"}, "priorities": {"+86138* high"}}, "line 1: priority &#34;high&#34;"},
		{"/admin/cti/queues", url.Values{"name": {"sales"}}, "queue &#34;sales&#34; already exists"},
		{"/admin/cti/queues", url.Values{"name": {"Bad Name"}}, "queue name &#34;Bad Name&#34; is not valid"},
		{"/admin/cti/queues/sales", url.Values{"ring_timeout_s": {"-1"}}, "ring timeout is -1"},
		{"/admin/cti/queues/sales/members", url.Values{"agent_id": {strconv.FormatInt(f.ids["beta/a1"], 10)}}, "does not exist"},
		{"/admin/cti/queues/sales/members", url.Values{"agent_id": {agent}, "level": {"12"}}, "member level 12"},
	} {
		code, _, body := b.post(page, tc.path, tc.form)
		if code < 400 || code >= 500 || !strings.Contains(body, tc.want) || !strings.Contains(body, `id="`) {
			t.Errorf("POST %s %v: %d, want a 4xx page saying %q\n%s", tc.path, tc.form, code, tc.want, body)
		}
	}
	if qs, err := f.svc.Queues(ctx, "acme"); err != nil || len(qs) != 1 || qs[0].Strategy != cti.RoundRobin || qs[0].RingTimeout != 10*time.Second {
		t.Errorf("queues after refusals = %+v, %v", qs, err)
	}
	if dids, err := f.svc.DIDs(ctx, "acme"); err != nil || len(dids) != 1 || dids[0].Queue != "sales" {
		t.Errorf("numbers after refusals = %+v, %v", dids, err)
	}
	if trunks, err := f.svc.Trunks(ctx, "acme"); err != nil || len(trunks) != 1 || trunks[0].OutboundURI != "sip:gw.example.net:5060" || trunks[0].Source.String() != "192.0.2.10/32" {
		t.Errorf("trunks after refusals = %+v, %v", trunks, err)
	}
	if members, err := f.svc.QueueMembers(ctx, "acme", "sales"); err != nil || len(members) != 1 || members[0].Level != 2 {
		t.Errorf("members after refusals = %+v, %v", members, err)
	}
	// Another tenant sees none of it.
	if qs, err := f.svc.Queues(ctx, "beta"); err != nil || len(qs) != 0 {
		t.Errorf("beta's queues = %+v, %v", qs, err)
	}

	page = b.get("/admin/cti/queues/sales")
	if code, _, body := b.post(page, "/admin/cti/queues/sales/members/"+agent+"/remove", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("remove member: %d\n%s", code, body)
	}
	if members, err := f.svc.QueueMembers(ctx, "acme", "sales"); err != nil || len(members) != 0 {
		t.Fatalf("members after removal = %+v, %v", members, err)
	}
}

func TestCTIAdminPagesForbidAgents(t *testing.T) {
	f := newCTIFixture(t)
	b := f.browser(t)
	home := b.mustLogin("acme", "a1", "password-a1")
	if strings.Contains(home, `href="/admin/cti/queues"`) {
		t.Error("an agent sees the telephony admin link")
	}
	for _, path := range []string{"/admin/cti/queues", "/admin/cti/queues/sales", "/admin/cti/numbers", "/admin/cti/trunks"} {
		if code, _, _ := b.do("GET", path, nil, nil); code != http.StatusForbidden {
			t.Errorf("agent GET %s: %d, want 403", path, code)
		}
	}
	for _, path := range []string{"/admin/cti/queues", "/admin/cti/queues/sales", "/admin/cti/queues/sales/members", "/admin/cti/numbers",
		"/admin/cti/trunks", "/admin/users/sip"} {
		code, _, _ := b.post(home, path, url.Values{"name": {"sales"}, "number": {"+862150001234"}, "extension": {"1001"},
			"source": {"127.0.0.1"}, "user_id": {strconv.FormatInt(f.ids["acme/a1"], 10)}, "sip_password": {"agent-made-1"}})
		if code != http.StatusForbidden {
			t.Errorf("agent POST %s: %d, want 403", path, code)
		}
	}
	if qs, err := f.svc.Queues(context.Background(), "acme"); err != nil || len(qs) != 0 {
		t.Fatalf("an agent's forbidden post made queues: %+v, %v", qs, err)
	}
}

// A tenant admin sets an agent's SIP password on the users page; the agent's phone then
// registers with digest. A changed extension drops the old password.
func TestSIPPasswordFromUsersPage(t *testing.T) {
	f := newCTIFixture(t)
	ctx := context.Background()
	if err := cti.SetSIPDomain(ctx, f.pool, "acme", "acme.test"); err != nil {
		t.Fatal(err)
	}
	accounts := account.NewStore(f.pool, account.DefaultLoginLimits, time.Hour)
	if _, err := accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: "adm", Password: "password-adm",
		Roles: []string{"admin"}}, account.CLI); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.mustLogin("acme", "adm", "password-adm")
	page := b.get("/admin/users")
	if !strings.Contains(page, `id="sip-phone"`) {
		t.Fatalf("users page has no SIP phone form:\n%s", page)
	}
	agent := strconv.FormatInt(f.ids["acme/a1"], 10)
	phone := newPhone(t)

	// Refused: too short, nothing set, the phone cannot register.
	code, _, body := b.post(page, "/admin/users/sip", url.Values{"user_id": {agent}, "extension": {"1009"}, "sip_password": {"short"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "SIP password must have 8–128 characters") {
		t.Fatalf("short password: %d\n%s", code, body)
	}
	if u, err := accounts.UserByID(ctx, f.ids["acme/a1"]); err != nil || u.Extension != "1001" {
		t.Fatalf("refused form changed the extension: %+v, %v", u, err)
	}
	if res := phone.register(t, f.svc, "1001", "short"); res == 200 {
		t.Fatal("registered with a refused password")
	}

	code, loc, body := b.post(page, "/admin/users/sip", url.Values{"user_id": {agent}, "sip_password": {"phone-secret-1"}})
	if code != http.StatusSeeOther || loc != "/admin/users?sip=a1" {
		t.Fatalf("set SIP password: %d %q\n%s", code, loc, body)
	}
	if res := phone.register(t, f.svc, "1001", "phone-secret-1"); res != 200 {
		t.Fatalf("register with the page's password: %d", res)
	}
	if res := phone.register(t, f.svc, "1001", "wrong-secret-1"); res == 200 {
		t.Fatal("registered with a wrong password")
	}

	// A new extension without a new password: the old one no longer works for either.
	page = b.get("/admin/users")
	if code, _, body := b.post(page, "/admin/users/sip", url.Values{"user_id": {agent}, "extension": {"1002"}}); code != http.StatusSeeOther {
		t.Fatalf("change extension: %d\n%s", code, body)
	}
	if res := phone.register(t, f.svc, "1002", "phone-secret-1"); res == 200 {
		t.Fatal("the old password still registers the new extension")
	}
	if code, _, body := b.post(page, "/admin/users/sip", url.Values{"user_id": {agent}, "sip_password": {"phone-secret-2"}}); code != http.StatusSeeOther {
		t.Fatalf("reset SIP password: %d\n%s", code, body)
	}
	if res := phone.register(t, f.svc, "1002", "phone-secret-2"); res != 200 {
		t.Fatalf("register 1002 after reset: %d", res)
	}
	// Another tenant's user is not found.
	code, _, body = b.post(page, "/admin/users/sip", url.Values{"user_id": {strconv.FormatInt(f.ids["beta/a1"], 10)}, "sip_password": {"phone-secret-3"}})
	if code != http.StatusNotFound || !strings.Contains(body, "does not exist") {
		t.Fatalf("other tenant's user: %d\n%s", code, body)
	}
}

type phone struct{ c *sipgo.Client }

func newPhone(t *testing.T) *phone {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-phone"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	return &phone{c: c}
}

// register sends a REGISTER of ext@acme.test, answers the digest challenge with password
// and returns the final status.
func (p *phone) register(t *testing.T, svc *cti.Service, ext, password string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "acme.test"})
	req.SetDestination(svc.Addr("udp"))
	aor := sip.Uri{User: ext, Host: "acme.test"}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Contact", "<sip:"+ext+"@127.0.0.1:5999>"))
	res, err := p.c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 {
		return res.StatusCode
	}
	res, err = p.c.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: ext, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode
}
