package dataobject

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// Phone is a phone number as typed and the keys it is matched by.
type Phone struct {
	Raw       string // as typed
	E164      string // +8613812345678; "" when the number does not parse or has an impossible length
	National  string // national significant number by libphonenumber; "" like E164
	Stripped  string // digits with international, country and trunk prefixes stripped by rule
	Digits    string // every digit of the number part (the extension excluded)
	Extension string
	Valid     bool // a valid number for its country (libphonenumber)
	Anonymous bool // withheld, anonymous or no digits at all
}

// Limits of phone normalisation.
const (
	maxPhoneDigits    = 20 // longer digit runs are garbage; keys are not computed for them
	minStrippedDigits = 7  // a national prefix is only stripped from numbers at least this long after it
	// an international prefix is only stripped when more digits than this follow it (country
	// code and a short number such as 95588)
	minInternationalDigits = 4
)

var (
	// extensionRE finds an extension at the end: "ext. 12", "x12", "#12", "转 8001", "分机 12".
	extensionRE = regexp.MustCompile(`(?i)\s*(?:;?ext\.?=?|extension|x|#|转|分机)\s*([0-9０-９]{1,8})\s*$`)
	anonymous   = map[string]bool{"anonymous": true, "withheld": true, "private": true, "restricted": true,
		"unknown": true, "unavailable": true, "blocked": true, "none": true, "null": true}
)

// Normalize reads raw with region as the default country (ISO code: CN, GB, US). It never
// fails: a number that does not parse keeps its raw form, digits and stripped key, and is
// flagged not Valid.
func Normalize(raw, region string) Phone {
	return normalize(raw, region, nil)
}

// phoneReader normalises the numbers of one region, most of them by the region's phone
// plan rather than libphonenumber (same results, a fraction of the time): for imports.
type phoneReader struct {
	region string
	plan   *phonePlan // nil: libphonenumber for every number
}

func newPhoneReader(region string) *phoneReader {
	return &phoneReader{region: region, plan: newPhonePlan(region)}
}

// Normalize is Normalize(raw, r.region).
func (r *phoneReader) Normalize(raw string) Phone {
	return normalize(raw, r.region, r.plan)
}

// normalize is Normalize, with plan (when not nil) tried before libphonenumber.
func normalize(raw, region string, plan *phonePlan) Phone {
	p := Phone{Raw: strings.TrimSpace(raw)}
	number := callerPart(p.Raw)
	if anonymous[strings.ToLower(strings.Trim(number, " <>\""))] {
		p.Anonymous = true
		return p
	}
	if hasExtensionMark(number) {
		if m := extensionRE.FindStringSubmatchIndex(number); m != nil && m[0] > 0 {
			p.Extension = digitsOf(number[m[2]:m[3]])
			number = number[:m[0]]
		}
	}
	p.Digits = digitsOf(number)
	if p.Digits == "" {
		p.Anonymous = true
		return p
	}
	if len(p.Digits) > maxPhoneDigits {
		return p
	}
	plus := strings.HasPrefix(strings.TrimLeftFunc(number, func(r rune) bool { return !unicode.IsDigit(r) && r != '+' && r != '＋' }), "+") ||
		strings.HasPrefix(strings.TrimSpace(number), "＋")
	p.Stripped = stripPrefixes(p.Digits, plus, region)
	if plan != nil {
		if e164, nsn, valid, ok := plan.number(p.Digits, plus); ok {
			if e164 != "" {
				p.E164, p.National, p.Valid = e164, nsn, valid
			}
			return p
		}
	}
	// libphonenumber gets the digits (with + when typed) so that separators such as "、" or
	// letters it does not expect cannot make it reject an otherwise readable number.
	in := p.Digits
	if plus {
		in = "+" + in
	}
	num, err := phonenumbers.Parse(in, region)
	if err == nil && phonenumbers.IsPossibleNumber(num) {
		p.E164 = phonenumbers.Format(num, phonenumbers.E164)
		p.National = phonenumbers.GetNationalSignificantNumber(num)
		p.Valid = phonenumbers.IsValidNumber(num)
	}
	return p
}

// hasExtensionMark is a quick test that saves the extension pattern's cost on plain numbers.
func hasExtensionMark(s string) bool {
	return strings.ContainsAny(s, "xX#tT转分")
}

// callerPart takes the number out of a SIP or tel URI or a display form ("Name" <sip:...>).
func callerPart(s string) string {
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
	}
	lower := strings.ToLower(s)
	for _, scheme := range []string{"sip:", "sips:", "tel:"} {
		if strings.HasPrefix(lower, scheme) {
			s = s[len(scheme):]
			if at := strings.IndexByte(s, '@'); at >= 0 {
				s = s[:at]
			}
			if semi := strings.IndexByte(s, ';'); semi >= 0 && !strings.HasPrefix(strings.ToLower(s[semi:]), ";ext=") {
				s = s[:semi]
			}
			break
		}
	}
	return strings.TrimSpace(s)
}

// digitsOf keeps the digits of s, full-width ones (１３８) made ASCII.
func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= '０' && r <= '９':
			b.WriteRune('0' + (r - '０'))
		}
	}
	return b.String()
}

// stripPrefixes removes, by rule rather than by libphonenumber, what dialling adds in front
// of a national number: "+" or an international prefix (00, 011 in NANP countries) and the
// country code after it, or else the region's trunk prefix (0 in CN and GB, 1 in NANP).
func stripPrefixes(d string, plus bool, region string) string {
	intl := plus
	if !intl {
		for _, idd := range internationalPrefixes(region) {
			if strings.HasPrefix(d, idd) && len(d) > len(idd)+minInternationalDigits {
				d, intl = d[len(idd):], true
				break
			}
		}
	}
	if intl {
		for n := 1; n <= 3 && n < len(d); n++ {
			cc, _ := strconv.Atoi(d[:n])
			if phonenumbers.GetRegionCodeForCountryCode(cc) != "ZZ" {
				d = d[n:]
				break
			}
		}
		// "+44 (0)20 ..." keeps a trunk 0 after the country code.
		if strings.HasPrefix(d, "0") && len(d) > minStrippedDigits {
			d = d[1:]
		}
		return d
	}
	if np := phonenumbers.GetNddPrefixForRegion(region, true); np != "" && strings.HasPrefix(d, np) && len(d)-len(np) >= minStrippedDigits {
		d = d[len(np):]
	}
	return d
}

func internationalPrefixes(region string) []string {
	if phonenumbers.IsNANPACountry(region) {
		return []string{"011"}
	}
	return []string{"00"}
}

// reverse reverses an ASCII digit string: last-N-digit matching becomes a prefix range.
func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
