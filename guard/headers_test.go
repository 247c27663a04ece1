package guard

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	testMachineID = "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"
	testNonce     = "3f9a1c2e7b4d4e10"
)

var testSignature = base64.StdEncoding.EncodeToString(make([]byte, SignatureSize))

// one wraps a single header value as ParseSignedHeaders receives it.
func one(v string) [][]byte { return [][]byte{[]byte(v)} }

func TestParseSignedHeaders_Valid(t *testing.T) {
	sig := make([]byte, SignatureSize)
	for i := range sig {
		sig[i] = byte(i)
	}
	h, err := ParseSignedHeaders(one(strings.ToUpper(testMachineID)), one("1767225600"),
		one(testNonce), one(base64.StdEncoding.EncodeToString(sig)))
	if err != nil {
		t.Fatalf("ParseSignedHeaders: %v", err)
	}
	if h.MachineID != testMachineID {
		t.Errorf("MachineID = %q, want lower case %q", h.MachineID, testMachineID)
	}
	if h.Timestamp != 1767225600 || h.TimestampRaw != "1767225600" {
		t.Errorf("Timestamp = %d %q, want 1767225600", h.Timestamp, h.TimestampRaw)
	}
	if h.Nonce != testNonce {
		t.Errorf("Nonce = %q, want %q", h.Nonce, testNonce)
	}
	if string(h.Signature[:]) != string(sig) {
		t.Errorf("Signature = %x, want %x", h.Signature, sig)
	}
}

func TestParseSignedHeaders_ValuesAreCopies(t *testing.T) {
	id, ts, nonce := []byte(testMachineID), []byte("1767225600"), []byte(testNonce)
	h, err := ParseSignedHeaders([][]byte{id}, [][]byte{ts}, [][]byte{nonce}, one(testSignature))
	if err != nil {
		t.Fatalf("ParseSignedHeaders: %v", err)
	}
	// Overwrite the request buffers as a server reusing them would.
	for _, b := range [][]byte{id, ts, nonce} {
		for i := range b {
			b[i] = 'x'
		}
	}
	if h.MachineID != testMachineID || h.TimestampRaw != "1767225600" || h.Nonce != testNonce {
		t.Errorf("parsed values changed with the request buffers: %+v", h)
	}
}

// headerArgs holds the values of each signed header as ParseSignedHeaders
// receives them.
type headerArgs struct{ id, ts, nonce, sig [][]byte }

func validHeaderArgs() headerArgs {
	return headerArgs{one(testMachineID), one("1767225600"), one(testNonce), one(testSignature)}
}

// headerErrorCase changes valid headers into ones that parsing rejects
// with want.
type headerErrorCase struct {
	name   string
	modify func(*headerArgs)
	want   error
}

func headerErrorCases() []headerErrorCase {
	return []headerErrorCase{
		{"missing machine id", func(h *headerArgs) { h.id = nil }, ErrMissingHeader},
		{"missing timestamp", func(h *headerArgs) { h.ts = nil }, ErrMissingHeader},
		{"missing nonce", func(h *headerArgs) { h.nonce = nil }, ErrMissingHeader},
		{"missing signature", func(h *headerArgs) { h.sig = nil }, ErrMissingHeader},

		{"two machine ids", func(h *headerArgs) {
			h.id = [][]byte{[]byte(testMachineID), []byte("0b7c1e2a-9f3d-4c5e-8a6b-7c8d9e0f1a2b")}
		}, ErrDuplicateHeader},
		{"same machine id twice", func(h *headerArgs) { h.id = append(h.id, []byte(testMachineID)) }, ErrDuplicateHeader},
		{"fresh and stale timestamp", func(h *headerArgs) { h.ts = append(h.ts, []byte("1000000000")) }, ErrDuplicateHeader},
		{"two nonces", func(h *headerArgs) { h.nonce = append(h.nonce, []byte("other-nonce")) }, ErrDuplicateHeader},
		{"two signatures", func(h *headerArgs) { h.sig = append(h.sig, []byte(testSignature)) }, ErrDuplicateHeader},
		{"duplicate wins over missing", func(h *headerArgs) {
			h.id = nil
			h.ts = append(h.ts, []byte("1"))
		}, ErrDuplicateHeader},

		{"machine id not a uuid", func(h *headerArgs) { h.id = one("m-a") }, ErrMalformedHeader},
		{"machine id in braces", func(h *headerArgs) { h.id = one("{" + testMachineID + "}") }, ErrMalformedHeader},
		{"machine id urn", func(h *headerArgs) { h.id = one("urn:uuid:" + testMachineID) }, ErrMalformedHeader},
		{"machine id without hyphens", func(h *headerArgs) {
			h.id = one(strings.ReplaceAll(testMachineID, "-", ""))
		}, ErrMalformedHeader},
		{"machine id with non-hex", func(h *headerArgs) { h.id = one("6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6g") }, ErrMalformedHeader},
		{"machine id hyphen misplaced", func(h *headerArgs) { h.id = one("6f1c2a9e3-b4d-4e5f-8a7b-1c2d3e4f5a6b") }, ErrMalformedHeader},
		{"empty machine id", func(h *headerArgs) { h.id = one("") }, ErrMalformedHeader},

		{"empty timestamp", func(h *headerArgs) { h.ts = one("") }, ErrMalformedHeader},
		{"negative timestamp", func(h *headerArgs) { h.ts = one("-1767225600") }, ErrMalformedHeader},
		{"plus sign timestamp", func(h *headerArgs) { h.ts = one("+1767225600") }, ErrMalformedHeader},
		{"fractional timestamp", func(h *headerArgs) { h.ts = one("1767225600.5") }, ErrMalformedHeader},
		{"leading zero timestamp", func(h *headerArgs) { h.ts = one("01767225600") }, ErrMalformedHeader},
		{"padded timestamp", func(h *headerArgs) { h.ts = one(" 1767225600") }, ErrMalformedHeader},
		{"overflowing timestamp", func(h *headerArgs) { h.ts = one("9223372036854775808") }, ErrMalformedHeader},
		{"too long timestamp", func(h *headerArgs) { h.ts = one("12345678901234567890") }, ErrMalformedHeader},

		{"short nonce", func(h *headerArgs) { h.nonce = one("1234567") }, ErrMalformedHeader},
		{"long nonce", func(h *headerArgs) { h.nonce = one(strings.Repeat("a", 129)) }, ErrMalformedHeader},
		{"nonce with colon", func(h *headerArgs) { h.nonce = one("abcd:efgh") }, ErrMalformedHeader},
		{"nonce with space", func(h *headerArgs) { h.nonce = one("abcd efgh") }, ErrMalformedHeader},
		{"nonce with control byte", func(h *headerArgs) { h.nonce = one("abcd\x01efgh") }, ErrMalformedHeader},
		{"nonce with non-ASCII", func(h *headerArgs) { h.nonce = one("abcdefgh\xc3\xa6") }, ErrMalformedHeader},

		{"signature url-safe base64", func(h *headerArgs) {
			sig := make([]byte, SignatureSize)
			sig[0] = 0xfb
			h.sig = one(base64.URLEncoding.EncodeToString(sig))
		}, ErrMalformedHeader},
		{"signature unpadded", func(h *headerArgs) {
			h.sig = one(base64.RawStdEncoding.EncodeToString(make([]byte, SignatureSize)))
		}, ErrMalformedHeader},
		{"signature 63 bytes", func(h *headerArgs) {
			h.sig = one(base64.StdEncoding.EncodeToString(make([]byte, 63)))
		}, ErrMalformedHeader},
		{"signature 65 bytes", func(h *headerArgs) {
			h.sig = one(base64.StdEncoding.EncodeToString(make([]byte, 65)))
		}, ErrMalformedHeader},
		{"signature hex", func(h *headerArgs) { h.sig = one(strings.Repeat("00", SignatureSize)) }, ErrMalformedHeader},
		{"signature non-zero padding bits", func(h *headerArgs) {
			// The last character before "==" carries 4 unused bits; 'B'
			// sets one of them.
			h.sig = one(testSignature[:85] + "B==")
		}, ErrMalformedHeader},
		{"signature with inner newline", func(h *headerArgs) {
			h.sig = one(testSignature[:40] + "\n" + testSignature[41:])
		}, ErrMalformedHeader},
	}
}

func TestParseSignedHeaders_Errors(t *testing.T) {
	for _, tt := range headerErrorCases() {
		t.Run(tt.name, func(t *testing.T) {
			h := validHeaderArgs()
			tt.modify(&h)
			_, err := ParseSignedHeaders(h.id, h.ts, h.nonce, h.sig)
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseSignedHeaders error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseSignedHeaders_NonceBoundsAccepted(t *testing.T) {
	for _, nonce := range []string{"12345678", strings.Repeat("~", 128), "!\"#$%&'()*+,-./;<=>?@[\\]^_`{|}~"} {
		if _, err := ParseSignedHeaders(one(testMachineID), one("1"), one(nonce), one(testSignature)); err != nil {
			t.Errorf("nonce %q rejected: %v", nonce, err)
		}
	}
}

func TestCheckTimestamp_Window(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nowSec := now.Unix()
	window := 300 * time.Second
	tests := []struct {
		name string
		ts   int64
		now  time.Time
		ok   bool
	}{
		{"exact", nowSec, now, true},
		{"300 s behind", nowSec - 300, now, true},
		{"300 s ahead", nowSec + 300, now, true},
		{"301 s behind", nowSec - 301, now, false},
		{"301 s ahead", nowSec + 301, now, false},
		{"server clock has a fraction", nowSec - 300, now.Add(999 * time.Millisecond), true},
		{"milliseconds", now.UnixMilli(), now, false},
		{"microseconds", now.UnixMicro(), now, false},
		{"zero", 0, now, false},
		{"negative", -1, now, false},
		{"max int64", 1<<63 - 1, now, false},
		{"min int64", -1 << 63, now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTimestamp(tt.ts, tt.now, window)
			if tt.ok && err != nil {
				t.Errorf("CheckTimestamp(%d) = %v, want nil", tt.ts, err)
			}
			if !tt.ok && !errors.Is(err, ErrTimestampSkew) {
				t.Errorf("CheckTimestamp(%d) = %v, want ErrTimestampSkew", tt.ts, err)
			}
		})
	}
}

func FuzzParseSignedHeaders(f *testing.F) {
	f.Add([]byte(testMachineID), []byte("1767225600"), []byte(testNonce), []byte(testSignature), byte(0))
	f.Add([]byte(strings.ToUpper(testMachineID)), []byte("0"), []byte("!!!!!!!!"), []byte(testSignature), byte(0))
	f.Add([]byte("m-a"), []byte("-1"), []byte("a:b"), []byte("AAAA"), byte(0x0f))
	f.Add([]byte(testMachineID), []byte("1767225600000"), []byte(testNonce), []byte(testSignature[:85]+"B=="), byte(0xf0))
	f.Fuzz(func(t *testing.T, id, ts, nonce, sig []byte, shape byte) {
		// The low four bits drop a header, the high four bits repeat one.
		values := [4][]byte{id, ts, nonce, sig}
		var args [4][][]byte
		for i, v := range values {
			switch {
			case shape&(1<<i) != 0:
				args[i] = nil
			case shape&(1<<(i+4)) != 0:
				args[i] = [][]byte{v, v}
			default:
				args[i] = [][]byte{v}
			}
		}

		h, err := ParseSignedHeaders(args[0], args[1], args[2], args[3])
		if err != nil {
			if !errors.Is(err, ErrMissingHeader) && !errors.Is(err, ErrMalformedHeader) &&
				!errors.Is(err, ErrDuplicateHeader) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if shape != 0 {
			t.Fatalf("accepted headers with shape %08b", shape)
		}
		if h.MachineID != strings.ToLower(string(id)) || len(h.MachineID) != 36 {
			t.Fatalf("MachineID %q from %q", h.MachineID, id)
		}
		if h.TimestampRaw != string(ts) || h.Timestamp < 0 {
			t.Fatalf("timestamp %d %q from %q", h.Timestamp, h.TimestampRaw, ts)
		}
		if h.Nonce != string(nonce) || len(nonce) < MinNonceLength || len(nonce) > MaxNonceLength ||
			strings.ContainsAny(h.Nonce, ": ") {
			t.Fatalf("nonce %q accepted", nonce)
		}
		if base64.StdEncoding.EncodeToString(h.Signature[:]) != string(sig) {
			t.Fatalf("signature %q does not round-trip", sig)
		}
	})
}
