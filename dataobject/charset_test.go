package dataobject_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/ctid/ctid/dataobject"
)

// A CSV saved by Chinese Excel is GBK: its Chinese headers, names and code labels import
// as if it were UTF-8.
func TestImportGBKFile(t *testing.T) {
	e := newEnv(t, "CN", dataobject.Options{})
	ctx := context.Background()
	text := "姓名,电话,公司,客户级别\n王五,13812345678,上海贸易公司,贵宾\n赵六,13900000001,北京,\n"
	raw, err := simplifiedchinese.GBK.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "客户.csv")
	mustOK(t, os.WriteFile(path, []byte(raw), 0o600))
	rep := must[*dataobject.ImportReport](t)(e.store.ImportFile(ctx, e.tenant, path, dataobject.ImportOptions{Object: "customer", Actor: e.admin}))
	if rep.Imported != 2 || !rep.Committed {
		t.Fatalf("report = %+v", rep)
	}
	res := must[*dataobject.LookupResult](t)(e.store.Lookup(ctx, e.tenant, "13812345678"))
	if res.Total != 1 || res.Matches[0].Record["name"] != "王五" || res.Matches[0].Record["company"] != "上海贸易公司" ||
		res.Matches[0].Record["level"] != "vip" {
		t.Fatalf("imported 王五: %+v", res)
	}
}
