package guard

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func mustPrefixes(t testing.TB, entries ...string) []netip.Prefix {
	t.Helper()
	prefixes, err := ParseCIDRs(entries)
	if err != nil {
		t.Fatalf("ParseCIDRs(%q): %v", entries, err)
	}
	return prefixes
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func xff(values ...string) [][]byte {
	out := make([][]byte, len(values))
	for i, v := range values {
		out[i] = []byte(v)
	}
	return out
}

func TestResolveClientIP_Table(t *testing.T) {
	trusted := mustPrefixes(t, "10.9.0.0/24", "2001:db8:ffff::/48")
	tests := []struct {
		name             string
		peer             string
		xff              [][]byte
		trusted          []netip.Prefix
		wantClient       string // "" means the invalid (unknown) address
		wantProxy        string
		wantUntrustedXFF bool
	}{
		{name: "direct peer", peer: "203.0.113.7", trusted: trusted, wantClient: "203.0.113.7"},
		{name: "direct IPv4-mapped peer", peer: "::ffff:203.0.113.7", trusted: trusted, wantClient: "203.0.113.7"},
		{name: "direct IPv6 peer", peer: "2001:db8::7", trusted: trusted, wantClient: "2001:db8::7"},
		{name: "spoofed header from untrusted peer", peer: "198.51.100.20", xff: xff("203.0.113.7"),
			trusted: trusted, wantClient: "198.51.100.20", wantUntrustedXFF: true},
		{name: "blank header from untrusted peer", peer: "198.51.100.20", xff: xff("  "),
			trusted: trusted, wantClient: "198.51.100.20"},
		{name: "one trusted hop", peer: "10.9.0.5", xff: xff("203.0.113.7"), trusted: trusted,
			wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "mapped trusted peer", peer: "::ffff:10.9.0.5", xff: xff("203.0.113.7"), trusted: trusted,
			wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "client prepends a fake entry", peer: "10.9.0.5", xff: xff("192.0.2.66, 203.0.113.7"),
			trusted: trusted, wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "two trusted hops", peer: "10.9.0.5", xff: xff("192.0.2.66, 203.0.113.7, 10.9.0.6"),
			trusted: trusted, wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "repeated headers read in order", peer: "10.9.0.5", xff: xff("192.0.2.66", "203.0.113.7, 10.9.0.6"),
			trusted: trusted, wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "last header decides", peer: "10.9.0.5", xff: xff("203.0.113.7", "198.51.100.9"),
			trusted: trusted, wantClient: "198.51.100.9", wantProxy: "10.9.0.5"},
		{name: "mapped entry", peer: "10.9.0.5", xff: xff("::ffff:203.0.113.7"), trusted: trusted,
			wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "mapped trusted entry skipped", peer: "10.9.0.5", xff: xff("203.0.113.7, ::ffff:10.9.0.6"),
			trusted: trusted, wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "IPv6 entry", peer: "2001:db8:ffff::1", xff: xff("2001:db8::42"), trusted: trusted,
			wantClient: "2001:db8::42", wantProxy: "2001:db8:ffff::1"},
		{name: "entry with port", peer: "10.9.0.5", xff: xff("203.0.113.7:51234"), trusted: trusted,
			wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "bracketed IPv6 with port", peer: "10.9.0.5", xff: xff("[2001:db8::42]:443"), trusted: trusted,
			wantClient: "2001:db8::42", wantProxy: "10.9.0.5"},
		{name: "bracketed IPv6", peer: "10.9.0.5", xff: xff("[2001:db8::42]"), trusted: trusted,
			wantClient: "2001:db8::42", wantProxy: "10.9.0.5"},
		{name: "empty elements skipped", peer: "10.9.0.5", xff: xff(",203.0.113.7 ,, \t,"), trusted: trusted,
			wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "trusted peer without header", peer: "10.9.0.5", trusted: trusted, wantProxy: "10.9.0.5"},
		{name: "trusted peer with empty header", peer: "10.9.0.5", xff: xff(""), trusted: trusted,
			wantProxy: "10.9.0.5"},
		{name: "every entry trusted", peer: "10.9.0.5", xff: xff("10.9.0.7, 10.9.0.6"), trusted: trusted,
			wantProxy: "10.9.0.5"},
		{name: "garbage right-most entry", peer: "10.9.0.5", xff: xff("203.0.113.7, unknown"),
			trusted: trusted, wantProxy: "10.9.0.5"},
		{name: "garbage behind a trusted hop", peer: "10.9.0.5", xff: xff("203.0.113.7, garbage, 10.9.0.6"),
			trusted: trusted, wantProxy: "10.9.0.5"},
		{name: "garbage left of the client ignored", peer: "10.9.0.5", xff: xff("garbage, 203.0.113.7"),
			trusted: trusted, wantClient: "203.0.113.7", wantProxy: "10.9.0.5"},
		{name: "entry with zone", peer: "10.9.0.5", xff: xff("fe80::1%eth0"), trusted: trusted,
			wantProxy: "10.9.0.5"},
		{name: "obfuscated identifier", peer: "10.9.0.5", xff: xff("_hidden"), trusted: trusted,
			wantProxy: "10.9.0.5"},
		{name: "IPv4 with leading zeros", peer: "10.9.0.5", xff: xff("203.0.113.007"), trusted: trusted,
			wantProxy: "10.9.0.5"},
		{name: "no trusted proxies", peer: "10.9.0.5", xff: xff("203.0.113.7"), trusted: nil,
			wantClient: "10.9.0.5", wantUntrustedXFF: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, proxy, untrusted := ResolveClientIP(addr(tt.peer), tt.xff, tt.trusted)
			if got := addrText(client); got != tt.wantClient {
				t.Errorf("client = %q, want %q", got, tt.wantClient)
			}
			if got := addrText(proxy); got != tt.wantProxy {
				t.Errorf("proxy = %q, want %q", got, tt.wantProxy)
			}
			if untrusted != tt.wantUntrustedXFF {
				t.Errorf("untrustedForwarded = %v, want %v", untrusted, tt.wantUntrustedXFF)
			}
		})
	}
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// TestResolveClientIP_ProxyNeverSatisfiesAllowlist follows a node behind a
// load balancer at 10.9.0.5 through three set-ups.
func TestResolveClientIP_ProxyNeverSatisfiesAllowlist(t *testing.T) {
	lb := addr("10.9.0.5")
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	policyFor := func(cidr string) *Policy {
		t.Helper()
		p, err := (&Guardrails{IPAllowlist: &IPAxis{CIDRs: []string{cidr}}}).Compile()
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		return p
	}

	t.Run("trusted load balancer forwards the client", func(t *testing.T) {
		client, proxy, untrusted := ResolveClientIP(lb, xff("203.0.113.7"), mustPrefixes(t, "10.9.0.5"))
		if client != addr("203.0.113.7") || proxy != lb || untrusted {
			t.Fatalf("ResolveClientIP = %v, %v, %v; want 203.0.113.7 via 10.9.0.5", client, proxy, untrusted)
		}
		if d := policyFor("203.0.113.0/24").Evaluate(client, now, nil); d.Blocked {
			t.Errorf("client inside the allowlist blocked: %+v", d)
		}
	})

	t.Run("load balancer not configured as trusted", func(t *testing.T) {
		client, proxy, untrusted := ResolveClientIP(lb, xff("203.0.113.7"), nil)
		if client != lb || proxy.IsValid() || !untrusted {
			t.Fatalf("ResolveClientIP = %v, %v, %v; want the peer 10.9.0.5 and untrustedForwarded",
				client, proxy, untrusted)
		}
		d := policyFor("203.0.113.0/24").Evaluate(client, now, nil)
		if !d.Blocked || len(d.Failures) != 1 || d.Failures[0].Observed != "10.9.0.5" {
			t.Errorf("Evaluate = %+v, want blocked naming 10.9.0.5", d)
		}
	})

	t.Run("allowlist names the load balancer subnet", func(t *testing.T) {
		client, proxy, _ := ResolveClientIP(lb, xff("198.51.100.9"), mustPrefixes(t, "10.9.0.5"))
		if client != addr("198.51.100.9") || proxy != lb {
			t.Fatalf("ResolveClientIP = %v, %v; want 198.51.100.9 via 10.9.0.5", client, proxy)
		}
		if d := policyFor("10.9.0.0/24").Evaluate(client, now, nil); !d.Blocked {
			t.Errorf("request through the load balancer allowed by the proxy's subnet: %+v", d)
		}
	})

	t.Run("trusted proxy without a forwarded client", func(t *testing.T) {
		client, _, _ := ResolveClientIP(lb, nil, mustPrefixes(t, "10.9.0.0/24"))
		d := policyFor("10.9.0.0/24").Evaluate(client, now, nil)
		if !d.Blocked || d.Failures[0].Reason != ReasonClientUnknown {
			t.Errorf("Evaluate = %+v, want blocked with %s", d, ReasonClientUnknown)
		}
	})
}

func TestParseTrustedProxies_RejectsInvalid(t *testing.T) {
	if _, err := ParseTrustedProxies([]string{"10.9.0.0/24", "nonsense"}); !errors.Is(err, ErrInvalidCIDR) {
		t.Errorf("ParseTrustedProxies = %v, want ErrInvalidCIDR", err)
	}
	prefixes, err := ParseTrustedProxies([]string{"10.9.0.5", "::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatalf("ParseTrustedProxies: %v", err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.9.0.5/32"), netip.MustParsePrefix("10.0.0.0/8")}
	if len(prefixes) != 2 || prefixes[0] != want[0] || prefixes[1] != want[1] {
		t.Errorf("ParseTrustedProxies = %v, want %v", prefixes, want)
	}
}
