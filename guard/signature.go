package guard

import (
	"crypto/ed25519"
	"fmt"

	"github.com/oasisprotocol/curve25519-voi/curve"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// PublicKeySize is the length in bytes of a raw Ed25519 public key.
const PublicKeySize = ed25519.PublicKeySize

// SignatureSize is the length in bytes of an Ed25519 signature.
const SignatureSize = ed25519.SignatureSize

// verifyOptions selects the verification rule, the cofactored equation of
// RFC 8032 with canonical encodings (curve25519-voi's
// VerifyOptionsFIPS_186_5). Every verification in this package uses it:
// with the raw key, with an expanded one, and in a batch. The package
// documentation explains the choice.
var verifyOptions = &voi.Options{Verify: voi.VerifyOptionsFIPS_186_5}

// PublicKey is a machine's Ed25519 public key, checked at registration. It
// holds the 32 raw bytes only, so that a million machines cost 32 MB of
// keys. Verification speeds up with an expanded key (Expand), which
// KeyCache keeps for the machines that sign requests. A PublicKey is
// immutable and safe for concurrent use.
type PublicKey struct {
	raw [PublicKeySize]byte
}

// ParsePublicKey checks a raw 32-byte Ed25519 public key. It rejects a key
// of the wrong length, a non-canonical point encoding, a point that does
// not decode, and a small-order point (for which any signature over any
// message could verify).
func ParsePublicKey(raw []byte) (*PublicKey, error) {
	pk := &PublicKey{}
	if err := pk.set(raw); err != nil {
		return nil, err
	}
	return pk, nil
}

func (pk *PublicKey) set(raw []byte) error {
	if len(raw) != PublicKeySize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrInvalidPublicKey, len(raw), PublicKeySize)
	}

	var compressed curve.CompressedEdwardsY
	if _, err := compressed.SetBytes(raw); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPublicKey, err)
	}
	if !compressed.IsCanonicalVartime() {
		return fmt.Errorf("%w: non-canonical point encoding", ErrInvalidPublicKey)
	}

	var point curve.EdwardsPoint
	if _, err := point.SetCompressedY(&compressed); err != nil {
		return fmt.Errorf("%w: not a curve point", ErrInvalidPublicKey)
	}
	if point.IsSmallOrder() {
		return fmt.Errorf("%w: small-order point", ErrInvalidPublicKey)
	}

	copy(pk.raw[:], raw)
	return nil
}

// Bytes returns a copy of the raw 32-byte key.
func (pk *PublicKey) Bytes() []byte {
	out := make([]byte, PublicKeySize)
	copy(out, pk.raw[:])
	return out
}

// Array returns the key's own 32 bytes, without a copy, for holders of
// immutable values that store the key once. They must not be modified.
func (pk *PublicKey) Array() *[PublicKeySize]byte {
	return &pk.raw
}

// Verify reports whether sig is a valid signature of msg under pk, by the
// rule described in the package documentation. It decompresses the key on
// every call, which costs about a quarter more than
// ExpandedPublicKey.Verify. The request path goes through KeyCache.
func (pk *PublicKey) Verify(msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(pk.raw[:], msg, sig, verifyOptions)
}

// ExpandedPublicKey is a public key with curve25519-voi's precomputed
// tables for -A, about 1.5 KiB, which make each verification skip the
// point decompression and the table setup. It is immutable and safe for
// concurrent use.
type ExpandedPublicKey struct {
	expanded *voi.ExpandedPublicKey
}

// Expand builds the expanded form of pk. It allocates about 1.5 KiB and
// takes about a third of a verification.
func (pk *PublicKey) Expand() *ExpandedPublicKey {
	expanded, err := voi.NewExpandedPublicKey(pk.raw[:])
	if err != nil {
		// Every PublicKey comes from ParsePublicKey, which already
		// decompressed this point, so an error here is a bug.
		panic(fmt.Sprintf("guard: expand a checked public key: %v", err))
	}
	return &ExpandedPublicKey{expanded: expanded}
}

// Verify reports whether sig is a valid signature of msg under the key,
// with the same rule as PublicKey.Verify. It does not allocate.
func (k *ExpandedPublicKey) Verify(msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	return voi.VerifyExpandedWithOptions(k.expanded, msg, sig, verifyOptions)
}
