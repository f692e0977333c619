package dataobject_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

func countCustomers(tb testing.TB, e *env) int {
	tb.Helper()
	_, total := must2(tb)(e.store.List(context.Background(), e.tenant, "customer", dataobject.ListQuery{PerPage: 1}))
	return total
}

const badCSV = "\ufeffName,电话,Company,客户级别,E-mail\n" +
	"Wang,13812345678,Acme,gold,wang@example.com\n" +
	",13900000001,NoName Ltd,,\n" + // row 3: name missing
	"Li,13900000002,,platinum,li@example\n" + // row 4: unknown level, bad e-mail
	"Zhao,138-1234-5678,,VIP,\n" + // row 5: same phone as row 2; level by its English label
	"Qian,13700000000,,,\n" + // row 6: phone of an existing customer
	"Sun,13600000000; 010-65529988,,贵宾,\n" // row 7: good, two phones, level by Chinese label

func TestImportAllOrNothing(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	existing := must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", map[string]any{"name": "Old", "phones": "13700000000"}, e.admin))
	before := countCustomers(t, e)
	rep, err := e.store.Import(ctx, e.tenant, strings.NewReader(badCSV), dataobject.ImportOptions{Object: "customer", Format: "csv", Actor: e.admin})
	if fault.CodeOf(err) != fault.Invalid || rep == nil || rep.Committed {
		t.Fatalf("err = %v, report = %+v", err, rep)
	}
	if n := countCustomers(t, e); n != before {
		t.Fatalf("%d customers after a refused import, want %d", n, before)
	}
	var got []string
	for _, re := range rep.Errors {
		got = append(got, re.String())
	}
	want := []string{
		"row 3, column Name: is required",
		`row 4, column 客户级别: "platinum" is not an enabled code of "customer_level"`,
		`row 4, column E-mail: "li@example" is not an e-mail address`,
		"row 5, column 电话: phone 138-1234-5678 is also in row 2",
		fmt.Sprintf("row 6, column 电话: phone 13700000000 already belongs to customer record %d", existing.ID),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Rows != 6 || rep.Rejected != 4 || rep.Imported != 0 {
		t.Fatalf("report = %+v", rep)
	}

	t.Run("skip bad rows, rejects file", func(t *testing.T) {
		var rejects bytes.Buffer
		var progressed bool
		rep := must[*dataobject.ImportReport](t)(e.store.Import(ctx, e.tenant, strings.NewReader(badCSV), dataobject.ImportOptions{
			Object: "customer", Format: "csv", SkipBad: true, Rejects: &rejects, Actor: e.admin,
			Progress: func(p dataobject.Progress) { progressed = progressed || p.Done && p.Rows == 6 }}))
		if rep.Imported != 2 || rep.Rejected != 4 || !rep.Committed || !progressed {
			t.Fatalf("report = %+v, final progress seen %v", rep, progressed)
		}
		recs := must[[][]string](t)(csv.NewReader(&rejects).ReadAll())
		if len(recs) != 5 || recs[0][len(recs[0])-1] != "problem" || recs[2][0] != "Li" || !strings.Contains(recs[2][5], "e-mail") {
			t.Fatalf("rejects = %q", recs)
		}
		res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "01065529988"))
		if res.Total != 1 || res.Matches[0].Record["name"] != "Sun" || res.Matches[0].Record["level"] != "vip" {
			t.Fatalf("imported Sun: %+v", res)
		}
	})
	t.Run("update existing records on duplicate phones", func(t *testing.T) {
		in := "name,phones,company\nOld renamed,+86 137 0000 0000,New Co\nFresh,13500000000,\n"
		rep := must[*dataobject.ImportReport](t)(e.store.Import(ctx, e.tenant, strings.NewReader(in), dataobject.ImportOptions{
			Object: "customer", Format: "csv", Duplicates: dataobject.DuplicateUpdate, Actor: e.admin}))
		if rep.Updated != 1 || rep.Imported != 1 {
			t.Fatalf("report = %+v", rep)
		}
		r := must[*dataobject.Record](t)(e.store.Get(ctx, e.tenant, "customer", existing.ID))
		if r.Values["name"] != "Old renamed" || r.Values["company"] != "New Co" {
			t.Fatalf("updated record = %v", r.Values)
		}
		h := must[[]dataobject.HistoryEntry](t)(e.store.History(ctx, e.tenant, "customer", existing.ID))
		if len(h) != 2 || h[0].Action != "update" {
			t.Fatalf("history = %+v", h)
		}
	})
	t.Run("header problems", func(t *testing.T) {
		for in, want := range map[string]string{
			"":                          "empty",
			"name,shoe size\nx,42\n":    `column "shoe size" matches no field`,
			"company\nx\n":              `required field "name"`,
			"name,Name,phones\na,b,1\n": `both field "name"`,
			"name\n\"abc\"x\n":          "row 2: the file is not valid CSV",
		} {
			_, err := e.store.Import(ctx, e.tenant, strings.NewReader(in), dataobject.ImportOptions{Object: "customer", Format: "csv"})
			if fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), want) {
				t.Errorf("import %q: %v, want Invalid with %q", in, err, want)
			}
		}
	})
}

func TestImportLargeCSV(t *testing.T) {
	if testing.Short() {
		t.Skip("100k-row import skipped in -short mode")
	}
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	// 100k rows; under the race detector 20k (four chunks, so the pipeline's concurrency
	// is still checked): make test also runs this test without -race, at full size.
	n := 100_000
	if raceDetector {
		n = 20_000
	}
	path := filepath.Join(t.TempDir(), "customers.csv")
	mustOK(t, writeCustomersCSV(path, n, 0))
	var last dataobject.Progress
	rep := must[*dataobject.ImportReport](t)(e.store.ImportFile(ctx, e.tenant, path, dataobject.ImportOptions{
		Object: "customer", Progress: func(p dataobject.Progress) { last = p }}))
	if rep.Imported != n || rep.Rejected != 0 || countCustomers(t, e) != n {
		t.Fatalf("report = %+v, %d customers", rep, countCustomers(t, e))
	}
	if !last.Done || last.Rows != n || last.Total != n {
		t.Fatalf("last progress = %+v", last)
	}
	res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "+86 139 0001 2345"))
	if res.Total != 1 || res.Matches[0].Record["name"] != "Customer 12345" {
		t.Fatalf("lookup after import: %+v", res)
	}
	t.Logf("imported %d rows in %s (%.0f rows/s)", n, rep.Elapsed, float64(n)/rep.Elapsed.Seconds())
}

// writeCustomersCSV writes n customers, each with a mobile and a landline, numbered from first.
func writeCustomersCSV(path string, n, first int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	levels := []string{"normal", "silver", "gold", "vip"}
	_ = w.Write([]string{"name", "phones", "company", "email", "level"})
	for i := first; i < first+n; i++ {
		_ = w.Write([]string{fmt.Sprintf("Customer %d", i), fmt.Sprintf("139%08d; 010-6%07d", i, i),
			fmt.Sprintf("Company %d", i%1000), fmt.Sprintf("c%d@example.com", i), levels[i%4]})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func TestExportImportRoundTrip(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	in := map[string]map[string]any{
		"王小明":   {"phones": []string{"13812345678", "021-62345678"}, "company": "上海公司", "email": "w@example.cn", "level": "gold", "notes": "多行\n备注"},
		"Smith": {"phones": []string{"+44 20 7946 0000"}, "company": `Quote "Ltd", Comma`, "level": "normal"},
	}
	for name, v := range in {
		v["name"] = name
		must[*dataobject.Record](t)(e.store.Create(ctx, e.tenant, "customer", v, e.admin))
	}
	for _, format := range []string{"xlsx", "csv"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			mustOK(t, e.store.Export(ctx, e.tenant, "customer", dataobject.ListQuery{}, format, "zh-CN", &buf))
			other := newEnv(t, "CN", dataobject.Options{})
			rep := must[*dataobject.ImportReport](t)(other.store.Import(ctx, other.tenant, &buf, dataobject.ImportOptions{Object: "customer", Format: format}))
			if rep.Imported != 2 {
				t.Fatalf("report = %+v", rep)
			}
			items, _ := must2(t)(other.store.List(ctx, other.tenant, "customer", dataobject.ListQuery{}))
			for _, r := range items {
				want := in[fmt.Sprint(r.Values["name"])]
				for k, v := range want {
					if !equalValue(r.Values[k], v) {
						t.Errorf("%v: %s = %#v, want %#v", r.Values["name"], k, r.Values[k], v)
					}
				}
			}
		})
	}
	t.Run("export follows the search", func(t *testing.T) {
		var buf bytes.Buffer
		mustOK(t, e.store.Export(ctx, e.tenant, "customer", dataobject.ListQuery{Search: "smith"}, "csv", "en", &buf))
		recs := must[[][]string](t)(csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), "\ufeff"))).ReadAll())
		if len(recs) != 2 || recs[0][1] != "Name" || recs[1][1] != "Smith" {
			t.Fatalf("export = %q", recs)
		}
	})
}

// An import of several chunks stops at a row the CSV reader cannot read, after earlier
// chunks were copied, and nothing stays; a duplicate spread across chunks is found too.
func TestImportAcrossChunks(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	var b strings.Builder
	b.WriteString("name,phones\n")
	const good = 12_000 // more than two chunks
	for i := range good {
		fmt.Fprintf(&b, "C%d,139%08d\n", i, i)
	}
	dup := b.String() + "Late,+86 139 0000 0007\n" // row good+2: row 9's number
	rep, err := e.store.Import(ctx, e.tenant, strings.NewReader(dup), dataobject.ImportOptions{Object: "customer", Format: "csv"})
	if fault.CodeOf(err) != fault.Invalid || rep.Committed || rep.Rows != good+1 || rep.Rejected != 1 || countCustomers(t, e) != 0 {
		t.Fatalf("duplicate across chunks: err = %v, report = %+v, %d customers", err, rep, countCustomers(t, e))
	}
	if got, want := rep.Errors[0].String(), fmt.Sprintf("row %d, column phones: phone +86 139 0000 0007 is also in row 9", good+2); got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
	broken := b.String() + "Bad,\"139 unterminated\n"
	_, err = e.store.Import(ctx, e.tenant, strings.NewReader(broken), dataobject.ImportOptions{Object: "customer", Format: "csv"})
	if fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), fmt.Sprintf("row %d: the file is not valid CSV", good+2)) {
		t.Fatalf("broken CSV: %v", err)
	}
	if n := countCustomers(t, e); n != 0 {
		t.Fatalf("%d customers after a failed import", n)
	}
	rep = must[*dataobject.ImportReport](t)(e.store.Import(ctx, e.tenant, strings.NewReader(b.String()), dataobject.ImportOptions{Object: "customer", Format: "csv"}))
	if rep.Imported != good || countCustomers(t, e) != good {
		t.Fatalf("report = %+v, %d customers", rep, countCustomers(t, e))
	}
	// A second file: its rows in the second chunk are checked against the records too.
	var more strings.Builder
	more.WriteString("name,phones\n")
	for i := range 6000 {
		fmt.Fprintf(&more, "D%d,137%08d\n", i, i)
	}
	more.WriteString("Again,0086 139 0000 5555\n") // row 6002: customer C5555's number
	rep, err = e.store.Import(ctx, e.tenant, strings.NewReader(more.String()), dataobject.ImportOptions{Object: "customer", Format: "csv"})
	if fault.CodeOf(err) != fault.Invalid || rep.Rejected != 1 || countCustomers(t, e) != good ||
		!strings.HasPrefix(rep.Errors[0].String(), "row 6002, column phones: phone 0086 139 0000 5555 already belongs to customer record") {
		t.Fatalf("existing number in a later chunk: err = %v, report = %+v", err, rep)
	}
}

// An XLSX import reports its total rows (and so an ETA) from the start, as a CSV import
// does: from the sheet's dimension as Excel writes it, or by counting the rows of a sheet
// without one (excelize's stream writer, which ctid's export uses, leaves it "A1").
func TestImportXLSXProgressTotal(t *testing.T) {
	const n = 6000 // two chunks: a progress report comes before the end
	for _, dimension := range []bool{true, false} {
		t.Run(fmt.Sprintf("dimension %v", dimension), func(t *testing.T) {
			e := newEnv(t, "CN", dataobject.Options{})
			f := excelize.NewFile()
			defer f.Close()
			sheet := f.GetSheetName(0)
			header := []any{"name", "phones"}
			if dimension {
				mustOK(t, f.SetSheetRow(sheet, "A1", &header))
				for i := range n {
					mustOK(t, f.SetSheetRow(sheet, fmt.Sprintf("A%d", i+2), &[]any{fmt.Sprintf("X%d", i), fmt.Sprintf("139%08d", i)}))
				}
			} else {
				sw := must[*excelize.StreamWriter](t)(f.NewStreamWriter(sheet))
				mustOK(t, sw.SetRow("A1", header))
				for i := range n {
					mustOK(t, sw.SetRow(fmt.Sprintf("A%d", i+2), []any{fmt.Sprintf("X%d", i), fmt.Sprintf("139%08d", i)}))
				}
				mustOK(t, sw.Flush())
			}
			path := filepath.Join(t.TempDir(), "customers.xlsx")
			mustOK(t, f.SaveAs(path))
			var seen []dataobject.Progress
			rep := must[*dataobject.ImportReport](t)(e.store.ImportFile(context.Background(), e.tenant, path, dataobject.ImportOptions{
				Object: "customer", Progress: func(p dataobject.Progress) { seen = append(seen, p) }}))
			if rep.Imported != n || len(seen) < 2 {
				t.Fatalf("report = %+v, %d progress reports", rep, len(seen))
			}
			first, last := seen[0], seen[len(seen)-1]
			if first.Done || first.Rows != 5000 || first.Total != n || first.ETA() <= 0 {
				t.Errorf("first progress = %+v (ETA %s), want 5000 of %d rows with an ETA", first, first.ETA(), n)
			}
			if !last.Done || last.Rows != n || last.Total != n {
				t.Errorf("last progress = %+v", last)
			}
		})
	}
}
