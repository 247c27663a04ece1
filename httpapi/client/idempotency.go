package client

import "context"

// HeaderIdempotencyKey names the header that makes an admin write
// idempotent. The server uses its value as the replicated command's request
// id, and the state machine applies a command with a known request id only
// once. So a write retried with the same key after an unknown outcome (a
// 503 with code "commit_indeterminate") takes effect at most once.
const HeaderIdempotencyKey = "Idempotency-Key"

type idempotencyKey struct{}

// WithIdempotencyKey returns a context whose admin requests carry key in
// the Idempotency-Key header. Use one key per logical write and reuse it
// only to retry that write.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, key)
}

// WithIdempotencyPrefix makes every write (POST, PUT, PATCH, DELETE) of the
// client carry the key prefix + "-" + n, where n counts the client's
// writes from 1, unless the context sets a key. A program that makes the
// same writes in the same order can therefore repeat a run with the same
// prefix after an unknown outcome, and each write takes effect at most
// once. The keyward CLI uses one prefix per invocation.
func WithIdempotencyPrefix(prefix string) Option {
	return func(s *settings) { s.idemPrefix = prefix }
}

// IdempotencyPrefix returns the prefix set with [WithIdempotencyPrefix].
func (c *Client) IdempotencyPrefix() string { return c.idemPrefix }

func idempotencyKeyFrom(ctx context.Context) string {
	key, _ := ctx.Value(idempotencyKey{}).(string)
	return key
}
