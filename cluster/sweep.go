package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyward/keyward/fsm"
)

// Applier proposes a command through Raft. *Node implements it.
type Applier interface {
	Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Response, error)
}

var _ Applier = (*Node)(nil)

// SweepConfig configures the expiry sweep.
type SweepConfig struct {
	// NodeID names the proposing node in the commands.
	NodeID string
	// Interval is the time between two sweeps (default 10 s). Requests
	// are refused from the instant a machine expires. The sweep only
	// records the expired status, within Interval plus one commit.
	Interval time.Duration
	// BatchSize is the maximum number of machines that one command
	// expires (default 500).
	BatchSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultSweepConfig returns a SweepConfig with the defaults above.
func DefaultSweepConfig() SweepConfig {
	return SweepConfig{Interval: 10 * time.Second, BatchSize: 500, Now: time.Now}
}

// RunExpirySweep marks every machine whose expiry has passed as expired,
// once per Interval, until ctx ends. It is meant to run as a leader job.
// The state machine skips a machine that is already expired or not yet due
// at the command's time, so a sweep that two leaders run around a leader
// change, or a retried command, still expires each machine exactly once.
func RunExpirySweep(ctx context.Context, apply Applier, sm *fsm.FSM, cfg SweepConfig, logger *slog.Logger) {
	logger = logger.With("component", "sweep")
	ticker := time.NewTicker(cfg.Interval)
	defer ticker.Stop()
	for {
		if err := SweepOnce(ctx, apply, sm, cfg); err != nil && ctx.Err() == nil {
			logger.Warn("expiry sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// SweepOnce proposes the expiry of every machine due at cfg.Now(), in
// batches of at most cfg.BatchSize.
func SweepOnce(ctx context.Context, apply Applier, sm *fsm.FSM, cfg SweepConfig) error {
	now := cfg.Now()
	due := dueMachines(sm, now.UnixMilli())
	for start := 0; start < len(due); start += cfg.BatchSize {
		end := min(start+cfg.BatchSize, len(due))
		if err := proposeExpiry(ctx, apply, cfg.NodeID, now, due[start:end]); err != nil {
			return err
		}
	}
	return nil
}

// dueMachines returns the machines that are past their expiry at nowMs and
// not yet marked expired or revoked, in expiry order. The state's expiry
// index lists only machines with an expiry that are still in force, so a
// sweep reads the machines due, not every machine.
func dueMachines(sm *fsm.FSM, nowMs int64) []fsm.MachineID {
	var due []fsm.MachineID
	for _, m := range sm.MachinesExpiringBy(nowMs) {
		if m.Machine.Expired(nowMs) {
			due = append(due, m.Machine.ID)
		}
	}
	return due
}

func proposeExpiry(ctx context.Context, apply Applier, nodeID string, now time.Time, ids []fsm.MachineID) error {
	payload, err := json.Marshal(fsm.ExpireMachinesPayload{MachineIDs: ids})
	if err != nil {
		return err
	}
	cmd := &fsm.Command{
		Type:    fsm.CmdExpireMachines,
		Time:    now.UnixMilli(),
		Node:    nodeID,
		Actor:   fsm.Actor{Kind: "system", ID: nodeID, SourceIP: "system"},
		Payload: payload,
	}
	resp, err := apply.Apply(ctx, cmd)
	if err != nil {
		return fmt.Errorf("propose expiry of %d machines: %w", len(ids), err)
	}
	if err := resp.Err(); err != nil && !errors.Is(err, fsm.ErrAlreadyApplied) {
		return fmt.Errorf("expire %d machines: %w", len(ids), err)
	}
	return nil
}
