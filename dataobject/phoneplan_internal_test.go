package dataobject

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// samePhone fails t when the phone plan's reading of raw differs from libphonenumber's in
// anything stored (E.164, national number, stripped and digit keys, flags); it says
// whether the plan answered (rather than leaving the number to libphonenumber).
func samePhone(t *testing.T, raw, region string, plan *phonePlan) bool {
	t.Helper()
	want := normalize(raw, region, nil)
	got := normalize(raw, region, plan)
	if got != want {
		t.Errorf("%s %q: phone plan %+v, libphonenumber %+v", region, raw, got, want)
	}
	if plan == nil || got.Anonymous || got.Digits == "" || len(got.Digits) > maxPhoneDigits {
		return false
	}
	_, _, _, ok := plan.number(got.Digits, strings.HasPrefix(strings.TrimLeft(raw, " ("), "+"))
	return ok
}

func TestPhonePlanRegions(t *testing.T) {
	for region, want := range map[string]bool{"CN": true, "DE": true, "FR": true, "GB": false, "US": false, "CA": false, "RU": false, "XX": false, "": false} {
		if got := newPhonePlan(region) != nil; got != want {
			t.Errorf("plan for %q: %v, want %v", region, got, want)
		}
	}
}

// The numbers of the lookup tests, stored and called, read the same by both paths.
func TestPhonePlanLookupNumbers(t *testing.T) {
	numbers := []string{
		"138 1234 5678", "021-6234 5678", "13812345678", "010-6552 9988", "07700 900123", "call me maybe",
		"+86 139 0000 1111 转 8001", "020 7946 0000", "07700 900456", "+44 20 7946 00001", "+1 212 555 0100",
		"(212) 555-0100", "+86 138 1234 5678", "+8613812345678", "013812345678", "008613812345678",
		"+86 138-1234-5678", "8613812345678", "sip:+8613812345678@pbx.example.com;user=phone", "１３８１２３４５６７８",
		"02162345678", "+86 21 6234 5678", "62345678", "010 6552 9988", "(010)65529988", "+86-10-6552-9988",
		"+44 7700 900123", "0044 7700 900123", "913812345678", "13900001111", "+86 139 0000 1111 ext 99",
		"anonymous", "", "Withheld", `"Anonymous" <sip:anonymous@anonymous.invalid>`, "call me", "13800000000", "12",
		"+44 20 7946 0000", "02079460000", "0044 20 7946 0000", "+44 (0)20 7946 0000", "020-7946-0000 x12", "7946 0000",
		"+447700900456", "020 7946 00001", "001 212 555 0100", "+1 (212) 555-0100", "private", "2125550100",
		"1-212-555-0100", "212.555.0100", "(212) 555-0100 ext. 7", "011 86 138 1234 5678", "555-0100", "restricted",
		"13600000000; 010-65529988", "138-1234-5678", "13700000000", "+86 137 0000 0000", "13500000000",
		"13900000001", "13900000002", "139 00012345", "010-60012345", "+86 139 0001 2345",
	}
	for _, region := range []string{"CN", "GB", "US", "DE"} {
		plan := newPhonePlan(region)
		for _, n := range numbers {
			samePhone(t, n, region, plan)
		}
	}
}

// Generated numbers of every region the plan serves: libphonenumber's example numbers of
// every type, in national, international and IDD forms, with changed digits, cut and
// lengthened, and runs of random digits; for China also the import's shapes (mobiles,
// landlines of every area code length). The plan must answer most of them, and read
// every one as libphonenumber does.
func TestPhonePlanMatchesLibphonenumber(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2026))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		return string(b)
	}
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	var regions []string
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	total, answered, planned := 0, 0, 0
	for _, region := range regions {
		plan := newPhonePlan(region)
		if plan == nil {
			continue
		}
		planned++
		cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
		ndd := phonenumbers.GetNddPrefixForRegion(region, true)
		var forms []string
		for _, typ := range types {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			nsn := phonenumbers.GetNationalSignificantNumber(ex)
			for range 2 {
				// the example with its last digits changed, one shorter, one longer
				k := rng.IntN(min(len(nsn), 5) + 1)
				changed := nsn[:len(nsn)-k] + digits(k)
				forms = append(forms, changed, changed[:len(changed)-1], changed+digits(1))
			}
		}
		var numbers []string
		for i, n := range forms {
			numbers = append(numbers, n, ndd+n, "+"+cc+n)
			if i%4 == 0 { // rarer forms
				numbers = append(numbers, "+"+cc+" "+ndd+n, cc+n, "00"+cc+n, cc+ndd+n)
			}
		}
		for range 40 {
			numbers = append(numbers, digits(3+rng.IntN(16)), ndd+digits(6+rng.IntN(8)), "+"+cc+digits(4+rng.IntN(10)))
		}
		if region == "CN" {
			for range 1000 {
				mobile := "1" + digits(10)
				numbers = append(numbers, mobile, "+86 "+mobile, "0086"+mobile, "86"+mobile, "0"+mobile,
					"0"+digits(2+rng.IntN(2))+"-"+digits(7+rng.IntN(2)), digits(7+rng.IntN(2)), "+86 "+digits(2+rng.IntN(2))+digits(7+rng.IntN(2)))
			}
			for i := range 500 {
				numbers = append(numbers, fmt.Sprintf("139%08d", i*7919), fmt.Sprintf("010-6%07d", i*7919))
			}
		}
		for _, n := range numbers {
			total++
			if samePhone(t, n, region, plan) {
				answered++
			}
		}
	}
	t.Logf("%d numbers in %d regions with a plan, %d answered by the plan", total, planned, answered)
	if planned < 100 || answered < total/2 {
		t.Fatalf("the plan served %d regions and answered %d of %d numbers: the comparison proves little", planned, answered, total)
	}
}

// go test -fuzz FuzzPhonePlan ./dataobject
func FuzzPhonePlan(f *testing.F) {
	regions := []string{"CN", "DE", "JP", "FR", "IN", "BR", "GB", "US"}
	plans := make([]*phonePlan, len(regions))
	for i, r := range regions {
		plans[i] = newPhonePlan(r)
	}
	for _, s := range []string{"13912345678", "+86 139 1234 5678", "010-65529988", "0086 10 6552 9988", "86 1391234567",
		"17951 139 1234 5678", "1795113912345678", "12593 010 6552 9988", "400 810 8888", "95588", "0", "00", "+", "+0",
		"0049 30 123456", "030 1234567", "+49 (0)30 1234567", "090-1234-5678", "0120-123-456", "１３９１２３４５６７８"} {
		for i := range regions {
			f.Add(s, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, raw string, r uint8) {
		i := int(r) % len(regions)
		samePhone(t, raw, regions[i], plans[i])
	})
}
