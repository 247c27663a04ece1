package audit

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// AddressPolicy decides which addresses a webhook may reach. The zero
// value allows public unicast addresses only.
type AddressPolicy struct {
	// AllowPrivate also allows loopback, private (RFC 1918, unique local)
	// and shared (100.64.0.0/10) addresses.
	AllowPrivate bool
	// AllowLoopback also allows loopback addresses.
	AllowLoopback bool
}

// Addresses refused whatever the policy: cloud metadata services and
// ranges that have no legitimate webhook receiver.
var (
	alwaysRefused = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("169.254.0.0/16"),     // link-local, metadata at .169.254
		netip.MustParsePrefix("100.100.100.200/32"), // metadata (Alibaba)
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("224.0.0.0/4"),
		netip.MustParsePrefix("240.0.0.0/4"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("fd00:ec2::254/128"), // metadata (AWS, IPv6)
		netip.MustParsePrefix("ff00::/8"),
		netip.MustParsePrefix("::/128"),
	}
	privateRanges = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("fc00::/7"),
	}
	// nat64 embeds an IPv4 address in its last 32 bits.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
)

// CheckAddr returns ErrAddressNotAllowed, naming the reason, when ip may
// not be a webhook target under p.
func (p AddressPolicy) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case !ip.IsValid():
		return fmt.Errorf("%w: invalid address", ErrAddressNotAllowed)
	case ip.IsLoopback():
		if p.AllowLoopback || p.AllowPrivate {
			return nil
		}
		return fmt.Errorf("%w: %s is a loopback address; pass --webhook-allow-private to allow it", ErrAddressNotAllowed, ip)
	}
	for _, pre := range alwaysRefused {
		if pre.Contains(ip) {
			return fmt.Errorf("%w: %s is a link-local, metadata, multicast or reserved address", ErrAddressNotAllowed, ip)
		}
	}
	for _, pre := range privateRanges {
		if pre.Contains(ip) && !p.AllowPrivate {
			return fmt.Errorf("%w: %s is a private address; pass --webhook-allow-private to allow it", ErrAddressNotAllowed, ip)
		}
	}
	return nil
}

// CheckURL checks what can be known before a request: https (unless the
// policy allows plain http, see plainHTTPAllowed), and a literal IP host
// that the policy allows. Host names are checked again at dial time, on the
// address they resolve to.
func (p AddressPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse webhook url: %w", err)
	}
	ip, literal := netip.ParseAddr(u.Hostname())
	if u.Scheme != "https" && !p.plainHTTPAllowed(u.Hostname(), ip, literal == nil) {
		return fmt.Errorf("%w: %q; use https (http is allowed with --webhook-allow-private, and for loopback with --dev)", ErrInsecureURL, raw)
	}
	if literal == nil {
		return p.CheckAddr(ip)
	}
	return nil
}

// plainHTTPAllowed reports whether an http URL to host may be used: with
// AllowPrivate for any host, with AllowLoopback for a loopback host only.
func (p AddressPolicy) plainHTTPAllowed(host string, ip netip.Addr, literal bool) bool {
	switch {
	case p.AllowPrivate:
		return true
	case !p.AllowLoopback:
		return false
	case literal:
		return ip.Unmap().IsLoopback()
	}
	return host == "localhost"
}

// control refuses a connection before it is made when the resolved
// address is not allowed. It runs for every address the dialer tries, so
// a name that resolves to a public address first and a private one later
// (DNS rebinding) is caught on the address actually dialled.
func (p AddressPolicy) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAddressNotAllowed, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrAddressNotAllowed, host)
	}
	return p.CheckAddr(ip)
}

// DialContext returns a dial function that applies the policy to every
// connection and gives up after timeout.
func (p AddressPolicy) DialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, Control: p.control}
	return d.DialContext
}
