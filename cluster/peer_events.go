package cluster

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Peer event records travel in kindPeerEvents and kindNonceSync payloads
// and in the nonce file. A payload is any number of records back to back:
//
//	nonce    0x01 | expiresAt unix ms int64 | id length u8 | machine id | nonce length u8 | nonce
//	failure  0x02 | address length u8 (4 or 16) | address
//
// Integers are big-endian. Records are self-delimiting, so payloads can be
// concatenated without re-encoding.
const (
	recordNonce   byte = 1
	recordFailure byte = 2
)

// maxEventField is the longest machine id or nonce a record carries.
const maxEventField = 255

// peerEvent is one decoded record.
type peerEvent struct {
	kind      byte
	machineID string
	nonce     string
	expiresAt time.Time
	addr      netip.Addr
}

// appendNonceRecord appends a nonce record. The caller checks that both
// strings are 1 to maxEventField bytes long.
func appendNonceRecord(buf []byte, machineID, nonce string, expiresAt time.Time) []byte {
	buf = append(buf, recordNonce)
	buf = binary.BigEndian.AppendUint64(buf, uint64(expiresAt.UnixMilli()))
	buf = append(buf, byte(len(machineID)))
	buf = append(buf, machineID...)
	buf = append(buf, byte(len(nonce)))
	return append(buf, nonce...)
}

// appendFailureRecord appends a failed-authentication record for addr.
func appendFailureRecord(buf []byte, addr netip.Addr) []byte {
	raw := addr.AsSlice()
	buf = append(buf, recordFailure, byte(len(raw)))
	return append(buf, raw...)
}

// decodePeerEvents calls fn for every record of b, in order. It stops at
// the first malformed record with an ErrProtocol error; fn has then seen
// the records before it.
func decodePeerEvents(b []byte, fn func(peerEvent)) error {
	for len(b) > 0 {
		var (
			ev  peerEvent
			err error
		)
		switch b[0] {
		case recordNonce:
			ev, b, err = decodeNonceRecord(b[1:])
		case recordFailure:
			ev, b, err = decodeFailureRecord(b[1:])
		default:
			err = fmt.Errorf("%w: unknown peer event record 0x%02x", ErrProtocol, b[0])
		}
		if err != nil {
			return err
		}
		fn(ev)
	}
	return nil
}

func decodeNonceRecord(b []byte) (peerEvent, []byte, error) {
	if len(b) < 9 {
		return peerEvent{}, nil, fmt.Errorf("%w: nonce record truncated", ErrProtocol)
	}
	expires := int64(binary.BigEndian.Uint64(b[:8]))
	id, rest, err := readShortField(b[8:], "machine id")
	if err != nil {
		return peerEvent{}, nil, err
	}
	nonce, rest, err := readShortField(rest, "nonce")
	if err != nil {
		return peerEvent{}, nil, err
	}
	ev := peerEvent{kind: recordNonce, machineID: id, nonce: nonce, expiresAt: time.UnixMilli(expires)}
	return ev, rest, nil
}

func decodeFailureRecord(b []byte) (peerEvent, []byte, error) {
	if len(b) < 1 || (b[0] != 4 && b[0] != 16) || len(b) < 1+int(b[0]) {
		return peerEvent{}, nil, fmt.Errorf("%w: failure record malformed", ErrProtocol)
	}
	n := int(b[0])
	addr, _ := netip.AddrFromSlice(b[1 : 1+n])
	return peerEvent{kind: recordFailure, addr: addr}, b[1+n:], nil
}

// readShortField reads a u8 length and that many bytes, which must not be
// empty.
func readShortField(b []byte, name string) (string, []byte, error) {
	if len(b) < 1 || b[0] == 0 || len(b) < 1+int(b[0]) {
		return "", nil, fmt.Errorf("%w: %s in nonce record malformed", ErrProtocol, name)
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:], nil
}
