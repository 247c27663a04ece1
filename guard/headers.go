package guard

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Names of the signed-request headers, for error messages. Matching header
// names without regard to case is the HTTP layer's job: the caller collects
// the values of each header, whatever the case of its name, and passes them
// to ParseSignedHeaders, or their first value and count to
// ParseSignedHeaderView.
const (
	HeaderMachineID = "X-Machine-Id"
	HeaderTimestamp = "X-Timestamp"
	HeaderNonce     = "X-Nonce"
	HeaderSignature = "X-Signature"
)

// Bounds of the X-Nonce value.
const (
	MinNonceLength = 8
	MaxNonceLength = 128
)

// maxTimestampDigits is the length of the largest int64 in decimal.
const maxTimestampDigits = 19

// signatureBase64Length is the length of a 64-byte value in padded standard
// base64.
const signatureBase64Length = 88

// machineIDLength is the length of a UUID in its hyphenated text form.
const machineIDLength = 36

// SignedHeaders holds the validated values of the signed-request headers.
type SignedHeaders struct {
	// MachineID is the machine UUID in canonical lower-case text.
	MachineID string
	// Timestamp is X-Timestamp in Unix seconds.
	Timestamp int64
	// TimestampRaw is X-Timestamp exactly as sent; the signed bytes use it.
	TimestampRaw string
	// Nonce is X-Nonce exactly as sent.
	Nonce string
	// Signature is the decoded X-Signature.
	Signature [SignatureSize]byte
}

// HeaderValues is the first value of one header of a request and the
// number of values sent. The count is enough to reject a repeated header,
// so a caller need not collect every value.
type HeaderValues struct {
	First []byte
	Count int
}

// SignedHeaderView contains the validated values of the signed-request
// headers without copying them. TimestampRaw and Nonce are slices of the
// bytes passed to ParseSignedHeaderView and are valid only as long as those
// bytes are, so a caller copies whatever it keeps past the request.
type SignedHeaderView struct {
	// MachineID is the machine UUID in canonical lower-case text.
	MachineID [machineIDLength]byte
	// Timestamp is X-Timestamp in Unix seconds.
	Timestamp int64
	// TimestampRaw is X-Timestamp exactly as sent, which the signed bytes
	// contain.
	TimestampRaw []byte
	// Nonce is X-Nonce exactly as sent.
	Nonce []byte
	// Signature is the decoded X-Signature.
	Signature [SignatureSize]byte
}

// ParseSignedHeaders validates the four signed-request headers. Each
// argument holds every value received for that header, in order, so that a
// repeated header is seen (fasthttp's RequestHeader.PeekAll returns them).
// It applies the checks and returns the errors of ParseSignedHeaderView.
//
// The returned strings are copies, so they stay valid after the request
// buffers are reused.
func ParseSignedHeaders(machineID, timestamp, nonce, signature [][]byte) (SignedHeaders, error) {
	v, err := ParseSignedHeaderView(firstValue(machineID), firstValue(timestamp),
		firstValue(nonce), firstValue(signature))
	if err != nil {
		return SignedHeaders{}, err
	}
	return SignedHeaders{
		MachineID:    string(v.MachineID[:]),
		Timestamp:    v.Timestamp,
		TimestampRaw: string(v.TimestampRaw),
		Nonce:        string(v.Nonce),
		Signature:    v.Signature,
	}, nil
}

func firstValue(values [][]byte) HeaderValues {
	if len(values) == 0 {
		return HeaderValues{}
	}
	return HeaderValues{First: values[0], Count: len(values)}
}

// ParseSignedHeaderView validates the four signed-request headers without
// allocating unless it returns an error. A header sent more than once
// returns ErrDuplicateHeader, because the verifier, the guardrails and the
// audit record must never read different copies of it. A missing header
// (a count of zero or less) returns ErrMissingHeader and a malformed one
// ErrMalformedHeader. Duplicates are checked first, then presence, then
// form, so the result does not depend on which header is bad.
func ParseSignedHeaderView(machineID, timestamp, nonce, signature HeaderValues) (SignedHeaderView, error) {
	all := [4]HeaderValues{machineID, timestamp, nonce, signature}
	names := [4]string{HeaderMachineID, HeaderTimestamp, HeaderNonce, HeaderSignature}
	for i, values := range all {
		if values.Count > 1 {
			return SignedHeaderView{}, fmt.Errorf("%w: %s sent %d times; send it once",
				ErrDuplicateHeader, names[i], values.Count)
		}
	}
	for i, values := range all {
		if values.Count <= 0 {
			return SignedHeaderView{}, fmt.Errorf("%w: %s", ErrMissingHeader, names[i])
		}
	}

	var v SignedHeaderView
	var err error
	if err = parseMachineID(machineID.First, &v.MachineID); err != nil {
		return SignedHeaderView{}, err
	}
	if v.Timestamp, err = parseTimestamp(timestamp.First); err != nil {
		return SignedHeaderView{}, err
	}
	v.TimestampRaw = timestamp.First
	if err = checkNonce(nonce.First); err != nil {
		return SignedHeaderView{}, err
	}
	v.Nonce = nonce.First
	if err = decodeSignature(signature.First, &v.Signature); err != nil {
		return SignedHeaderView{}, err
	}
	return v, nil
}

// AppendCanonicalDigest appends the bytes a machine signed to dst, as
// AppendCanonicalDigest does with v's timestamp and nonce as strings, and
// returns the extended slice. With a dst of enough capacity the call does
// not allocate.
func (v *SignedHeaderView) AppendCanonicalDigest(dst, method []byte, path string, bodySHA256 []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, ':')
	dst = append(dst, path...)
	dst = append(dst, ':')
	dst = append(dst, v.TimestampRaw...)
	dst = append(dst, ':')
	dst = append(dst, v.Nonce...)
	dst = append(dst, ':')
	return hex.AppendEncode(dst, bodySHA256)
}

// parseMachineID accepts only the 36-character hyphenated UUID form, in any
// letter case, and writes it to out in lower case. Other UUID spellings
// (braces, "urn:uuid:", no hyphens) are rejected so that one machine has
// one id text.
func parseMachineID(v []byte, out *[machineIDLength]byte) error {
	if len(v) != machineIDLength {
		return fmt.Errorf("%w: %s %q is not a UUID (want 8-4-4-4-12 hex digits)",
			ErrMalformedHeader, HeaderMachineID, clip(v))
	}

	for i, c := range v {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return fmt.Errorf("%w: %s %q is not a UUID (want 8-4-4-4-12 hex digits)",
					ErrMalformedHeader, HeaderMachineID, clip(v))
			}
		default:
			if !isHex(c) {
				return fmt.Errorf("%w: %s %q is not a UUID (want 8-4-4-4-12 hex digits)",
					ErrMalformedHeader, HeaderMachineID, clip(v))
			}
			if 'A' <= c && c <= 'F' {
				c += 'a' - 'A'
			}
		}
		out[i] = c
	}
	return nil
}

// parseTimestamp accepts a non-negative decimal integer without sign,
// leading zeros or spaces, so that one instant has one spelling.
func parseTimestamp(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > maxTimestampDigits {
		return 0, fmt.Errorf("%w: %s %q is not Unix seconds in decimal",
			ErrMalformedHeader, HeaderTimestamp, clip(v))
	}
	if len(v) > 1 && v[0] == '0' {
		return 0, fmt.Errorf("%w: %s %q has a leading zero",
			ErrMalformedHeader, HeaderTimestamp, clip(v))
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %s %q is not Unix seconds in decimal",
				ErrMalformedHeader, HeaderTimestamp, clip(v))
		}
	}

	ts, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is out of range", ErrMalformedHeader, HeaderTimestamp, clip(v))
	}
	return ts, nil
}

// checkNonce accepts 8 to 128 printable ASCII characters other than space
// and ':'. Space is excluded because HTTP strips it at the ends of a header
// value, and ':' because it separates the fields of the signed bytes: with
// a ':' in the nonce, a path, timestamp and nonce could be regrouped into
// different values that produce the same signed bytes.
func checkNonce(v []byte) error {
	if len(v) < MinNonceLength || len(v) > MaxNonceLength {
		return fmt.Errorf("%w: %s is %d bytes long; want %d to %d",
			ErrMalformedHeader, HeaderNonce, len(v), MinNonceLength, MaxNonceLength)
	}
	for _, c := range v {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("%w: %s %q contains byte 0x%02x; use printable ASCII without ':' or space",
				ErrMalformedHeader, HeaderNonce, clip(v), c)
		}
	}
	return nil
}

// decodeSignature accepts exactly the padded standard base64 of 64 bytes.
// Strict decoding rejects non-zero padding bits, so each signature has one
// spelling.
func decodeSignature(v []byte, out *[SignatureSize]byte) error {
	if len(v) != signatureBase64Length {
		return fmt.Errorf("%w: %s is %d characters; want %d (standard base64 of %d bytes)",
			ErrMalformedHeader, HeaderSignature, len(v), signatureBase64Length, SignatureSize)
	}

	var buf [66]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], v)
	if err != nil || n != SignatureSize {
		return fmt.Errorf("%w: %s is not standard base64 of %d bytes",
			ErrMalformedHeader, HeaderSignature, SignatureSize)
	}
	copy(out[:], buf[:n])
	return nil
}

// CheckTimestamp returns ErrTimestampSkew unless ts, in Unix seconds, is
// within window of now, bounds included. now is truncated to whole seconds
// and window to whole seconds. A timestamp sent in milliseconds is about
// 1000 times too large and fails.
func CheckTimestamp(ts int64, now time.Time, window time.Duration) error {
	nowSec := now.Unix()
	windowSec := int64(window / time.Second)
	if windowSec < 0 {
		windowSec = 0
	}

	// Compare against the bounds rather than computing ts - nowSec, which
	// could overflow for hostile values of ts.
	if ts < nowSec-windowSec || ts > nowSec+windowSec {
		return fmt.Errorf("%w: timestamp %d is outside %v of server time %d; check the client clock",
			ErrTimestampSkew, ts, time.Duration(windowSec)*time.Second, nowSec)
	}
	return nil
}
