package geo

import (
	"net/netip"
	"strings"
	"testing"
)

func TestEmbedded_KnownAddresses(t *testing.T) {
	geo := NewEmbedded()
	// Expected codes are those of the pinned iploc release in go.mod.
	tests := []struct {
		ip   string
		want string
	}{
		{"8.8.8.8", "US"},
		{"84.208.0.1", "NO"},
		{"::ffff:84.208.0.1", "NO"},
		{"2a01:79c::1", "NO"},
		{"2001:4860:4860::8888", "US"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			code, ok := geo.Country(netip.MustParseAddr(tt.ip))
			if !ok || code != tt.want {
				t.Errorf("Country(%s) = %q, %v; want %q", tt.ip, code, ok, tt.want)
			}
		})
	}
}

func TestEmbedded_UnknownAddresses(t *testing.T) {
	geo := NewEmbedded()
	tests := []string{
		"10.1.2.3", "127.0.0.1", "169.254.10.10", "fd00::5", "100.64.0.1", "172.16.5.4",
		"192.168.1.1", "0.0.0.0", "255.255.255.255", "224.0.0.1", "::1", "::", "fe80::1",
		"ff02::1", "::ffff:10.1.2.3", "::ffff:127.0.0.1",
		// Documentation ranges have no record in the table.
		"203.0.113.7", "198.51.100.7", "192.0.2.1", "2001:db8::1",
	}
	for _, ip := range tests {
		t.Run(ip, func(t *testing.T) {
			if code, ok := geo.Country(netip.MustParseAddr(ip)); ok {
				t.Errorf("Country(%s) = %q, want unknown", ip, code)
			}
		})
	}
	if code, ok := geo.Country(netip.Addr{}); ok {
		t.Errorf("Country(invalid) = %q, want unknown", code)
	}
}

func TestEmbedded_NonRoutableAlwaysUnknown(t *testing.T) {
	geo := NewEmbedded()
	for _, p := range nonRoutable {
		for _, ip := range []netip.Addr{p.Addr(), lastAddr(p)} {
			if code, ok := geo.Country(ip); ok {
				t.Errorf("Country(%s) in %s = %q, want unknown", ip, p, code)
			}
		}
	}
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	last, _ := netip.AddrFromSlice(b)
	return last
}

func TestEmbedded_Build(t *testing.T) {
	if build := NewEmbedded().Build(); !strings.HasPrefix(build, "iploc v") {
		t.Errorf("Build = %q, want the iploc version", build)
	}
}
