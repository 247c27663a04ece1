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

func idempotencyKeyFrom(ctx context.Context) string {
	key, _ := ctx.Value(idempotencyKey{}).(string)
	return key
}
