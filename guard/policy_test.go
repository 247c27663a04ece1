package guard

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// netipZero is the invalid address that stands for an unknown client.
var netipZero netip.Addr

// geoTable is a fixed address-to-country table in place of a database.
type geoTable map[netip.Addr]string

func (g geoTable) Country(ip netip.Addr) (string, bool) {
	code, ok := g[ip]
	return code, ok
}

func compile(t testing.TB, g Guardrails) *Policy {
	t.Helper()
	p, err := g.Compile()
	if err != nil {
		t.Fatalf("Compile(%+v): %v", g, err)
	}
	return p
}

func TestPolicy_EvaluateNamesEveryFailingAxis(t *testing.T) {
	p := compile(t, Guardrails{
		IPAllowlist: &IPAxis{CIDRs: []string{"203.0.113.0/24"}},
		Countries:   &CountryAxis{Codes: []string{"NO"}},
		TimeWindow:  &WindowAxis{Start: "09:00", End: "16:00", Timezone: "Europe/Oslo"},
	})
	geo := geoTable{addr("198.51.100.20"): "SE"}
	// 2026-06-01 14:30 UTC is Monday 16:30 in Oslo.
	d := p.Evaluate(addr("198.51.100.20"), utc("2026-06-01T14:30:00Z"), geo)

	want := []AxisResult{
		{Axis: AxisIP, Observed: "198.51.100.20", Reason: ReasonNotInAllowlist},
		{Axis: AxisCountry, Observed: "SE", Reason: ReasonCountryNotAllowed},
		{Axis: AxisTimeWindow, Observed: "Mon 16:30 Europe/Oslo", Reason: ReasonOutsideWindow},
	}
	if !d.Blocked {
		t.Error("Blocked = false with three failing axes")
	}
	if len(d.Failures) != len(want) {
		t.Fatalf("Failures = %+v, want %+v", d.Failures, want)
	}
	for i := range want {
		if d.Failures[i] != want[i] {
			t.Errorf("failure %d = %+v, want %+v", i, d.Failures[i], want[i])
		}
	}
}

func TestPolicy_EvaluateAllowsWhenEveryAxisPasses(t *testing.T) {
	p := compile(t, Guardrails{
		IPAllowlist: &IPAxis{CIDRs: []string{"203.0.113.0/24"}},
		Countries:   &CountryAxis{Codes: []string{"NO", "SE"}},
		TimeWindow:  &WindowAxis{Start: "09:00", End: "17:00", Timezone: "Europe/Oslo", Days: []string{"mon"}},
	})
	geo := geoTable{addr("203.0.113.7"): "NO"}
	d := p.Evaluate(addr("::ffff:203.0.113.7"), utc("2026-06-01T12:00:00Z"), geo)
	if d.Blocked || len(d.Failures) != 0 {
		t.Errorf("Evaluate = %+v, want allowed", d)
	}
}

func TestPolicy_ObserveMode(t *testing.T) {
	now := utc("2026-06-01T12:00:00Z")
	client := addr("198.51.100.20")
	geo := geoTable{client: "SE"}

	t.Run("observe axes never block", func(t *testing.T) {
		p := compile(t, Guardrails{
			IPAllowlist: &IPAxis{CIDRs: []string{"203.0.113.0/24"}, Observe: true},
			Countries:   &CountryAxis{Codes: []string{"NO"}, Observe: true},
		})
		d := p.Evaluate(client, now, geo)
		if d.Blocked {
			t.Error("Blocked = true with only observe-mode failures")
		}
		if len(d.Failures) != 2 || !d.Failures[0].Observe || !d.Failures[1].Observe {
			t.Errorf("Failures = %+v, want two observe-mode failures", d.Failures)
		}
	})

	t.Run("an enforced failure blocks beside an observed one", func(t *testing.T) {
		p := compile(t, Guardrails{
			IPAllowlist: &IPAxis{CIDRs: []string{"203.0.113.0/24"}, Observe: true},
			Countries:   &CountryAxis{Codes: []string{"NO"}},
		})
		d := p.Evaluate(client, now, geo)
		if !d.Blocked || len(d.Failures) != 2 {
			t.Fatalf("Evaluate = %+v, want blocked with two failures", d)
		}
		if !d.Failures[0].Observe || d.Failures[1].Observe {
			t.Errorf("Observe flags = %v, %v; want true, false", d.Failures[0].Observe, d.Failures[1].Observe)
		}
	})
}

func TestPolicy_CountryUnknown(t *testing.T) {
	p := compile(t, Guardrails{Countries: &CountryAxis{Codes: []string{"NO"}}})
	now := utc("2026-06-01T12:00:00Z")
	geo := geoTable{
		addr("203.0.113.1"): "ZZ",
		addr("203.0.113.2"): "--",
		addr("203.0.113.3"): "EU",
		addr("203.0.113.4"): "",
		addr("203.0.113.5"): "no",
		addr("203.0.113.6"): "NOR",
	}
	tests := []struct {
		name   string
		client netip.Addr
		geo    GeoLookup
		want   string // reason, or "" for allowed
	}{
		{"no record", addr("203.0.113.9"), geo, ReasonCountryUnknown},
		{"placeholder ZZ", addr("203.0.113.1"), geo, ReasonCountryUnknown},
		{"placeholder --", addr("203.0.113.2"), geo, ReasonCountryUnknown},
		{"continent EU", addr("203.0.113.3"), geo, ReasonCountryUnknown},
		{"empty code", addr("203.0.113.4"), geo, ReasonCountryUnknown},
		{"lower-case code from the database", addr("203.0.113.5"), geo, ""},
		{"three-letter code", addr("203.0.113.6"), geo, ReasonCountryUnknown},
		{"no geo lookup", addr("203.0.113.5"), nil, ReasonCountryUnknown},
		{"unknown client", netipZero, geo, ReasonCountryUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(tt.client, now, tt.geo)
			if tt.want == "" {
				if d.Blocked {
					t.Errorf("Evaluate = %+v, want allowed", d)
				}
				return
			}
			if !d.Blocked || len(d.Failures) != 1 || d.Failures[0].Reason != tt.want ||
				d.Failures[0].Observed != "unknown" {
				t.Errorf("Evaluate = %+v, want blocked with %s", d, tt.want)
			}
		})
	}
}

func TestPolicy_UnknownClientFailsAddressAxes(t *testing.T) {
	p := compile(t, Guardrails{
		IPAllowlist: &IPAxis{CIDRs: []string{"0.0.0.0/0", "::/0"}},
		Countries:   &CountryAxis{Codes: []string{"NO"}},
	})
	d := p.Evaluate(netipZero, utc("2026-06-01T12:00:00Z"), geoTable{})
	if !d.Blocked || len(d.Failures) != 2 {
		t.Fatalf("Evaluate = %+v, want both address axes failed", d)
	}
	if d.Failures[0].Reason != ReasonClientUnknown || d.Failures[1].Reason != ReasonCountryUnknown {
		t.Errorf("reasons = %s, %s", d.Failures[0].Reason, d.Failures[1].Reason)
	}
}

// TestPolicy_EveryRequestEvaluatedAfresh shows that nothing from an earlier
// request carries over: the same key from a second address is blocked, and
// a changed allowlist applies to the very next request.
func TestPolicy_EveryRequestEvaluatedAfresh(t *testing.T) {
	now := utc("2026-06-01T12:00:00Z")
	p := compile(t, Guardrails{IPAllowlist: &IPAxis{CIDRs: []string{"10.20.0.0/16"}}})

	if d := p.Evaluate(addr("10.20.1.4"), now, nil); d.Blocked {
		t.Fatalf("first request from inside the allowlist blocked: %+v", d)
	}
	d := p.Evaluate(addr("198.51.100.20"), now.Add(time.Second), nil)
	if !d.Blocked || d.Failures[0].Observed != "198.51.100.20" {
		t.Errorf("second request from outside the allowlist = %+v, want blocked", d)
	}

	edited := compile(t, Guardrails{IPAllowlist: &IPAxis{CIDRs: []string{"10.30.0.0/16"}}})
	if d := edited.Evaluate(addr("10.20.1.4"), now.Add(2*time.Second), nil); !d.Blocked {
		t.Errorf("request after the allowlist edit allowed: %+v", d)
	}
}

func TestPolicy_AllowedRequestDoesNotAllocate(t *testing.T) {
	p := compile(t, Guardrails{
		IPAllowlist: &IPAxis{CIDRs: []string{"203.0.113.0/24", "2001:db8::/32"}},
		Countries:   &CountryAxis{Codes: []string{"NO"}},
		TimeWindow:  &WindowAxis{Start: "09:00", End: "17:00", Timezone: "Europe/Oslo"},
	})
	geo := geoTable{addr("203.0.113.7"): "NO"}
	client, now := addr("203.0.113.7"), utc("2026-06-01T12:00:00Z")

	allocs := testing.AllocsPerRun(100, func() {
		if p.Evaluate(client, now, geo).Blocked {
			t.Fatal("request blocked")
		}
	})
	if allocs != 0 {
		t.Errorf("Evaluate allocated %.1f times for an allowed request, want 0", allocs)
	}
}

func TestPolicy_ConcurrentEvaluate(t *testing.T) {
	p := compile(t, Guardrails{
		IPAllowlist: &IPAxis{CIDRs: []string{"203.0.113.0/24"}},
		TimeWindow:  &WindowAxis{Start: "09:00", End: "17:00", Timezone: "Europe/Oslo"},
	})
	now := utc("2026-06-01T12:00:00Z")
	done := make(chan bool)
	for i := range 8 {
		go func() {
			client := netip.AddrFrom4([4]byte{203, 0, byte(113 + i%2), 7})
			done <- p.Evaluate(client, now, nil).Blocked
		}()
	}
	blocked := 0
	for range 8 {
		if <-done {
			blocked++
		}
	}
	if blocked != 4 {
		t.Errorf("%d of 8 concurrent evaluations blocked, want 4", blocked)
	}
}

func TestPolicy_NilAndEmpty(t *testing.T) {
	var nilPolicy *Policy
	if d := nilPolicy.Evaluate(addr("203.0.113.7"), time.Now(), nil); d.Blocked || len(d.Failures) != 0 {
		t.Errorf("nil Policy Evaluate = %+v, want allowed", d)
	}
	var nilGuardrails *Guardrails
	p, err := nilGuardrails.Compile()
	if err != nil {
		t.Fatalf("Compile of nil Guardrails: %v", err)
	}
	if d := p.Evaluate(netipZero, time.Now(), nil); d.Blocked {
		t.Errorf("empty Policy blocked: %+v", d)
	}
	if axes := p.Axes(); len(axes) != 0 {
		t.Errorf("Axes of empty Policy = %v", axes)
	}
}

func TestPolicy_Axes(t *testing.T) {
	p := compile(t, Guardrails{
		Countries:  &CountryAxis{Codes: []string{"NO"}},
		TimeWindow: &WindowAxis{Start: "09:00", End: "17:00", Timezone: "UTC"},
	})
	if got := strings.Join(p.Axes(), ","); got != "country,time_window" {
		t.Errorf("Axes = %s, want country,time_window", got)
	}
}

func TestCompile_CountryCodes(t *testing.T) {
	tests := []struct {
		name       string
		codes      []string
		ok         bool
		wantInText string
	}{
		{"assigned codes", []string{"NO", "SE", "US", "AX", "SS", "BQ"}, true, ""},
		{"Kosovo", []string{"XK"}, true, ""},
		{"lower case", []string{"no"}, false, `"NO"`},
		{"mixed case", []string{"No"}, false, `"NO"`},
		{"placeholder --", []string{"--"}, false, "placeholder"},
		{"unknown ZZ", []string{"ZZ"}, false, "unknown country"},
		{"continent EU", []string{"EU"}, false, "continent"},
		{"region AP", []string{"AP"}, false, "region"},
		{"anonymous proxy A1", []string{"A1"}, false, "anonymous"},
		{"satellite A2", []string{"A2"}, false, "satellite"},
		{"other O1", []string{"O1"}, false, "other"},
		{"lower-case placeholder", []string{"eu"}, false, "continent"},
		{"reserved UK", []string{"UK"}, false, "not an assigned"},
		{"withdrawn YU", []string{"YU"}, false, "not an assigned"},
		{"user-assigned XX", []string{"XX"}, false, "not an assigned"},
		{"alpha-3", []string{"NOR"}, false, "NOR"},
		{"digit", []string{"N0"}, false, "N0"},
		{"padded", []string{" NO"}, false, "not an assigned"},
		{"empty code", []string{""}, false, "not an assigned"},
		{"duplicate", []string{"NO", "SE", "NO"}, false, "twice"},
		{"empty list", []string{}, false, "empty"},
		{"too many", make([]string, MaxGuardrailCountries+1), false, "maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Guardrails{Countries: &CountryAxis{Codes: tt.codes}}).Compile()
			if tt.ok {
				if err != nil {
					t.Errorf("Compile(%q) = %v, want nil", tt.codes, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidGuardrails) {
				t.Fatalf("Compile(%q) = %v, want ErrInvalidGuardrails", tt.codes, err)
			}
			if !strings.Contains(err.Error(), tt.wantInText) || !strings.Contains(err.Error(), "countries.codes") {
				t.Errorf("error %q does not name the field and %q", err, tt.wantInText)
			}
		})
	}
}

func TestCompile_AssignedCountryCount(t *testing.T) {
	count := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			if IsCountryCode(string([]rune{a, b})) {
				count++
			}
		}
	}
	// 249 ISO 3166-1 assignments plus XK.
	if count != 250 {
		t.Errorf("%d country codes accepted, want 250", count)
	}
}

func TestCompile_IPAllowlist(t *testing.T) {
	tests := []struct {
		name       string
		cidrs      []string
		ok         bool
		wantInText string
	}{
		{"mixed families", []string{"203.0.113.0/24", "2001:db8::/32", "198.51.100.9"}, true, ""},
		{"empty", []string{}, false, "empty"},
		{"invalid entry", []string{"203.0.113.0/24", "203.0.113.0/33"}, false, "203.0.113.0/33"},
		{"too many", make([]string, MaxGuardrailCIDRs+1), false, "maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Guardrails{IPAllowlist: &IPAxis{CIDRs: tt.cidrs}}).Compile()
			if tt.ok {
				if err != nil {
					t.Errorf("Compile = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidGuardrails) {
				t.Fatalf("Compile = %v, want ErrInvalidGuardrails", err)
			}
			if !strings.Contains(err.Error(), tt.wantInText) || !strings.Contains(err.Error(), "ipAllowlist.cidrs") {
				t.Errorf("error %q does not name the field and %q", err, tt.wantInText)
			}
		})
	}
}

func TestCompile_InvalidCIDRIsAlsoErrInvalidCIDR(t *testing.T) {
	_, err := (&Guardrails{IPAllowlist: &IPAxis{CIDRs: []string{"nonsense"}}}).Compile()
	if !errors.Is(err, ErrInvalidGuardrails) || !errors.Is(err, ErrInvalidCIDR) {
		t.Errorf("Compile = %v, want both ErrInvalidGuardrails and ErrInvalidCIDR", err)
	}
}

func FuzzCompileGuardrails(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"ipAllowlist":{"cidrs":["203.0.113.0/24","2001:db8::/32"],"observe":true}}`,
		`{"countries":{"codes":["NO","SE","XK"]}}`,
		`{"countries":{"codes":["--","ZZ","EU","A1"]}}`,
		`{"timeWindow":{"start":"22:00","end":"06:00","timezone":"Europe/Oslo","days":["fri"]}}`,
		`{"timeWindow":{"start":"09:00","end":"09:00","timezone":"UTC"}}`,
		`{"timeWindow":{"start":"09:00","end":"17:00","timezone":"europe/oslo"}}`,
		`{"timeWindow":{"start":"09:00","end":"17:00","timezone":"Etc/GMT+1"}}`,
		`{"ipAllowlist":{"cidrs":[]},"countries":{"codes":[]},"timeWindow":{}}`,
		`{"ipAllowlist":null,"countries":{"codes":null}}`,
	} {
		f.Add([]byte(seed))
	}
	clients := []netip.Addr{netipZero, addr("203.0.113.7"), addr("2001:db8::7"), addr("::ffff:10.0.0.1")}
	geo := geoTable{addr("203.0.113.7"): "NO", addr("2001:db8::7"): "EU"}
	f.Fuzz(func(t *testing.T, data []byte) {
		var g Guardrails
		if json.Unmarshal(data, &g) != nil {
			return
		}
		p, err := g.Compile()
		if err != nil {
			if !errors.Is(err, ErrInvalidGuardrails) {
				t.Fatalf("Compile error %v does not wrap ErrInvalidGuardrails", err)
			}
			return
		}
		axes := len(p.Axes())
		for _, client := range clients {
			for _, now := range []time.Time{utc("2026-03-29T01:10:00Z"), utc("2026-10-25T00:30:00Z")} {
				d := p.Evaluate(client, now, geo)
				if len(d.Failures) > axes {
					t.Fatalf("%d failures from %d axes", len(d.Failures), axes)
				}
				blocked := false
				for _, failure := range d.Failures {
					blocked = blocked || !failure.Observe
				}
				if blocked != d.Blocked {
					t.Fatalf("Blocked = %v, want %v from %+v", d.Blocked, blocked, d.Failures)
				}
			}
		}
	})
}
