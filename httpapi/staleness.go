package httpapi

import "time"

// checkFresh rejects a machine request on a node whose state may be older
// than the majority's. That is a node that has not heard from a leader
// within MaxStaleness, or one that is not ready: catching up after a start,
// or fenced after it failed to confirm a security-critical write in time,
// or one whose clock disagrees with the majority of its peers, or one
// whose root key differs from the cluster's.
// It runs before any decision is made, so a node cut off from the cluster
// never serves a machine that the majority revoked. The 503 tells clients
// to retry, on this node or another one.
func (s *Server) checkFresh() error {
	if err := s.checkRootKey(); err != nil {
		return err
	}
	if staleness := s.node.Staleness(); staleness > s.cfg.MaxStaleness {
		return fail(ErrUnavailable, "This node has not heard from the cluster leader for %v; retry on another node",
			staleness.Round(time.Millisecond))
	}
	if offset, skewed := s.node.ClockSkew(); skewed {
		return fail(ErrUnavailable, "This node's clock differs from its peers' by about %v, so it cannot decide expiry "+
			"and time windows; retry on another node", offset.Round(time.Second))
	}
	if !s.node.Ready() {
		return fail(ErrUnavailable, "This node is catching up with the cluster; retry on another node")
	}
	return nil
}

// checkAdminFresh rejects an admin request on a node that has not heard
// from a leader within MaxStaleness or is not ready, before the token is
// looked up. Otherwise a node cut off from the cluster would keep
// accepting an admin token that the majority revoked. A skewed clock does
// not matter here, so it is not checked.
func (s *Server) checkAdminFresh() error {
	if staleness := s.node.Staleness(); staleness > s.cfg.MaxStaleness {
		return fail(ErrUnavailable, "This node has not heard from the cluster leader for %v, so it cannot tell whether "+
			"this admin token is still valid; retry on another node", staleness.Round(time.Millisecond))
	}
	if !s.node.Ready() {
		return fail(ErrUnavailable, "This node is catching up with the cluster; retry on another node")
	}
	return nil
}
