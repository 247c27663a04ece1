package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
)

// Init creates the first owner token of a fresh cluster, as POST
// /v1/sys/init does, and returns it. A dev node calls it at start. It waits
// for a leader until ctx ends and returns fsm.ErrAlreadyInitialized on a
// cluster that already has an owner token.
func (s *Server) Init(ctx context.Context) (string, error) {
	token := newAdminToken()
	initPayload, err := s.newInitPayload(token)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(initPayload)
	if err != nil {
		return "", err
	}
	for {
		cmd := &fsm.Command{
			Type:    fsm.CmdInit,
			Time:    s.cfg.Now().UnixMilli(),
			Node:    s.nodeID,
			Actor:   fsm.Actor{Kind: "system", ID: s.nodeID, SourceIP: "system"},
			Payload: payload,
		}
		resp, err := s.node.Apply(ctx, cmd)
		if err == nil {
			if err := resp.Err(); err != nil {
				return "", err
			}
			return token, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("initialise cluster: %w", err)
		}
		if !retryableApply(err) {
			return "", fmt.Errorf("initialise cluster: %w", err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("initialise cluster: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// retryableApply reports whether an Apply error only means that no leader
// was available yet.
func retryableApply(err error) bool {
	return errors.Is(err, cluster.ErrNoLeader)
}
