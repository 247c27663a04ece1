package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"

	"github.com/google/uuid"

	"github.com/keyward/keyward/fsm"
)

const (
	base36 = "0123456789abcdefghijklmnopqrstuvwxyz"
	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

	vaultIDPrefix     = "vault_"
	projectIDPrefix   = "proj_"
	secretIDPrefix    = "sk_"
	adminTokenPrefix  = "kwt_"
	vaultIDLength     = 16
	projectIDLength   = 10
	secretIDLength    = 10
	adminTokenLength  = 32
	handleIDLength    = 12
	bootstrapTokenHex = 64
)

// randomString returns n characters drawn uniformly from alphabet with
// crypto/rand. Bytes at or above the largest multiple of len(alphabet) are
// discarded, so no character is more likely than another.
func randomString(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		// crypto/rand.Read never returns an error on supported platforms.
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

func newVaultID() fsm.VaultID {
	return fsm.VaultID(vaultIDPrefix + randomString(base36, vaultIDLength))
}

func newProjectID() fsm.ProjectID {
	return fsm.ProjectID(projectIDPrefix + randomString(base36, projectIDLength))
}

func newSecretID() fsm.SecretID {
	return fsm.SecretID(secretIDPrefix + randomString(base36, secretIDLength))
}

// newMachineID returns a random UUID v4 in lower case.
func newMachineID() fsm.MachineID {
	return fsm.MachineID(uuid.NewString())
}

// newHandle returns a public id such as "bt_…" for objects whose secret part
// is stored only as a hash (tokens) or that need no other id (extensions).
func newHandle(prefix string) string {
	return prefix + randomString(base36, handleIDLength)
}

// newAdminToken returns an admin token "kwt_" + 32 base-62 characters.
func newAdminToken() string {
	return adminTokenPrefix + randomString(base62, adminTokenLength)
}

// newBootstrapToken returns 32 random bytes as 64 lower-case hex digits.
func newBootstrapToken() string {
	var b [bootstrapTokenHex / 2]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// hashToken returns the lower-case hex SHA-256 of a token, the form in
// which tokens are stored.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// hashesEqual compares two token hashes in constant time.
func hashesEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Identifier shape checks run before any lookup, so a malformed id is
// rejected without touching the state.

func isVaultID(s string) bool {
	return hasIDForm(s, vaultIDPrefix, vaultIDLength, base36)
}

func isProjectID(s string) bool {
	return hasIDForm(s, projectIDPrefix, projectIDLength, base36)
}

func isSecretID(s string) bool {
	return hasIDForm(s, secretIDPrefix, secretIDLength, base36)
}

// isMachineID accepts a lower-case hyphenated UUID.
func isMachineID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && len(s) == 36 && u.String() == s
}

// isBootstrapToken accepts 64 lower-case hex digits.
func isBootstrapToken(s string) bool {
	if len(s) != bootstrapTokenHex {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func hasIDForm(s, prefix string, n int, alphabet string) bool {
	if len(s) != len(prefix)+n || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		if !containsByte(alphabet, s[i]) {
			return false
		}
	}
	return true
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}
