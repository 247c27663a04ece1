// Package seal encrypts secret values at rest with AES-256-GCM envelope
// encryption.
//
// Three layers of keys protect a value. The root key, loaded at start from
// the root key file, wraps one key per project. A project key wraps a fresh
// data key per secret version, and the data key encrypts the value. The
// secret id is the additional authenticated data of both the data-key wrap
// and the value encryption, so a sealed value copied onto another secret
// fails to open. Only wrapped keys and ciphertext ever leave this package:
// plaintext is returned to the caller and never stored, logged or replicated.
package seal
