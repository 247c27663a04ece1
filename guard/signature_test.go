package guard

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Golden vectors signed by an independent implementation (pyca/cryptography,
// backed by OpenSSL) with the private key seed 00 01 02 … 1f.
const (
	goldenPublicKey = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
	goldenGetSig    = "+g7ap3+a7Tiez4XfsDtYk3Ju4Jsvoxv5Kig2sPXF1l7fd3W+dBujbuZjm81JXBXNst2rxXmHIMN6kZTQrDdvAg=="
	goldenPostSig   = "puwx03tR2D2r6l+JkyyB51QA4+3ZRjF2dTdUiR+DA5tE11Yx7K1eHdVF2hW1bQkZL0JFl9z59XPVHIPi8GXVBQ=="
	goldenTimestamp = "1767225600"
	goldenNonce     = "3f9a1c2e7b4d4e10"
)

// groupOrder is L, the order of the Ed25519 base point, little-endian.
const groupOrder = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"

func goldenSeed() []byte {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return seed
}

func mustBase64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

// signedRequest is one machine request as the HTTP layer receives it.
type signedRequest struct {
	method, path, timestamp, nonce, signature string
	body                                      []byte
	publicKey                                 []byte
}

// checkRequest runs the guard checks of a signed request in the order the
// machine plane applies them and returns the first failure, or nil.
func checkRequest(t *testing.T, req signedRequest, now time.Time, replay *ReplayCache) error {
	t.Helper()
	h, err := ParseSignedHeaders(one(testMachineID), one(req.timestamp), one(req.nonce), one(req.signature))
	if err != nil {
		return err
	}
	if err := CheckPath([]byte(req.path)); err != nil {
		return err
	}
	if err := CheckTimestamp(h.Timestamp, now, 300*time.Second); err != nil {
		return err
	}
	key, err := ParsePublicKey(req.publicKey)
	if err != nil {
		return err
	}
	msg := AppendCanonical(nil, []byte(req.method), []byte(req.path), []byte(h.TimestampRaw),
		[]byte(h.Nonce), req.body)
	if !key.Verify(msg, h.Signature[:]) {
		return errBadSignature
	}
	if !replay.CheckAndRecord(h.MachineID, h.Nonce, now) {
		return errReplay
	}
	return nil
}

var (
	errBadSignature = errors.New("signature does not verify")
	errReplay       = errors.New("nonce already used")
)

func TestSignature_GoldenVectors(t *testing.T) {
	now := time.Unix(1767225600, 0)
	otherKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	get := signedRequest{
		method: "GET", path: "/v1/secret/sk_0123456789", timestamp: goldenTimestamp,
		nonce: goldenNonce, signature: goldenGetSig, publicKey: mustBase64(t, goldenPublicKey),
	}
	post := signedRequest{
		method: "POST", path: "/v1/secrets/list", timestamp: goldenTimestamp,
		nonce: goldenNonce, signature: goldenPostSig, publicKey: mustBase64(t, goldenPublicKey),
		body: []byte(`{"projectId":"proj_0123456789"}`),
	}

	tests := []struct {
		name   string
		req    signedRequest
		modify func(*signedRequest)
		now    time.Time
		want   error
	}{
		{name: "empty body verifies", req: get, now: now},
		{name: "json body verifies", req: post, now: now},
		{name: "at the skew bound", req: get, now: now.Add(300 * time.Second)},
		{name: "query string", req: get, now: now, want: ErrBadPath,
			modify: func(r *signedRequest) { r.path += "?q=x" }},
		{name: "timestamp 301 s old", req: get, now: now.Add(301 * time.Second), want: ErrTimestampSkew},
		{name: "timestamp 301 s ahead", req: get, now: now.Add(-301 * time.Second), want: ErrTimestampSkew},
		{name: "timestamp in milliseconds", req: get, now: now, want: ErrTimestampSkew,
			modify: func(r *signedRequest) { r.timestamp = "1767225600000" }},
		{name: "wrong key", req: get, now: now, want: errBadSignature,
			modify: func(r *signedRequest) { r.publicKey = otherKey }},
		{name: "body changed", req: post, now: now, want: errBadSignature,
			modify: func(r *signedRequest) { r.body = []byte(`{"projectId":"proj_9999999999"}`) }},
		{name: "empty body sent for json signature", req: post, now: now, want: errBadSignature,
			modify: func(r *signedRequest) { r.body = nil }},
		{name: "path re-encoded by a proxy", req: get, now: now, want: errBadSignature,
			modify: func(r *signedRequest) { r.path = "/v1/secret/sk%5F0123456789" }},
		{name: "method changed", req: get, now: now, want: errBadSignature,
			modify: func(r *signedRequest) { r.method = "POST" }},
		{name: "nonce changed", req: get, now: now, want: errBadSignature,
			modify: func(r *signedRequest) { r.nonce = "3f9a1c2e7b4d4e11" }},
		{name: "non-canonical S", req: get, now: now, want: errBadSignature,
			modify: func(r *signedRequest) { r.signature = addGroupOrderToS(t, r.signature) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			if tt.modify != nil {
				tt.modify(&req)
			}
			err := checkRequest(t, req, tt.now, NewReplayCache(300*time.Second))
			if !errors.Is(err, tt.want) {
				t.Errorf("checkRequest = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignature_ReplayedNonceRejected(t *testing.T) {
	now := time.Unix(1767225600, 0)
	req := signedRequest{
		method: "GET", path: "/v1/secret/sk_0123456789", timestamp: goldenTimestamp,
		nonce: goldenNonce, signature: goldenGetSig, publicKey: mustBase64(t, goldenPublicKey),
	}
	replay := NewReplayCache(300 * time.Second)

	// A request stamped ts passes the skew check from ts-300 s to ts+300 s,
	// so a nonce first used at the start must still be known at the end.
	first := now.Add(-300 * time.Second)
	if err := checkRequest(t, req, first, replay); err != nil {
		t.Fatalf("first request: %v", err)
	}
	for _, at := range []time.Duration{time.Second, 300 * time.Second, 600 * time.Second, 600*time.Second + 999*time.Millisecond} {
		if err := checkRequest(t, req, first.Add(at), replay); !errors.Is(err, errReplay) {
			t.Errorf("replay %v after first use = %v, want replay rejection", at, err)
		}
	}
}

// addGroupOrderToS returns the signature with S replaced by S + L, which is
// the same scalar modulo L but a non-canonical encoding.
func addGroupOrderToS(t testing.TB, signature string) string {
	t.Helper()
	sig := mustBase64(t, signature)
	order := mustHex(t, groupOrder)
	s := sig[32:]
	carry := 0
	for i := range s {
		sum := int(s[i]) + int(order[i]) + carry
		s[i] = byte(sum)
		carry = sum >> 8
	}
	if carry != 0 {
		t.Fatal("S + L overflowed 256 bits")
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func TestSignature_NonCanonicalSRejectedForFreshKeys(t *testing.T) {
	key := ed25519.NewKeyFromSeed(goldenSeed())
	pk, err := ParsePublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	for i := range 32 {
		msg := []byte{byte(i), 'm', 's', 'g'}
		sig := ed25519.Sign(key, msg)
		if !pk.Verify(msg, sig) {
			t.Fatalf("message %d: valid signature rejected", i)
		}
		bad := mustBase64(t, addGroupOrderToS(t, base64.StdEncoding.EncodeToString(sig)))
		if pk.Verify(msg, bad) {
			t.Errorf("message %d: signature with S + L accepted", i)
		}
	}
}

func TestSignature_VerifyRejectsWrongLength(t *testing.T) {
	key := ed25519.NewKeyFromSeed(goldenSeed())
	pk, err := ParsePublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	sig := ed25519.Sign(key, []byte("msg"))
	for _, bad := range [][]byte{nil, sig[:63], append(append([]byte{}, sig...), 0)} {
		if pk.Verify([]byte("msg"), bad) {
			t.Errorf("signature of %d bytes accepted", len(bad))
		}
	}
}

func TestParsePublicKey_SmallOrderRejected(t *testing.T) {
	// Encodings of the eight points of order dividing 8, followed by the
	// non-canonical encodings of the same points (y >= p, or x = 0 with the
	// sign bit set).
	encodings := map[string]string{
		"identity":                "0100000000000000000000000000000000000000000000000000000000000000",
		"order 2":                 "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"order 4, x positive":     "0000000000000000000000000000000000000000000000000000000000000000",
		"order 4, x negative":     "0000000000000000000000000000000000000000000000000000000000000080",
		"order 8, first, sign 0":  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"order 8, first, sign 1":  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
		"order 8, second, sign 0": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"order 8, second, sign 1": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"identity, sign bit set":  "0100000000000000000000000000000000000000000000000000000000000080",
		"order 2, sign bit set":   "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"y = p (order 4)":         "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"y = p, sign bit set":     "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"y = p + 1 (identity)":    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"y = p + 1, sign bit set": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	}
	for name, encoding := range encodings {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePublicKey(mustHex(t, encoding))
			if !errors.Is(err, ErrInvalidPublicKey) {
				t.Errorf("ParsePublicKey(%s) = %v, want ErrInvalidPublicKey", encoding, err)
			}
		})
	}
}

func TestParsePublicKey_Malformed(t *testing.T) {
	valid := mustBase64(t, goldenPublicKey)
	tests := map[string][]byte{
		"empty":    nil,
		"31 bytes": valid[:31],
		"33 bytes": append(append([]byte{}, valid...), 0),
		"64 bytes": append(append([]byte{}, valid...), valid...),
		// y = 2 is not the y-coordinate of any curve point.
		"not on curve": mustHex(t, "0200000000000000000000000000000000000000000000000000000000000000"),
		// y = p + 2 encodes y = 2 non-canonically.
		"non-canonical y": mustHex(t, "efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePublicKey(raw); !errors.Is(err, ErrInvalidPublicKey) {
				t.Errorf("ParsePublicKey = %v, want ErrInvalidPublicKey", err)
			}
		})
	}
}

func TestParsePublicKey_ValidRoundTrip(t *testing.T) {
	raw := mustBase64(t, goldenPublicKey)
	pk, err := ParsePublicKey(raw)
	if err != nil {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	if string(pk.Bytes()) != string(raw) {
		t.Errorf("Bytes = %x, want %x", pk.Bytes(), raw)
	}
	out := pk.Bytes()
	out[0] ^= 0xff
	if string(pk.Bytes()) != string(raw) {
		t.Error("changing the slice from Bytes changed the key")
	}
}

func benchmarkMessage() []byte {
	return AppendCanonical(nil, []byte("GET"), []byte("/v1/secret/sk_0123456789"),
		[]byte(goldenTimestamp), []byte(goldenNonce), nil)
}

func BenchmarkVerify_Stdlib(b *testing.B) {
	key := ed25519.NewKeyFromSeed(goldenSeed())
	pub := key.Public().(ed25519.PublicKey)
	msg := benchmarkMessage()
	sig := ed25519.Sign(key, msg)

	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkVerify_Voi(b *testing.B) {
	key := ed25519.NewKeyFromSeed(goldenSeed())
	pub := voi.PublicKey(key.Public().(ed25519.PublicKey))
	msg := benchmarkMessage()
	sig := ed25519.Sign(key, msg)

	b.ReportAllocs()
	for b.Loop() {
		if !voi.VerifyWithOptions(pub, msg, sig, verifyOptions) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkVerify_VoiExpanded(b *testing.B) {
	key := ed25519.NewKeyFromSeed(goldenSeed())
	pk, err := ParsePublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		b.Fatal(err)
	}
	msg := benchmarkMessage()
	sig := ed25519.Sign(key, msg)

	b.ReportAllocs()
	for b.Loop() {
		if !pk.Verify(msg, sig) {
			b.Fatal("verify failed")
		}
	}
}
