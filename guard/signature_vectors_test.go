package guard

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base64"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// Edge-case signatures, built from the signer's secret scalar with
// curve25519-voi's point and scalar arithmetic. They exercise the places
// where Ed25519 verifiers disagree. A nonce point R or a key A with a
// small-order component passes the cofactored equation of RFC 8032 (this
// package's rule) and fails the cofactorless one of crypto/ed25519.
// Non-canonical encodings fail both.

// torsionPoint decodes one of the small-order encodings of
// TestParsePublicKey_SmallOrderRejected.
func torsionPoint(t testing.TB, encoding string) *curve.EdwardsPoint {
	t.Helper()
	var compressed curve.CompressedEdwardsY
	if _, err := compressed.SetBytes(mustHex(t, encoding)); err != nil {
		t.Fatal(err)
	}
	var p curve.EdwardsPoint
	if _, err := p.SetCompressedY(&compressed); err != nil {
		t.Fatalf("decode %s: %v", encoding, err)
	}
	return &p
}

const (
	torsionOrder2 = "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
	torsionOrder4 = "0000000000000000000000000000000000000000000000000000000000000000"
	torsionOrder8 = "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"
	// identityNonCanonical encodes the identity with y = p + 1.
	identityNonCanonical = "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
	identityCanonical    = "0100000000000000000000000000000000000000000000000000000000000000"
)

// edgeSigner signs with the secret scalar of an Ed25519 seed, and can add
// a small-order point to its public key and to the nonce point R.
type edgeSigner struct {
	a      scalar.Scalar
	public curve.EdwardsPoint
}

func newEdgeSigner(t testing.TB, seed []byte) *edgeSigner {
	t.Helper()
	h := sha512.Sum512(seed)
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	s := &edgeSigner{}
	if _, err := s.a.SetBytesModOrder(h[:32]); err != nil {
		t.Fatal(err)
	}
	s.public.Mul(curve.ED25519_BASEPOINT_POINT, &s.a)

	// The derived key must be the one crypto/ed25519 derives.
	want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if got := encodePoint(&s.public); string(got) != string(want) {
		t.Fatalf("derived public key %x, want %x", got, want)
	}
	return s
}

func encodePoint(p *curve.EdwardsPoint) []byte {
	var c curve.CompressedEdwardsY
	c.SetEdwardsPoint(p)
	return append([]byte(nil), c[:]...)
}

// key returns the public key with torsion added (nil adds nothing).
func (s *edgeSigner) key(torsion *curve.EdwardsPoint) []byte {
	if torsion == nil {
		return encodePoint(&s.public)
	}
	var p curve.EdwardsPoint
	return encodePoint(p.Add(&s.public, torsion))
}

// sign returns R || S where R is [r]B plus torsion, or the bytes rBytes
// when they are set, and S = r + H(R || A || msg)·a. pub is the key that
// goes into the hash.
func (s *edgeSigner) sign(t testing.TB, pub, msg []byte, r *scalar.Scalar, torsion *curve.EdwardsPoint, rBytes []byte) []byte {
	t.Helper()
	if rBytes == nil {
		var R curve.EdwardsPoint
		R.Mul(curve.ED25519_BASEPOINT_POINT, r)
		if torsion != nil {
			R.Add(&R, torsion)
		}
		rBytes = encodePoint(&R)
	}

	h := sha512.New()
	h.Write(rBytes)
	h.Write(pub)
	h.Write(msg)
	var k scalar.Scalar
	if _, err := k.SetBytesModOrderWide(h.Sum(nil)); err != nil {
		t.Fatal(err)
	}
	var sum scalar.Scalar
	sum.Mul(&k, &s.a)
	sum.Add(&sum, r)

	sig := append([]byte(nil), rBytes...)
	out := make([]byte, scalar.ScalarSize)
	if err := sum.ToBytes(out); err != nil {
		t.Fatal(err)
	}
	return append(sig, out...)
}

// hashMod8 returns H(R || A || msg) modulo 8 for a signature's R.
func hashMod8(sig, pub, msg []byte) int {
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(pub)
	h.Write(msg)
	var k scalar.Scalar
	_, _ = k.SetBytesModOrderWide(h.Sum(nil))
	var b [scalar.ScalarSize]byte
	_ = k.ToBytes(b[:])
	return int(b[0] & 7)
}

// signatureVector is one key, message and signature, with the results of
// the two equations.
type signatureVector struct {
	name      string
	publicKey []byte
	msg, sig  []byte
	// cofactored is the result of this package's rule, and cofactorless
	// the result of crypto/ed25519.
	cofactored, cofactorless bool
}

// edgeVectors returns signatures on which every verification path of this
// package must give the same result.
func edgeVectors(t testing.TB) []signatureVector {
	t.Helper()
	signer := newEdgeSigner(t, goldenSeed())
	msg := benchmarkMessage()
	pub := signer.key(nil)
	r := scalar.NewFromUint64(0x1234_5678_9abc_def1)
	zero := scalar.New()

	vectors := []signatureVector{
		{name: "honest", publicKey: pub, msg: msg, sig: signer.sign(t, pub, msg, r, nil, nil),
			cofactored: true, cofactorless: true},
		{name: "R with order-2 component", publicKey: pub, msg: msg,
			sig: signer.sign(t, pub, msg, r, torsionPoint(t, torsionOrder2), nil), cofactored: true},
		{name: "R with order-4 component", publicKey: pub, msg: msg,
			sig: signer.sign(t, pub, msg, r, torsionPoint(t, torsionOrder4), nil), cofactored: true},
		{name: "R with order-8 component", publicKey: pub, msg: msg,
			sig: signer.sign(t, pub, msg, r, torsionPoint(t, torsionOrder8), nil), cofactored: true},
		{name: "R the identity", publicKey: pub, msg: msg,
			sig: signer.sign(t, pub, msg, zero, nil, mustHex(t, identityCanonical)), cofactored: true, cofactorless: true},
		{name: "R the identity, non-canonical", publicKey: pub, msg: msg,
			sig: signer.sign(t, pub, msg, zero, nil, mustHex(t, identityNonCanonical))},
		{name: "R of order 8 alone", publicKey: pub, msg: msg,
			sig: signer.sign(t, pub, msg, zero, nil, mustHex(t, torsionOrder8)), cofactored: true},
		{name: "wrong message", publicKey: pub, msg: []byte("another message"), sig: signer.sign(t, pub, msg, r, nil, nil)},
	}

	honest := vectors[0].sig
	nonCanonicalS := mustBase64(t, addGroupOrderToS(t, base64.StdEncoding.EncodeToString(honest)))
	vectors = append(vectors, signatureVector{name: "S plus the group order", publicKey: pub, msg: msg, sig: nonCanonicalS})

	// A key with an order-8 component passes ParsePublicKey. An honest
	// signature under it verifies cofactorless only when H(R||A||M) is a
	// multiple of 8, so search nonces for one of each kind.
	mixed := signer.key(torsionPoint(t, torsionOrder8))
	var found [2]bool
	for i := uint64(1); !(found[0] && found[1]); i++ {
		if i > 1000 {
			t.Fatal("no nonce found for the mixed-order key vectors")
		}
		sig := signer.sign(t, mixed, msg, scalar.NewFromUint64(i), nil, nil)
		multiple := hashMod8(sig, mixed, msg) == 0
		index := 0
		if multiple {
			index = 1
		}
		if found[index] {
			continue
		}
		found[index] = true
		name := "mixed-order key, hash not a multiple of 8"
		if multiple {
			name = "mixed-order key, hash a multiple of 8"
		}
		vectors = append(vectors, signatureVector{name: name, publicKey: mixed, msg: msg, sig: sig,
			cofactored: true, cofactorless: multiple})
	}
	return vectors
}

func TestEdgeVectors_CryptoEd25519IsCofactorless(t *testing.T) {
	for _, v := range edgeVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			if got := ed25519.Verify(v.publicKey, v.msg, v.sig); got != v.cofactorless {
				t.Errorf("crypto/ed25519.Verify = %v, want %v", got, v.cofactorless)
			}
		})
	}
}

func TestVerify_PathsAgreeOnEdgeVectors(t *testing.T) {
	cache := NewKeyCache(DefaultKeyCacheBytes)
	batch := NewBatchVerifier(DefaultMaxBatch, 1)
	for _, v := range edgeVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			pk, err := ParsePublicKey(v.publicKey)
			if err != nil {
				t.Fatalf("ParsePublicKey: %v", err)
			}
			if got := pk.Verify(v.msg, v.sig); got != v.cofactored {
				t.Errorf("PublicKey.Verify = %v, want %v", got, v.cofactored)
			}
			if got := pk.Expand().Verify(v.msg, v.sig); got != v.cofactored {
				t.Errorf("ExpandedPublicKey.Verify = %v, want %v", got, v.cofactored)
			}
			// Twice: the first call expands the key, the second finds it.
			for round := range 2 {
				if got := cache.Verify(pk, v.msg, v.sig); got != v.cofactored {
					t.Errorf("KeyCache.Verify round %d = %v, want %v", round, got, v.cofactored)
				}
			}
			if got := batch.Verify(cache.Expanded(pk), v.msg, v.sig); got != v.cofactored {
				t.Errorf("BatchVerifier.Verify = %v, want %v", got, v.cofactored)
			}
		})
	}
}
