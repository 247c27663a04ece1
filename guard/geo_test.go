package guard_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/guard/geo"
)

// TestPolicy_LocalAddressesHaveNoCountry evaluates a country guardrail with
// the embedded table against addresses that have no country.
func TestPolicy_LocalAddressesHaveNoCountry(t *testing.T) {
	lookup := geo.NewEmbedded()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	countryOnly, err := (&guard.Guardrails{Countries: &guard.CountryAxis{Codes: []string{"NO"}}}).Compile()
	if err != nil {
		t.Fatal(err)
	}

	for _, ip := range []string{"10.1.2.3", "127.0.0.1", "169.254.10.10", "fd00::5", "100.64.0.1", "203.0.113.7"} {
		t.Run(ip, func(t *testing.T) {
			d := countryOnly.Evaluate(netip.MustParseAddr(ip), now, lookup)
			if !d.Blocked || len(d.Failures) != 1 {
				t.Fatalf("Evaluate = %+v, want blocked on the country axis", d)
			}
			if f := d.Failures[0]; f.Reason != guard.ReasonCountryUnknown || f.Observed != "unknown" {
				t.Errorf("failure = %+v, want %s", f, guard.ReasonCountryUnknown)
			}
		})
	}

	t.Run("address in the allowed country", func(t *testing.T) {
		if d := countryOnly.Evaluate(netip.MustParseAddr("84.208.0.1"), now, lookup); d.Blocked {
			t.Errorf("Evaluate = %+v, want allowed", d)
		}
	})

	t.Run("private address inside an IP allowlist", func(t *testing.T) {
		both, err := (&guard.Guardrails{
			IPAllowlist: &guard.IPAxis{CIDRs: []string{"10.0.0.0/8"}},
			Countries:   &guard.CountryAxis{Codes: []string{"NO"}},
		}).Compile()
		if err != nil {
			t.Fatal(err)
		}
		// Every configured axis must pass; the IP axis passing does not
		// excuse the unknown country.
		d := both.Evaluate(netip.MustParseAddr("10.1.2.3"), now, lookup)
		if !d.Blocked || len(d.Failures) != 1 || d.Failures[0].Axis != guard.AxisCountry {
			t.Errorf("Evaluate = %+v, want blocked on the country axis only", d)
		}
	})
}
