package guard

import (
	"archive/zip"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// zoneinfoZip is the IANA time zone database (release 2025c) as shipped in
// Go's lib/time/zoneinfo.zip. Guard loads zones only from this copy, never
// from the host: time.LoadLocation prefers the host's /usr/share/zoneinfo
// over the time/tzdata package, so two nodes with different host data
// could decide a window differently, a scratch image would have no data,
// and a case-insensitive filesystem would accept "europe/oslo". To update
// the data, copy a newer $(go env GOROOT)/lib/time/zoneinfo.zip over this
// file and change the release named here and in CheckZoneName's message.
//
//go:embed zoneinfo.zip
var zoneinfoZip []byte

// zoneDatabase indexes the embedded archive by exact zone name and caches
// loaded locations. It is package state only because the data is constant.
type zoneDatabase struct {
	files map[string]*zip.File
	// lowerNames maps a lower-cased name to the real one, for the hint in
	// a wrong-case error.
	lowerNames map[string]string

	mu        sync.Mutex
	locations map[string]*time.Location
}

var zones = sync.OnceValue(func() *zoneDatabase {
	reader, err := zip.NewReader(bytes.NewReader(zoneinfoZip), int64(len(zoneinfoZip)))
	if err != nil {
		panic("guard: embedded zoneinfo.zip is unreadable: " + err.Error())
	}
	db := &zoneDatabase{
		files:      make(map[string]*zip.File, len(reader.File)),
		lowerNames: make(map[string]string, len(reader.File)),
		locations:  make(map[string]*time.Location),
	}
	for _, f := range reader.File {
		db.files[f.Name] = f
		db.lowerNames[strings.ToLower(f.Name)] = f.Name
	}
	return db
})

// LoadZone returns the location named name from the embedded zone
// database, after the checks of CheckZoneName. Names are matched exactly,
// with case.
func LoadZone(name string) (*time.Location, error) {
	if err := CheckZoneName(name); err != nil {
		return nil, err
	}
	return zones().load(name)
}

// CheckZoneName rejects zone names that a window must not use:
//   - "" and "Local", which mean a different zone on each host;
//   - names with surrounding or inner spaces;
//   - names without a '/' other than "UTC": abbreviations such as CEST, EST,
//     CET or MST, and legacy names such as EST5EDT, are fixed offsets or
//     ambiguous, and an hour off for half the year;
//   - "Etc/GMT+N" and "Etc/GMT-N", whose POSIX sign is inverted
//     (Etc/GMT+1 is UTC-1), which misleads more often than it helps;
//   - names not in the embedded database with exactly this case.
//
// "UTC", "Etc/UTC" and the other Etc aliases of UTC are accepted.
func CheckZoneName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("timezone is empty; name an IANA zone such as Europe/Oslo or UTC")
	case name == "Local":
		return fmt.Errorf("timezone %q differs between hosts; name an IANA zone such as Europe/Oslo", name)
	case strings.ContainsAny(name, " \t\r\n"):
		return fmt.Errorf("timezone %q contains spaces; remove them", name)
	case name != "UTC" && !strings.Contains(name, "/"):
		return fmt.Errorf("timezone %q is an abbreviation or legacy name, not a region; "+
			"name an IANA zone such as Europe/Paris or America/New_York", name)
	case strings.HasPrefix(name, "Etc/GMT+") || strings.HasPrefix(name, "Etc/GMT-"):
		return fmt.Errorf("timezone %q has an inverted POSIX sign (Etc/GMT+1 is UTC-1); "+
			"name a geographic zone such as Europe/Oslo instead", name)
	}

	db := zones()
	if _, ok := db.files[name]; ok {
		return nil
	}
	if real, ok := db.lowerNames[strings.ToLower(name)]; ok {
		return fmt.Errorf("timezone %q is not a known IANA zone; names are case-sensitive, did you mean %q?",
			name, real)
	}
	return fmt.Errorf("timezone %q is not a known IANA zone (database 2025c); "+
		"use a name such as Europe/Oslo", name)
}

func (db *zoneDatabase) load(name string) (*time.Location, error) {
	db.mu.Lock()
	defer db.mu.Unlock()

	if loc, ok := db.locations[name]; ok {
		return loc, nil
	}

	f := db.files[name]
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("open timezone %q: %w", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read timezone %q: %w", name, err)
	}
	loc, err := time.LoadLocationFromTZData(name, data)
	if err != nil {
		return nil, fmt.Errorf("load timezone %q: %w", name, err)
	}
	db.locations[name] = loc
	return loc, nil
}
