package guard

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// viewArgs converts ParseSignedHeaders arguments to ParseSignedHeaderView
// arguments.
func viewArgs(h headerArgs) (id, ts, nonce, sig HeaderValues) {
	return firstValue(h.id), firstValue(h.ts), firstValue(h.nonce), firstValue(h.sig)
}

func TestParseSignedHeaderView_Valid(t *testing.T) {
	sig := make([]byte, SignatureSize)
	for i := range sig {
		sig[i] = byte(255 - i)
	}
	v, err := ParseSignedHeaderView(
		HeaderValues{First: []byte(strings.ToUpper(testMachineID)), Count: 1},
		HeaderValues{First: []byte("1767225600"), Count: 1},
		HeaderValues{First: []byte(testNonce), Count: 1},
		HeaderValues{First: []byte(base64.StdEncoding.EncodeToString(sig)), Count: 1})
	if err != nil {
		t.Fatalf("ParseSignedHeaderView: %v", err)
	}
	if string(v.MachineID[:]) != testMachineID {
		t.Errorf("MachineID = %q, want lower case %q", v.MachineID[:], testMachineID)
	}
	if v.Timestamp != 1767225600 {
		t.Errorf("Timestamp = %d, want 1767225600", v.Timestamp)
	}
	if string(v.TimestampRaw) != "1767225600" {
		t.Errorf("TimestampRaw = %q, want 1767225600", v.TimestampRaw)
	}
	if string(v.Nonce) != testNonce {
		t.Errorf("Nonce = %q, want %q", v.Nonce, testNonce)
	}
	if !bytes.Equal(v.Signature[:], sig) {
		t.Errorf("Signature = %x, want %x", v.Signature, sig)
	}
}

func TestParseSignedHeaderView_SlicesInput(t *testing.T) {
	ts, nonce := []byte("1767225600"), []byte(testNonce)
	v, err := ParseSignedHeaderView(HeaderValues{First: []byte(testMachineID), Count: 1},
		HeaderValues{First: ts, Count: 1}, HeaderValues{First: nonce, Count: 1},
		HeaderValues{First: []byte(testSignature), Count: 1})
	if err != nil {
		t.Fatalf("ParseSignedHeaderView: %v", err)
	}
	if &v.TimestampRaw[0] != &ts[0] {
		t.Error("TimestampRaw is a copy, want a slice of the header value")
	}
	if &v.Nonce[0] != &nonce[0] {
		t.Error("Nonce is a copy, want a slice of the header value")
	}
}

func TestParseSignedHeaderView_Errors(t *testing.T) {
	for _, tt := range headerErrorCases() {
		t.Run(tt.name, func(t *testing.T) {
			h := validHeaderArgs()
			tt.modify(&h)
			id, ts, nonce, sig := viewArgs(h)
			_, err := ParseSignedHeaderView(id, ts, nonce, sig)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseSignedHeaderView error = %v, want %v", err, tt.want)
			}
			_, stringErr := ParseSignedHeaders(h.id, h.ts, h.nonce, h.sig)
			if stringErr == nil || err.Error() != stringErr.Error() {
				t.Errorf("ParseSignedHeaderView error %q differs from ParseSignedHeaders error %v", err, stringErr)
			}
		})
	}
}

func TestParseSignedHeaderView_Counts(t *testing.T) {
	valid := func() [4]HeaderValues {
		return [4]HeaderValues{
			{First: []byte(testMachineID), Count: 1},
			{First: []byte("1767225600"), Count: 1},
			{First: []byte(testNonce), Count: 1},
			{First: []byte(testSignature), Count: 1},
		}
	}
	names := [4]string{HeaderMachineID, HeaderTimestamp, HeaderNonce, HeaderSignature}
	tests := []struct {
		name  string
		count int
		first []byte
		want  error
		text  string
	}{
		{"sent twice", 2, nil, ErrDuplicateHeader, "sent 2 times"},
		{"sent 1000 times", 1000, nil, ErrDuplicateHeader, "sent 1000 times"},
		{"count zero with a value", 0, nil, ErrMissingHeader, ""},
		{"negative count", -1, nil, ErrMissingHeader, ""},
		{"sent once and empty", 1, []byte{}, ErrMalformedHeader, ""},
	}
	for _, tt := range tests {
		for i, name := range names {
			t.Run(tt.name+" "+name, func(t *testing.T) {
				args := valid()
				args[i].Count = tt.count
				if tt.first != nil {
					args[i].First = tt.first
				}
				_, err := ParseSignedHeaderView(args[0], args[1], args[2], args[3])
				if !errors.Is(err, tt.want) {
					t.Fatalf("error = %v, want %v", err, tt.want)
				}
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
				if !strings.Contains(err.Error(), tt.text) {
					t.Errorf("error %q does not contain %q", err, tt.text)
				}
			})
		}
	}
}

func TestParseSignedHeaderView_DuplicateBeforeMissing(t *testing.T) {
	_, err := ParseSignedHeaderView(HeaderValues{},
		HeaderValues{First: []byte("1767225600"), Count: 2},
		HeaderValues{First: []byte(testNonce), Count: 1},
		HeaderValues{First: []byte(testSignature), Count: 1})
	if !errors.Is(err, ErrDuplicateHeader) {
		t.Errorf("error = %v, want %v", err, ErrDuplicateHeader)
	}
}

func TestParseSignedHeaderView_DoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are checked without the race detector, whose instrumentation allocates")
	}
	id := HeaderValues{First: []byte(strings.ToUpper(testMachineID)), Count: 1}
	ts := HeaderValues{First: []byte("1767225600"), Count: 1}
	nonce := HeaderValues{First: []byte(strings.Repeat("n", MaxNonceLength)), Count: 1}
	sig := HeaderValues{First: []byte(testSignature), Count: 1}

	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseSignedHeaderView(id, ts, nonce, sig); err != nil {
			t.Fatalf("ParseSignedHeaderView: %v", err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseSignedHeaderView of valid headers allocated %.1f times, want 0", allocs)
	}
}

func TestSignedHeaderView_AppendCanonicalDigest(t *testing.T) {
	tests := []struct {
		method, path, timestamp, nonce string
		body                           []byte
	}{
		{"GET", "/v1/secret/sk_0123456789", "1767225600", testNonce, nil},
		{"POST", "/v1/secrets/list", "0", "!!!!!!!!", []byte(`{"projectId":"proj_0123456789"}`)},
		{"PUT", "/", "9223372036854775807", strings.Repeat("~", MaxNonceLength), []byte{0, 1, 2}},
	}
	for _, tt := range tests {
		v, err := ParseSignedHeaderView(HeaderValues{First: []byte(testMachineID), Count: 1},
			HeaderValues{First: []byte(tt.timestamp), Count: 1},
			HeaderValues{First: []byte(tt.nonce), Count: 1},
			HeaderValues{First: []byte(testSignature), Count: 1})
		if err != nil {
			t.Fatalf("ParseSignedHeaderView(%q, %q): %v", tt.timestamp, tt.nonce, err)
		}
		sum := sha256.Sum256(tt.body)
		got := v.AppendCanonicalDigest([]byte("prefix"), []byte(tt.method), tt.path, sum[:])
		want := AppendCanonical([]byte("prefix"), []byte(tt.method), []byte(tt.path),
			[]byte(tt.timestamp), []byte(tt.nonce), tt.body)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendCanonicalDigest = %q, want %q", got, want)
		}
	}
}

func TestSignedHeaderView_DigestAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are checked without the race detector, whose instrumentation allocates")
	}
	v, err := ParseSignedHeaderView(HeaderValues{First: []byte(testMachineID), Count: 1},
		HeaderValues{First: []byte("1767225600"), Count: 1},
		HeaderValues{First: []byte(testNonce), Count: 1},
		HeaderValues{First: []byte(testSignature), Count: 1})
	if err != nil {
		t.Fatalf("ParseSignedHeaderView: %v", err)
	}
	sum := sha256.Sum256(nil)
	method := []byte("GET")
	dst := make([]byte, 0, 512)

	allocs := testing.AllocsPerRun(100, func() {
		dst = v.AppendCanonicalDigest(dst[:0], method, "/v1/secret/sk_0123456789", sum[:])
	})
	if allocs != 0 {
		t.Errorf("AppendCanonicalDigest into a large enough dst allocated %.1f times, want 0", allocs)
	}
}
