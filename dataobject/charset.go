package dataobject

import (
	"bufio"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// CSV files saved by Chinese Excel ("CSV (逗号分隔)") are in the ANSI code page, GBK, not in
// UTF-8. ASCII reads the same in both, so a CSV passes through unchanged until its first
// byte above 0x7F; the sniffWindow bytes from there decide: valid UTF-8 stays UTF-8, anything
// else is decoded as GB18030 (a superset of GBK and GB2312).
const sniffWindow = 4096

// textReader is r as UTF-8, decoded from GB18030 when its first non-ASCII bytes are not UTF-8.
type textReader struct {
	br      *bufio.Reader
	decided io.Reader // nil until the first non-ASCII byte
}

func newTextReader(r io.Reader) *textReader {
	return &textReader{br: bufio.NewReaderSize(r, 2*sniffWindow)}
}

func (t *textReader) Read(p []byte) (int, error) {
	if t.decided != nil {
		return t.decided.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if t.br.Buffered() == 0 {
		if _, err := t.br.Peek(1); err != nil {
			return 0, err
		}
	}
	buf, _ := t.br.Peek(t.br.Buffered())
	ascii := 0
	for ascii < len(buf) && buf[ascii] < utf8.RuneSelf {
		ascii++
	}
	if ascii > 0 {
		return t.br.Read(p[:min(len(p), ascii)])
	}
	window, err := t.br.Peek(sniffWindow)
	atEOF := err != nil // io.EOF, or an error the next Read reports again
	if looksUTF8(window, atEOF) {
		t.decided = t.br
	} else {
		t.decided = transform.NewReader(t.br, simplifiedchinese.GB18030.NewDecoder())
	}
	return t.decided.Read(p)
}

// looksUTF8 says whether b is valid UTF-8, allowing one rune cut off at its end when more
// bytes follow.
func looksUTF8(b []byte, atEOF bool) bool {
	if !atEOF {
		for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
			if utf8.RuneStart(b[i]) {
				if !utf8.FullRune(b[i:]) {
					b = b[:i]
				}
				break
			}
		}
	}
	return utf8.Valid(b)
}
