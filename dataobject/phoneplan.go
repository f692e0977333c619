package dataobject

import (
	"regexp"
	"slices"
	"strconv"

	"github.com/nyaruka/phonenumbers"
)

// phonePlan is a fast path past libphonenumber for the numbers an import is made of: a
// plain run of digits, typed nationally ("13912345678", "010-65529988") or with "+" and
// the region's own country code. It follows, step by step, what phonenumbers.Parse,
// IsPossibleNumber, IsValidNumber and Format(E164) do for such input, with the same
// patterns taken from libphonenumber's own metadata for the region, compiled once instead
// of looked up (and, for validity, matched twice) per call; libphonenumber's cost is
// mostly its parsing machinery for what a digit string does not have (extensions, letters,
// punctuation). Whatever the plan is not sure of, it leaves to libphonenumber: input that
// starts with an international prefix or, nationally, with the country code, a national
// prefix rule that rewrites digits, a national number with a leading zero, an odd length,
// and regions whose country code other regions share (+1, +44), whose validity
// libphonenumber decides across those regions. Tests compare both paths over generated
// numbers, the lookup test's numbers and a fuzz corpus.
type phonePlan struct {
	region      string
	countryCode string         // "86"
	idd         *regexp.Regexp // international prefix at the start
	national    *regexp.Regexp // national prefix for parsing at the start, with its groups; nil: none
	general     phoneDesc
	localOnly   []int32 // lengths of the general description only dialled locally
	fixed       phoneDesc
	mobile      phoneDesc
	others      []phoneDesc // premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail
	// sameMobileAndFixed: libphonenumber then never calls a number mobile unless it is fixed-line
	sameMobileAndFixed bool
}

// phoneDesc is one number type of a region: its possible lengths and its full pattern.
type phoneDesc struct {
	lengths []int32 // empty: those of the region's general description
	pattern *regexp.Regexp
}

// matches is libphonenumber's isNumberMatchingDesc: a possible length and the pattern.
func (d *phoneDesc) matches(nsn string) bool {
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	return d.pattern.MatchString(nsn)
}

// Limits of the fast path: shorter or longer digit runs go to libphonenumber.
const (
	minPlanDigits = 3
	maxPlanNSN    = 17 // libphonenumber's longest national significant number
)

// newPhonePlan builds the plan of region, or returns nil when the fast path cannot serve
// it (unknown region, shared country code, metadata of an unexpected shape).
func newPhonePlan(region string) *phonePlan {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return nil
	}
	var md *phonenumbers.PhoneMetadata
	for _, m := range coll.GetMetadata() {
		if m.GetId() == region {
			md = m
			break
		}
	}
	if md == nil || md.GetCountryCode() <= 0 {
		return nil
	}
	cc := int(md.GetCountryCode())
	if regions := phonenumbers.GetRegionCodesForCountryCode(cc); len(regions) != 1 || regions[0] != region {
		return nil
	}
	if md.GetNationalPrefixTransformRule() != "" || md.GetInternationalPrefix() == "" {
		return nil
	}
	descs := []*phonenumbers.PhoneNumberDesc{md.GetGeneralDesc(), md.GetFixedLine(), md.GetMobile(),
		md.GetPremiumRate(), md.GetTollFree(), md.GetSharedCost(), md.GetVoip(), md.GetPersonalNumber(),
		md.GetPager(), md.GetUan(), md.GetVoicemail()}
	compiled := make([]phoneDesc, len(descs))
	for i, d := range descs {
		if d == nil {
			return nil // libphonenumber itself would fail on such metadata
		}
		re, err := regexp.Compile("^(?:" + d.GetNationalNumberPattern() + ")$")
		if err != nil {
			return nil
		}
		compiled[i] = phoneDesc{lengths: d.PossibleLength, pattern: re}
	}
	general := descs[0]
	if general.GetNationalNumberPattern() == "" || len(general.PossibleLength) == 0 || general.PossibleLength[0] == -1 {
		return nil
	}
	idd, err := regexp.Compile("^(?:" + md.GetInternationalPrefix() + ")")
	if err != nil {
		return nil
	}
	p := &phonePlan{region: region, countryCode: strconv.Itoa(cc), idd: idd, general: compiled[0], fixed: compiled[1],
		mobile: compiled[2], others: compiled[3:], localOnly: general.PossibleLengthLocalOnly, sameMobileAndFixed: md.GetSameMobileAndFixedLinePattern()}
	if np := md.GetNationalPrefixForParsing(); np != "" {
		if p.national, err = regexp.Compile("^(?:" + np + ")"); err != nil {
			return nil
		}
	}
	return p
}

// number is what libphonenumber makes of digits (ASCII, with "+" in front when plus):
// the E.164 form, the national significant number and validity. ok is false when the
// plan is not sure, and the caller asks libphonenumber. e164 is "" when libphonenumber
// would find the number impossible.
func (p *phonePlan) number(digits string, plus bool) (e164, nsn string, valid, ok bool) {
	if len(digits) < minPlanDigits || len(digits) > maxPhoneDigits || !asciiDigits(digits) {
		return "", "", false, false
	}
	national := digits
	if plus {
		// Parse takes the country code as the shortest known code the digits start with.
		cc := countryCodeOf(digits)
		if cc != p.countryCode {
			return "", "", false, false
		}
		national = digits[len(cc):]
	} else if p.idd.MatchString(digits) || len(digits) >= len(p.countryCode) && digits[:len(p.countryCode)] == p.countryCode {
		return "", "", false, false
	}
	if len(national) < 2 {
		return "", "", false, false
	}
	nsn = national
	if stripped, ok := p.stripNationalPrefix(national); ok {
		// Parse keeps the national prefix when what is left is of no possible length.
		switch p.lengthOf(stripped) {
		case lengthTooShort, lengthLocalOnly, lengthInvalid:
		default:
			nsn = stripped
		}
	}
	if len(nsn) < 2 || len(nsn) > maxPlanNSN || nsn[0] == '0' {
		return "", "", false, false // Parse fails, or marks leading zeros: libphonenumber says
	}
	switch p.lengthOf(nsn) {
	case lengthPossible, lengthLocalOnly:
	default:
		return "", "", false, true // parsed, but not a possible number
	}
	return "+" + p.countryCode + nsn, nsn, p.valid(nsn), true
}

// stripNationalPrefix is libphonenumber's maybeStripNationalPrefixAndCarrierCode for a
// region without a transform rule: the number after the national prefix (or carrier code),
// unless the number was viable and that is not.
func (p *phonePlan) stripNationalPrefix(n string) (string, bool) {
	if p.national == nil {
		return n, false
	}
	m := p.national.FindStringSubmatchIndex(n)
	if m == nil {
		return n, false
	}
	if p.general.pattern.MatchString(n) && !p.general.pattern.MatchString(n[m[1]:]) {
		return n, false
	}
	return n[m[1]:], true
}

// valid is libphonenumber's IsValidNumber for a number of the region: it matches the
// general description and some number type.
func (p *phonePlan) valid(nsn string) bool {
	if !p.general.matches(nsn) {
		return false
	}
	if p.fixed.matches(nsn) || !p.sameMobileAndFixed && p.mobile.matches(nsn) {
		return true
	}
	for i := range p.others {
		if p.others[i].matches(nsn) {
			return true
		}
	}
	return false
}

// Results of libphonenumber's length test.
const (
	lengthPossible = iota
	lengthLocalOnly
	lengthTooShort
	lengthTooLong
	lengthInvalid
)

// lengthOf is libphonenumber's testNumberLength for the region's general description.
func (p *phonePlan) lengthOf(n string) int {
	l := int32(len(n))
	possible := p.general.lengths // newPhonePlan made sure it is not empty and not [-1]
	if slices.Contains(p.localOnly, l) {
		return lengthLocalOnly
	}
	switch {
	case possible[0] == l:
		return lengthPossible
	case possible[0] > l:
		return lengthTooShort
	case possible[len(possible)-1] < l:
		return lengthTooLong
	case slices.Contains(possible[1:], l):
		return lengthPossible
	}
	return lengthInvalid
}

func asciiDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// countryCodeOf is the country code Parse reads after a "+": the shortest known code
// (one to three digits) the digits start with; "" when there is none.
func countryCodeOf(digits string) string {
	if digits == "" || digits[0] == '0' {
		return ""
	}
	for n := 1; n <= 3 && n <= len(digits); n++ {
		cc, _ := strconv.Atoi(digits[:n])
		if len(phonenumbers.GetRegionCodesForCountryCode(cc)) > 0 {
			return digits[:n]
		}
	}
	return ""
}
