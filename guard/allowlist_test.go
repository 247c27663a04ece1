package guard

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestParseCIDRs_Table(t *testing.T) {
	tests := []struct {
		entry string
		want  string // "" means rejected with ErrInvalidCIDR
	}{
		{"203.0.113.0/24", "203.0.113.0/24"},
		{"203.0.113.7", "203.0.113.7/32"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"2001:db8::7", "2001:db8::7/128"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"::/0", "::/0"},
		{"::ffff:203.0.113.7", "203.0.113.7/32"},
		{"::ffff:203.0.113.0/120", "203.0.113.0/24"},
		{"::ffff:0:0/96", "0.0.0.0/0"},
		// Shorter than /96 also covers non-mapped IPv6, so it stays IPv6.
		{"::fffe:0:0/95", "::fffe:0:0/95"},
		{"", ""},
		{" 203.0.113.0/24", ""},
		{"203.0.113.0/24 ", ""},
		{"203.0.113.7/24", ""},
		{"10.1.2.3/8", ""},
		{"203.0.113.0/33", ""},
		{"2001:db8::/129", ""},
		{"203.0.113.0/", ""},
		{"/24", ""},
		{"fe80::1%eth0", ""},
		{"fe80::%eth0/64", ""},
		{"203.0.113", ""},
		{"203.0.113.007", ""},
		{"example.test", ""},
		{"203.0.113.0-203.0.113.9", ""},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			got, err := ParseCIDRs([]string{tt.entry})
			if tt.want == "" {
				if !errors.Is(err, ErrInvalidCIDR) {
					t.Errorf("ParseCIDRs(%q) = %v, %v; want ErrInvalidCIDR", tt.entry, got, err)
				}
				return
			}
			if err != nil || len(got) != 1 || got[0].String() != tt.want {
				t.Errorf("ParseCIDRs(%q) = %v, %v; want %s", tt.entry, got, err, tt.want)
			}
		})
	}
}

func TestParseCIDRs_ErrorNamesEntryAndFix(t *testing.T) {
	_, err := ParseCIDRs([]string{"203.0.113.0/24", "10.1.2.3/8"})
	if err == nil || !strings.Contains(err.Error(), "10.1.2.3/8") || !strings.Contains(err.Error(), "10.0.0.0/8") {
		t.Errorf("error %v does not name the entry and the fix", err)
	}
}

func TestAllowlist_Contains(t *testing.T) {
	list := NewAllowlist(mustPrefixes(t, "203.0.113.0/24", "198.51.100.9", "2001:db8::/48", "10.0.0.0/8"))
	tests := []struct {
		ip   string
		want bool
	}{
		{"203.0.113.0", true},
		{"203.0.113.255", true},
		{"203.0.114.0", false},
		{"203.0.112.255", false},
		{"198.51.100.9", true},
		{"198.51.100.10", false},
		{"::ffff:203.0.113.7", true},
		{"::ffff:198.51.100.10", false},
		{"2001:db8::1", true},
		{"2001:db8:0:ffff:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1::", false},
		{"fe80::1%eth0", false},
		{"10.255.255.255", true},
		{"11.0.0.0", false},
		{"0.0.0.0", false},
		{"::", false},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := list.Contains(addr(tt.ip)); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestAllowlist_InvalidAndNil(t *testing.T) {
	list := NewAllowlist(mustPrefixes(t, "0.0.0.0/0", "::/0"))
	if list.Contains(netip.Addr{}) {
		t.Error("an invalid (unknown) address is contained in 0.0.0.0/0")
	}
	var none *Allowlist
	if none.Contains(addr("203.0.113.7")) {
		t.Error("a nil Allowlist contains an address")
	}
	if NewAllowlist(nil).Contains(addr("203.0.113.7")) {
		t.Error("an empty Allowlist contains an address")
	}
}

func TestAllowlist_IPv6ZeroPrefixDoesNotCoverIPv4(t *testing.T) {
	list := NewAllowlist(mustPrefixes(t, "::/0"))
	if list.Contains(addr("203.0.113.7")) || list.Contains(addr("::ffff:203.0.113.7")) {
		t.Error("::/0 covers an IPv4 client; IPv4 clients need an IPv4 entry")
	}
}

// TestAllowlist_MatchesPrefixScan checks the merged-range search against a
// plain scan of the prefixes for random prefixes and addresses.
func TestAllowlist_MatchesPrefixScan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v6 := rapid.Bool().Draw(t, "v6")
		randomAddr := func(label string) netip.Addr {
			if v6 {
				var b [16]byte
				// Keep addresses inside a small space so that prefixes and
				// addresses overlap often.
				b[0], b[1] = 0x20, 0x01
				b[15] = rapid.Byte().Draw(t, label+"-low")
				b[14] = rapid.ByteRange(0, 3).Draw(t, label+"-high")
				return netip.AddrFrom16(b)
			}
			return netip.AddrFrom4([4]byte{10, 0, rapid.ByteRange(0, 3).Draw(t, label+"-high"),
				rapid.Byte().Draw(t, label+"-low")})
		}

		var prefixes []netip.Prefix
		for range rapid.IntRange(0, 8).Draw(t, "count") {
			a := randomAddr("prefix")
			bits := rapid.IntRange(a.BitLen()-12, a.BitLen()).Draw(t, "bits")
			p, _ := a.Prefix(bits)
			prefixes = append(prefixes, p)
		}
		list := NewAllowlist(prefixes)

		for range 16 {
			ip := randomAddr("ip")
			want := false
			for _, p := range prefixes {
				if p.Contains(ip) {
					want = true
				}
			}
			if got := list.Contains(ip); got != want {
				t.Fatalf("Contains(%s) = %v, want %v for %v", ip, got, want, prefixes)
			}
		}
	})
}

func FuzzParseCIDRs(f *testing.F) {
	for _, seed := range []string{
		"203.0.113.0/24", "203.0.113.7", "2001:db8::/32", "::ffff:203.0.113.0/120", "10.1.2.3/8",
		"fe80::1%eth0", " 1.2.3.4", "0.0.0.0/0", "::/0", "1.2.3.4/33", "", "/", "::fffe:0:0/95",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		prefixes, err := ParseCIDRs([]string{entry})
		if err != nil {
			if !errors.Is(err, ErrInvalidCIDR) {
				t.Fatalf("ParseCIDRs(%q) returned %v, not ErrInvalidCIDR", entry, err)
			}
			return
		}
		p := prefixes[0]
		if !p.IsValid() || p.Masked() != p {
			t.Fatalf("ParseCIDRs(%q) = %v, not a valid masked prefix", entry, p)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			t.Fatalf("ParseCIDRs(%q) = %v, an IPv4-mapped prefix left as IPv6", entry, p)
		}
		list := NewAllowlist(prefixes)
		if !list.Contains(p.Addr()) {
			t.Fatalf("Allowlist of %v does not contain its first address", p)
		}
	})
}
