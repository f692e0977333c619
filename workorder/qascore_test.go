package workorder_test

import (
	"strings"
	"testing"

	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/workorder"
)

// sampleForm: greeting (yes/no, weight 10), empathy (scale 0–4, weight 30), accuracy
// (pass/fail, weight 60, N/A allowed), privacy (yes/no, weight 5, critical).
func sampleForm() workorder.FormDef {
	return workorder.FormDef{
		Name: "Inbound calls",
		Sections: []workorder.Section{
			{Title: "Opening", Items: []workorder.Item{
				{Key: "greeting", Text: "Greets with name", Kind: workorder.ItemYesNo, Weight: 10},
				{Key: "empathy", Text: "Shows empathy", Kind: workorder.ItemScale, Max: 4, Weight: 30},
			}},
			{Title: "Handling", Items: []workorder.Item{
				{Key: "accuracy", Text: "Gives correct information", Kind: workorder.ItemPassFail, Weight: 60, AllowNA: true},
				{Key: "privacy", Text: "Verifies identity before account details", Kind: workorder.ItemYesNo, Weight: 5, Critical: true},
			}},
		},
		Bands: []workorder.Band{{Min: 0, Label: "fail", Fail: true}, {Min: 60, Label: "needs work"}, {Min: 80, Label: "good"}},
	}
}

func answers(greeting, empathy, accuracy, privacy string) []workorder.Answer {
	return []workorder.Answer{{Item: "greeting", Value: greeting}, {Item: "empathy", Value: empathy},
		{Item: "accuracy", Value: accuracy}, {Item: "privacy", Value: privacy}}
}

func TestScoring(t *testing.T) {
	cases := []struct {
		name     string
		answers  []workorder.Answer
		score    float64
		band     string
		failed   bool
		critical string
	}{
		{"all full marks", answers("yes", "4", "pass", "yes"), 100, "good", false, ""},
		// (10 + 30·2/4 + 0 + 5) / 105 = 30/105 = 28.571… → 28.6
		{"weighted partial", answers("yes", "2", "fail", "yes"), 28.6, "fail", true, ""},
		// N/A leaves the denominator: (10 + 30·3/4 + 5) / 45 = 37.5/45 = 83.33… → 83.3
		{"n/a leaves the denominator", answers("yes", "3", "na", "yes"), 83.3, "good", false, ""},
		// (0 + 30 + 60 + 5) / 105 = 90.476… → 90.5
		{"rounding up at .476", answers("no", "4", "pass", "yes"), 90.5, "good", false, ""},
		// (10 + 30·1/4 + 60 + 5) / 105 = 82.5/105 = 78.571… → 78.6, band boundary below 80
		{"band boundary", answers("yes", "1", "pass", "yes"), 78.6, "needs work", false, ""},
		{"critical fail zeroes", answers("yes", "4", "pass", "no"), 0, "fail", true, "privacy"},
		{"answers are case-insensitive", answers("YES", "4", "Pass", " yes "), 100, "good", false, ""},
		// (0 + 0 + 60 + 5) / 105 = 61.904… → 61.9; scale 0 on a non-critical item is no fail
		{"zero on a non-critical scale", answers("no", "0", "pass", "yes"), 61.9, "needs work", false, ""},
	}
	form := sampleForm()
	if err := form.Check(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := form.Score(c.answers)
			if err != nil {
				t.Fatal(err)
			}
			if r.Score != c.score || r.Band != c.band || r.Failed != c.failed || r.CriticalFail != c.critical {
				t.Fatalf("got %+v, want score %v band %q failed %v critical %q", r, c.score, c.band, c.failed, c.critical)
			}
		})
	}
}

func TestScoringRefusesBadAnswers(t *testing.T) {
	form := sampleForm()
	cases := []struct {
		name    string
		answers []workorder.Answer
		want    string
	}{
		{"missing item", answers("yes", "4", "pass", "")[:3], `item "privacy" is not answered`},
		{"unknown item", append(answers("yes", "4", "pass", "yes"), workorder.Answer{Item: "smile", Value: "yes"}), `no item "smile"`},
		{"scale out of range", answers("yes", "5", "pass", "yes"), "from 0 to 4"},
		{"n/a not allowed", answers("na", "4", "pass", "yes"), `"greeting" cannot be N/A`},
		{"wrong word", answers("yes", "4", "yes", "yes"), "pass or fail (or na)"},
		{"twice", append(answers("yes", "4", "pass", "yes"), workorder.Answer{Item: "greeting", Value: "no"}), "answered twice"},
	}
	for _, c := range cases {
		_, err := form.Score(c.answers)
		if fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	allNA := workorder.FormDef{Name: "x", Sections: []workorder.Section{{Title: "s", Items: []workorder.Item{
		{Key: "a", Text: "a", Kind: workorder.ItemPassFail, Weight: 1, AllowNA: true}}}}, Bands: []workorder.Band{{Min: 0, Label: "any"}}}
	if _, err := allNA.Score([]workorder.Answer{{Item: "a", Value: "na"}}); fault.CodeOf(err) != fault.Invalid {
		t.Errorf("all N/A: %v", err)
	}
}

func TestFormCheck(t *testing.T) {
	cases := []struct {
		name   string
		change func(*workorder.FormDef)
		want   string
	}{
		{"no name", func(d *workorder.FormDef) { d.Name = " " }, "needs a name"},
		{"zero weight", func(d *workorder.FormDef) { d.Sections[0].Items[0].Weight = 0 }, `"greeting": weight`},
		{"duplicate key", func(d *workorder.FormDef) { d.Sections[1].Items[0].Key = "greeting" }, "defined twice"},
		{"scale without max", func(d *workorder.FormDef) { d.Sections[0].Items[1].Max = 0 }, "a scale goes"},
		{"unknown kind", func(d *workorder.FormDef) { d.Sections[0].Items[0].Kind = "stars" }, "kind must be"},
		{"bands not from 0", func(d *workorder.FormDef) { d.Bands[0].Min = 10 }, "first band must start at 0"},
		{"bands not ascending", func(d *workorder.FormDef) { d.Bands[2].Min = 50 }, `band "good" must start above 60`},
		{"no bands", func(d *workorder.FormDef) { d.Bands = nil }, "needs score bands"},
		{"empty section", func(d *workorder.FormDef) { d.Sections[1].Items = nil }, "has no items"},
	}
	for _, c := range cases {
		d := sampleForm()
		c.change(&d)
		if err := d.Check(); fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
