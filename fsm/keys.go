package fsm

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Key layout. Every key starts with one of these prefixes, and values are
// JSON. Snapshot restore rejects a key with any other prefix, so a new kind
// of record must be added here to be replicated.
const (
	prefixMeta           = "meta/"
	prefixVault          = "vault/"
	prefixProject        = "proj/"
	prefixSecret         = "sec/"
	prefixSecretVersion  = "secv/"
	prefixMachine        = "mach/"
	prefixMachineKey     = "mkey/"
	prefixAdminToken     = "atok/"
	prefixBootstrapToken = "btok/"
	prefixRequest        = "req/"
	prefixRequestTime    = "reqt/"

	// Audit and alerting records (audit_keys.go builds the keys).
	prefixAudit         = "aud/"
	prefixAuditBucket   = "audv/"
	prefixAlertSettings = "aset/"
	prefixWebhook       = "whk/"
	prefixDelivery      = "whd/"
	prefixExpiryWarning = "xwarn/"
)

// Keys of the singleton records.
const (
	// keyApplied stores the index and term of the last applied log entry.
	// It differs between nodes that applied the same commands through
	// different log entries (for example a barrier), so Checksum skips it.
	keyApplied = prefixMeta + "applied"
	// keyInit marks an initialised cluster.
	keyInit = prefixMeta + "init"
	// keyRequestPrune stores the cutoff of the last idempotency prune.
	keyRequestPrune = prefixMeta + "request-prune"
	// keyAuditSeq stores the sequence of the last audit entry.
	keyAuditSeq = prefixMeta + "audit-seq"
)

// knownPrefixes lists every prefix, for restore validation.
var knownPrefixes = []string{
	prefixMeta, prefixVault, prefixProject, prefixSecret, prefixSecretVersion,
	prefixMachine, prefixMachineKey, prefixAdminToken, prefixBootstrapToken, prefixRequest, prefixRequestTime,
	prefixAudit, prefixAuditBucket, prefixAlertSettings, prefixWebhook, prefixDelivery,
	prefixExpiryWarning, prefixVaultMachine, prefixMachineExpiry, prefixTokenID, prefixMachineGrant,
}

// keyspaceEnd is above every key: all prefixes are printable ASCII.
var keyspaceEnd = []byte{0xff}

// deleteRangeEnd ends the range deletion that clears the store on restore.
var deleteRangeEnd = []byte{0xff, 0xff}

func vaultKey(id VaultID) string     { return prefixVault + string(id) }
func projectKey(id ProjectID) string { return prefixProject + string(id) }
func secretKey(id SecretID) string   { return prefixSecret + string(id) }
func machineKey(id MachineID) string { return prefixMachine + string(id) }

// publicKeyOwnerKey maps a raw public key to the machine registered with
// it, so that one keypair identifies one machine only.
func publicKeyOwnerKey(pub []byte) string { return prefixMachineKey + hex.EncodeToString(pub) }
func adminTokenKey(hash string) string    { return prefixAdminToken + hash }
func bootstrapKey(hash string) string     { return prefixBootstrapToken + hash }
func requestKey(id string) string         { return prefixRequest + id }

// secretVersionKey zero-pads the version so that keys sort by version.
func secretVersionKey(id SecretID, version int) string {
	return fmt.Sprintf("%s%s/%010d", prefixSecretVersion, id, version)
}

// secretVersionPrefix is the prefix of every version key of one secret.
func secretVersionPrefix(id SecretID) string {
	return prefixSecretVersion + string(id) + "/"
}

// requestTimeKey orders idempotency records by command time so that pruning
// is a range scan. Time is positive (checkEnvelope), so 20 digits hold it.
func requestTimeKey(timeMs int64, requestID string) string {
	return fmt.Sprintf("%s%020d/%s", prefixRequestTime, timeMs, requestID)
}

// requestTimeBound is the first request-time key at timeMs.
func requestTimeBound(timeMs int64) string {
	return fmt.Sprintf("%s%020d/", prefixRequestTime, timeMs)
}

// parseRequestTimeKey returns the request id of a requestTimeKey.
func parseRequestTimeKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefixRequestTime)
	if !ok || len(rest) < 21 || rest[20] != '/' {
		return "", false
	}
	if _, err := strconv.ParseUint(rest[:20], 10, 64); err != nil {
		return "", false
	}
	return rest[21:], true
}

// prefixEnd returns the smallest key above every key with prefix p. All
// prefixes end in '/', so incrementing the last byte is enough.
func prefixEnd(p string) string {
	return p[:len(p)-1] + string(p[len(p)-1]+1)
}

// hasKnownPrefix reports whether key belongs to one of the record kinds.
func hasKnownPrefix(key []byte) bool {
	for _, p := range knownPrefixes {
		if len(key) > len(p) && string(key[:len(p)]) == p {
			return true
		}
	}
	return false
}
