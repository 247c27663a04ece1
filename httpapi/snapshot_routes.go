package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
)

const (
	snapshotSavePath    = "/v1/sys/snapshot"
	snapshotRestorePath = "/v1/sys/snapshot/restore"
)

// saveSnapshot serves POST /v1/sys/snapshot: it streams the replicated
// state in the state machine's snapshot format (application/octet-stream).
// The node first catches up with the leader, so the snapshot holds every
// write acknowledged before the request. The stream ends with a checksum;
// a response cut short fails restore, never restores part of the state.
func (s *Server) saveSnapshot(rc *request, ac *adminCall) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
	defer cancel()
	if err := s.node.CatchUp(ctx); err != nil {
		return fail(ErrUnavailable, "This node could not catch up with the leader for the snapshot (%s); retry", clientMessage(err, 0))
	}
	snap, err := s.sm.Snapshot()
	if err != nil {
		return fmt.Errorf("take snapshot: %w", err)
	}

	s.audit(s.adminEvent(rc, ac, ActionSnapshotSave, severityHigh, ""))
	rc.ctx.SetContentType("application/octet-stream")
	rc.ctx.Response.Header.Set("Content-Disposition", `attachment; filename="keyward.snap"`)
	logger := s.logger
	// The writer runs after the handler returned, so it uses nothing of rc.
	rc.ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer snap.Release()
		if err := snap.Persist(&streamSink{w: w}); err != nil {
			logger.Warn("snapshot stream ended early", "err", err)
		}
	})
	return nil
}

// streamSink adapts a response body writer to raft.SnapshotSink, which
// the state machine's snapshot writes to.
type streamSink struct {
	w *bufio.Writer
}

func (s *streamSink) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *streamSink) Close() error                { return s.w.Flush() }
func (s *streamSink) Cancel() error               { return nil }
func (s *streamSink) ID() string                  { return "http" }

// restoreSnapshot serves POST /v1/sys/snapshot/restore with a snapshot
// stream as the body. It replaces the state of every node. It runs on the
// leader only. Another node responds 409 with the leader's API URL in
// "leaderUrl", because the body can be larger than what the forwarding
// channel carries.
func (s *Server) restoreSnapshot(rc *request, ac *adminCall) error {
	// The body is a fasthttp buffer; RestoreSnapshot has finished with it
	// when it returns, which is before this handler returns.
	body := rc.ctx.PostBody()
	if len(body) == 0 {
		return fail(ErrBadRequest, "The body is empty; send a snapshot saved with POST %s", snapshotSavePath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SnapshotTimeout)
	defer cancel()
	err := s.node.RestoreSnapshot(ctx, body)
	switch {
	case errors.Is(err, cluster.ErrNotLeader):
		return s.writeNotLeader(rc)
	case errors.Is(err, fsm.ErrSnapshotCorrupt):
		return fail(ErrBadRequest, "The body is not a valid Keyward snapshot: %s", clientMessage(err, 0))
	case err != nil:
		return fmt.Errorf("restore snapshot: %w", err)
	}

	ev := s.adminEvent(rc, ac, ActionSnapshotRestore, severityHigh, "")
	ev.Fields = map[string]any{"bytes": len(body), "appliedIndex": s.sm.AppliedIndex()}
	s.audit(ev)
	return writeOK(rc, map[string]any{"restored": true, "bytes": len(body), "appliedIndex": s.sm.AppliedIndex()})
}

// notLeaderBody is the 409 body of a leader-only route on another node.
type notLeaderBody struct {
	Error     string `json:"error"`
	RequestID string `json:"requestId"`
	Code      string `json:"code"`
	LeaderID  string `json:"leaderId"`
	LeaderURL string `json:"leaderUrl"`
}

func (s *Server) writeNotLeader(rc *request) error {
	body := notLeaderBody{
		Error:     "This node is not the leader; send the request to the leader's API",
		RequestID: rc.id,
		Code:      "not_leader",
		LeaderID:  s.node.LeaderID(),
		LeaderURL: s.node.LeaderHTTPURL(),
	}
	if body.LeaderID == "" {
		return fail(cluster.ErrNoLeader, "No cluster leader is available; retry in a moment")
	}
	writeJSON(rc.ctx, fasthttp.StatusConflict, body)
	return nil
}

// requestConfig is fasthttp's HeaderReceived hook. It raises the body limit
// and read timeout of a snapshot restore, and the write timeout of a
// snapshot save, for a request that carries a valid owner token of every
// vault. Every other request keeps the server's limits, so no caller
// without such a token can make the node buffer a large body.
func (s *Server) requestConfig(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if !bytes.Equal(h.Method(), []byte(fasthttp.MethodPost)) {
		return fasthttp.RequestConfig{}
	}
	path, _, _ := bytes.Cut(h.RequestURI(), []byte("?"))
	switch string(path) {
	case snapshotRestorePath:
		if s.bearerIsClusterOwner(h) {
			return fasthttp.RequestConfig{MaxRequestBodySize: s.cfg.MaxSnapshotBytes, ReadTimeout: s.cfg.SnapshotTimeout}
		}
	case snapshotSavePath:
		if s.bearerIsClusterOwner(h) {
			return fasthttp.RequestConfig{WriteTimeout: s.cfg.SnapshotTimeout}
		}
	}
	return fasthttp.RequestConfig{}
}

// bearerIsClusterOwner reports whether the Authorization header holds an
// unexpired owner token scoped to every vault. The handler authenticates
// the request again in full.
func (s *Server) bearerIsClusterOwner(h *fasthttp.RequestHeader) bool {
	scheme, token, ok := bytes.Cut(h.Peek(fasthttp.HeaderAuthorization), []byte(" "))
	if !ok || !bytes.EqualFold(scheme, []byte("Bearer")) {
		return false
	}
	text := string(bytes.TrimSpace(token))
	if !hasIDForm(text, adminTokenPrefix, adminTokenLength, base62) {
		return false
	}
	hash := hashToken(text)
	tok, found := s.sm.AdminTokenByHash(hash)
	if !found || !hashesEqual(tok.Hash, hash) || !isClusterOwner(tok) {
		return false
	}
	return tok.ExpiresAt == 0 || s.cfg.Now().UnixMilli() < tok.ExpiresAt
}
