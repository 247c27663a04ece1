package cluster

import "errors"

// Errors returned by this package. Match them with errors.Is; the wrapped
// text names the node and the cause.
var (
	// ErrInvalidConfig means a Config field failed validation; the message
	// names the field by its flag name.
	ErrInvalidConfig = errors.New("cluster: invalid config")

	// ErrNoLeader means no leader could take the write within the bounded
	// wait, so the command was not applied. The HTTP layer returns 503 with
	// Retry-After, and a retry of the same command is safe.
	ErrNoLeader = errors.New("cluster: no leader available")

	// ErrIndeterminate means the command reached a leader but the outcome
	// is unknown: leadership was lost, the connection broke or the deadline
	// passed after the command was sent. The entry may still commit under
	// the next leader. The HTTP layer returns 503 commit_indeterminate; a
	// retry with the same request id is safe because the state machine
	// deduplicates request ids.
	ErrIndeterminate = errors.New("cluster: outcome of the write is unknown")

	// ErrNotLeader means an operation that runs only on the leader, such
	// as a snapshot restore, reached another node. The HTTP layer answers
	// 409 with the leader's API URL.
	ErrNotLeader = errors.New("cluster: this node is not the leader")

	// ErrClosed means the node is closed or not started.
	ErrClosed = errors.New("cluster: node is closed")

	// ErrUnknownMember means a node id is not in the Raft configuration.
	ErrUnknownMember = errors.New("cluster: unknown member")

	// ErrMemberAlive means a member cannot be removed because gossip still
	// reports it alive; the leader would add it back. Stop it first.
	ErrMemberAlive = errors.New("cluster: member is still alive")

	// ErrFrameTooLarge means a forwarding frame announced a length above
	// the 16 MiB limit; the connection is closed without reading it.
	ErrFrameTooLarge = errors.New("cluster: frame too large")

	// ErrProtocol means a peer sent a malformed forwarding frame.
	ErrProtocol = errors.New("cluster: protocol error")

	// ErrDiskFull means the leader could not store the write in its Raft
	// log because its data volume is below the disk reserve or full, so
	// the write was not applied. The leader hands leadership to another
	// voter; the HTTP layer returns 507 with Retry-After.
	ErrDiskFull = errors.New("cluster: data volume full")
)
