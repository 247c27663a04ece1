package guard

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ParseCIDRs parses allowlist entries. An entry is a CIDR prefix
// ("203.0.113.0/24", "2001:db8::/32") or a bare address, which means /32 or
// /128. An IPv4-mapped IPv6 prefix of /96 or longer is turned into the IPv4
// prefix it covers, because client addresses are compared as IPv4. An entry
// with surrounding spaces, a zone ("fe80::1%eth0") or host bits set beyond
// the prefix length ("10.1.2.3/8") is rejected with ErrInvalidCIDR naming
// the entry, because each of those usually hides a typing mistake.
func ParseCIDRs(entries []string) ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(entries))
	for _, entry := range entries {
		prefix, err := parseCIDR(entry)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, prefix)
	}
	return prefixes, nil
}

func parseCIDR(entry string) (netip.Prefix, error) {
	if entry == "" {
		return netip.Prefix{}, fmt.Errorf("%w: empty entry", ErrInvalidCIDR)
	}
	if strings.TrimSpace(entry) != entry {
		return netip.Prefix{}, fmt.Errorf("%w: %q has surrounding spaces; remove them",
			ErrInvalidCIDR, entry)
	}
	if strings.Contains(entry, "%") {
		return netip.Prefix{}, fmt.Errorf("%w: %q has an IPv6 zone; remove the %%zone part",
			ErrInvalidCIDR, entry)
	}

	if !strings.Contains(entry, "/") {
		addr, err := netip.ParseAddr(entry)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %q is neither an IP address nor a CIDR prefix",
				ErrInvalidCIDR, entry)
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}

	prefix, err := netip.ParsePrefix(entry)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %q is not a CIDR prefix (want address/length)",
			ErrInvalidCIDR, entry)
	}
	if masked := prefix.Masked(); masked != prefix {
		return netip.Prefix{}, fmt.Errorf("%w: %q has bits set past the prefix length; did you mean %s?",
			ErrInvalidCIDR, entry, masked)
	}
	return unmapPrefix(prefix), nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix of /96 or longer into the
// equivalent IPv4 prefix. A shorter prefix also covers non-mapped IPv6
// addresses and is kept as IPv6.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() || p.Bits() < 96 {
		return p
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
}

// Allowlist is a set of address prefixes with a fast membership test. It
// stores the prefixes as sorted, merged address ranges, so Contains is a
// binary search. An Allowlist is immutable and safe for concurrent use.
type Allowlist struct {
	v4 []addrRange
	v6 []addrRange
}

// addrRange is an inclusive range of addresses of one family.
type addrRange struct {
	first, last netip.Addr
}

// NewAllowlist builds an Allowlist from prefixes. Invalid prefixes are
// ignored, and IPv4-mapped IPv6 prefixes of /96 or longer count as IPv4.
func NewAllowlist(prefixes []netip.Prefix) *Allowlist {
	a := &Allowlist{}
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		p = unmapPrefix(p.Masked())
		r := addrRange{first: p.Addr(), last: lastAddr(p)}
		if r.first.Is4() {
			a.v4 = append(a.v4, r)
		} else {
			a.v6 = append(a.v6, r)
		}
	}
	a.v4 = mergeRanges(a.v4)
	a.v6 = mergeRanges(a.v6)
	return a
}

// Contains reports whether ip is inside one of the prefixes. An
// IPv4-mapped IPv6 address is compared as IPv4 and a zone is ignored. An
// invalid address, which stands for an unknown client, is never contained.
func (a *Allowlist) Contains(ip netip.Addr) bool {
	if a == nil || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")

	ranges := a.v6
	if ip.Is4() {
		ranges = a.v4
	}
	// Find the first range that ends at or after ip; ip is inside it when
	// the range starts at or before ip.
	i, _ := slices.BinarySearchFunc(ranges, ip, func(r addrRange, target netip.Addr) int {
		return r.last.Compare(target)
	})
	return i < len(ranges) && ranges[i].first.Compare(ip) <= 0
}

// Len returns the number of merged address ranges, for status output.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.v4) + len(a.v6)
}

// lastAddr returns the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		b := p.Addr().As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

// setHostBits sets every bit of b after the first bits bits.
func setHostBits(b []byte, bits int) {
	for i := range b {
		switch {
		case bits >= 8:
			bits -= 8
		case bits > 0:
			b[i] |= 0xff >> bits
			bits = 0
		default:
			b[i] = 0xff
		}
	}
}

// mergeRanges sorts ranges and merges overlapping and adjacent ones, so
// that each address is in at most one range and the list is ordered.
func mergeRanges(ranges []addrRange) []addrRange {
	if len(ranges) == 0 {
		return nil
	}
	slices.SortFunc(ranges, func(x, y addrRange) int { return x.first.Compare(y.first) })

	merged := ranges[:1]
	for _, r := range ranges[1:] {
		top := &merged[len(merged)-1]
		next := top.last.Next()
		if r.first.Compare(top.last) <= 0 || (next.IsValid() && r.first == next) {
			if r.last.Compare(top.last) > 0 {
				top.last = r.last
			}
			continue
		}
		merged = append(merged, r)
	}
	return slices.Clip(merged)
}
