package guard

// assignedCountryCodes lists the officially assigned ISO 3166-1 alpha-2
// codes (249 of them), plus XK. XK is a user-assigned code, not an ISO
// assignment, but MaxMind, DB-IP and the embedded table return it for
// Kosovo, so an operator must be able to name it. Placeholder and
// reserved codes that geolocation data uses ("--", "ZZ", "EU", "AP", "A1",
// "A2", "O1") are not countries and are absent.
const assignedCountryCodes = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"XK " +
	"YE YT " +
	"ZA ZM ZW"

// countrySet is a set of two-letter upper-case codes, one bit per code.
type countrySet [(26*26 + 63) / 64]uint64

// assignedCountries is the set form of assignedCountryCodes; it is built
// once and never changed.
var assignedCountries = func() countrySet {
	var set countrySet
	for i := 0; i+1 < len(assignedCountryCodes); i += 3 {
		set.add(assignedCountryCodes[i : i+2])
	}
	return set
}()

// countryIndex returns the bit index of an upper-case two-letter code, or
// -1 for anything else.
func countryIndex(code string) int {
	if len(code) != 2 {
		return -1
	}
	a, b := code[0], code[1]
	if a < 'A' || a > 'Z' || b < 'A' || b > 'Z' {
		return -1
	}
	return int(a-'A')*26 + int(b-'A')
}

func (s *countrySet) add(code string) {
	if i := countryIndex(code); i >= 0 {
		s[i/64] |= 1 << (i % 64)
	}
}

func (s *countrySet) has(code string) bool {
	i := countryIndex(code)
	return i >= 0 && s[i/64]&(1<<(i%64)) != 0
}

// IsCountryCode reports whether code is an assigned ISO 3166-1 alpha-2
// code in upper case (or XK, for Kosovo).
func IsCountryCode(code string) bool {
	return assignedCountries.has(code)
}

// placeholderCodes are codes that geolocation data uses for something other
// than a country, with the reason given when an operator names one.
var placeholderCodes = map[string]string{
	"--": "a placeholder for addresses without a country",
	"ZZ": "the ISO code for an unknown country",
	"EU": "a continent code (Europe)",
	"AP": "a region code (Asia/Pacific)",
	"A1": "the legacy code for anonymous proxies",
	"A2": "the legacy code for satellite providers",
	"O1": "the legacy code for other countries",
}
