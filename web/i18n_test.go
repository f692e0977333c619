package web

import (
	"io/fs"
	"regexp"
	"testing"
)

func TestMessagesComplete(t *testing.T) {
	for lang, m := range messages {
		for key := range messages["en"] {
			if m[key] == "" {
				t.Errorf("%s lacks %s", lang, key)
			}
		}
		for key := range m {
			if _, ok := messages["en"][key]; !ok {
				t.Errorf("%s has %s, which English lacks", lang, key)
			}
		}
	}
	// Every key a template asks for exists.
	keyRE := regexp.MustCompile(`\.T "([a-z_.]+)"`)
	files, _ := fs.Glob(assets, "templates/*.html")
	for _, f := range files {
		b, _ := fs.ReadFile(assets, f)
		for _, m := range keyRE.FindAllSubmatch(b, -1) {
			if _, ok := messages["en"][string(m[1])]; !ok {
				t.Errorf("%s uses unknown message %s", f, m[1])
			}
		}
	}
}

func TestAcceptLanguage(t *testing.T) {
	cases := map[string]string{
		"":                       "en",
		"zh-CN,zh;q=0.9":         "zh-CN",
		"zh-TW":                  "zh-CN",
		"en-GB,en;q=0.9,zh;q=.5": "en",
		"fr-FR,zh;q=0.5":         "zh-CN",
		"de":                     "en",
	}
	for h, want := range cases {
		if got := fromAcceptLanguage(h); got != want {
			t.Errorf("%q → %s, want %s", h, got, want)
		}
	}
}
