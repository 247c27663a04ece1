package client

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward/guard"
)

// Headers of a signed machine request.
const (
	HeaderMachineID = "X-Machine-Id"
	HeaderTimestamp = "X-Timestamp"
	HeaderNonce     = "X-Nonce"
	HeaderSignature = "X-Signature"
)

// nonceBytes is the random part of a nonce: 12 bytes give 24 hex
// characters, inside the 8–128 characters the server accepts, and make a
// collision within the replay window negligible.
const nonceBytes = 12

// Signer signs machine requests with one machine's Ed25519 key. It is safe
// for concurrent use.
type Signer struct {
	machineID string
	key       ed25519.PrivateKey
}

// NewSigner returns a signer for machineID (a UUID, sent in lower case)
// and key.
func NewSigner(machineID string, key ed25519.PrivateKey) (*Signer, error) {
	if !isUUID(machineID) {
		return nil, invalidArgf("machine id %q is not a UUID", machineID)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, invalidArgf("Ed25519 private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	return &Signer{machineID: lowerASCII(machineID), key: key}, nil
}

// MachineID returns the machine id sent in X-Machine-Id.
func (s *Signer) MachineID() string { return s.machineID }

// PublicKey returns the public half of the signing key.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return s.key.Public().(ed25519.PublicKey)
}

// SignRequest returns the four signature headers for a request of method
// to path with body, timestamped at now (Unix seconds) and with a fresh
// random nonce. path is the raw request path exactly as it goes on the
// request line, without a query: the server rejects signed requests that
// carry one. body is the exact bytes sent; nil and empty are the same.
func (s *Signer) SignRequest(method, path string, body []byte, now time.Time) http.Header {
	return s.SignRequestWith(method, path, body, strconv.FormatInt(now.Unix(), 10), NewNonce())
}

// SignRequestWith is SignRequest with the X-Timestamp and X-Nonce values
// given verbatim, for tests that need a fixed nonce or a malformed value.
// It signs whatever it is given.
func (s *Signer) SignRequestWith(method, path string, body []byte, timestamp, nonce string) http.Header {
	msg := CanonicalRequest(method, path, timestamp, nonce, body)
	sig := ed25519.Sign(s.key, msg)

	h := make(http.Header, 4)
	h.Set(HeaderMachineID, s.machineID)
	h.Set(HeaderTimestamp, timestamp)
	h.Set(HeaderNonce, nonce)
	h.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return h
}

// CanonicalRequest returns the signed bytes:
// METHOD ":" PATH ":" TIMESTAMP ":" NONCE ":" hex(sha256(body)).
func CanonicalRequest(method, path, timestamp, nonce string, body []byte) []byte {
	return guard.AppendCanonical(nil, []byte(method), []byte(path), []byte(timestamp), []byte(nonce), body)
}

// NewNonce returns 24 random lower-case hex characters.
func NewNonce() string {
	var b [nonceBytes]byte
	// crypto/rand.Read never returns an error on supported platforms; it
	// aborts the program when the system source fails.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
