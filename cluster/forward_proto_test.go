package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

func TestForwardProto_RequestRoundTrip(t *testing.T) {
	in := request{kind: kindApply, hops: 1, timeout: 1500 * time.Millisecond, origin: "node-2", payload: []byte(`{"type":"x"}`)}
	var buf bytes.Buffer
	if err := writeFrame(&buf, in.encode()); err != nil {
		t.Fatalf("writeFrame: %v", err)
	}
	body, err := readFrame(&buf)
	if err != nil {
		t.Fatalf("readFrame: %v", err)
	}
	out, err := decodeRequest(body)
	if err != nil {
		t.Fatalf("decodeRequest: %v", err)
	}
	if out.kind != in.kind || out.hops != in.hops || out.timeout != in.timeout || out.origin != in.origin {
		t.Errorf("decoded %+v, want %+v", out, in)
	}
	if !bytes.Equal(out.payload, in.payload) {
		t.Errorf("payload = %q, want %q", out.payload, in.payload)
	}
}

func TestForwardProto_ResponseRoundTrip(t *testing.T) {
	in := response{status: statusIndeterminate, index: 1 << 40, payload: []byte("lost")}
	out, err := decodeResponse(in.encode())
	if err != nil {
		t.Fatalf("decodeResponse: %v", err)
	}
	if out.status != in.status || out.index != in.index || string(out.payload) != "lost" {
		t.Errorf("decoded %+v, want %+v", out, in)
	}
}

func TestForwardProto_RejectsBadFrames(t *testing.T) {
	oversized := make([]byte, 4)
	binary.BigEndian.PutUint32(oversized, maxFrameBytes+1)
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"announced length above limit", oversized, ErrFrameTooLarge},
		{"truncated header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"truncated body", []byte{0, 0, 0, 9, 1, 2}, io.ErrUnexpectedEOF},
		{"empty stream", nil, io.EOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(tc.input))
			if !errors.Is(err, tc.want) {
				t.Errorf("readFrame error = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("writer refuses an oversized body", func(t *testing.T) {
		err := writeFrame(io.Discard, make([]byte, maxFrameBytes+1))
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("writeFrame error = %v, want ErrFrameTooLarge", err)
		}
	})
}

func TestForwardProto_RejectsBadBodies(t *testing.T) {
	cases := []struct {
		name string
		body []byte
	}{
		{"empty request", nil},
		{"header only partly present", []byte{kindApply, 1, 0, 0}},
		{"origin longer than body", []byte{kindApply, 1, 0, 0, 0, 0, 10, 'a'}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeRequest(tc.body); !errors.Is(err, ErrProtocol) {
				t.Errorf("decodeRequest error = %v, want ErrProtocol", err)
			}
		})
	}
	if _, err := decodeResponse([]byte{0, 1}); !errors.Is(err, ErrProtocol) {
		t.Errorf("decodeResponse of a short body = %v, want ErrProtocol", err)
	}
}

func FuzzForwardProto_DecodeRequest(f *testing.F) {
	f.Add((&request{kind: kindApply, hops: 1, origin: "a", payload: []byte("{}")}).encode())
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 255})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeRequest(body)
		if err != nil {
			return
		}
		again, err := decodeRequest(req.encode())
		if err != nil {
			t.Fatalf("re-decode of an encoded request: %v", err)
		}
		if again.origin != req.origin || !bytes.Equal(again.payload, req.payload) {
			t.Fatalf("round trip changed the request: %+v vs %+v", again, req)
		}
	})
}
