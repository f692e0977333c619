package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ctid/ctid/web/browsertest"
)

// run evaluates a script for its effect.
func run(script string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[any](script)(ctx, t)
		return chromedp.Void{}, err
	}
}

// A config admin defines an object with a field of every type in the browser; its generated
// edit form shows them in position order, three to a row, and saves a record.
func TestBrowserDefineObject(t *testing.T) {
	f, _ := newRecordsFixture(t)
	ctx := browsertest.New(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(f.srv.URL + "/login"),
		chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#tenant"), "acme"),
		chromedp.SendKeys(css("#username"), "cfg"),
		chromedp.SendKeys(css("#password"), "password-cfg"),
		chromedp.Click(css("#submit")),
		chromedp.WaitVisible(css("#welcome")),
		// a code table with a code, for the code field
		chromedp.Navigate(f.srv.URL + "/admin/code-tables"),
		chromedp.SendKeys(css(`#code-table-new input[name="key"]`), "topic"),
		chromedp.SendKeys(css(`#code-table-new input[name="name_en"]`), "Topics"),
		chromedp.SendKeys(css(`#code-table-new input[name="name_zh"]`), "主题"),
		chromedp.Click(css("#code-table-create")),
		chromedp.WaitVisible(css("#code-new")),
		chromedp.SendKeys(css(`#code-new input[name="code"]`), "billing"),
		chromedp.SendKeys(css(`#code-new input[name="label_en"]`), "Billing"),
		chromedp.SendKeys(css(`#code-new input[name="label_zh"]`), "账单"),
		chromedp.Click(css("#code-add")),
		chromedp.WaitVisible(css(`form[data-code="billing"]`)),
		// the object, three fields per row
		chromedp.Navigate(f.srv.URL + "/admin/objects"),
		chromedp.SendKeys(css(`#object-new input[name="key"]`), "ticket"),
		chromedp.SendKeys(css(`#object-new input[name="name_en"]`), "Tickets"),
		chromedp.SendKeys(css(`#object-new input[name="name_zh"]`), "工单票"),
		chromedp.SetValue(css(`#object-new select[name="edit_columns"]`), "3"),
		chromedp.Click(css(`#object-new input[name="audit"]`)),
		chromedp.Click(css("#object-create")),
		chromedp.WaitVisible(css("#field-new")),
	}
	// Every type, each with its own option; the text field comes last but is placed first.
	type field struct {
		key, typ string
		pos      int
		extra    []chromedp.Action[chromedp.Void]
	}
	fields := []field{
		{"details", "long_text", 20, nil},
		{"count", "integer", 30, nil},
		{"amount", "decimal", 40, nil},
		{"due", "date", 50, nil},
		{"happened", "datetime", 60, nil},
		{"urgent", "boolean", 70, nil},
		{"callback", "phone", 80, []chromedp.Action[chromedp.Void]{chromedp.Click(css(`#field-new input[name="match_caller"]`))}},
		{"email", "email", 90, nil},
		{"topic", "code", 100, []chromedp.Action[chromedp.Void]{chromedp.SetValue(css(`#field-new select[name="code_table"]`), "topic")}},
		{"customer", "reference", 110, []chromedp.Action[chromedp.Void]{chromedp.SetValue(css(`#field-new select[name="ref_object"]`), "customer")}},
		{"subject", "text", 10, []chromedp.Action[chromedp.Void]{chromedp.SendKeys(css(`#field-new input[name="max_length"]`), "80"),
			chromedp.Click(css(`#field-new input[name="required"]`))}},
	}
	for _, fl := range fields {
		steps = append(steps,
			chromedp.SendKeys(css(`#field-new input[name="key"]`), fl.key),
			chromedp.SetValue(css("#field-type"), fl.typ),
			run(`document.getElementById("field-type").dispatchEvent(new Event("change"))`),
			chromedp.SendKeys(css(`#field-new input[name="label_en"]`), "F "+fl.key),
			chromedp.SendKeys(css(`#field-new input[name="label_zh"]`), "字段"+fl.key),
			chromedp.SendKeys(css(`#field-new input[name="position"]`), fmt.Sprint(fl.pos)),
		)
		steps = append(steps, fl.extra...)
		steps = append(steps, chromedp.Click(css("#field-add")), chromedp.WaitVisible(css(`#fields tr[data-key="`+fl.key+`"]`)))
	}
	steps = append(steps, chromedp.Navigate(f.srv.URL+"/records/ticket/new"), chromedp.WaitVisible(css("#record-form")))
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}

	// The form: rows of three, fields in position order, side by side on screen.
	type cell struct {
		Name string  `json:"name"`
		Top  float64 `json:"top"`
		Left float64 `json:"left"`
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]cell](`[...document.querySelectorAll("#record-form div.grid")].map(row =>
		[...row.querySelectorAll("input[name], textarea[name], select[name]")].map(el => {
			const r = el.getBoundingClientRect();
			return {name: el.name, top: Math.round(r.top), left: Math.round(r.left)};
		}))`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, row := range rows {
		want := 3
		if i == len(rows)-1 {
			want = 2
		}
		if len(row) != want {
			t.Fatalf("row %d has %d fields, want %d: %+v", i+1, len(row), want, rows)
		}
		for j, c := range row {
			names = append(names, c.Name)
			if j > 0 && (c.Left <= row[j-1].Left || abs(c.Top-row[0].Top) > 40) {
				t.Errorf("row %d: %s is not beside %s on screen: %+v", i+1, c.Name, row[j-1].Name, row)
			}
		}
	}
	want := "subject details count amount due happened urgent callback email topic customer"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("form fields in order %q, want %q", got, want)
	}

	// A record saves and shows what was entered.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(css(`#record-form input[name="subject"]`), "Refund"),
		chromedp.SendKeys(css(`#record-form textarea[name="details"]`), "charged twice"),
		chromedp.SendKeys(css(`#record-form input[name="count"]`), "2"),
		chromedp.SendKeys(css(`#record-form input[name="amount"]`), "19.90"),
		chromedp.SetValue(css(`#record-form input[name="due"]`), "2026-03-01"),
		chromedp.SetValue(css(`#record-form input[name="happened"]`), "2026-02-27T10:30"),
		chromedp.Click(css(`#record-form input[name="urgent"]`)),
		chromedp.SendKeys(css(`#record-form input[name="callback"]`), "13812345678"),
		chromedp.SendKeys(css(`#record-form input[name="email"]`), "li@example.com"),
		chromedp.SetValue(css(`#record-form select[name="topic"]`), "billing"),
		chromedp.Click(css(`#record-form button[type="submit"]`)),
		chromedp.WaitVisible(css("#notice")),
	)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"subject": "Refund", "amount": "19.90", "due": "2026-03-01", "email": "li@example.com", "topic": "billing"} {
		got, err := chromedp.Run(ctx, chromedp.Value(css(`#record-form [name="`+name+`"]`)))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("saved %s = %q, want %q", name, got, want)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
