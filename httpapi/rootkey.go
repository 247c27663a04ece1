package httpapi

import (
	"errors"
	"fmt"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
)

// errRootKeyMismatch marks a seal failure caused by this node's root key
// differing from the cluster's: a server-side misconfiguration, which the
// client sees with a message that names it (status 500).
var errRootKeyMismatch = errors.New("httpapi: root key mismatch")

// rootKeyMismatchMessage is the client message of a request that a node
// with the wrong root key cannot serve. It names the node and the fix but
// nothing about the keys themselves.
func (s *Server) rootKeyMismatchMessage() string {
	return fmt.Sprintf("Node %s has a root key that differs from the cluster's and cannot serve; "+
		"the operator must start this node with the cluster's --root-key-file. Retry on another node", s.nodeID)
}

// checkRootKey rejects a request with 503 once this node found that its
// root key differs from the cluster's. It reads a flag and never the store.
func (s *Server) checkRootKey() error {
	if s.sm.RootKeyMismatch() != nil {
		return fail(ErrUnavailable, "%s", s.rootKeyMismatchMessage())
	}
	return nil
}

// checkRootKeyBeforeSeal runs before a handler seals anything under this
// node's root key for a proposal (a project key, a secret value, a webhook
// signing secret). Every other node would fail to open what a node with
// the wrong root key seals, so such a node must never propose it. The
// check opens the cluster's root key check value with this node's key. A
// node that finds nothing to check and has not caught up with the leader
// yet may lack the check value only because it has not applied it, so it
// rejects the request with 503 too.
func (s *Server) checkRootKeyBeforeSeal() error {
	checked, err := s.sm.VerifyRootKey()
	switch {
	case errors.Is(err, fsm.ErrRootKeyMismatch):
		return fail(ErrUnavailable, "%s", s.rootKeyMismatchMessage())
	case err != nil:
		return fmt.Errorf("verify root key: %w", err)
	case !checked && !s.node.Ready():
		return fail(ErrUnavailable, "This node is catching up with the cluster and cannot verify its root key yet; "+
			"retry in a moment or on another node")
	}
	return nil
}

// explainSealFailure returns err unchanged unless it is a failure to open
// sealed data on a node whose root key differs from the cluster's. Then it
// returns an error with status 500 whose message names the cause, since
// the fix is on the server and not in the request. Failures on a node with
// the right root key (a damaged record) keep the plain 500 message.
func (s *Server) explainSealFailure(err error) error {
	if !errors.Is(err, seal.ErrDecrypt) {
		return err
	}
	if _, verr := s.sm.VerifyRootKey(); !errors.Is(verr, fsm.ErrRootKeyMismatch) {
		return err
	}
	s.logger.Error("sealed data does not open with this node's root key; start this node with the cluster's --root-key-file",
		"err", err)
	return &requestError{kind: errRootKeyMismatch, msg: s.rootKeyMismatchMessage()}
}

// newInitPayload returns the payload of an init command that creates the
// owner token token. Its root key check value is sealed here, under this
// node's root key, so the command stays deterministic and that key becomes
// the one every node is tested against.
func (s *Server) newInitPayload(token string) (fsm.InitPayload, error) {
	check, err := s.keyring.NewRootKeyCheck()
	if err != nil {
		return fsm.InitPayload{}, err
	}
	return fsm.InitPayload{TokenID: newHandle("at_"), TokenHash: hashToken(token), RootKeyCheck: check}, nil
}

// rootKeyMismatchNow reports whether this node's root key differs from the
// cluster's. Unless a mismatch is already recorded it tests the key again
// (one read and one AES-GCM open), so health never reports a node healthy
// in the moment between catching up and the server's next periodic test.
// An error reading the state counts as no mismatch.
func (s *Server) rootKeyMismatchNow() bool {
	if s.sm.RootKeyMismatch() != nil {
		return true
	}
	_, err := s.sm.VerifyRootKey()
	return errors.Is(err, fsm.ErrRootKeyMismatch)
}
