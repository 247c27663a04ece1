package httpapi

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
)

// Audit actions of cluster administration.
const (
	ActionClusterMemberRemove   = "cluster_member_remove"
	ActionClusterLeaderTransfer = "cluster_leadership_transfer"
	ActionSnapshotSave          = "snapshot_save"
	ActionSnapshotRestore       = "snapshot_restore"
)

// maxNodeIDLength matches the cluster's limit on node ids.
const maxNodeIDLength = 128

// clusterRoutes returns the routes that manage the cluster as a whole.
// Each needs an owner token whose scope covers every vault.
func (s *Server) clusterRoutes() []*route {
	const adm = planeAdmin
	return []*route{
		newRoute(fasthttp.MethodDelete, "/v1/sys/cluster/members/{nodeId}", adm, s.admin(permRead, s.clusterOwner(s.removeMember))),
		newRoute(fasthttp.MethodPost, "/v1/sys/cluster/transfer-leadership", adm, s.admin(permRead, s.clusterOwner(s.transferLeadership))),
		newRoute(fasthttp.MethodPost, snapshotSavePath, adm, s.admin(permRead, s.clusterOwner(s.saveSnapshot))),
		newRoute(fasthttp.MethodPost, snapshotRestorePath, adm, s.admin(permRead, s.clusterOwner(s.restoreSnapshot))),
	}
}

// clusterOwner admits only owner tokens scoped to every vault: these routes
// act on the data of all vaults at once.
func (s *Server) clusterOwner(handle func(*request, *adminCall) error) func(*request, *adminCall) error {
	return func(rc *request, ac *adminCall) error {
		if !isClusterOwner(ac.token) {
			return fail(ErrForbidden, "Cluster administration needs an owner token scoped to every vault (*)")
		}
		return handle(rc, ac)
	}
}

func isClusterOwner(tok *fsm.AdminToken) bool {
	return tok.Role == fsm.RoleOwner && slices.Contains(tok.Vaults, allVaults)
}

// removeMember serves DELETE /v1/sys/cluster/members/{nodeId}: it removes
// a node that is gone for good from the Raft configuration. A node that
// gossip still reports alive is refused with 409, because the leader would
// add it back; stop it first.
func (s *Server) removeMember(rc *request, ac *adminCall) error {
	id := rc.param("nodeId")
	if len(id) > maxNodeIDLength || !isPrintableASCII(id) {
		return fail(ErrBadRequest, "node id %q is not 1 to %d printable ASCII characters", clip(id), maxNodeIDLength)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
	defer cancel()
	err := s.node.RemoveServer(ctx, id)
	switch {
	case errors.Is(err, cluster.ErrUnknownMember):
		return fail(ErrNotFound, "Node %s is not a member of the cluster", id)
	case errors.Is(err, cluster.ErrMemberAlive):
		return fail(ErrConflict, "Node %s is still running; stop it before removing it, or the leader adds it back", id)
	case err != nil:
		return applyError(err, s.cfg.ApplyTimeout)
	}

	ev := s.adminEvent(rc, ac, ActionClusterMemberRemove, severityHigh, "")
	ev.Fields = map[string]any{"nodeId": id}
	s.audit(ev)
	return writeOK(rc, map[string]any{"removed": id})
}

// transferLeadership serves POST /v1/sys/cluster/transfer-leadership: the
// leader hands over to the most up-to-date voter, for example before
// maintenance on its host. The response names the new leader once this
// node has heard of it.
func (s *Server) transferLeadership(rc *request, ac *adminCall) error {
	var in struct{}
	if err := decodeOptionalJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	previous := s.node.LeaderID()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
	defer cancel()
	if err := s.node.TransferLeadership(ctx); err != nil {
		return applyError(err, s.cfg.ApplyTimeout)
	}
	leader := s.waitNewLeader(ctx, previous)

	ev := s.adminEvent(rc, ac, ActionClusterLeaderTransfer, severityMedium, "")
	ev.Fields = map[string]any{"previousLeaderId": previous, "leaderId": leader}
	s.audit(ev)
	return writeOK(rc, map[string]any{"previousLeaderId": previous, "leaderId": leader})
}

// waitNewLeader polls until this node has heard of a leader other than
// previous and returns it, or "" when ctx ends first.
func (s *Server) waitNewLeader(ctx context.Context, previous string) string {
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for {
		if leader := s.node.LeaderID(); leader != "" && leader != previous {
			return leader
		}
		select {
		case <-ctx.Done():
			return ""
		case <-ticker.C:
		}
	}
}
