package fsm

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/guard"
)

// Limits checked by Apply. Every list and string in a command is bounded,
// so no command can grow a record without limit.
const (
	MaxVaultNameChars   = 100
	MaxProjectNameChars = 100
	MaxSecretNameChars  = 255
	MaxMachineNameChars = 255
	MaxTokenNameChars   = 100
	MaxHostnameChars    = 255
	MaxPurposeChars     = 500
	MaxReasonChars      = 500
	MaxLabelChars       = 100
	MaxHandleBytes      = 64

	// MaxSecretValueBytes bounds a secret value's plaintext. The proposer
	// checks the plaintext; Apply checks the ciphertext against this plus
	// the GCM tag.
	MaxSecretValueBytes = 12 * 1024
	MaxFieldNames       = 256
	MaxAllowlistEntries = 1024
	MaxGrants           = 10_000
	MaxMachineProjects  = 1_000
	MaxExtensions       = 1_000
	MaxExpireBatch      = 10_000
	MaxLastSeenBatch    = 5_000
	// MaxSecretVersions is how many versions of a secret are kept. An
	// update past it deletes the oldest, so the history and the snapshots
	// stay bounded for a secret that is rotated often.
	MaxSecretVersions = 100
	MaxEnrollmentUses = 10_000
	MaxTokenVaults    = 1_000
)

// checkText validates a user-visible string: valid UTF-8, no control
// characters, no leading or trailing white space, and between min and max
// characters (runes).
func checkText(field, s string, min, max int) error {
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s):
		return rejectf(ErrInvalid, "%s is not valid UTF-8", field)
	case n < min && n == 0:
		return rejectf(ErrInvalid, "%s is empty; give 1 to %d characters", field, max)
	case n < min:
		return rejectf(ErrInvalid, "%s %q is shorter than %d characters", field, s, min)
	case n > max:
		return rejectf(ErrInvalid, "%s is %d characters, limit %d", field, n, max)
	case strings.TrimSpace(s) != s:
		return rejectf(ErrInvalid, "%s %q has leading or trailing white space", field, s)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return rejectf(ErrInvalid, "%s %q contains a control character", field, s)
	}
	return nil
}

// checkID validates an identifier of the form prefix + n lower-case base-36
// characters.
func checkID(field, id, prefix string, n int) error {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != n || !allBytes(rest, isBase36) {
		return rejectf(ErrInvalid, "%s %q is not %q followed by %d lower-case letters or digits", field, id, prefix, n)
	}
	return nil
}

func checkVaultID(id VaultID) error     { return checkID("vault id", string(id), "vault_", 16) }
func checkProjectID(id ProjectID) error { return checkID("project id", string(id), "proj_", 10) }
func checkSecretID(id SecretID) error   { return checkID("secret id", string(id), "sk_", 10) }

// checkMachineID requires a lower-case UUID version 4 with the RFC 4122
// variant.
func checkMachineID(id MachineID) error {
	s := string(id)
	ok := len(s) == 36 && s[14] == '4' && strings.IndexByte("89ab", s[19]) >= 0
	for i := 0; ok && i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			ok = s[i] == '-'
		} else {
			ok = isLowerHex(s[i])
		}
	}
	if !ok {
		return rejectf(ErrInvalid, "machine id %q is not a lower-case UUID version 4", s)
	}
	return nil
}

// checkTokenHash requires 64 lower-case hex characters, the SHA-256 of a
// token.
func checkTokenHash(field, h string) error {
	if len(h) != 64 || !allBytes(h, isLowerHex) {
		return rejectf(ErrInvalid, "%s is not 64 lower-case hex characters (a SHA-256)", field)
	}
	return nil
}

// checkHandle validates a public handle such as a token or extension id:
// 1 to MaxHandleBytes letters, digits, '-' or '_'.
func checkHandle(field, h string) error {
	ok := len(h) > 0 && len(h) <= MaxHandleBytes && allBytes(h, func(c byte) bool {
		return isBase36(c) || ('A' <= c && c <= 'Z') || c == '-' || c == '_'
	})
	if !ok {
		return rejectf(ErrInvalid, "%s %q is not 1 to %d letters, digits, '-' or '_'", field, h, MaxHandleBytes)
	}
	return nil
}

// checkSealed bounds every part of a sealed value. The sizes are fixed by
// the seal format, so anything else is a malformed command.
func checkSealed(s Sealed) error {
	maxCiphertext := MaxSecretValueBytes + seal.TagSize
	switch {
	case len(s.WrappedKey) != seal.WrappedKeySize:
		return rejectf(ErrInvalid, "sealed value: wrapped key is %d bytes, want %d", len(s.WrappedKey), seal.WrappedKeySize)
	case len(s.Nonce) != seal.NonceSize:
		return rejectf(ErrInvalid, "sealed value: nonce is %d bytes, want %d", len(s.Nonce), seal.NonceSize)
	case len(s.Ciphertext) < seal.TagSize:
		return rejectf(ErrInvalid, "sealed value: ciphertext is %d bytes, shorter than the %d-byte tag", len(s.Ciphertext), seal.TagSize)
	case len(s.Ciphertext) > maxCiphertext:
		return rejectf(ErrInvalid, "sealed value: ciphertext is %d bytes, limit %d (a %d-byte value)", len(s.Ciphertext), maxCiphertext, MaxSecretValueBytes)
	}
	return nil
}

// checkFieldNames validates the field names of a secret of type typ: none
// for a plain secret, 1 to MaxFieldNames unique names for a structured one.
func checkFieldNames(typ string, names []string) error {
	switch typ {
	case SecretTypeSecret:
		if len(names) > 0 {
			return rejectf(ErrInvalid, "a secret of type %q has no field names; use type %q for fields", SecretTypeSecret, SecretTypeStructured)
		}
		return nil
	case SecretTypeStructured:
	default:
		return rejectf(ErrInvalid, "secret type %q is not %q or %q", typ, SecretTypeSecret, SecretTypeStructured)
	}

	if len(names) == 0 || len(names) > MaxFieldNames {
		return rejectf(ErrInvalid, "a structured secret has %d field names, want 1 to %d", len(names), MaxFieldNames)
	}
	seen := make(map[string]struct{}, len(names))
	for _, n := range names {
		if err := checkText("field name", n, 1, MaxSecretNameChars); err != nil {
			return err
		}
		if _, dup := seen[n]; dup {
			return rejectf(ErrInvalid, "field name %q is repeated", n)
		}
		seen[n] = struct{}{}
	}
	return nil
}

// compileAllowlist returns the matcher of an enabled vault allowlist, or
// nil when it is disabled.
func compileAllowlist(a IPAllowlist) (*guard.Allowlist, error) {
	if len(a.Entries) > MaxAllowlistEntries {
		return nil, rejectf(ErrInvalid, "ip allowlist has %d entries, limit %d", len(a.Entries), MaxAllowlistEntries)
	}
	cidrs := make([]string, len(a.Entries))
	for i, e := range a.Entries {
		if err := checkText("allowlist label", e.Label, 0, MaxLabelChars); err != nil {
			return nil, err
		}
		cidrs[i] = e.CIDR
	}
	prefixes, err := guard.ParseCIDRs(cidrs)
	if err != nil {
		return nil, rejectf(ErrInvalid, "ip allowlist: %v", err)
	}
	if !a.Enabled {
		return nil, nil
	}
	if len(prefixes) == 0 {
		return nil, rejectf(ErrInvalid, "an enabled ip allowlist has no entries and would block every machine; add a CIDR or disable it")
	}
	return guard.NewAllowlist(prefixes), nil
}

// compileGuardrails validates guardrails and returns their policy. Nil
// guardrails, or guardrails with no axis set, have no policy.
func compileGuardrails(g *guard.Guardrails) (*guard.Policy, error) {
	if isEmptyGuardrails(g) {
		return nil, nil
	}
	policy, err := g.Compile()
	if err != nil {
		return nil, rejectf(ErrInvalid, "guardrails: %v", err)
	}
	return policy, nil
}

func isEmptyGuardrails(g *guard.Guardrails) bool {
	return g == nil || (g.IPAllowlist == nil && g.Countries == nil && g.TimeWindow == nil)
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isBase36(c byte) bool   { return ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') }
func isLowerHex(c byte) bool { return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') }

// wrappedKeySize is the size of a project key or data key wrapped by seal.
const wrappedKeySize = seal.WrappedKeySize
