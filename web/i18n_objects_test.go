package web

import (
	"testing"

	"github.com/ctid/ctid/dataobject"
)

// The admin pages name kinds, field types and save modes through keys built at run time
// (printf "kind.%s"), which TestMessagesComplete cannot see in the templates.
func TestObjectKindAndTypeNames(t *testing.T) {
	var keys []string
	for _, k := range dataobject.Kinds {
		keys = append(keys, "kind."+string(k))
	}
	for _, ft := range dataobject.FieldTypes {
		keys = append(keys, "ftype."+string(ft))
	}
	keys = append(keys, "save."+string(dataobject.SaveOnce), "save."+string(dataobject.SaveMany))
	for _, key := range keys {
		for _, lang := range []string{"en", "zh-CN"} {
			if messages[lang][key] == "" {
				t.Errorf("%s lacks %s", lang, key)
			}
		}
	}
}
