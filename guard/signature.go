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

// verifyOptions selects the verification rule: the one of Go's
// crypto/ed25519 (cofactorless equation, S must be canonical, A must decode).
// The single path and any batch path use this same rule so that no signature
// passes one and fails the other.
var verifyOptions = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// PublicKey is a machine's Ed25519 public key, checked at registration and
// expanded once so that each verification skips the point decompression.
// A PublicKey is immutable and safe for concurrent use.
type PublicKey struct {
	raw      [PublicKeySize]byte
	expanded *voi.ExpandedPublicKey
}

// ParsePublicKey checks a raw 32-byte Ed25519 public key and expands it.
// It rejects a key of the wrong length, a non-canonical point encoding, a
// point that does not decode, and a small-order point (for which any
// signature over any message could verify).
func ParsePublicKey(raw []byte) (*PublicKey, error) {
	if len(raw) != PublicKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidPublicKey, len(raw), PublicKeySize)
	}

	var compressed curve.CompressedEdwardsY
	if _, err := compressed.SetBytes(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPublicKey, err)
	}
	if !compressed.IsCanonicalVartime() {
		return nil, fmt.Errorf("%w: non-canonical point encoding", ErrInvalidPublicKey)
	}

	var point curve.EdwardsPoint
	if _, err := point.SetCompressedY(&compressed); err != nil {
		return nil, fmt.Errorf("%w: not a curve point", ErrInvalidPublicKey)
	}
	if point.IsSmallOrder() {
		return nil, fmt.Errorf("%w: small-order point", ErrInvalidPublicKey)
	}

	expanded, err := voi.NewExpandedPublicKey(voi.PublicKey(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPublicKey, err)
	}

	pk := &PublicKey{expanded: expanded}
	copy(pk.raw[:], raw)
	return pk, nil
}

// Bytes returns a copy of the raw 32-byte key.
func (pk *PublicKey) Bytes() []byte {
	out := make([]byte, PublicKeySize)
	copy(out, pk.raw[:])
	return out
}

// Verify reports whether sig is a valid signature of msg under pk. It
// rejects signatures whose S is not reduced modulo the group order.
func (pk *PublicKey) Verify(msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	return voi.VerifyExpandedWithOptions(pk.expanded, msg, sig, verifyOptions)
}
