package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/db"
)

// post sends a form from page (whose CSRF token it takes) and returns status, Location and body.
func (b *browser) post(page, path string, form url.Values) (int, string, string) {
	b.t.Helper()
	form.Set("csrf_token", csrfOf(b.t, page))
	code, h, body := b.do("POST", path, form, nil)
	return code, h.Get("Location"), body
}

func (b *browser) get(path string) string {
	b.t.Helper()
	code, _, body := b.do("GET", path, nil, nil)
	if code != http.StatusOK {
		b.t.Fatalf("GET %s: %d\n%s", path, code, body)
	}
	return body
}

// tableExists says whether acme's schema has table name.
func tableExists(t *testing.T, f *fixture, name string) bool {
	t.Helper()
	var exists bool
	err := db.InTenant(context.Background(), f.pool, db.Scope{Schema: "t_acme"}, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{name}.Sanitize()).Scan(&exists)
	})
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestObjectAdminPages(t *testing.T) {
	f, _ := newRecordsFixture(t)
	b := f.browser(t)
	b.mustLogin("acme", "cfg", "password-cfg")
	page := b.get("/admin/objects")
	if !strings.Contains(page, `data-key="customer"`) || !strings.Contains(page, "obj_customer") {
		t.Fatalf("catalogue lacks the customer object:\n%s", page)
	}

	t.Run("bad keys are refused in the form and change nothing", func(t *testing.T) {
		for _, key := range []string{`name"; drop table x; --`, "Complaint", "x", "customer"} {
			code, _, body := b.post(page, "/admin/objects", url.Values{"key": {key}, "kind": {"base_data"}, "name_en": {"X"}, "edit_columns": {"2"}})
			if code != http.StatusBadRequest && code != http.StatusConflict || !strings.Contains(body, `id="error"`) {
				t.Fatalf("key %q: %d\n%s", key, code, body)
			}
			if !strings.Contains(body, `value="`+strings.ReplaceAll(key, `"`, "&#34;")+`"`) {
				t.Errorf("key %q: the form lost what was typed", key)
			}
		}
		code, _, body := b.post(page, "/admin/objects", url.Values{"key": {"widget"}, "kind": {"base_data"}, "name_en": {"W"}, "edit_columns": {"4"}})
		if code != http.StatusBadRequest || !strings.Contains(body, "edit-page columns must be 1, 2 or 3") {
			t.Fatalf("4 columns: %d", code)
		}
		if tableExists(t, f, "obj_widget") || tableExists(t, f, "obj_x") {
			t.Fatal("a refused object left a table")
		}
	})

	code, loc, body := b.post(page, "/admin/objects", url.Values{"key": {"complaint"}, "kind": {"base_data"}, "name_en": {"Complaints"},
		"name_zh": {"投诉"}, "edit_columns": {"3"}, "save_mode": {"once"}, "audit": {"1"}})
	if code != http.StatusSeeOther || loc != "/admin/objects/complaint?saved=1" {
		t.Fatalf("create: %d %q\n%s", code, loc, body)
	}
	page = b.get(loc)
	for _, want := range []string{`data-column="id"`, `data-column="created_at"`, `data-column="updated_by"`, `<option value="3" selected>`, "objects.saved"} {
		if want == "objects.saved" {
			want = `id="notice"`
		}
		if !strings.Contains(page, want) {
			t.Errorf("object page lacks %s", want)
		}
	}

	t.Run("fields: bad ones refused, every type added, the table follows", func(t *testing.T) {
		code, _, body := b.post(page, "/admin/objects/complaint/fields", url.Values{"key": {`name"; drop table x; --`}, "type": {"text"}})
		if code != http.StatusBadRequest || !strings.Contains(body, "is not valid") {
			t.Fatalf("bad field key: %d", code)
		}
		code, _, body = b.post(page, "/admin/objects/complaint/fields", url.Values{"key": {"reason"}, "type": {"code"}})
		if code != http.StatusBadRequest || !strings.Contains(body, "code table") || !strings.Contains(body, `value="reason"`) {
			t.Fatalf("code field without a table: %d\n%s", code, body)
		}
		// a label may say anything: it is a value, never SQL
		code, _, body = b.post(page, "/admin/objects/complaint/fields", url.Values{"key": {"subject"}, "type": {"text"},
			"label_en": {`name"; drop table x; --`}, "label_zh": {"主题"}, "max_length": {"50"}, "required": {"1"}, "in_list": {"1"},
			"code_table": {"ignored for text"}})
		if code != http.StatusSeeOther {
			t.Fatalf("text field: %d\n%s", code, body)
		}
		for _, fl := range []url.Values{
			{"key": {"details"}, "type": {"long_text"}},
			{"key": {"amount"}, "type": {"decimal"}, "default": {"0"}},
			{"key": {"callback"}, "type": {"phone"}, "match_caller": {"1"}},
			{"key": {"customer_id"}, "type": {"reference"}, "ref_object": {"customer"}},
			{"key": {"level"}, "type": {"code"}, "code_table": {"customer_level"}, "multi": {"1"}},
		} {
			if code, _, body := b.post(page, "/admin/objects/complaint/fields", fl); code != http.StatusSeeOther {
				t.Fatalf("field %v: %d\n%s", fl, code, body)
			}
		}
		page = b.get("/admin/objects/complaint")
		for _, want := range []string{
			`<tr data-column="subject"><td><code>subject</code></td><td>character varying(50)</td>`,
			`<tr data-column="details"><td><code>details</code></td><td>text</td>`,
			`<tr data-column="amount"><td><code>amount</code></td><td>numeric</td>`,
			`<tr data-column="customer_id"><td><code>customer_id</code></td><td>bigint</td>`,
			`<tr data-column="level"><td><code>level</code></td><td>text[]</td>`,
			`name&#34;; drop table x; --`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("object page lacks %s", want)
			}
		}
	})

	t.Run("hide and rename name the saved queries that use the field", func(t *testing.T) {
		err := db.InTenant(context.Background(), f.pool, db.Scope{Schema: "t_acme"}, func(tx pgx.Tx) error {
			_, err := tx.Exec(context.Background(), `INSERT INTO queries (key, definition) VALUES ('vip_levels', $1)`,
				`{"key": "vip_levels", "title": {"en": "VIP levels"}, "source": {"sql": "SELECT level FROM obj_customer"}}`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		fp := b.get("/admin/objects/customer/fields/level")
		if !strings.Contains(fp, `<a href="/queries/vip_levels">vip_levels</a>`) {
			t.Fatalf("field page does not say which queries use it:\n%s", fp)
		}
		code, _, body := b.post(fp, "/admin/objects/customer/fields/level/hide", url.Values{})
		if code != http.StatusConflict || !strings.Contains(body, "vip_levels") {
			t.Fatalf("hide a used field: %d", code)
		}
		if code, loc, _ := b.post(fp, "/admin/objects/customer/fields/level/hide", url.Values{"force": {"1"}}); code != http.StatusSeeOther {
			t.Fatalf("forced hide: %d %s", code, loc)
		}
		if fp = b.get("/admin/objects/customer/fields/level"); !strings.Contains(fp, `id="field-unhide"`) {
			t.Fatal("hidden field offers no way back")
		}
		if code, _, _ := b.post(fp, "/admin/objects/customer/fields/level/unhide", url.Values{}); code != http.StatusSeeOther {
			t.Fatalf("unhide: %d", code)
		}
		fp = b.get("/admin/objects/complaint/fields/details")
		code, loc, _ := b.post(fp, "/admin/objects/complaint/fields/details/rename", url.Values{"key": {"description"}})
		if code != http.StatusSeeOther || loc != "/admin/objects/complaint/fields/description?saved=1" {
			t.Fatalf("rename: %d %s", code, loc)
		}
		if !strings.Contains(b.get("/admin/objects/complaint"), `data-column="description"`) {
			t.Fatal("the column was not renamed")
		}
		code, _, body = b.post(fp, "/admin/objects/complaint/fields/description/rename", url.Values{"key": {"id"}})
		if code != http.StatusBadRequest || !strings.Contains(body, "reserved") {
			t.Fatalf("rename to a system column: %d", code)
		}
		code, loc, _ = b.post(fp, "/admin/objects/complaint/fields/subject", url.Values{"label_en": {"Subject"}, "label_zh": {"主题"},
			"max_length": {"80"}, "position": {"5"}, "required": {"1"}, "in_list": {"1"}, "searchable": {"1"}})
		if code != http.StatusSeeOther || !strings.Contains(b.get("/admin/objects/complaint"), "character varying(80)") {
			t.Fatalf("update field: %d %s", code, loc)
		}
	})
}

func TestCodeTablePages(t *testing.T) {
	f, _ := newRecordsFixture(t)
	b := f.browser(t)
	b.mustLogin("acme", "cfg", "password-cfg")
	page := b.get("/admin/code-tables")
	if code, _, body := b.post(page, "/admin/code-tables", url.Values{"key": {"Region!"}, "name_en": {"Regions"}}); code != http.StatusBadRequest || !strings.Contains(body, "is not valid") {
		t.Fatalf("bad key: %d", code)
	}
	code, loc, _ := b.post(page, "/admin/code-tables", url.Values{"key": {"region"}, "name_en": {"Regions"}, "name_zh": {"地区"}})
	if code != http.StatusSeeOther || loc != "/admin/code-tables/region?saved=1" {
		t.Fatalf("create: %d %s", code, loc)
	}
	page = b.get(loc)
	for _, c := range []url.Values{
		{"code": {"sh"}, "label_en": {"Shanghai"}, "label_zh": {"上海"}, "position": {"2"}, "enabled": {"1"}},
		{"code": {"bj"}, "label_en": {"Beijing"}, "label_zh": {"北京"}, "position": {"1"}, "enabled": {"1"}},
		{"code": {"sh-pd"}, "label_en": {"Pudong"}, "label_zh": {"浦东"}, "parent": {"sh"}, "enabled": {"1"}},
	} {
		if code, _, body := b.post(page, "/admin/code-tables/region/codes", c); code != http.StatusSeeOther {
			t.Fatalf("code %v: %d\n%s", c, code, body)
		}
	}
	code, _, body := b.post(page, "/admin/code-tables/region/codes", url.Values{"code": {"pd-x"}, "label_en": {"X"}, "parent": {"sh-pd"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "two levels") || !strings.Contains(body, `value="pd-x"`) {
		t.Fatalf("third level: %d", code)
	}
	// disable a code from its row
	if code, _, _ := b.post(page, "/admin/code-tables/region/codes", url.Values{"code": {"bj"}, "label_en": {"Beijing"}, "label_zh": {"北京"}, "position": {"1"}}); code != http.StatusSeeOther {
		t.Fatalf("disable: %d", code)
	}
	page = b.get("/admin/code-tables/region")
	bj, sh, pd := strings.Index(page, `data-code="bj"`), strings.Index(page, `data-code="sh"`), strings.Index(page, `data-code="sh-pd"`)
	if bj < 0 || !(bj < sh && sh < pd) {
		t.Fatalf("codes not in order bj, sh, sh-pd (%d %d %d)", bj, sh, pd)
	}
	if !strings.Contains(page, `code-row muted" data-code="bj"`) || !strings.Contains(page, `code-row child" data-code="sh-pd"`) {
		t.Fatalf("disabled or child code not marked:\n%s", page)
	}
	if !strings.Contains(b.get("/admin/code-tables"), `<td>3</td>`) {
		t.Fatal("code table list lacks the count of codes")
	}
}

// An agent, a QA checker (and anyone without the configure permission) gets 403 on every
// admin page, reading or writing.
func TestObjectAdminForbidden(t *testing.T) {
	f, _ := newRecordsFixture(t)
	for _, user := range []string{"a1", "qa1"} {
		b := f.browser(t)
		home := b.mustLogin("acme", user, "password-"+user)
		if strings.Contains(home, `href="/admin/objects"`) {
			t.Errorf("%s sees the data-object admin link", user)
		}
		for _, path := range []string{"/admin/objects", "/admin/objects/customer", "/admin/objects/customer/fields/name", "/admin/code-tables", "/admin/code-tables/customer_level"} {
			if code, _, _ := b.do("GET", path, nil, nil); code != http.StatusForbidden {
				t.Errorf("%s GET %s: %d, want 403", user, path, code)
			}
		}
		for _, path := range []string{"/admin/objects", "/admin/objects/customer", "/admin/objects/customer/fields", "/admin/objects/customer/fields/name/hide",
			"/admin/objects/customer/fields/name/rename", "/admin/code-tables", "/admin/code-tables/customer_level/codes"} {
			if code, _, _ := b.post(home, path, url.Values{"key": {"zz_x"}, "type": {"text"}, "kind": {"base_data"}, "name_en": {"X"}, "code": {"x"}, "label_en": {"X"}}); code != http.StatusForbidden {
				t.Errorf("%s POST %s: %d, want 403", user, path, code)
			}
		}
	}
	if tableExists(t, f, "obj_zz_x") {
		t.Fatal("a forbidden request created an object")
	}
}
