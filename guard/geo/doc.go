// Package geo maps client addresses to countries for the guardrail country
// axis.
//
// Two implementations of guard.GeoLookup are provided: Embedded, which uses
// the IP-to-country table compiled into the binary (github.com/phuslu/iploc)
// and needs no set-up, and MMDB, which reads an operator-supplied MaxMind DB
// file such as GeoLite2-Country or DB-IP Country Lite. Both return unknown
// for addresses that have no meaningful country (loopback, private, shared
// CGNAT, link-local, multicast and other non-routable space) and for any
// value that is not an assigned ISO 3166-1 alpha-2 code, so a placeholder
// such as "ZZ", "--" or a continent code never matches a country.
package geo
