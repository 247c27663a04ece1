package fsm

import (
	"fmt"
	"strconv"
)

// noVaultBucket is the bucket of audit entries that belong to no vault
// (cluster init, an auth failure of an unknown machine). It is not a valid
// vault id, so it cannot collide with one.
const noVaultBucket = "-"

// auditKey orders entries by sequence: 20 digits hold every uint64.
func auditKey(seq uint64) string {
	return fmt.Sprintf("%s%020d", prefixAudit, seq)
}

// auditBucketPrefix is the prefix of one vault's index of entries.
func auditBucketPrefix(vault VaultID) string {
	if vault == "" {
		return prefixAuditBucket + noVaultBucket + "/"
	}
	return prefixAuditBucket + string(vault) + "/"
}

// auditBucketKey indexes an entry under its vault; the value is empty.
func auditBucketKey(vault VaultID, seq uint64) string {
	return fmt.Sprintf("%s%020d", auditBucketPrefix(vault), seq)
}

// seqOfKey returns the sequence in the last 20 bytes of an audit or bucket
// key.
func seqOfKey(key []byte) (uint64, bool) {
	if len(key) < 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(key[len(key)-20:]), 10, 64)
	return n, err == nil
}

func alertSettingsKey(vault VaultID) string { return prefixAlertSettings + string(vault) }

func webhookPrefix(vault VaultID) string { return prefixWebhook + string(vault) + "/" }

func webhookKey(vault VaultID, id string) string { return webhookPrefix(vault) + id }

func deliveryPrefix(webhookID string) string { return prefixDelivery + webhookID + "/" }

func deliveryKey(webhookID string, seq uint64) string {
	return fmt.Sprintf("%s%020d", deliveryPrefix(webhookID), seq)
}

func expiryWarningKey(id MachineID) string { return prefixExpiryWarning + string(id) }
