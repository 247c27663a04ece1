package geo

import (
	"net/netip"

	"github.com/phuslu/iploc"

	"github.com/keyward/keyward/guard"
)

// Embedded looks countries up in the IP-to-country table compiled into the
// binary by github.com/phuslu/iploc. The table returns "ZZ" for addresses
// without a record, which counts as unknown. It needs no file and no
// set-up, and is safe for concurrent use.
//
// NOTE: iploc skips IPv6 entirely when the IPLOC_IPV4ONLY environment
// variable is set; every IPv6 address is then unknown.
type Embedded struct{}

var _ guard.GeoLookup = (*Embedded)(nil)

// NewEmbedded returns the embedded lookup.
func NewEmbedded() *Embedded {
	return &Embedded{}
}

// Country returns the country of ip, or ok=false when ip is non-routable or
// the table has no assigned country code for it.
func (e *Embedded) Country(ip netip.Addr) (string, bool) {
	ip, routable := lookupAddr(ip)
	if !routable {
		return "", false
	}
	code := iploc.IPCountry(ip)
	if !guard.IsCountryCode(code) {
		return "", false
	}
	return code, true
}

// Build returns the version of the embedded table, for status output and
// audit records.
func (e *Embedded) Build() string {
	return "iploc " + iploc.Version
}
