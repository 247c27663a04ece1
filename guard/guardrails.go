package guard

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

// CountryAxis allows requests whose client address maps to one of Codes
// (ISO 3166-1 alpha-2, upper case).
type CountryAxis struct {
	Codes   []string `json:"codes"`
	Observe bool     `json:"observe,omitempty"`
}

// WindowAxis allows requests whose local wall-clock time in Timezone lies in
// [Start, End). Start and End are "HH:MM"; the window wraps midnight when
// End is before Start. Days, when set, names the days ("mon" … "sun") on
// which the window may open.
type WindowAxis struct {
	Start    string   `json:"start"`
	End      string   `json:"end"`
	Timezone string   `json:"timezone"`
	Days     []string `json:"days,omitempty"`
	Observe  bool     `json:"observe,omitempty"`
}
