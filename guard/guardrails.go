package guard

import (
	"fmt"
	"strings"
)

// Guardrails is the operator-written guardrail configuration of a temporary
// machine, as it travels in the API and in the replicated state. Each axis
// is opt-in: a nil axis is not checked. Compile validates it and returns the
// Policy that the fast path evaluates.
type Guardrails struct {
	IPAllowlist *IPAxis      `json:"ipAllowlist,omitempty"`
	Countries   *CountryAxis `json:"countries,omitempty"`
	TimeWindow  *WindowAxis  `json:"timeWindow,omitempty"`
}

// IPAxis allows requests whose client address is inside one of CIDRs. A bare
// address means /32 or /128.
type IPAxis struct {
	CIDRs   []string `json:"cidrs"`
	Observe bool     `json:"observe,omitempty"`
}

// CountryAxis allows requests whose client address maps to one of Codes:
// assigned ISO 3166-1 alpha-2 codes in upper case, plus XK for Kosovo.
// Lower-case codes and placeholders such as "--", "ZZ", "EU" or "A1" are
// rejected. An address without a known country always fails this axis.
type CountryAxis struct {
	Codes   []string `json:"codes"`
	Observe bool     `json:"observe,omitempty"`
}

// WindowAxis allows requests whose local wall-clock time in Timezone lies
// between Start and End. Start and End are "HH:MM" (00:00 to 23:59) and
// both minutes are included: 09:00-17:00 admits 09:00:00 through 17:00:59.
// The window wraps midnight when End is before Start, and Start == End is
// invalid. Days, when set, names the days ("mon" … "sun", lower case) on
// which the window may open. A window that wraps midnight stays open into
// the next day. Timezone is an IANA zone name, matched with case; see
// CheckZoneName for the names rejected.
type WindowAxis struct {
	Start    string   `json:"start"`
	End      string   `json:"end"`
	Timezone string   `json:"timezone"`
	Days     []string `json:"days,omitempty"`
	Observe  bool     `json:"observe,omitempty"`
}

// Bounds of the guardrail lists, so that a stored configuration stays small.
const (
	MaxGuardrailCIDRs     = 1000
	MaxGuardrailCountries = 300
)

// Compile validates the guardrails and returns the Policy that evaluates
// them. Every error wraps ErrInvalidGuardrails and names the field and the
// value. A nil Guardrails, or one with no axis, compiles to a Policy that
// allows every request.
func (g *Guardrails) Compile() (*Policy, error) {
	p := &Policy{}
	if g == nil {
		return p, nil
	}

	var err error
	if g.IPAllowlist != nil {
		if p.ip, err = compileIPAxis(g.IPAllowlist); err != nil {
			return nil, err
		}
	}
	if g.Countries != nil {
		if p.countries, err = compileCountryAxis(g.Countries); err != nil {
			return nil, err
		}
	}
	if g.TimeWindow != nil {
		if p.window, err = compileWindow(g.TimeWindow); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func compileIPAxis(axis *IPAxis) (*ipRule, error) {
	if len(axis.CIDRs) == 0 {
		return nil, fmt.Errorf("%w: ipAllowlist.cidrs is empty; list at least one CIDR or remove the axis",
			ErrInvalidGuardrails)
	}
	if len(axis.CIDRs) > MaxGuardrailCIDRs {
		return nil, fmt.Errorf("%w: ipAllowlist.cidrs has %d entries; the maximum is %d",
			ErrInvalidGuardrails, len(axis.CIDRs), MaxGuardrailCIDRs)
	}

	prefixes, err := ParseCIDRs(axis.CIDRs)
	if err != nil {
		return nil, fmt.Errorf("%w: ipAllowlist.cidrs: %w", ErrInvalidGuardrails, err)
	}
	return &ipRule{allow: NewAllowlist(prefixes), observe: axis.Observe}, nil
}

func compileCountryAxis(axis *CountryAxis) (*countryRule, error) {
	if len(axis.Codes) == 0 {
		return nil, fmt.Errorf("%w: countries.codes is empty; list at least one code or remove the axis",
			ErrInvalidGuardrails)
	}
	if len(axis.Codes) > MaxGuardrailCountries {
		return nil, fmt.Errorf("%w: countries.codes has %d entries; the maximum is %d",
			ErrInvalidGuardrails, len(axis.Codes), MaxGuardrailCountries)
	}

	rule := &countryRule{observe: axis.Observe}
	for _, code := range axis.Codes {
		if err := checkCountryCode(code); err != nil {
			return nil, fmt.Errorf("%w: countries.codes: %v", ErrInvalidGuardrails, err)
		}
		if rule.allowed.has(code) {
			return nil, fmt.Errorf("%w: countries.codes: %q is listed twice", ErrInvalidGuardrails, code)
		}
		rule.allowed.add(code)
	}
	return rule, nil
}

// checkCountryCode accepts an assigned ISO 3166-1 alpha-2 code in upper
// case. Lower case is rejected rather than converted, so that the stored
// configuration reads exactly as it is enforced.
func checkCountryCode(code string) error {
	if reason, ok := placeholderCodes[strings.ToUpper(code)]; ok {
		return fmt.Errorf("%q is %s, not a country; addresses without a country always fail this axis",
			code, reason)
	}
	if IsCountryCode(code) {
		return nil
	}
	if upper := strings.ToUpper(code); IsCountryCode(upper) {
		return fmt.Errorf("%q must be upper case: %q", code, upper)
	}
	return fmt.Errorf("%q is not an assigned ISO 3166-1 alpha-2 country code", code)
}
