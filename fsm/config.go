package fsm

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/keyward/keyward/fsm/seal"
)

// Config configures an FSM.
type Config struct {
	// Dir is the Pebble directory. Required.
	Dir string

	// Keyring opens sealed secret values for SecretValue. When nil, the FSM
	// still applies commands and serves metadata, and SecretValue fails.
	Keyring *seal.Keyring

	// FS is the filesystem under Dir. Nil means the operating system's;
	// tests pass vfs.NewMem() or a crash-simulating filesystem.
	FS vfs.FS

	// IdempotencyWindow is the age, in command time, after which the stored
	// first response of a request id is pruned during apply. Default 24h.
	// Every node of a cluster must use the same value, because pruning
	// changes the replicated state.
	IdempotencyWindow time.Duration

	// MachineCacheEntries bounds the machines held in memory; the others
	// are read from the store when a request names them. Zero means
	// DefaultMachineCacheEntries.
	MachineCacheEntries int
}

// DefaultConfig returns a Config with every default set and Dir empty.
func DefaultConfig() Config {
	return Config{IdempotencyWindow: 24 * time.Hour}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("fsm config: dir is empty; set the Pebble directory")
	}
	if c.MachineCacheEntries < 0 || c.MachineCacheEntries > MaxMachineCacheEntries {
		return fmt.Errorf("fsm config: machine-cache-entries %d is outside 0 to %d; use 0 for the default of %d", c.MachineCacheEntries, MaxMachineCacheEntries, DefaultMachineCacheEntries)
	}
	if c.IdempotencyWindow < time.Minute {
		return fmt.Errorf("fsm config: idempotency-window %s is below the minimum of 1m", c.IdempotencyWindow)
	}
	return nil
}
