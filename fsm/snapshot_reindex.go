package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
)

// snapshotHeaderBytes is the size of a snapshot stream's header (magic,
// version, index, term) and snapshotTrailerBytes the size of its trailer
// (tag, record count, SHA-256).
const (
	snapshotHeaderBytes  = len(snapshotMagic) + 4 + 8 + 8
	snapshotTrailerBytes = 1 + 8 + sha256.Size
)

// VerifySnapshot checks the envelope of a complete snapshot stream (the
// magic, the version, the trailer's position and the checksum) and returns
// the applied index and term in its header. A damaged or cut stream fails
// with ErrSnapshotCorrupt. The records themselves are checked by Restore.
func VerifySnapshot(stream []byte) (index, term uint64, err error) {
	if len(stream) < snapshotHeaderBytes+snapshotTrailerBytes {
		return 0, 0, corrupt("stream of %d bytes is shorter than a header and a trailer", len(stream))
	}
	if string(stream[:len(snapshotMagic)]) != snapshotMagic {
		return 0, 0, corrupt("bad magic %q", stream[:len(snapshotMagic)])
	}
	if v := binary.BigEndian.Uint32(stream[8:12]); v != snapshotVersion {
		return 0, 0, corrupt("format version %d, this build reads %d", v, snapshotVersion)
	}
	if stream[len(stream)-snapshotTrailerBytes] != tagTrailer {
		return 0, 0, corrupt("no trailer at the end of the stream")
	}
	sumAt := len(stream) - sha256.Size
	want := sha256.Sum256(stream[:sumAt])
	if !bytes.Equal(want[:], stream[sumAt:]) {
		return 0, 0, corrupt("checksum mismatch")
	}
	return binary.BigEndian.Uint64(stream[12:20]), binary.BigEndian.Uint64(stream[20:28]), nil
}

// ReindexSnapshot returns a copy of a complete snapshot stream whose header
// carries index and term as the applied position, with the checksum
// recomputed. Restoring an operator's backup through Raft needs it: Raft
// installs the backup at a new log index, and the state machine must
// report that index as applied, not the one the backup was taken at. The
// stream must pass VerifySnapshot.
func ReindexSnapshot(stream []byte, index, term uint64) ([]byte, error) {
	if _, _, err := VerifySnapshot(stream); err != nil {
		return nil, err
	}
	out := bytes.Clone(stream)
	binary.BigEndian.PutUint64(out[12:20], index)
	binary.BigEndian.PutUint64(out[20:28], term)
	sumAt := len(out) - sha256.Size
	sum := sha256.Sum256(out[:sumAt])
	copy(out[sumAt:], sum[:])
	return out, nil
}
