package cluster

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Wire format of the forwarding channel. Every message is one frame: a
// 4-byte big-endian length, then that many bytes. A reader rejects a length
// above maxFrameBytes before allocating, so a broken or hostile peer cannot
// make a node allocate gigabytes.
//
// Request body:  kind(1) hops(1) timeoutMillis(4) originLen(1) origin payload
// Response body: status(1) index(8) payload
const maxFrameBytes = 16 << 20

// Request kinds.
const (
	kindApply        byte = 1 // payload: an encoded fsm.Command
	kindRemoveServer byte = 2 // payload: the node id to remove
	kindTransfer     byte = 3 // payload: empty

	// Kinds that every node serves, leader or not.
	kindWaitApplied byte = 4 // payload: index(8) staleBoundMillis(4)
	kindCommitIndex byte = 5 // payload: empty; the leader replies with its last log index
	kindPeerEvents  byte = 6 // payload: peer event records (nonces.go)
	kindNonceSync   byte = 7 // payload: cursor(8)
	kindClock       byte = 8 // payload: empty; the peer replies with its clock in Unix microseconds
)

// maxHops is the number of forwards a request may take. The origin sends
// hops=1 and the receiver serves it or refuses; it never forwards again.
const maxHops = 1

// Response statuses.
const (
	statusOK            byte = 0 // payload: JSON of the fsm.Response, or empty
	statusNotLeader     byte = 1 // nothing was proposed; payload: reason
	statusIndeterminate byte = 2 // proposed, outcome unknown; payload: reason
	statusFailed        byte = 3 // definitely not applied; payload: reason
	statusBadRequest    byte = 4 // malformed request; payload: reason
	statusTimeout       byte = 5 // deadline passed before proposing; payload: reason
	statusUnknownMember byte = 6 // ErrUnknownMember; payload: reason
	statusMemberAlive   byte = 7 // ErrMemberAlive; payload: reason
	statusDiskFull      byte = 8 // ErrDiskFull, definitely not applied; payload: reason
)

const requestHeaderBytes = 1 + 1 + 4 + 1

type request struct {
	kind    byte
	hops    byte
	timeout time.Duration
	origin  string
	payload []byte
}

type response struct {
	status  byte
	index   uint64
	payload []byte
}

// writeFrame writes one frame in a single Write call.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) > maxFrameBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(body), maxFrameBytes)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame, rejecting an announced length above the limit
// without reading the body.
func readFrame(r io.Reader) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n > maxFrameBytes {
		return nil, fmt.Errorf("%w: peer announced %d bytes, limit %d", ErrFrameTooLarge, n, maxFrameBytes)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

func (q *request) encode() []byte {
	millis := q.timeout.Milliseconds()
	if millis > int64(^uint32(0)) {
		millis = int64(^uint32(0))
	}
	origin := q.origin
	if len(origin) > 255 {
		origin = origin[:255]
	}
	buf := make([]byte, 0, requestHeaderBytes+len(origin)+len(q.payload))
	buf = append(buf, q.kind, q.hops)
	buf = binary.BigEndian.AppendUint32(buf, uint32(millis))
	buf = append(buf, byte(len(origin)))
	buf = append(buf, origin...)
	return append(buf, q.payload...)
}

func decodeRequest(body []byte) (*request, error) {
	if len(body) < requestHeaderBytes {
		return nil, fmt.Errorf("%w: request of %d bytes is shorter than its header", ErrProtocol, len(body))
	}
	q := &request{
		kind:    body[0],
		hops:    body[1],
		timeout: time.Duration(binary.BigEndian.Uint32(body[2:6])) * time.Millisecond,
	}
	originLen := int(body[6])
	rest := body[requestHeaderBytes:]
	if len(rest) < originLen {
		return nil, fmt.Errorf("%w: origin length %d exceeds the request", ErrProtocol, originLen)
	}
	q.origin = string(rest[:originLen])
	q.payload = rest[originLen:]
	return q, nil
}

func (s *response) encode() []byte {
	buf := make([]byte, 0, 9+len(s.payload))
	buf = append(buf, s.status)
	buf = binary.BigEndian.AppendUint64(buf, s.index)
	return append(buf, s.payload...)
}

func decodeResponse(body []byte) (*response, error) {
	if len(body) < 9 {
		return nil, fmt.Errorf("%w: response of %d bytes is shorter than its header", ErrProtocol, len(body))
	}
	return &response{
		status:  body[0],
		index:   binary.BigEndian.Uint64(body[1:9]),
		payload: body[9:],
	}, nil
}
