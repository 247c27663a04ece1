package guard

import (
	"fmt"
	"net/netip"
)

// ParseTrustedProxies parses the trusted-proxy list: CIDR prefixes or bare
// addresses, as ParseCIDRs accepts them.
func ParseTrustedProxies(cidrs []string) ([]netip.Prefix, error) {
	prefixes, err := ParseCIDRs(cidrs)
	if err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	return prefixes, nil
}

// ResolveClientIP returns the address on whose behalf a request arrived.
//
// When peer, the TCP peer, is not inside trusted, the client is the peer and
// X-Forwarded-For is ignored. untrustedForwarded is then true if the header
// carried anything, so the caller can log the misconfiguration. When peer is
// a trusted proxy, proxy is the peer and the client is the right-most
// X-Forwarded-For entry that is not itself inside trusted. The values of
// repeated X-Forwarded-For headers are read as one list, in order.
//
// A trusted proxy is never the client, so that a proxy's own address can
// never satisfy an allowlist. The client is therefore the invalid
// netip.Addr (unknown) when a trusted peer sent no X-Forwarded-For, when
// every entry is a trusted proxy, or when the walk from the right reaches an
// entry that is not an IP address before reaching an untrusted one: nothing
// to the left of a malformed entry can be trusted. Callers must treat an
// invalid client as failing every address check; Allowlist.Contains does.
//
// Addresses are returned with IPv4-mapped IPv6 unmapped to IPv4. An entry
// may carry a port ("192.0.2.1:5000", "[2001:db8::1]:443") or IPv6
// brackets, which are removed. Empty list elements are skipped. Entries with
// an IPv6 zone are malformed.
func ResolveClientIP(peer netip.Addr, xff [][]byte, trusted []netip.Prefix) (client, proxy netip.Addr, untrustedForwarded bool) {
	peer = peer.Unmap()
	if !inPrefixes(peer, trusted) {
		return peer, netip.Addr{}, hasContent(xff)
	}

	for h := len(xff) - 1; h >= 0; h-- {
		value := xff[h]
		end := len(value)
		for end > 0 {
			start := lastComma(value[:end]) + 1
			element := trimSpace(value[start:end])
			end = start - 1
			if len(element) == 0 {
				continue
			}

			addr, ok := parseForwardedAddr(element)
			if !ok {
				return netip.Addr{}, peer, false
			}
			if !inPrefixes(addr, trusted) {
				return addr, peer, false
			}
		}
	}
	return netip.Addr{}, peer, false
}

// inPrefixes reports whether addr is inside one of prefixes, comparing an
// IPv4-mapped prefix as IPv4.
func inPrefixes(addr netip.Addr, prefixes []netip.Prefix) bool {
	if !addr.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if unmapPrefix(p).Contains(addr) {
			return true
		}
	}
	return false
}

// parseForwardedAddr parses one X-Forwarded-For element: an address,
// optionally in brackets or with a port. It returns the address unmapped.
func parseForwardedAddr(element []byte) (netip.Addr, bool) {
	text := string(element)
	if addr, err := netip.ParseAddr(text); err == nil {
		return validForwarded(addr)
	}
	if addrPort, err := netip.ParseAddrPort(text); err == nil {
		return validForwarded(addrPort.Addr())
	}
	if len(text) > 2 && text[0] == '[' && text[len(text)-1] == ']' {
		if addr, err := netip.ParseAddr(text[1 : len(text)-1]); err == nil && addr.Is6() {
			return validForwarded(addr)
		}
	}
	return netip.Addr{}, false
}

func validForwarded(addr netip.Addr) (netip.Addr, bool) {
	if addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

func hasContent(values [][]byte) bool {
	for _, v := range values {
		if len(trimSpace(v)) > 0 {
			return true
		}
	}
	return false
}

func lastComma(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ',' {
			return i
		}
	}
	return -1
}

// trimSpace removes the optional whitespace (space and tab) that HTTP
// allows around list elements.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
