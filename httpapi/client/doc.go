// Package client calls Keyward's HTTP API: the admin plane as an operator
// holding a Bearer token, and the machine plane as a registered machine that
// signs every request with its Ed25519 key.
//
// [Client] covers the admin routes (vaults, projects, secrets, bootstrap
// tokens, machines, temporary-machine tokens, extensions and guardrails) and
// offers [Client.Do] for any route without a dedicated method. [Register]
// creates a machine identity from a bootstrap token without openssl and writes
// identity.json and private.pem under ${KEYWARD_HOME:-~/.keyward}/vaults/{vaultId}/,
// the layout the served bootstrap scripts use and the SikkerKey SDKs read.
// [MachineClient] reads secrets with signed requests, and [Signer] produces the
// signature headers for callers that build their own requests.
//
// Failed calls return an [*APIError] carrying the HTTP status, the server's
// message and its request id. It matches the sentinel errors of this package
// with errors.Is, for example errors.Is(err, ErrNotFound).
//
// The client never retries on its own: admin writes are not idempotent, and
// a caller that wants retries of 502, 503 and 504 responses can check
// [APIError.Retryable].
package client
