package bench

import "errors"

// Sentinel errors of the bench.
var (
	// ErrInvalidConfig means a Config field is out of range. The wrapping
	// message names the field (as its command-line flag) and the value.
	ErrInvalidConfig = errors.New("bench: invalid configuration")

	// ErrNodeStart means a local node did not start or did not become
	// healthy. The message contains the end of its log.
	ErrNodeStart = errors.New("bench: local node failed to start")

	// ErrSetup means the objects a scenario needs (vault, project,
	// secrets, machines) could not be created on the target.
	ErrSetup = errors.New("bench: setup failed")

	// ErrNoSuccess means a load run completed no successful request, so
	// no rate or latency would mean anything.
	ErrNoSuccess = errors.New("bench: no request succeeded")
)
