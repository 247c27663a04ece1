package cluster

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestPeerEvents_RoundTrip(t *testing.T) {
	expires := time.UnixMilli(1_800_000_000_123)
	var b []byte
	b = appendNonceRecord(b, "6f1c2d9e-3b4a-4c5d-8e7f-0a1b2c3d4e5f", "n-1", expires)
	b = appendFailureRecord(b, netip.MustParseAddr("198.51.100.7"))
	b = appendFailureRecord(b, netip.MustParseAddr("2001:db8::1"))

	var got []peerEvent
	if err := decodePeerEvents(b, func(ev peerEvent) { got = append(got, ev) }); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("decoded %d records, want 3", len(got))
	}
	if got[0].kind != recordNonce || got[0].machineID != "6f1c2d9e-3b4a-4c5d-8e7f-0a1b2c3d4e5f" ||
		got[0].nonce != "n-1" || !got[0].expiresAt.Equal(expires) {
		t.Errorf("nonce record = %+v", got[0])
	}
	if got[1].kind != recordFailure || got[1].addr != netip.MustParseAddr("198.51.100.7") {
		t.Errorf("IPv4 failure record = %+v", got[1])
	}
	if got[2].addr != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("IPv6 failure record = %+v", got[2])
	}
}

func TestPeerEvents_DecodeRejectsMalformed(t *testing.T) {
	valid := appendNonceRecord(nil, "m", "n", time.UnixMilli(1))
	cases := map[string][]byte{
		"unknown tag":          {0x09},
		"nonce truncated":      valid[:len(valid)-1],
		"empty machine id":     append([]byte{recordNonce, 0, 0, 0, 0, 0, 0, 0, 1, 0}, 1, 'n'),
		"failure bad length":   {recordFailure, 5, 1, 2, 3, 4, 5},
		"failure truncated":    {recordFailure, 4, 1, 2},
		"header only":          {recordNonce, 0, 0},
		"machine id too short": {recordNonce, 0, 0, 0, 0, 0, 0, 0, 1, 9, 'm'},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			err := decodePeerEvents(b, func(peerEvent) {})
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("decode(%x) = %v, want ErrProtocol", b, err)
			}
		})
	}
}

func TestNonceLog_BoundPruneAndPages(t *testing.T) {
	now := time.Now()
	live := now.Add(time.Minute).UnixMilli()
	log := newNonceLog(100)
	for i := range 5 {
		log.add(bytes.Repeat([]byte{byte('a' + i)}, 30), live)
	}
	if log.bytes > 100 {
		t.Errorf("log holds %d bytes, limit 100", log.bytes)
	}
	if got := log.droppedBatches(); got != 2 {
		t.Errorf("dropped %d batches, want 2", got)
	}
	if b := log.add([]byte("failures only"), 0); b.seq == 0 {
		t.Errorf("a batch without nonces got no sequence number")
	}
	if len(log.blobs) != 3 {
		t.Errorf("log keeps %d batches, want 3 (a batch without nonces is not kept)", len(log.blobs))
	}

	page, next := log.page(0, 40, now)
	if !bytes.Equal(page, bytes.Repeat([]byte{'c'}, 30)) {
		t.Errorf("first page = %q, want the oldest kept batch", page)
	}
	page, next = log.page(next, 1<<20, now)
	if len(page) != 60 {
		t.Errorf("second page is %d bytes, want 60", len(page))
	}
	if page, _ = log.page(next, 1<<20, now); len(page) != 0 {
		t.Errorf("page after the end = %q, want empty", page)
	}

	log.add([]byte("old"), now.Add(-time.Second).UnixMilli())
	log.prune(now)
	if len(log.blobs) != 4 {
		t.Errorf("prune stopped at the first live batch: %d batches, want 4", len(log.blobs))
	}
	log.prune(now.Add(2 * time.Minute))
	if len(log.blobs) != 0 || log.bytes != 0 {
		t.Errorf("after every expiry the log holds %d batches and %d bytes", len(log.blobs), log.bytes)
	}
}
