package query

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

// The standard templates every tenant has (read-only; an admin saves a copy to change one).
//
//go:embed templates/*.json
var templateFiles embed.FS

var templates = mustLoadTemplates()

func mustLoadTemplates() map[string]*Definition {
	files, err := fs.Glob(templateFiles, "templates/*.json")
	if err != nil {
		panic(err)
	}
	out := map[string]*Definition{}
	for _, f := range files {
		b, err := templateFiles.ReadFile(f)
		if err != nil {
			panic(err)
		}
		d, err := Import(b)
		if err != nil {
			panic(fmt.Sprintf("standard template %s: %v", f, err))
		}
		d.Builtin = true
		out[d.Key] = d
	}
	return out
}

// Templates lists copies of the standard templates by key.
func Templates() []*Definition {
	var out []*Definition
	for _, d := range templates {
		c := *d
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Template is a copy of the standard template key, or nil.
func Template(key string) *Definition {
	d, ok := templates[key]
	if !ok {
		return nil
	}
	c := *d
	return &c
}
