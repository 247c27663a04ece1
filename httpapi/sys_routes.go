package httpapi

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
)

// healthResponse is the body of GET /v1/sys/health.
type healthResponse struct {
	NodeID       string `json:"nodeId"`
	State        string `json:"state"`
	LeaderID     string `json:"leaderId"`
	AppliedIndex uint64 `json:"appliedIndex"`
	// Staleness is how long since this node last heard from a leader, as a
	// Go duration; StalenessMs is the same in milliseconds.
	Staleness   string `json:"staleness"`
	StalenessMs int64  `json:"stalenessMs"`
	// Ready is false while the node catches up after a start, or after it
	// failed to confirm a security-critical write in time.
	Ready bool `json:"ready"`
	// Healthy is false when the node is shut down, not ready, staler
	// than the configured bound, its clock is skewed, its data disk
	// stalls or is nearly full, or its root key differs from the
	// cluster's. The status is then 503, so that load balancers route
	// machines elsewhere.
	Healthy bool `json:"healthy"`
	// RootKeyMismatch is true once this node found that its root key cannot
	// open the cluster's root key check value. Such a node refuses every
	// machine request and write; start it with the cluster's root key file.
	RootKeyMismatch bool `json:"rootKeyMismatch"`
	// DiskStalled is true while a write to raft.db (each ends with fsync)
	// takes longer than the disk stall threshold, and for 30 s after one
	// did. FsyncLatencyMs is the last such write's duration, or the age of
	// one still running; FsyncLatencyMaxMs is the longest within 30 s.
	DiskStalled       bool  `json:"diskStalled"`
	FsyncLatencyMs    int64 `json:"fsyncLatencyMs"`
	FsyncLatencyMaxMs int64 `json:"fsyncLatencyMaxMs"`
	// DiskFreeBytes is the free space of the data volume. DiskLow is true
	// below the disk reserve, while the node refuses new log entries.
	DiskFreeBytes uint64 `json:"diskFreeBytes"`
	DiskLow       bool   `json:"diskLow"`
	// ClockOffsetMs is the median offset of the peers' clocks from this
	// node's; ClockSkewed is true when the node's clock disagrees with the
	// majority of its peers by more than the allowed skew.
	ClockOffsetMs int64 `json:"clockOffsetMs"`
	ClockSkewed   bool  `json:"clockSkewed"`
	// GeoBuild is this node's IP-to-country database build;
	// GeoBuildMismatch lists the builds of the alive members when they
	// differ, in which case a country guardrail may decide differently
	// per node.
	GeoBuild         string   `json:"geoBuild,omitempty"`
	GeoBuildMismatch []string `json:"geoBuildMismatch,omitempty"`
	Initialized      bool     `json:"initialized"`
	Dev              bool     `json:"dev,omitempty"`
}

// health serves GET /v1/sys/health without authentication.
func (s *Server) health(rc *request) error {
	staleness := s.node.Staleness()
	state := s.node.State()
	ready := s.node.Ready()
	offset, skewed := s.node.ClockSkew()
	out := healthResponse{
		NodeID:           s.nodeID,
		State:            state,
		LeaderID:         s.node.LeaderID(),
		AppliedIndex:     s.sm.AppliedIndex(),
		Staleness:        staleness.Round(time.Millisecond).String(),
		StalenessMs:      staleness.Milliseconds(),
		Ready:            ready,
		Healthy:          state != "shutdown" && ready && !skewed && staleness <= s.cfg.MaxStaleness,
		ClockOffsetMs:    offset.Milliseconds(),
		ClockSkewed:      skewed,
		GeoBuildMismatch: s.node.GeoBuildMismatch(),
		Initialized:      s.sm.Initialized(),
		Dev:              s.cfg.Dev,
	}
	disk := s.node.DiskHealth()
	out.DiskStalled, out.DiskLow, out.DiskFreeBytes = disk.Stalled, disk.Low, disk.FreeBytes
	out.FsyncLatencyMs, out.FsyncLatencyMaxMs = disk.WriteLatency.Milliseconds(), disk.SlowestRecent.Milliseconds()
	out.RootKeyMismatch = s.rootKeyMismatchNow()
	out.Healthy = out.Healthy && !disk.Stalled && !disk.Low && !out.RootKeyMismatch
	status := fasthttp.StatusOK
	if !out.Healthy {
		status = fasthttp.StatusServiceUnavailable
	}
	if b, ok := s.geo.(geoBuilder); ok {
		out.GeoBuild = b.Build()
	}
	writeJSON(rc.ctx, status, out)
	return nil
}

// memberView is one cluster member in GET /v1/sys/cluster.
type memberView struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raftAddr"`
	GossipAddr string `json:"gossipAddr"`
	HTTPURL    string `json:"httpUrl"`
	Voter      bool   `json:"voter"`
	// InRaft is false for a node that gossip reports but that the leader
	// has not added to the Raft configuration yet.
	InRaft bool `json:"inRaft"`
	Alive  bool `json:"alive"`
	Leader bool `json:"leader"`
}

// clusterStatus serves GET /v1/sys/cluster.
func (s *Server) clusterStatus(rc *request, _ *adminCall) error {
	members := []memberView{}
	for _, m := range s.node.Members() {
		members = append(members, memberView{
			ID: string(m.ID), RaftAddr: m.RaftAddr, GossipAddr: m.GossipAddr, HTTPURL: m.HTTPURL,
			Voter: m.Voter, InRaft: m.InRaft, Alive: m.Alive, Leader: m.Leader,
		})
	}
	return writeOK(rc, map[string]any{
		"nodeId":   s.nodeID,
		"leaderId": s.node.LeaderID(),
		"members":  members,
	})
}

// stateChecksum serves GET /v1/sys/checksum: the applied index and a hash
// of this node's replicated state, so operators and tests can confirm that
// every node holds the same data.
func (s *Server) stateChecksum(rc *request, _ *adminCall) error {
	index := s.sm.AppliedIndex()
	sum, err := s.sm.Checksum()
	if err != nil {
		return fmt.Errorf("compute state checksum: %w", err)
	}
	return writeOK(rc, map[string]any{"nodeId": s.nodeID, "appliedIndex": index, "checksum": sum})
}

// initCluster serves POST /v1/sys/init. On a fresh cluster it creates the
// first owner token and returns it once, and afterwards it responds 409.
// The Raft command decides, so two concurrent calls cannot both succeed.
func (s *Server) initCluster(rc *request) error {
	var in struct{}
	if err := decodeOptionalJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if s.sm.Initialized() {
		return fail(fsm.ErrAlreadyInitialized, "Cluster is already initialized; use an existing owner token")
	}

	token := newAdminToken()
	payload, err := s.newInitPayload(token)
	if err != nil {
		return err
	}
	client, proxy := s.clientAddress(rc)
	actor := fsm.Actor{Kind: actorExternal, SourceIP: addrText(client)}
	if _, err := s.propose(rc, proposal{typ: fsm.CmdInit, actor: actor, payload: payload, fresh: true}); err != nil {
		return err
	}

	ev := AuditEvent{
		RequestID: rc.id, Action: ActionClusterInit, Severity: severityHigh, ActorKind: actorExternal,
		SourceIP: addrText(client), Method: string(rc.ctx.Method()), Path: rc.path,
		Timestamp: rc.now.UnixMilli(), Fields: map[string]any{"tokenId": payload.TokenID},
	}
	if proxy.IsValid() {
		ev.ProxyIP = proxy.String()
	}
	s.audit(ev)
	return writeOK(rc, map[string]string{"rootToken": token})
}

// serveMetrics serves GET /metrics in the Prometheus text format.
func (s *Server) serveMetrics(rc *request) error {
	s.metricsHandler(rc.ctx)
	return nil
}
