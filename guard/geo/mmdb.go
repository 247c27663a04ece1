package geo

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/keyward/keyward/guard"
)

// ErrInvalidDatabase means a MaxMind DB file could not be opened or failed
// verification.
var ErrInvalidDatabase = errors.New("geo: invalid MaxMind DB file")

// MMDB looks countries up in an operator-supplied MaxMind DB file
// (GeoLite2-Country, GeoIP2-City, DB-IP Country Lite and others with the
// same layout).
//
// The decision uses the record's country.iso_code only: the country where
// the address is in use. registered_country (where the block is registered)
// and represented_country are never read, so a record with only a
// registered_country, as anonymous-proxy records have, is unknown. A code
// that is not an assigned ISO 3166-1 alpha-2 country, such as the continent
// codes EU and AP in legacy data, is unknown too. An MMDB is safe for
// concurrent use until Close.
type MMDB struct {
	reader *maxminddb.Reader
	build  string
}

var _ guard.GeoLookup = (*MMDB)(nil)

// OpenMMDB opens and verifies the MaxMind DB file at path. The file is
// memory-mapped, so it must not be rewritten in place while open. To update
// it, rename a new file over it and open that.
func OpenMMDB(path string) (*MMDB, error) {
	reader, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrInvalidDatabase, path, err)
	}
	if err := reader.Verify(); err != nil {
		_ = reader.Close()
		return nil, fmt.Errorf("%w: verify %s: %w", ErrInvalidDatabase, path, err)
	}

	meta := reader.Metadata
	build := fmt.Sprintf("%s %s", meta.DatabaseType,
		meta.BuildTime().UTC().Format(time.RFC3339))
	return &MMDB{reader: reader, build: build}, nil
}

// Country returns the country.iso_code of ip, or ok=false when ip is
// non-routable, has no record, has no country.iso_code, or the code is not
// an assigned country.
func (m *MMDB) Country(ip netip.Addr) (string, bool) {
	ip, routable := lookupAddr(ip)
	if !routable {
		return "", false
	}

	var code string
	if err := m.reader.Lookup(ip).DecodePath(&code, "country", "iso_code"); err != nil {
		return "", false
	}
	if !guard.IsCountryCode(code) {
		return "", false
	}
	return code, true
}

// Build returns the database type and build time, for example
// "GeoLite2-Country 2026-01-20T08:00:00Z", for status output and audit
// records, so that nodes running different builds can be detected.
func (m *MMDB) Build() string {
	return m.build
}

// Close releases the memory map. Country must not be called afterwards.
func (m *MMDB) Close() error {
	return m.reader.Close()
}
