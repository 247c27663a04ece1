package geo

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

func country(code string) map[string]any {
	return map[string]any{"iso_code": code, "names": map[string]any{"en": code}}
}

// testDatabase holds records that differ in the field that could decide the
// country.
var testDatabase = mmdbFile{
	databaseType: "Keyward-Test-Country",
	buildEpoch:   1767225600, // 2026-01-01T00:00:00Z
	records: []mmdbRecord{
		// In use in Germany, registered in the United States.
		{"203.0.113.0/28", map[string]any{"country": country("DE"), "registered_country": country("US")}},
		// An anonymous proxy: only a registered country.
		{"203.0.113.16/28", map[string]any{
			"registered_country": country("US"),
			"traits":             map[string]any{"is_anonymous_proxy": true},
		}},
		// Legacy data with a continent code in the country field.
		{"203.0.113.32/28", map[string]any{"country": country("EU")}},
		{"203.0.113.48/28", map[string]any{"country": country("AP")}},
		{"203.0.113.64/28", map[string]any{"country": country("--")}},
		{"203.0.113.80/28", map[string]any{"country": country("ZZ")}},
		{"203.0.113.96/28", map[string]any{"country": country("NO")}},
		{"203.0.113.112/28", map[string]any{"country": map[string]any{"names": map[string]any{"en": "Nowhere"}}}},
		{"203.0.113.128/28", map[string]any{"country": country("XK")}},
		{"203.0.113.144/28", map[string]any{"country": uint32(47)}},
		// Private space with a record, as some databases have.
		{"10.0.0.0/8", map[string]any{"country": country("NO")}},
		{"2001:db8::/32", map[string]any{"country": country("SE")}},
	},
}

func TestMMDB_CountryField(t *testing.T) {
	db, err := OpenMMDB(writeMMDB(t, testDatabase))
	if err != nil {
		t.Fatalf("OpenMMDB: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	tests := []struct {
		name string
		ip   string
		want string // "" means unknown
	}{
		{"country differs from registered country", "203.0.113.1", "DE"},
		{"IPv4-mapped address", "::ffff:203.0.113.1", "DE"},
		{"anonymous proxy with only a registered country", "203.0.113.17", ""},
		{"continent code EU", "203.0.113.33", ""},
		{"region code AP", "203.0.113.49", ""},
		{"placeholder --", "203.0.113.65", ""},
		{"unknown ZZ", "203.0.113.81", ""},
		{"assigned country", "203.0.113.97", "NO"},
		{"country without iso_code", "203.0.113.113", ""},
		{"Kosovo", "203.0.113.129", "XK"},
		{"country of the wrong type", "203.0.113.145", ""},
		{"no record", "198.51.100.7", ""},
		{"IPv6 record", "2001:db8::5", "SE"},
		{"IPv6 without record", "2001:db9::5", ""},
		{"private space with a record", "10.1.2.3", ""},
		{"loopback", "127.0.0.1", ""},
		{"invalid address", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			code, ok := db.Country(ip)
			if tt.want == "" {
				if ok {
					t.Errorf("Country(%s) = %q, want unknown", tt.ip, code)
				}
				return
			}
			if !ok || code != tt.want {
				t.Errorf("Country(%s) = %q, %v; want %q", tt.ip, code, ok, tt.want)
			}
		})
	}
}

func TestMMDB_Build(t *testing.T) {
	db, err := OpenMMDB(writeMMDB(t, testDatabase))
	if err != nil {
		t.Fatalf("OpenMMDB: %v", err)
	}
	defer db.Close()
	if got, want := db.Build(), "Keyward-Test-Country 2026-01-01T00:00:00Z"; got != want {
		t.Errorf("Build = %q, want %q", got, want)
	}

	older := testDatabase
	older.buildEpoch = 1764547200 // 2025-12-01T00:00:00Z
	previous, err := OpenMMDB(writeMMDB(t, older))
	if err != nil {
		t.Fatalf("OpenMMDB: %v", err)
	}
	defer previous.Close()
	if previous.Build() == db.Build() {
		t.Errorf("two builds report the same Build %q", db.Build())
	}
}

func TestMMDB_OpenRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	good, err := testDatabase.encode()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"empty":        {},
		"not a db":     []byte("this is not a MaxMind DB file"),
		"truncated":    good[:len(good)/3],
		"bad metadata": append(append([]byte{}, good[:len(good)-20]...), make([]byte, 20)...),
	}
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".mmdb")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := OpenMMDB(path)
			if err == nil {
				db.Close()
				t.Fatal("OpenMMDB accepted a bad file")
			}
			if !errors.Is(err, ErrInvalidDatabase) {
				t.Errorf("OpenMMDB = %v, want ErrInvalidDatabase", err)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		_, err := OpenMMDB(filepath.Join(dir, "missing.mmdb"))
		if !errors.Is(err, ErrInvalidDatabase) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("OpenMMDB = %v, want ErrInvalidDatabase wrapping os.ErrNotExist", err)
		}
	})
}

// TestMMDB_PolicyDecidesOnCountryField evaluates a country guardrail that
// allows only US against records whose registered country is US.
func TestMMDB_PolicyDecidesOnCountryField(t *testing.T) {
	db, err := OpenMMDB(writeMMDB(t, testDatabase))
	if err != nil {
		t.Fatalf("OpenMMDB: %v", err)
	}
	defer db.Close()
	policy, err := (&guard.Guardrails{Countries: &guard.CountryAxis{Codes: []string{"US"}}}).Compile()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, ip, observed, reason string
	}{
		{"used in DE, registered in US", "203.0.113.1", "DE", guard.ReasonCountryNotAllowed},
		{"anonymous proxy registered in US", "203.0.113.17", "unknown", guard.ReasonCountryUnknown},
		{"legacy continent code", "203.0.113.33", "unknown", guard.ReasonCountryUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := policy.Evaluate(netip.MustParseAddr(tt.ip), time.Now(), db)
			if !d.Blocked || len(d.Failures) != 1 {
				t.Fatalf("Evaluate = %+v, want blocked", d)
			}
			if f := d.Failures[0]; f.Observed != tt.observed || f.Reason != tt.reason {
				t.Errorf("failure = %+v, want observed %s, reason %s", f, tt.observed, tt.reason)
			}
		})
	}
}
