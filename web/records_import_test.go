package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// upload posts file as the import form would, with the form's other fields.
func (b *browser) upload(page, path, name string, content []byte, fields map[string]string) (int, string, string) {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf_token", csrfOf(b.t, page))
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", b.base+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("upload %s: %v", name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(raw)
}

type importProgress struct {
	Rows   int  `json:"rows"`
	Total  int  `json:"total"`
	Done   bool `json:"done"`
	Report struct {
		Rows      int  `json:"rows"`
		Imported  int  `json:"imported"`
		Updated   int  `json:"updated"`
		Rejected  int  `json:"rejected"`
		Committed bool `json:"committed"`
		Errors    []struct {
			Row     int    `json:"row"`
			Column  string `json:"column"`
			Problem string `json:"problem"`
		} `json:"errors"`
	} `json:"report"`
	RejectsURL string `json:"rejects_url"`
}

// waitImport polls the job's progress endpoint, as the page does, until the import is done.
func (b *browser) waitImport(jobURL string) importProgress {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, body := b.do("GET", jobURL+"/progress", nil, nil)
		var p importProgress
		if code != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil {
			b.t.Fatalf("progress: %d %s", code, body)
		}
		if p.Done {
			return p
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("import not done after 30s: %s", body)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, as the page does
	}
}

var totalRE = regexp.MustCompile(`id="total">(\d+) records<`)

func customerCount(b *browser) int {
	b.t.Helper()
	m := totalRE.FindStringSubmatch(b.get("/records/customer"))
	if m == nil {
		b.t.Fatal("no record total on the list page")
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

func TestImportPage(t *testing.T) {
	f, _ := newRecordsFixture(t)
	b := f.browser(t)
	b.mustLogin("acme", "a1", "password-a1")
	list := b.get("/records/customer")
	for _, want := range []string{`id="import-link"`, `id="export-csv"`, `id="export-xlsx"`} {
		if !strings.Contains(list, want) {
			t.Errorf("record list lacks %s", want)
		}
	}
	page := b.get("/records/customer/import")
	// A CSV as Chinese Excel saves it: GBK, Chinese headers; row 3 lacks the required name.
	gbk, err := simplifiedchinese.GBK.NewEncoder().String("姓名,电话,公司\n王五,13812345678,上海贸易\n,13900000001,无名公司\n赵六,13700000000,北京\n")
	if err != nil {
		t.Fatal(err)
	}
	before := customerCount(b)

	t.Run("all or nothing", func(t *testing.T) {
		code, loc, body := b.upload(page, "/records/customer/import", "客户.csv", []byte(gbk), nil)
		if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/records/customer/import/") {
			t.Fatalf("upload: %d %q\n%s", code, loc, body)
		}
		p := b.waitImport(loc)
		if p.Report.Committed || p.Report.Imported != 0 || p.Report.Rejected != 1 || len(p.Report.Errors) != 1 {
			t.Fatalf("report: %+v", p.Report)
		}
		if e := p.Report.Errors[0]; e.Row != 3 || e.Column != "姓名" || !strings.Contains(e.Problem, "required") {
			t.Fatalf("bad row reported as %+v, want row 3, column 姓名", e)
		}
		if n := customerCount(b); n != before {
			t.Fatalf("%d customers after a refused import, want %d", n, before)
		}
		job := b.get(loc)
		if !strings.Contains(job, `id="import-errors"`) || !strings.Contains(job, "row 3, column 姓名: is required") || strings.Contains(job, `id="import-progress"`) {
			t.Fatalf("report page:\n%s", job)
		}
	})

	t.Run("good rows and a rejects file", func(t *testing.T) {
		_, loc, _ := b.upload(page, "/records/customer/import", "客户.csv", []byte(gbk), map[string]string{"skip_bad": "1"})
		p := b.waitImport(loc)
		if !p.Report.Committed || p.Report.Imported != 2 || p.Report.Rejected != 1 || p.RejectsURL == "" {
			t.Fatalf("report: %+v", p)
		}
		if n := customerCount(b); n != before+2 {
			t.Fatalf("%d customers, want %d", n, before+2)
		}
		code, h, rejects := b.do("GET", p.RejectsURL, nil, nil)
		if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") ||
			rejects != "\ufeff姓名,电话,公司,problem\n,13900000001,无名公司,\"row 3, column 姓名: is required\"\n" {
			t.Fatalf("rejects: %d %q", code, rejects)
		}
		// another user cannot see the job
		other := f.browser(t)
		other.mustLogin("acme", "cfg", "password-cfg")
		if code, _, _ := other.do("GET", loc+"/progress", nil, nil); code != http.StatusNotFound {
			t.Fatalf("another user's progress: %d, want 404", code)
		}
	})

	t.Run("update on duplicate phone", func(t *testing.T) {
		in := []byte("name,phones,company\nWang Wu,+86 138 1234 5678,New Co\n")
		_, loc, _ := b.upload(page, "/records/customer/import", "update.csv", in, nil)
		if p := b.waitImport(loc); p.Report.Committed || p.Report.Rejected != 1 {
			t.Fatalf("duplicate reported: %+v", p.Report)
		}
		_, loc, _ = b.upload(page, "/records/customer/import", "update.csv", in, map[string]string{"update_duplicates": "1"})
		if p := b.waitImport(loc); !p.Report.Committed || p.Report.Updated != 1 || p.Report.Imported != 0 {
			t.Fatalf("duplicate updated: %+v", p.Report)
		}
		if n := customerCount(b); n != before+2 {
			t.Fatalf("%d customers after an update, want %d", n, before+2)
		}
	})

	t.Run("bad uploads are refused in the form", func(t *testing.T) {
		code, _, body := b.upload(page, "/records/customer/import", "notes.txt", []byte("x"), nil)
		if code != http.StatusBadRequest || !strings.Contains(body, "neither .csv nor .xlsx") {
			t.Fatalf("txt upload: %d", code)
		}
		code, loc, body := b.upload(page, "/records/customer/import", "bad.xlsx", []byte("not a zip"), nil)
		if code != http.StatusSeeOther {
			t.Fatalf("bad xlsx upload: %d %s", code, body)
		}
		b.waitImport(loc)
		if job := b.get(loc); !strings.Contains(job, "not a readable XLSX file") {
			t.Fatalf("bad xlsx report:\n%s", job)
		}
	})
	// QA may read records but not import them
	qa := f.browser(t)
	qa.mustLogin("acme", "qa1", "password-qa1")
	if code, _, _ := qa.do("GET", "/records/customer/import", nil, nil); code != http.StatusForbidden {
		t.Fatalf("qa import page: %d, want 403", code)
	}
}
