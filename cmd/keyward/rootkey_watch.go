package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
)

// rootKeyPoll is how often a node tests its root key until it has found
// something to test it against on a caught-up state.
const rootKeyPoll = 250 * time.Millisecond

// configError marks a server stopped by a configuration error that a
// restart with the same flags cannot fix. The process exits with
// exitConfig, which a supervisor can be configured not to restart.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func isConfigError(err error) bool {
	var c configError
	return errors.As(err, &c)
}

// rootKeyStopError logs a root key mismatch and returns the error that
// stops the server.
func rootKeyStopError(o serverOptions, err error, logger *slog.Logger) error {
	logger.Error("this node's root key differs from the cluster's; it serves nothing and stops. "+
		"Start this node with the cluster's --root-key-file",
		"root_key_file", o.rootKeyFile, "err", err)
	return configError{withHints(
		fmt.Errorf("node %s stopped: %w", o.nodeID, err),
		fmt.Sprintf("--root-key-file %s is not the file the cluster was initialised with; "+
			"copy the cluster's root key file to this node and start it again", o.rootKeyFile),
	)}
}

// checkLocalRootKey tests the root key against the state this node kept
// from an earlier run, before it contacts the cluster. A node restarted
// with another key file thereby stops before it serves anything.
func checkLocalRootKey(o serverOptions, sm *fsm.FSM, logger *slog.Logger) error {
	_, err := sm.VerifyRootKey()
	if errors.Is(err, fsm.ErrRootKeyMismatch) {
		return rootKeyStopError(o, err, logger)
	}
	if err != nil {
		return fmt.Errorf("verify root key: %w", err)
	}
	return nil
}

// watchRootKey tests the root key every rootKeyPoll until the test found a
// match on a node that has caught up, and returns the mismatch error if a
// test finds one. It returns nil on a match or when ctx ends. A node that
// joins a cluster starts with an empty state, so the check value appears
// only as the node catches up, or when the cluster is initialised.
func watchRootKey(ctx context.Context, node *cluster.Node, sm *fsm.FSM, logger *slog.Logger) error {
	ticker := time.NewTicker(rootKeyPoll)
	defer ticker.Stop()
	failures := 0
	for {
		checked, err := sm.VerifyRootKey()
		switch {
		case errors.Is(err, fsm.ErrRootKeyMismatch):
			return err
		case err != nil:
			failures++
			// Log the first failure and then one per 60 retries (15 s).
			if failures%60 == 1 {
				logger.Warn("root key check failed; retrying", "err", err, "failures", failures)
			}
		case checked && node.Ready():
			logger.Info("root key matches the cluster's")
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// startRootKeyWatch runs watchRootKey in a goroutine. mismatch receives
// the error of a mismatch; stop ends the watch and waits for it, and must
// run before the state machine closes.
func startRootKeyWatch(ctx context.Context, node *cluster.Node, sm *fsm.FSM, logger *slog.Logger) (mismatch <-chan error, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	found := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := watchRootKey(ctx, node, sm, logger); err != nil {
			found <- err
		}
	}()
	return found, func() {
		cancel()
		<-done
	}
}
