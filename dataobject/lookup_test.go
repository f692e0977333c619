package dataobject_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
)

// customers saves a customer per name with its phones, the first one contacted most recently.
func customers(tb testing.TB, e *env, ten *account.Tenant, list map[string][]string, order []string) {
	tb.Helper()
	ctx := context.Background()
	base := time.Now().Add(time.Hour)
	for i, name := range order {
		r := must[*dataobject.Record](tb)(e.store.Create(ctx, ten, "customer", map[string]any{"name": name, "phones": list[name]}, e.admin))
		mustOK(tb, e.store.TouchContact(ctx, ten, "customer", r.ID, base.Add(-time.Duration(i)*time.Minute)))
	}
}

func TestLookup(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	gb := must[*account.Tenant](t)(e.accounts.CreateTenant(ctx, account.NewTenant{Code: "brit", Name: "Brit", Region: "GB", TimeZone: "Europe/London"}, account.CLI))
	us := must[*account.Tenant](t)(e.accounts.CreateTenant(ctx, account.NewTenant{Code: "yank", Name: "Yank", Region: "US", TimeZone: "America/New_York"}, account.CLI))

	customers(t, e, e.tenant, map[string][]string{
		"Zhang":     {"138 1234 5678", "021-6234 5678"}, // mobile, Shanghai landline
		"Old Zhang": {"13812345678"},                    // same mobile, older contact
		"Li":        {"010-6552 9988"},                  // Beijing landline with trunk prefix
		"Brown":     {"07700 900123"},                   // a UK mobile typed as if Chinese
		"Nobody":    {"call me maybe"},                  // no digits: kept raw, flagged
		"Wu":        {"+86 139 0000 1111 转 8001"},       // with an extension
	}, []string{"Zhang", "Old Zhang", "Li", "Brown", "Nobody", "Wu"})
	customers(t, e, gb, map[string][]string{
		"London":  {"020 7946 0000"},
		"Mobile":  {"07700 900456"},
		"TooLong": {"+44 20 7946 00001"}, // one digit too many: no E.164, matched by stripped digits
		"NewYork": {"+1 212 555 0100"},
	}, []string{"London", "Mobile", "TooLong", "NewYork"})
	customers(t, e, us, map[string][]string{
		"Manhattan": {"(212) 555-0100"},
		"Beijing":   {"+86 138 1234 5678"},
	}, []string{"Manhattan", "Beijing"})

	cases := []struct {
		tenant *account.Tenant
		caller string
		reason string
		names  string // matched customers in rank order
	}{
		// China: mobile in every form a trunk or a person writes it
		{e.tenant, "+8613812345678", dataobject.ReasonExact, "Zhang,Old Zhang"},
		{e.tenant, "13812345678", dataobject.ReasonExact, "Zhang,Old Zhang"},
		{e.tenant, "013812345678", dataobject.ReasonExact, "Zhang,Old Zhang"},
		{e.tenant, "008613812345678", dataobject.ReasonExact, "Zhang,Old Zhang"},
		{e.tenant, "+86 138-1234-5678", dataobject.ReasonExact, "Zhang,Old Zhang"},
		{e.tenant, "8613812345678", dataobject.ReasonExact, "Zhang,Old Zhang"},
		{e.tenant, "sip:+8613812345678@pbx.example.com;user=phone", dataobject.ReasonExact, "Zhang,Old Zhang"},
		{e.tenant, "１３８１２３４５６７８", dataobject.ReasonExact, "Zhang,Old Zhang"},
		// China: landlines with and without area code and trunk prefix
		{e.tenant, "02162345678", dataobject.ReasonExact, "Zhang"},
		{e.tenant, "+86 21 6234 5678", dataobject.ReasonExact, "Zhang"},
		{e.tenant, "62345678", dataobject.ReasonLastDigits, "Zhang"},
		{e.tenant, "010 6552 9988", dataobject.ReasonExact, "Li"},
		{e.tenant, "(010)65529988", dataobject.ReasonExact, "Li"},
		{e.tenant, "+86-10-6552-9988", dataobject.ReasonExact, "Li"},
		// a foreign number typed nationally: same national number, other country code
		{e.tenant, "+44 7700 900123", dataobject.ReasonNational, "Brown"},
		{e.tenant, "0044 7700 900123", dataobject.ReasonNational, "Brown"},
		// a PBX outside-line prefix: only the last 8 digits agree
		{e.tenant, "913812345678", dataobject.ReasonLastDigits, "Zhang,Old Zhang"},
		// extensions are not part of the number
		{e.tenant, "13900001111", dataobject.ReasonExact, "Wu"},
		{e.tenant, "+86 139 0000 1111 ext 99", dataobject.ReasonExact, "Wu"},
		// withheld, garbage, unknown
		{e.tenant, "anonymous", dataobject.ReasonAnonymous, ""},
		{e.tenant, "", dataobject.ReasonAnonymous, ""},
		{e.tenant, "Withheld", dataobject.ReasonAnonymous, ""},
		{e.tenant, `"Anonymous" <sip:anonymous@anonymous.invalid>`, dataobject.ReasonAnonymous, ""},
		{e.tenant, "call me", dataobject.ReasonAnonymous, ""},
		{e.tenant, "13800000000", dataobject.ReasonNone, ""},
		{e.tenant, "12", dataobject.ReasonNone, ""},
		// Great Britain
		{gb, "+44 20 7946 0000", dataobject.ReasonExact, "London"},
		{gb, "02079460000", dataobject.ReasonExact, "London"},
		{gb, "0044 20 7946 0000", dataobject.ReasonExact, "London"},
		{gb, "+44 (0)20 7946 0000", dataobject.ReasonExact, "London"},
		{gb, "020-7946-0000 x12", dataobject.ReasonExact, "London"},
		{gb, "7946 0000", dataobject.ReasonLastDigits, "London"},
		{gb, "07700 900456", dataobject.ReasonExact, "Mobile"},
		{gb, "+447700900456", dataobject.ReasonExact, "Mobile"},
		{gb, "020 7946 00001", dataobject.ReasonStripped, "TooLong"},
		{gb, "001 212 555 0100", dataobject.ReasonExact, "NewYork"},
		{gb, "+1 (212) 555-0100", dataobject.ReasonExact, "NewYork"},
		{gb, "private", dataobject.ReasonAnonymous, ""},
		// United States
		{us, "2125550100", dataobject.ReasonExact, "Manhattan"},
		{us, "1-212-555-0100", dataobject.ReasonExact, "Manhattan"},
		{us, "+1 212 555 0100", dataobject.ReasonExact, "Manhattan"},
		{us, "212.555.0100", dataobject.ReasonExact, "Manhattan"},
		{us, "(212) 555-0100 ext. 7", dataobject.ReasonExact, "Manhattan"},
		{us, "011 86 138 1234 5678", dataobject.ReasonExact, "Beijing"},
		{us, "+8613812345678", dataobject.ReasonExact, "Beijing"},
		{us, "555-0100", dataobject.ReasonNone, ""},
		{us, "restricted", dataobject.ReasonAnonymous, ""},
	}
	for _, c := range cases {
		t.Run(c.tenant.Region+"/"+c.caller, func(t *testing.T) {
			res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, c.tenant, c.caller))
			var names []string
			for _, m := range res.Matches {
				names = append(names, fmt.Sprint(m.Record["name"]))
				if m.Object != "customer" || m.Field != "phones" || m.Number == "" {
					t.Errorf("match = %+v", m)
				}
			}
			if res.Reason != c.reason || strings.Join(names, ",") != c.names || res.Total != len(names) {
				t.Errorf("reason %s, matches %q (total %d); want %s, %q", res.Reason, names, res.Total, c.reason, c.names)
			}
			for _, m := range res.Matches {
				if m.Reason != c.reason {
					t.Errorf("match %v has reason %s", m.Record["name"], m.Reason)
				}
			}
		})
	}
}

func TestLookupLimitRankAndDeleted(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{LookupLimit: 3})
	ctx := context.Background()
	var ids []int64
	for i := range 5 {
		r := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{
			"name": fmt.Sprint("c", i), "phones": []string{"13812345678"}}, e.admin))
		ids = append(ids, r.ID)
	}
	weak := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "weak", "phones": "913812345678"}, e.admin))
	mustOK(t, e.store.TouchContact(ctx, e.tenant, "customer", weak.ID, time.Now().Add(time.Hour)))
	mustOK(t, e.store.TouchContact(ctx, e.tenant, "customer", ids[2], time.Now().Add(time.Minute)))
	mustOK(t, e.store.Delete(ctx, e.tenant, "customer", ids[4], e.admin))

	res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "13812345678"))
	if res.Total != 5 || len(res.Matches) != 3 {
		t.Fatalf("total %d, %d matches; want 5 (deleted one left out) and the limit of 3", res.Total, len(res.Matches))
	}
	// exact matches rank before the more recently contacted last-digits one; the most
	// recently contacted exact match comes first.
	if res.Matches[0].RecordID != ids[2] || res.Matches[0].Rank != 1 {
		t.Fatalf("first match = %+v, want record %d", res.Matches[0], ids[2])
	}
	res = must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "7713812345678"))
	if res.Reason != dataobject.ReasonLastDigits || res.Total != 5 {
		t.Fatalf("last-digits lookup: %s, total %d", res.Reason, res.Total)
	}

	// editing a phone moves its match keys
	must[*dataobject.Record](t)(e.store.Update(ctx, e.tenant, "customer", weak.ID, map[string]any{"phones": "+86 10 6552 9988"}, e.admin))
	if res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "01065529988")); res.Total != 1 || res.Matches[0].RecordID != weak.ID {
		t.Fatalf("after edit: %+v", res)
	}
}

// TestLookupUsesIndexes proves the plan on a table large enough for PostgreSQL to choose freely.
func TestLookupUsesIndexes(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	mustOK(t, db.InTenant(ctx, e.pool, e.tenant.Scope(), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO phone_keys (object_id, field_id, record_id, raw, e164, national, stripped, rev_digits, valid, active, contact_at)
			SELECT 1, 2, g, n, '+86' || n, n, n, reverse(n), true, true, now()
			FROM generate_series(1, 30000) g, LATERAL (SELECT (13800000000 + g * 7919)::text AS n) x;
			ANALYZE phone_keys`)
		return err
	}))
	for _, caller := range []string{"13812345678", "+44 7700 900123", "913812345678", "020 7946 00001"} {
		plan := must[string](t)(e.store.ExplainLookup(ctx, e.tenant, caller, false))
		if strings.Contains(plan, "Seq Scan") || !strings.Contains(plan, "phone_keys_national") || !strings.Contains(plan, "phone_keys_tail") {
			t.Errorf("plan for %q scans:\n%s", caller, plan)
		}
	}
	// That plan is the one lookups run: after the first five calls (planned for their
	// values), a connection runs its generic plan rather than planning each lookup again.
	cfg := must[*pgxpool.Config](t)(pgxpool.ParseConfig(e.url))
	cfg.MaxConns = 1
	one := must[*pgxpool.Pool](t)(pgxpool.NewWithConfig(ctx, cfg))
	defer one.Close()
	store := dataobject.New(one, nil, nil, dataobject.Options{})
	for i := range 20 {
		must[*dataobject.LookupResult](t)(store.Lookup(ctx, e.tenant, fmt.Sprintf("138%08d", 12345678+i)))
	}
	var version int
	mustOK(t, one.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version))
	if version < 140000 {
		t.Logf("PostgreSQL %d does not count generic plans (14 does)", version)
		return
	}
	var generic, custom int64
	mustOK(t, one.QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'WITH best AS%'`).Scan(&generic, &custom))
	if generic != 15 || custom != 5 {
		t.Errorf("lookups ran %d generic and %d custom plans, want 15 and 5", generic, custom)
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		raw, region            string
		e164, national, digits string
		valid, anonymous       bool
	}{
		{"+86 138 1234 5678", "CN", "+8613812345678", "13812345678", "8613812345678", true, false},
		{"0138-1234-5678", "CN", "+8613812345678", "13812345678", "013812345678", true, false},
		{"138 1234 567", "CN", "+861381234567", "1381234567", "1381234567", false, false}, // a digit short: flagged, still keyed
		{"call me maybe", "CN", "", "", "", false, true},
		{"1234567890123456789012345", "CN", "", "", "1234567890123456789012345", false, false},
		{"+44 20 7946 0000 ext. 12", "GB", "+442079460000", "2079460000", "442079460000", true, false},
		{"(212) 555-0100", "US", "+12125550100", "2125550100", "2125550100", true, false},
	}
	for _, c := range cases {
		p := dataobject.Normalize(c.raw, c.region)
		if p.E164 != c.e164 || p.National != c.national || p.Digits != c.digits || p.Valid != c.valid || p.Anonymous != c.anonymous || p.Raw != c.raw {
			t.Errorf("Normalize(%q, %s) = %+v", c.raw, c.region, p)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+86 138 1234 5678", "0044 (0)20 7946 0000 x12", "sip:anonymous@x", "<sip:+1212@x;ext=9>", "１３８", "转8001", "+", "00", "011", "\x00", "tel:;"} {
		f.Add(s, "CN")
		f.Add(s, "US")
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		p := dataobject.Normalize(raw, region)
		if p.E164 != "" && !strings.HasPrefix(p.E164, "+") {
			t.Fatalf("E164 %q without +", p.E164)
		}
		for _, k := range []string{p.Digits, p.Stripped, p.National} {
			if strings.Trim(k, "0123456789") != "" {
				t.Fatalf("key %q holds non-digits (raw %q)", k, raw)
			}
		}
		if p.Anonymous && p.E164 != "" {
			t.Fatalf("anonymous number with E.164 %q", p.E164)
		}
		// Lookup relies on these to probe fewer indexes (see lookupSQL).
		if !strings.HasSuffix(p.Digits, p.Stripped) {
			t.Fatalf("stripped %q is not a suffix of digits %q (raw %q)", p.Stripped, p.Digits, raw)
		}
		if (p.E164 == "") != (p.National == "") || !strings.HasSuffix(p.E164, p.National) {
			t.Fatalf("E.164 %q does not end with national number %q (raw %q)", p.E164, p.National, raw)
		}
	})
}

// Lookup keeps the tenant's catalogue between calls; an object made since (here by another
// Store, as another process would) is still matched, with its key and record.
func TestLookupSeesNewObjects(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "Wang", "phones": "13812345678"}, e.admin))
	if res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "13812345678")); res.Total != 1 {
		t.Fatalf("first lookup: %+v", res)
	}
	other := dataobject.New(e.pool, nil, nil, dataobject.Options{})
	must[*dataobject.Object](t)(other.CreateObject(ctx, e.tenant, dataobject.NewObject{Key: "supplier", Kind: dataobject.KindBaseData,
		NameEN: "Suppliers", Fields: []dataobject.NewField{{Key: "title", Type: dataobject.TypeText, MaxLength: 50},
			{Key: "hotline", Type: dataobject.TypePhone, MatchCaller: true}}}, e.admin))
	must[*dataobject.Record](t)(other.Create(ctx, e.tenant, "supplier", map[string]any{"title": "Acme Parts", "hotline": "+86 138 1234 5678"}, e.admin))
	res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "13812345678"))
	if res.Total != 2 {
		t.Fatalf("lookup after a new object: %+v", res)
	}
	found := false
	for _, m := range res.Matches {
		if m.Object == "supplier" {
			found = m.Field == "hotline" && m.Record["title"] == "Acme Parts" && m.Reason == dataobject.ReasonExact
		}
	}
	if !found {
		t.Fatalf("the supplier's match is missing or incomplete: %+v", res.Matches)
	}
}

// Lookup runs without a tenant-scoped transaction; each tenant still sees only its own
// records, whichever tenant's catalogue the Store read first.
func TestLookupStaysInItsTenant(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	beta := must[*account.Tenant](t)(e.accounts.CreateTenant(ctx, account.NewTenant{Code: "beta", Name: "Beta", Region: "CN"}, account.CLI))
	must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "Acme's", "phones": "13812345678"}, e.admin))
	must[*dataobject.Record](t)(e.store.Create(ctx, beta, "customer", map[string]any{"name": "Beta's", "phones": "13812345678"}, e.admin))
	for range 2 {
		for _, c := range []struct {
			t    *account.Tenant
			name string
		}{{e.tenant, "Acme's"}, {beta, "Beta's"}} {
			res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, c.t, "+86 138 1234 5678"))
			if res.Total != 1 || res.Matches[0].Record["name"] != c.name {
				t.Fatalf("lookup in %s: %+v", c.t.Code, res)
			}
		}
	}
}
