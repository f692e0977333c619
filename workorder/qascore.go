package workorder

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ctid/ctid/fault"
)

// ItemKind is how a QA item is answered.
type ItemKind string

const (
	ItemYesNo    ItemKind = "yes_no"    // yes (full marks) or no (none)
	ItemScale    ItemKind = "scale"     // 0..Max, marks in proportion
	ItemPassFail ItemKind = "pass_fail" // pass or fail
)

// Answers an item takes besides scale numbers.
const (
	AnswerYes  = "yes"
	AnswerNo   = "no"
	AnswerPass = "pass"
	AnswerFail = "fail"
	AnswerNA   = "na" // not applicable: the item leaves the denominator
)

// Limits of QA forms.
const (
	maxItems        = 200
	maxScale        = 10
	maxWeight       = 100
	maxCommentRunes = 2000
	maxFormText     = 300
)

var itemKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// FormDef is what a config admin defines: sections of weighted items and score bands.
type FormDef struct {
	Name     string    `json:"name"`
	Sections []Section `json:"sections"`
	Bands    []Band    `json:"bands"` // ascending by Min; the first starts at 0
}

// Section groups items on the scoring page.
type Section struct {
	Title string `json:"title"`
	Items []Item `json:"items"`
}

// Item is one question of a form.
type Item struct {
	Key      string   `json:"key"`
	Text     string   `json:"text"`
	Kind     ItemKind `json:"kind"`
	Max      int      `json:"max,omitempty"` // scale: the top mark, 1–10
	Weight   float64  `json:"weight"`
	Critical bool     `json:"critical,omitempty"` // failing it sets the whole score to 0
	AllowNA  bool     `json:"allow_na,omitempty"`
}

// Band labels a range of scores: from Min up to the next band's Min.
type Band struct {
	Min   float64 `json:"min"`
	Label string  `json:"label"`
	Fail  bool    `json:"fail,omitempty"` // scores in it count as fails in summaries
}

// Answer is a checker's answer to one item, with an optional comment.
type Answer struct {
	Item    string `json:"item"`
	Value   string `json:"value"`
	Comment string `json:"comment,omitempty"`
}

// Result is a scored form.
type Result struct {
	Score        float64 `json:"score"` // 0–100, one decimal
	Band         string  `json:"band"`
	Failed       bool    `json:"failed"`        // a fail band or a failed critical item
	CriticalFail string  `json:"critical_fail"` // key of the failed critical item, "" for none
}

// Check says what is wrong with a form definition, naming the item or band.
func (d *FormDef) Check() error {
	d.Name = strings.TrimSpace(d.Name)
	if d.Name == "" || utf8.RuneCountInString(d.Name) > maxFormText {
		return fault.Errorf(fault.Invalid, "a QA form needs a name of 1–%d characters", maxFormText)
	}
	seen := map[string]bool{}
	n := 0
	for si, s := range d.Sections {
		if strings.TrimSpace(s.Title) == "" {
			return fault.Errorf(fault.Invalid, "section %d needs a title", si+1)
		}
		if len(s.Items) == 0 {
			return fault.Errorf(fault.Invalid, "section %q has no items", s.Title)
		}
		for _, it := range s.Items {
			n++
			if !itemKeyRE.MatchString(it.Key) {
				return fault.Errorf(fault.Invalid, "item key %q is not valid: 1–40 of a–z, 0–9, _ starting with a letter", it.Key)
			}
			if seen[it.Key] {
				return fault.Errorf(fault.Invalid, "item %q is defined twice", it.Key)
			}
			seen[it.Key] = true
			if strings.TrimSpace(it.Text) == "" || utf8.RuneCountInString(it.Text) > maxFormText {
				return fault.Errorf(fault.Invalid, "item %q needs a text of 1–%d characters", it.Key, maxFormText)
			}
			switch it.Kind {
			case ItemYesNo, ItemPassFail:
				if it.Max != 0 {
					return fault.Errorf(fault.Invalid, "item %q: only scale items have a max", it.Key)
				}
			case ItemScale:
				if it.Max < 1 || it.Max > maxScale {
					return fault.Errorf(fault.Invalid, "item %q: a scale goes from 0 to 1–%d, not %d", it.Key, maxScale, it.Max)
				}
			default:
				return fault.Errorf(fault.Invalid, "item %q: kind must be yes_no, scale or pass_fail, not %q", it.Key, it.Kind)
			}
			if !(it.Weight > 0 && it.Weight <= maxWeight) {
				return fault.Errorf(fault.Invalid, "item %q: weight must be above 0 and at most %d, not %v", it.Key, maxWeight, it.Weight)
			}
		}
	}
	if n == 0 {
		return fault.Errorf(fault.Invalid, "a QA form needs at least one item")
	}
	if n > maxItems {
		return fault.Errorf(fault.Invalid, "a QA form has at most %d items, not %d", maxItems, n)
	}
	if len(d.Bands) == 0 {
		return fault.Errorf(fault.Invalid, "a QA form needs score bands (e.g. 0 fail, 60 needs work, 80 good)")
	}
	for i, b := range d.Bands {
		if strings.TrimSpace(b.Label) == "" {
			return fault.Errorf(fault.Invalid, "band %d needs a label", i+1)
		}
		if i == 0 && b.Min != 0 {
			return fault.Errorf(fault.Invalid, "the first band must start at 0, not %v", b.Min)
		}
		if i > 0 && !(b.Min > d.Bands[i-1].Min && b.Min <= 100) {
			return fault.Errorf(fault.Invalid, "band %q must start above %v and at most at 100", b.Label, d.Bands[i-1].Min)
		}
	}
	return nil
}

// Items lists the form's items in order.
func (d *FormDef) Items() []Item {
	var out []Item
	for _, s := range d.Sections {
		out = append(out, s.Items...)
	}
	return out
}

// Score computes the score of answers on d: each item earns its weight times its marks
// (yes/pass 1, no/fail 0, scale v/max); N/A items leave the denominator; a failed critical
// item (no, fail, or 0 on a scale) sets the score to 0. The score is rounded half away from
// zero to one decimal. Every item needs an answer.
func (d *FormDef) Score(answers []Answer) (Result, error) {
	byItem := map[string]Answer{}
	items := d.Items()
	known := map[string]bool{}
	for _, it := range items {
		known[it.Key] = true
	}
	for _, a := range answers {
		if !known[a.Item] {
			return Result{}, fault.Errorf(fault.Invalid, "the form has no item %q", a.Item)
		}
		if _, dup := byItem[a.Item]; dup {
			return Result{}, fault.Errorf(fault.Invalid, "item %q is answered twice", a.Item)
		}
		if utf8.RuneCountInString(a.Comment) > maxCommentRunes {
			return Result{}, fault.Errorf(fault.Invalid, "item %q: comment is longer than %d characters", a.Item, maxCommentRunes)
		}
		byItem[a.Item] = a
	}
	var earned, possible float64
	var res Result
	for _, it := range items {
		a, ok := byItem[it.Key]
		if !ok || a.Value == "" {
			return Result{}, fault.Errorf(fault.Invalid, "item %q is not answered", it.Key)
		}
		v := strings.ToLower(strings.TrimSpace(a.Value))
		if v == AnswerNA {
			if !it.AllowNA {
				return Result{}, fault.Errorf(fault.Invalid, "item %q cannot be N/A", it.Key)
			}
			continue
		}
		marks, failed, err := it.marks(v)
		if err != nil {
			return Result{}, err
		}
		if failed && it.Critical && res.CriticalFail == "" {
			res.CriticalFail = it.Key
		}
		earned += it.Weight * marks
		possible += it.Weight
	}
	switch {
	case res.CriticalFail != "":
		res.Score = 0
	case possible == 0:
		return Result{}, fault.Errorf(fault.Invalid, "every item is N/A: there is nothing to score")
	default:
		res.Score = math.Round(earned/possible*1000) / 10
	}
	res.Band, res.Failed = d.band(res.Score)
	res.Failed = res.Failed || res.CriticalFail != ""
	return res, nil
}

// marks is the share of an item's weight that answer v earns, and whether v fails the item.
func (it Item) marks(v string) (float64, bool, error) {
	switch it.Kind {
	case ItemYesNo:
		switch v {
		case AnswerYes:
			return 1, false, nil
		case AnswerNo:
			return 0, true, nil
		}
		return 0, false, fault.Errorf(fault.Invalid, "item %q takes yes or no%s, not %q", it.Key, naHint(it), v)
	case ItemPassFail:
		switch v {
		case AnswerPass:
			return 1, false, nil
		case AnswerFail:
			return 0, true, nil
		}
		return 0, false, fault.Errorf(fault.Invalid, "item %q takes pass or fail%s, not %q", it.Key, naHint(it), v)
	case ItemScale:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > it.Max {
			return 0, false, fault.Errorf(fault.Invalid, "item %q takes a number from 0 to %d%s, not %q", it.Key, it.Max, naHint(it), v)
		}
		return float64(n) / float64(it.Max), n == 0, nil
	}
	return 0, false, fmt.Errorf("item %q has unknown kind %q", it.Key, it.Kind)
}

func naHint(it Item) string {
	if it.AllowNA {
		return " (or na)"
	}
	return ""
}

// band is the label of the highest band whose Min the score reaches.
func (d *FormDef) band(score float64) (string, bool) {
	var b Band
	for _, x := range d.Bands {
		if score >= x.Min {
			b = x
		}
	}
	return b.Label, b.Fail
}
