package dataobject

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

func gbk(tb testing.TB, s string) string {
	tb.Helper()
	out, err := simplifiedchinese.GBK.NewEncoder().String(s)
	if err != nil {
		tb.Fatalf("encode %q as GBK: %v", s, err)
	}
	return out
}

func TestTextReader(t *testing.T) {
	longASCII := strings.Repeat("ascii,only\n", 2000) // past the reader's buffer
	// a UTF-8 rune cut by the sniff window's end must not make the text look like GBK
	cut := strings.Repeat("a", sniffWindow-1) + "客户"
	cases := []struct {
		name, in, want string
	}{
		{"ascii", "name,phones\nWang,138\n", "name,phones\nWang,138\n"},
		{"utf-8", "姓名,电话\n王五,138\n", "姓名,电话\n王五,138\n"},
		{"utf-8 with BOM", "\ufeff姓名\n", "\ufeff姓名\n"},
		{"gbk", gbk(t, "姓名,电话,客户级别\n王五,138,贵宾\n"), "姓名,电话,客户级别\n王五,138,贵宾\n"},
		{"gbk after long ascii", longASCII + gbk(t, "张三,上海\n"), longASCII + "张三,上海\n"},
		{"utf-8 rune cut by the window", cut, cut},
		{"empty", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// one byte at a time and all at once must agree
			for _, r := range []io.Reader{strings.NewReader(tc.in), &oneByte{strings.NewReader(tc.in)}} {
				got, err := io.ReadAll(newTextReader(r))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, []byte(tc.want)) {
					t.Fatalf("got %q, want %q", truncate(string(got)), truncate(tc.want))
				}
			}
		})
	}
}

type oneByte struct{ r io.Reader }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func truncate(s string) string {
	if len(s) > 80 {
		return "…" + s[len(s)-80:]
	}
	return s
}
