package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Checksum returns the SHA-256, in hex, of every record except the applied
// index, read from one consistent Pebble snapshot. Two replicas that have
// applied the same commands return the same checksum whatever their log
// indexes, so tests and operators compare it across nodes.
func (f *FSM) Checksum() (string, error) {
	if f.closed.Load() {
		return "", errClosed
	}
	snap := f.db.NewSnapshot()
	defer snap.Close()

	iter, err := snap.NewIter(&pebble.IterOptions{UpperBound: keyspaceEnd})
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer iter.Close()

	sum := sha256.New()
	var lens [8]byte
	for iter.First(); iter.Valid(); iter.Next() {
		if string(iter.Key()) == keyApplied {
			continue
		}
		value, err := iter.ValueAndErr()
		if err != nil {
			return "", fmt.Errorf("checksum: read %s: %w", iter.Key(), err)
		}
		binary.BigEndian.PutUint32(lens[:4], uint32(len(iter.Key())))
		binary.BigEndian.PutUint32(lens[4:], uint32(len(value)))
		sum.Write(lens[:])
		sum.Write(iter.Key())
		sum.Write(value)
	}
	if err := iter.Error(); err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}
